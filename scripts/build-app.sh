#!/usr/bin/env bash
# Builds the browser app into target/site, in the layout `cargo leptos build` makes
# (shell.html, pkg/confab.js, pkg/confab.wasm, pkg/confab.css), with the wasm target,
# wasm-bindgen and wasm-opt directly. Running Confab needs nothing more, so a first run
# does not wait for cargo-leptos to build.
#
#   scripts/build-app.sh               the release build: the wasm-release profile, then wasm-opt
#   scripts/build-app.sh --debug       a debug build, faster to make, larger
#   scripts/build-app.sh --check-size  the release build, failing if its wasm, compressed,
#                                      is over the budget below (scripts/test.sh runs this)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CONFAB_ROOT"

# What a browser downloads of the release wasm at most, compressed as the server sends it:
# 200 KiB with brotli, 250 KiB with gzip.
MAX_WASM_BROTLI_BYTES=204800
MAX_WASM_GZIP_BYTES=256000

profile=wasm-release
check_size=false
case "${1:-}" in
  "") ;;
  --debug) profile=dev ;;
  --check-size) check_size=true ;;
  *) echo "usage: $0 [--debug | --check-size]" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}"
# Cargo's directory for a profile: `dev` builds into `debug`.
profile_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
site=target/site

# Leptos' type-erased views: about 5 % less wasm. .cargo/config.toml sets the same flag, but a
# RUSTFLAGS in the caller's environment replaces it there, so it is added here as well.
RUSTFLAGS="${RUSTFLAGS:-} --cfg erase_components" \
  cargo build --locked -p confab-app --lib --target wasm32-unknown-unknown --profile "$profile"

mkdir -p "$site/pkg"
# What cargo-leptos takes from Cargo.toml's [[workspace.metadata.leptos]]: output-name
# "confab", assets-dir "public", style-file "style/main.css".
wasm-bindgen --target web --no-typescript --out-name confab --out-dir "$site/pkg" \
  "$target_dir/wasm32-unknown-unknown/$profile_dir/confab_app.wasm"
mv "$site/pkg/confab_bg.wasm" "$site/pkg/confab.wasm"
if [ "$profile" != dev ]; then
  # The flags cargo-leptos passes.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    "$site/pkg/confab.wasm" -o "$site/pkg/confab.wasm"
fi
cp style/main.css "$site/pkg/confab.css"
cp -R public/. "$site/"

# The same three files under names that carry a hash of their content, which the server
# lets browsers keep for a year (site.rs, ASSETS_DIR); the shell page loads those.
hash=$(cat "$site/pkg/confab.js" "$site/pkg/confab.wasm" "$site/pkg/confab.css" | sha256sum | cut -c1-16)
rm -rf "$site/assets" && mkdir -p "$site/assets"
for ext in js wasm css; do
  cp "$site/pkg/confab.$ext" "$site/assets/confab-$hash.$ext"
done
sed "s|/pkg/confab\.|/assets/confab-$hash.|g" public/shell.html >"$site/shell.html"
grep -q "/assets/confab-$hash.wasm" "$site/shell.html"
# Compressed once, as hard as the formats go (the server would compress each response
# faster and larger); it sends these to browsers that accept them.
node -e '
  const fs = require("fs"), zlib = require("zlib");
  for (const file of process.argv.slice(1)) {
    const data = fs.readFileSync(file);
    fs.writeFileSync(file + ".br", zlib.brotliCompressSync(data, { params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }));
    fs.writeFileSync(file + ".gz", zlib.gzipSync(data, { level: 9 }));
  }' "$site"/assets/confab-"$hash".*
wasm="$site/assets/confab-$hash.wasm"
brotli_bytes=$(wc -c <"$wasm.br")
gzip_bytes=$(wc -c <"$wasm.gz")
echo "app built into $site: $(wc -c <"$wasm") bytes of wasm, $brotli_bytes brotli, $gzip_bytes gzip" >&2
if $check_size; then
  if [ "$brotli_bytes" -gt "$MAX_WASM_BROTLI_BYTES" ] || [ "$gzip_bytes" -gt "$MAX_WASM_GZIP_BYTES" ]; then
    echo "the wasm is over its budget: at most $MAX_WASM_BROTLI_BYTES bytes brotli and $MAX_WASM_GZIP_BYTES gzip" >&2
    exit 1
  fi
  echo "within the budget ($MAX_WASM_BROTLI_BYTES brotli, $MAX_WASM_GZIP_BYTES gzip)" >&2
fi
