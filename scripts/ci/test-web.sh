#!/usr/bin/env bash
# The verify page in a real browser: builds the page (scripts/build-web.sh, then clippy
# -D warnings on its module), then drives it in headless Chromium (Debian's `chromium`) with
# puppeteer-core (npm, pinned in web/test/package-lock.json): every golden vector verifies,
# tampered ones are refused with their reason, a SmolLM2 and a Gemma 3 vector are replayed with
# their model files bit for bit, and one against the wrong model is a mismatch
# (web/test/verify-page.mjs, which prints the browser's replay times).
# Then the chat page at / against a real `sworn serve` on SmolLM2 (web/test/chat-page.mjs): a
# question is answered and shows "Verified", a tampered attestation and an altered answer show why not.
#
# Installs what it needs: Chromium (apt-get, pinned; Debian replaces superseded Chromium builds
# in its archive with each security update, so when the pinned build is gone the current one is
# installed with a warning), the npm packages, and what build-web.sh installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHROMIUM_VERSION="156.0.8078.114-1~deb12u1"
if ! command -v chromium >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    version="$CHROMIUM_VERSION"
    if ! apt-cache madison chromium | awk '{print $3}' | grep -qxF "$CHROMIUM_VERSION"; then
        version="$(apt-cache policy chromium | awk '/Candidate:/ {print $2}')"
        echo "!!! chromium $CHROMIUM_VERSION is gone from the archive; installing $version !!!" >&2
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "chromium=$version"
fi
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
dist="$(scripts/build-web.sh "${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}/verify-page" | tail -1)"
# The browser build's lints (build-web.sh sets the same flags for the build itself).
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='-C target-feature=+simd128 --cfg getrandom_backend="wasm_js"' \
    cargo clippy --quiet --release --locked --target wasm32-unknown-unknown -p sworn-web -- -D warnings
if [ ! -d web/test/node_modules/puppeteer-core ]; then
    (cd web/test && npm ci --no-audit --no-fund)
fi
node web/test/verify-page.mjs "$dist" "$model" "$gemma" "$(command -v chromium)"
# The chat page at / (served by `sworn serve`, verifying in the browser with this build).
cargo build --quiet --locked --bin sworn
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
node web/test/chat-page.mjs "$target_dir/debug/sworn" "$dist" "$model" "$(command -v chromium)"
