#!/usr/bin/env bash
# Starts Confab as a cluster on this machine: three nodes (127.0.0.1:3001-3003) sharing one
# PostgreSQL database and one Redis, behind HAProxy at http://127.0.0.1:3000, with the app
# served. Ctrl-C stops everything it started.
#
#   CONFAB_CLUSTER_POSTGRES  the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test);
#                            the nodes use its database confab_cluster, made if missing
#   CONFAB_REDIS_URL         the Redis (default redis://127.0.0.1:6379)
#   CONFAB_CLUSTER_PORT      where HAProxy listens (default 3000)
#
# Any argument is passed to every node (try --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT"

admin="${CONFAB_CLUSTER_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
redis="${CONFAB_REDIS_URL:-redis://127.0.0.1:6379}"
port="${CONFAB_CLUSTER_PORT:-3000}"
data="$CONFAB_ROOT/data/cluster"

log() { printf '\033[1mcluster:\033[0m %s\n' "$*" >&2; }

scripts/bootstrap.sh cluster
[ -n "${CONFAB_CLUSTER_POSTGRES:-}" ] || scripts/services.sh
scripts/build-app.sh
cargo build --locked --release -p confab-server
server="${CARGO_TARGET_DIR:-target}/release/confab-server"

if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'confab_cluster'" | grep -q 1; then
  log "creating the database confab_cluster"
  psql "$admin" -qc 'CREATE DATABASE confab_cluster'
fi
database="${admin%/*}/confab_cluster"

# Every node must verify the tokens the others sign (guest tokens, /qf tokens): one secret.
mkdir -p "$data"
if [ ! -s "$data/jwt-secret" ]; then
  (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n' >"$data/jwt-secret")
fi
secret="$(cat "$data/jwt-secret")"

pids=()
stop() {
  trap - EXIT INT TERM
  log "stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

for n in 1 2 3; do
  CONFAB_ADDR="127.0.0.1:300$n" \
  CONFAB_DATA_DIR="$data/node$n" \
  CONFAB_DATABASE_URL="$database" \
  CONFAB_REDIS_URL="$redis" \
  CONFAB_JWT_SECRET="$secret" \
  CONFAB_TRUSTED_PROXIES=127.0.0.1 \
    "$server" --site-dir target/site "$@" &
  pids+=($!)
done

CONFAB_LISTEN="127.0.0.1:$port" \
CONFAB_NODE_1=127.0.0.1:3001 CONFAB_NODE_2=127.0.0.1:3002 CONFAB_NODE_3=127.0.0.1:3003 \
  haproxy -db -f scripts/cluster/haproxy.cfg &
pids+=($!)

log "three nodes behind http://127.0.0.1:$port (Ctrl-C stops them)"
# Ends when any of them does; the trap stops the rest.
wait -n "${pids[@]}"
