#!/usr/bin/env bash
# The CUDA backend's hardware conformance and speed check (docs/cuda.md).
#
#   scripts/gpu-check.sh pack [DIR]   here, with the Rust toolchain and the cached model: writes
#                                     DIR (default: target/gpu-check, at most 60 MB) with a
#                                     stripped release `sworn` built with --features cuda, the
#                                     first 8 layers of SmolLM2-135M as a GGUF, and this script.
#   DIR/gpu-check.sh [ARGS]           on the GPU machine: needs only the NVIDIA driver (no
#                                     network, no toolchain). Compares every step's logits on GPU
#                                     0 with the CPU engine's, bit for bit (greedy and sampled,
#                                     alone and batched, a prefill's every position) on the slice
#                                     and on synthetic models of every tensor type, then times
#                                     prefill and decode on both. One table; exit 1 on any
#                                     difference. ARGS go to `sworn gpu-check` (e.g. --batch 64).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
LAYERS=8
MODEL="smollm2-$LAYERS-layers.gguf"
if [ "${1:-}" = pack ]; then
    cd "$here/.."
    dir="${2:-target/gpu-check}"
    cargo build --release --locked --features cuda --bin sworn
    mkdir -p "$dir"
    strip -o "$dir/sworn" "${CARGO_TARGET_DIR:-target}/release/sworn"
    "$dir/sworn" model-slice --model "$(scripts/fetch-model.sh)" --layers "$LAYERS" \
        --out "$dir/$MODEL"
    cp scripts/gpu-check.sh "$dir/gpu-check.sh"
    size=$(du -sb "$dir" | cut -f1)
    echo "packed $dir: $((size / 1000000)) MB"
    if [ "$size" -gt 60000000 ]; then
        echo "the folder is over 60 MB" >&2
        exit 1
    fi
    exit 0
fi
cd "$here"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
# The whole check is sized to finish well inside 8 minutes on one GPU and a few cores.
exec timeout 470 ./sworn gpu-check --model "$MODEL" "$@"
