#!/usr/bin/env bash
# The aarch64 leg: cross-compiles the engine's and verifier's tests for aarch64-unknown-linux-gnu
# and runs them under qemu-aarch64 (user-mode emulation), so that determinism across CPUs is
# checked on every change. What it runs:
#   - the engine's unit tests, including the kernel bit-equality suite (on aarch64 the portable
#     kernels against the scalar reference; AVX2 is skipped there, loudly);
#   - the tokenizer goldens (byte-level BPE splits, SentencePiece);
#   - every golden vector (made on x86 with AVX2) verified and replayed on the real models, which
#     must give exactly x86's per-step logits hashes.
# Emulated timings are not speeds: no real ARM machine runs this.
#
# Installs what it needs: the Rust target (rustup), and Debian's cross linker, aarch64 libc and
# qemu-user (apt-get, pinned), when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU_VERSION="1:7.2+dfsg-7+deb12u18+b2"
GCC_VERSION="4:12.2.0-3"
LIBC_VERSION="2.36-8cross1"
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "qemu-user=$QEMU_VERSION" "gcc-aarch64-linux-gnu=$GCC_VERSION" \
        "libc6-dev-arm64-cross=$LIBC_VERSION"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export SWORN_MODEL="$model" SWORN_GEMMA="$gemma" SWORN_REQUIRE_MODEL=1
target=(--release --locked --target aarch64-unknown-linux-gnu)
cargo clippy "${target[@]}" -p sworn-engine -p sworn-attest -p sworn-verifier --all-targets \
    --all-features -- -D warnings
cargo test "${target[@]}" -p sworn-engine --lib --test tokenizer_golden
cargo test "${target[@]}" -p sworn-verifier --features replay --test golden_replay
