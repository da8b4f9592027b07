#!/usr/bin/env bash
# Sets up and runs Confab: installs the build tools (once), builds the app and the server in
# release mode, and serves them at http://127.0.0.1:3000 with an embedded SQLite database in
# ./data. Any argument is passed to confab-server (try --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT"

scripts/bootstrap.sh run
scripts/build-app.sh
cargo build --locked --release -p confab-server
exec "${CARGO_TARGET_DIR:-target}/release/confab-server" --site-dir target/site "$@"
