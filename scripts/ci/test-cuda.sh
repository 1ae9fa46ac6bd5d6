#!/usr/bin/env bash
# The CUDA backend, proven without a GPU (docs/cuda.md):
#  1. every kernel compiles to PTX for each supported target with the pinned NVRTC
#     (nvidia-cuda-nvrtc-cu12==12.9.86 from PyPI, SHA-256 checked; its libnvrtc needs no GPU),
#     and the PTX the build embeds (engine/cuda/ptx/) is exactly what it produces;
#  2. the workspace builds and passes clippy with --features cuda (cudarc loads the driver at
#     run time, so neither the toolkit nor the driver is needed);
#  3. the kernels, executed on the host by the shim, equal the CPU engine bit for bit: each
#     kernel on adversarial inputs in three thread orders, whole forward passes of synthetic
#     models and both real models, and golden vectors of SmolLM2 and Gemma 3 replayed.
# Nothing here runs on a GPU: scripts/gpu-check.sh is that check.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}"
NVRTC_VERSION="12.9.86"
NVRTC_SHA256="210cf05005a447e29214e9ce50851e83fc5f4358df8b453155d5e1918094dcb4"
nvrtc_dir="$cache/nvrtc-$NVRTC_VERSION"
lib="$nvrtc_dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
if [ ! -f "$lib" ]; then
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION" -d "$tmp"
    whl="$(ls "$tmp"/nvidia_cuda_nvrtc_cu12-"$NVRTC_VERSION"-*.whl)"
    echo "$NVRTC_SHA256  $whl" | sha256sum -c --quiet
    rm -rf "$nvrtc_dir"
    python3 -m zipfile -e "$whl" "$nvrtc_dir"
    rm -rf "$tmp"
fi
echo "== PTX: the pinned NVRTC compiles every kernel, and the committed PTX is its output"
python3 scripts/gen/build-ptx.py "$lib" --check
echo "== clippy with --features cuda"
cargo clippy --workspace --all-targets --locked --features cuda -- -D warnings
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
export SWORN_MODEL="$model" SWORN_GEMMA="$gemma" SWORN_REQUIRE_MODEL=1
echo "== the CUDA kernels on the host shim against the CPU engine"
cargo test -p sworn-engine --locked --features cuda --test cuda_host
echo "== golden vectors replayed on the host-executed CUDA kernels"
# Two vectors per model (greedy and sampled): each step of every other vector runs the same
# kernels, and the shim is slow.
SWORN_REPLAY_DEVICE=cuda-host-shim SWORN_REPLAY_ISAS=detected \
    SWORN_GOLDEN_KINDS=greedy-text,sampled-chat \
    cargo test -p sworn-verifier --locked --features cuda --test golden_replay
echo "== sworn with --device cuda and no driver: a clear error"
cargo build --locked --features cuda --bin sworn
set +e
out="$(cargo run -q --locked --features cuda --bin sworn -- generate --model "$model" \
    --prompt hi --max-tokens 1 --device cuda 2>&1)"
rc=$?
set -e
echo "$out"
if [ "$rc" -eq 0 ] || ! grep -q "no NVIDIA driver\|no CUDA GPU" <<<"$out"; then
    echo "expected a clear no-GPU error (exit $rc)" >&2
    exit 1
fi
echo "== the GPU check itself, on the host shim (what scripts/gpu-check.sh runs on a GPU)"
slice="$(mktemp -d)/smollm2-2-layers.gguf"
cargo run -q --locked --features cuda --bin sworn -- model-slice --model "$model" --layers 2 --out "$slice"
cargo run -q --locked --features cuda --bin sworn -- gpu-check --device cuda-host-shim \
    --model "$slice" --prompt-tokens 16 --gen-tokens 4 --batch 3
rm -f "$slice"
