#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis the tests use are running, starting the local ones if
# they are installed but stopped. Fails loudly otherwise: the PostgreSQL and cluster halves
# of the suite are never skipped silently. Set CONFAB_TEST_POSTGRES_URL or
# CONFAB_TEST_REDIS_URL to use other servers.
set -euo pipefail

fail() { echo "services: $*" >&2; exit 1; }

postgres() {
  [ -z "${CONFAB_TEST_POSTGRES_URL:-}" ] || return 0 # someone else's: the tests report
  ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
  command -v pg_isready >/dev/null ||
    fail "PostgreSQL client tools are missing; install PostgreSQL or set CONFAB_TEST_POSTGRES_URL"
  if ! ready; then
    echo "services: starting the local PostgreSQL cluster" >&2
    for version in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
    for _ in $(seq 1 40); do ready && break; sleep 0.25; done
  fi
  ready || fail "PostgreSQL is not running at 127.0.0.1:5432 and could not be started"
}

redis() {
  [ -z "${CONFAB_TEST_REDIS_URL:-}" ] || return 0
  ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
  command -v redis-server >/dev/null ||
    fail "Redis is missing; install redis-server or set CONFAB_TEST_REDIS_URL"
  if ! ready; then
    echo "services: starting a local Redis" >&2
    redis-server --daemonize yes --save '' --appendonly no >/dev/null
    for _ in $(seq 1 40); do ready && break; sleep 0.25; done
  fi
  ready || fail "Redis is not running at 127.0.0.1:6379 and could not be started"
}

postgres
redis
