#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints for native and wasm32, unit and integration
# tests (SQLite and PostgreSQL), the browser end-to-end tests in headless Chromium, and a
# bounded run of every fuzz target.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT"

# Each step says how long the run has taken so far, so a slow step shows in the log.
step() { printf '\n\033[1m==> [%d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

step "tools"
scripts/bootstrap.sh test

step "services"
scripts/services.sh

step "formatting"
cargo fmt --all --check
rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs

step "lints (native)"
cargo clippy --workspace --all-targets --features confab-server/browser-tests --locked -- -D warnings

step "lints (wasm32)"
cargo clippy -p confab-app -p confab-shared --target wasm32-unknown-unknown --locked -- -D warnings

step "building the app with cargo-leptos (kept working for the release build it documents)"
cargo leptos build

step "the app's release build, within its size budget"
scripts/build-app.sh --check-size

step "building the app for the browser tests"
scripts/build-app.sh --debug

step "tests"
cargo test --workspace --features confab-server/browser-tests --locked

step "the patched dependencies' own tests (see vendor/*/CONFAB-PATCH.md)"
cargo test --manifest-path vendor/tungstenite/Cargo.toml --lib --locked
cargo test --manifest-path vendor/engineioxide/Cargo.toml --features __test_harness,v3 --locked

step "fuzzing (30 s a target)"
scripts/fuzz.sh 30

step "done"
