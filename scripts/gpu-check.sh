#!/usr/bin/env bash
# The CUDA backend's hardware conformance and speed check (docs/cuda.md).
#
#   scripts/gpu-check.sh pack [DIR]   here, with the Rust toolchain and the cached model: writes
#                                     DIR (default: target/gpu-check, at most 60 MB; ~54 MB) with
#                                     a stripped, gzipped release `sworn` built with --features
#                                     cuda, the first 6 layers of SmolLM2-135M as a GGUF (its full
#                                     embedding and output projection), and this script.
#   DIR/gpu-check.sh [ARGS]           on the GPU machine (x86-64 Linux, glibc 2.34+: Ubuntu 22.04,
#                                     Debian 12, RHEL 9 or later): needs only the NVIDIA driver
#                                     (no network, no toolchain). Compares every step's logits on GPU
#                                     0 with the CPU engine's, bit for bit (greedy and sampled,
#                                     alone and batched, a prefill's every position) on the slice
#                                     and on synthetic models of every tensor type, then times
#                                     prefill and decode on both. One table; exit 1 on any
#                                     difference. ARGS go to `sworn gpu-check` (e.g. --batch 64).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
LAYERS=6
MODEL="smollm2-$LAYERS-layers.gguf"
if [ "${1:-}" = pack ]; then
    cd "$here/.."
    dir="${2:-target/gpu-check}"
    cargo build --release --locked --features cuda --bin sworn
    mkdir -p "$dir"
    bin="${CARGO_TARGET_DIR:-target}/release/sworn"
    strip -o "$dir/sworn" "$bin"
    "$dir/sworn" model-slice --model "$(scripts/fetch-model.sh)" --layers "$LAYERS" \
        --out "$dir/$MODEL"
    gzip -9 -f "$dir/sworn"
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
bin="$(mktemp -d)/sworn"
gzip -dc sworn.gz >"$bin"
chmod +x "$bin"
# The whole check is sized to finish well inside 8 minutes on one GPU and a few cores.
exec timeout 470 "$bin" gpu-check --model "$MODEL" "$@"
