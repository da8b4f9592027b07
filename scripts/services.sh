#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use is running, starting the local cluster if it is
# installed but stopped. Fails loudly otherwise: the PostgreSQL half of the suite is never
# skipped silently. Set CONFAB_TEST_POSTGRES_URL to use another server.
set -euo pipefail

url="${CONFAB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if [ -n "${CONFAB_TEST_POSTGRES_URL:-}" ]; then
  exit 0 # someone else's server: the tests report if it is unreachable
fi

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null; then
  echo "services: PostgreSQL client tools are missing; install PostgreSQL or set CONFAB_TEST_POSTGRES_URL" >&2
  exit 1
fi
if ! ready; then
  echo "services: starting the local PostgreSQL cluster" >&2
  for version in /etc/postgresql/*; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
  done
  for _ in $(seq 1 40); do ready && break; sleep 0.25; done
fi
if ! ready; then
  echo "services: PostgreSQL is not running at 127.0.0.1:5432 and could not be started ($url)" >&2
  exit 1
fi
