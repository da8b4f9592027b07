# Sourced by the other scripts: where Confab's tools and build output live.
# shellcheck shell=bash
CONFAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONFAB_ROOT
# Tools live outside the checkout so that a fresh clone on the same machine reuses them.
export CONFAB_TOOLS="${CONFAB_TOOLS:-$HOME/.cache/confab/tools}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$CONFAB_TOOLS/binaryen-132/node_modules/.bin:$PATH"
