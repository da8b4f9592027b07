#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for a bounded time, starting from its committed
# corpus (fuzz/corpus/<target>), and fails on the first panic, crash, timeout or runaway
# memory. What the fuzzer finds goes to a scratch directory, so the checkout stays clean; a
# failing input is kept in fuzz/artifacts/<target>/ and `cargo fuzz run <target> <file>`
# replays it. scripts/test.sh runs this with the default time.
#
#   scripts/fuzz.sh [seconds per target (default 30)] [target ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT/fuzz"

seconds="${1:-30}"
shift $(($# > 0 ? 1 : 0))
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# No sanitizer: the stable toolchain has none, and the code under test has no `unsafe`
# (the workspace forbids it), so what is left to find is panics, hangs and memory growth.
flags=(--sanitizer none)
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
  scratch="$(mktemp -d)"
  # Inputs up to 64 KiB, the largest frame any door accepts; 5 s per input at most.
  if ! cargo fuzz run "${flags[@]}" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$scratch.log" 2>&1; then
    tail -n 40 "$scratch.log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(awk '/stat::number_of_executed_units/ { print $2 }' "$scratch.log")"
  printf 'fuzz: %s ran %s inputs in %s s, no failure\n' "$target" "${runs:-?}" "$seconds" >&2
  rm -rf "$scratch" "$scratch.log"
done
