#!/usr/bin/env bash
# Installs the tools Confab's build and tests need, outside the checkout so that every clone
# on this machine shares them. Idempotent: each step checks what is installed first, so a
# second run takes seconds.
#
#   scripts/bootstrap.sh run    wasm target, wasm-bindgen-cli, wasm-opt (what build-app.sh uses)
#   scripts/bootstrap.sh test   the above plus cargo-leptos, cargo-fuzz, Chromium,
#                               chromedriver and the Node test client
#   scripts/bootstrap.sh dev    the above plus trunk and cargo-leptos
#   scripts/bootstrap.sh cluster  the run tools plus HAProxy, for scripts/cluster.sh
#   scripts/bootstrap.sh all    everything
#
# Nothing here downloads a prebuilt binary from a project's release page: the Rust tools are
# built from crates.io, wasm-opt comes from npm's binaryen package and Chromium from Debian.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"

what="${1:-all}"

TRUNK_VERSION=0.21.14        # 0.22 needs a newer rustc than 1.95
CARGO_LEPTOS_VERSION=0.3.10  # 0.3.11 needs a newer rustc than 1.95
BINARYEN_VERSION=132         # Debian's binaryen 108 breaks current wasm-bindgen output
CARGO_FUZZ_VERSION=0.13.2

log() { printf '\033[1mbootstrap:\033[0m %s\n' "$*" >&2; }

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
    "$CONFAB_ROOT/Cargo.lock"
}

installed_version() { # tool -> version printed by `tool --version`, or nothing
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $2; exit}' || true
}

ensure_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then return; fi
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

ensure_cargo_tool() { # binary crate version [extra cargo install args...]
  local bin="$1" crate="$2" version="$3"; shift 3
  if [ "$(installed_version "$bin")" = "$version" ]; then return; fi
  log "building $crate $version from crates.io (minutes, once per machine)"
  cargo install --quiet "$crate" --version "$version" --force "$@"
}

# A tool that does little work per run (a build driver, not a compiler) is built without
# optimisation or debug info: on two cores that takes minutes off a first run, and the
# tool's own run time stays seconds.
ensure_cargo_driver() { # binary crate version [extra cargo install args...]
  CARGO_PROFILE_DEV_DEBUG=false ensure_cargo_tool "$@" --debug
}

ensure_wasm_opt() {
  local dir="$CONFAB_TOOLS/binaryen-$BINARYEN_VERSION"
  if [ -x "$dir/node_modules/.bin/wasm-opt" ]; then return; fi
  log "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "binaryen@$BINARYEN_VERSION" >/dev/null
}

# The Socket.IO contract tests drive the server with the real socket.io-client package,
# installed from the committed lock file.
ensure_node_test_packages() {
  local dir="$CONFAB_ROOT/server/tests/socketio"
  if [ -d "$dir/node_modules/socket.io-client" ] &&
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then return; fi
  log "installing the Socket.IO test client (npm ci)"
  npm ci --silent --no-audit --no-fund --prefix "$dir" >/dev/null
}

apt_install() { # package...
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return; fi
  log "installing Debian's chromium and chromium-driver"
  apt_install chromium chromium-driver
}

ensure_haproxy() {
  if command -v haproxy >/dev/null; then return; fi
  log "installing Debian's haproxy"
  apt_install haproxy
}

ensure_wasm_target
ensure_wasm_opt
# Its own lock file pins a crate that no longer builds, hence no --locked.
ensure_cargo_tool wasm-bindgen wasm-bindgen-cli "$(wasm_bindgen_version)"
# cargo-leptos is the slowest tool to build (it compiles swc, lightningcss and OpenSSL:
# about 9 minutes on two cores unoptimised, 12-15 optimised), and running Confab does not
# need it: scripts/build-app.sh does its work for the app. The tests and
# the dev loop build it, so that `cargo leptos build` keeps working. `no_downloads` makes
# it use the wasm-bindgen and wasm-opt on PATH instead of fetching its own.
ensure_cargo_leptos() {
  ensure_cargo_driver cargo-leptos cargo-leptos "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
}

case "$what" in
  run) ;;
  test)
    ensure_chromium
    ensure_node_test_packages
    ensure_cargo_leptos
    ensure_cargo_driver cargo-fuzz cargo-fuzz "$CARGO_FUZZ_VERSION" --locked
    ;;
  dev) ensure_cargo_tool trunk trunk "$TRUNK_VERSION" --locked; ensure_cargo_leptos ;;
  cluster) ensure_haproxy ;;
  all)
    ensure_chromium
    ensure_haproxy
    ensure_node_test_packages
    ensure_cargo_tool trunk trunk "$TRUNK_VERSION" --locked
    ensure_cargo_leptos
    ensure_cargo_driver cargo-fuzz cargo-fuzz "$CARGO_FUZZ_VERSION" --locked
    ;;
  *) echo "usage: $0 [run|test|dev|cluster|all]" >&2; exit 2 ;;
esac
log "tools ready"
