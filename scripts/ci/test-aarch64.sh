#!/usr/bin/env bash
# The aarch64 leg: cross-compiles the engine's and verifier's tests for aarch64-unknown-linux-gnu
# and runs them under qemu-aarch64 (user-mode emulation), so that determinism across CPUs is
# checked on every change. What it runs:
#   - clippy -D warnings for aarch64, and the criterion benches built (not run) for it;
#   - on an emulated CPU with dotprod (`-cpu max`): the engine's unit tests, including the kernel
#     bit-equality suite (NEON, NEON + dotprod and portable against the scalar reference; AVX2 is
#     skipped there, loudly), the tokenizer goldens, and every golden vector (made on x86 with
#     AVX2) verified and replayed on the real models with NEON + dotprod, which must give
#     exactly x86's per-step logits hashes (the portable kernels are not replayed here: the
#     kernel suite holds them to the reference on this CPU, and whole replays on them run on
#     x86; emulated replays are this leg's slowest part);
#   - on an emulated CPU without dotprod (`-cpu cortex-a72`): the kernel suite again (the
#     detection must pick plain NEON) and two of SmolLM2's golden vectors (greedy text and
#     sampled chat) replayed on plain NEON.
# SWORN_EXPECT_ISA makes each run fail unless the kernels it expects were the ones detected.
# Emulated timings are not speeds: no real ARM machine runs this.
#
# Installs what it needs: the Rust target (rustup), and Debian 12's cross linker, aarch64 libc and
# qemu-user and the aarch64 cross gcc/g++ (g++ builds the CUDA host shim under --all-features) (apt-get, pinned to these upstream versions; a Debian rebuild, "+bN", is accepted),
# when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
QEMU_VERSION="1:7.2+dfsg-7+deb12u18"
GCC_VERSION="4:12.2.0-3"
LIBC_VERSION="2.36-8cross1"
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    # The newest build of the pinned version (Debian replaces "+b2" by "+b3" on a rebuild).
    pinned() {
        apt-cache madison "$1" | awk -v v="$2" '$3 == v || index($3, v "+b") == 1 { print $3; exit }'
    }
    qemu="$(pinned qemu-user "$QEMU_VERSION")"
    [ -n "$qemu" ] || { echo "qemu-user $QEMU_VERSION is not in the package lists" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "qemu-user=$qemu" "gcc-aarch64-linux-gnu=$GCC_VERSION" "g++-aarch64-linux-gnu=$GCC_VERSION" \
        "libc6-dev-arm64-cross=$LIBC_VERSION"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
export SWORN_MODEL="$model" SWORN_GEMMA="$gemma" SWORN_REQUIRE_MODEL=1
target=(--release --locked --target aarch64-unknown-linux-gnu)
cargo clippy "${target[@]}" -p sworn-engine -p sworn-attest -p sworn-verifier --all-targets \
    --all-features -- -D warnings
cargo bench --locked --target aarch64-unknown-linux-gnu -p sworn-engine --bench kernels --no-run

echo "== aarch64 with dotprod (qemu -cpu max)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${qemu[*]} -cpu max"
SWORN_EXPECT_ISA=cpu-neon-dotprod \
    cargo test "${target[@]}" -p sworn-engine --lib --test tokenizer_golden
# The float and trace vectors the Solidity executors are checked on: ARM's results, its NaNs
# made canonical, and its traces of the synthetic models are the bytes x86 writes
# (docs/dispute.md §1, §5).
# (The synthetic models' traces only: the real models' traces and disputes would take the
# emulator most of an hour; the x86 legs check those.)
vectors="$(mktemp -d)"
env -u SWORN_MODEL -u SWORN_GEMMA \
    cargo run -q --release --locked -p sworn-engine --features test-doubles --example float-vectors -- "$vectors/x86"
env -u SWORN_MODEL -u SWORN_GEMMA \
    cargo run -q "${target[@]}" -p sworn-engine --features test-doubles --example float-vectors -- "$vectors/arm"
diff -r "$vectors/x86" "$vectors/arm"
rm -rf "$vectors"
SWORN_REPLAY_ISAS=cpu-neon-dotprod \
    cargo test "${target[@]}" -p sworn-verifier --features replay --test golden_replay

echo "== aarch64 without dotprod (qemu -cpu cortex-a72)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${qemu[*]} -cpu cortex-a72"
SWORN_EXPECT_ISA=cpu-neon cargo test "${target[@]}" -p sworn-engine --lib kernels::
SWORN_REPLAY_ISAS=cpu-neon SWORN_GOLDEN_MODELS=smollm2 SWORN_GOLDEN_KINDS=greedy-text,sampled-chat \
    cargo test "${target[@]}" -p sworn-verifier --features replay --test golden_replay
