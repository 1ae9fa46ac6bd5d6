#!/usr/bin/env bash
# Builds the verify page into a standalone folder anyone can host (default web/dist): the static
# page (web/static: index.html, verify.js, worker.js) and the sworn-web WebAssembly module,
# built for wasm32-unknown-unknown with SIMD128 and bound to JavaScript by wasm-bindgen.
# `sworn serve --verify-dir DIR` serves such a folder at /verify.
#
# Installs what it needs: the Rust target (rustup) and wasm-bindgen-cli at the version of the
# wasm-bindgen crate (cargo install; the two must match exactly).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-web/dist}"
WASM_BINDGEN_VERSION="0.2.130"
rustup target add wasm32-unknown-unknown >/dev/null
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION"; then
    # Not --locked: its lock file names a webpki-roots release the registry mirror lacks.
    cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
# getrandom (two versions in the tree) reaches Web Crypto only with this backend cfg as well as
# its `wasm_js` feature (web/Cargo.toml); nothing in a verification draws randomness.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='-C target-feature=+simd128 --cfg getrandom_backend="wasm_js"'
cargo build --quiet --release --locked --target wasm32-unknown-unknown -p sworn-web
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/release/sworn_web.wasm"
cp web/static/index.html web/static/verify.js web/static/worker.js "$out/"
echo "$out"
