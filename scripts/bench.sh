#!/usr/bin/env bash
# Runs one benchmark scenario in release mode: Confab beside the raw axum WebSocket server and
# Socket.IO on Node, servers pinned to core 0 and the load generator to core 1.
#
#   scripts/bench.sh idle        [--connections 20000]
#   scripts/bench.sh room-chat   [--rooms 100 --members 100 --rate 10 --seconds 30]
#   scripts/bench.sh fanout      [--members 1000 --step-seconds 5]
#   scripts/bench.sh ingest      [--senders 50 --seconds 10]
#   scripts/bench.sh cluster     [--nodes 1,3 --rate 1,10 --rooms 100 --members 100]
#   scripts/bench.sh recovery    [--clients 100 --missed 100 --rounds 3]
#   scripts/bench.sh joins       [--clients 10000 --rooms 100 --arrival-seconds 1 --fill 1000]
#   scripts/bench.sh soak        [--minutes 30 --ws-rooms 40 --sio-rooms 10 --members 25 --rate 10]
#   scripts/bench.sh <scenario> --targets confab-ws,node-sio
#
# Figures go to stdout and to target/bench/<scenario>.{json,svg}; BENCHMARKS.md keeps them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT"
scripts/services.sh >/dev/null
cargo build --release --locked -p confab-server -p confab-bench
if [ ! -d bench/peers/node-sio/node_modules/socket.io ]; then
  npm ci --silent --no-audit --no-fund --prefix bench/peers/node-sio >/dev/null
fi
exec "${CARGO_TARGET_DIR:-target}/release/confab-bench" "$@"
