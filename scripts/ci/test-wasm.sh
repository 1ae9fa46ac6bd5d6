#!/usr/bin/env bash
# The WebAssembly leg: builds the engine's and verifier's tests for wasm32-wasip1 with SIMD128
# (`-C target-feature=+simd128`) and runs them under Node.js's WASI (scripts/ci/wasi-run.mjs), with
# no threads (wasip1 has none: the kernel pool's single-threaded fallback is what runs). What it
# runs:
#   - clippy -D warnings for wasm32-wasip1;
#   - the kernel bit-equality suite: SIMD128 and portable kernels against the scalar reference
#     (SWORN_EXPECT_ISA makes it fail unless SIMD128 was the kernels detected);
#   - every golden vector (made on x86 with AVX2), SmolLM2's and Gemma 3's, verified and replayed
#     on the real models with the SIMD128 kernels, which must give exactly x86's per-step hashes.
#
# Node runs with --no-incremental-marking: Node 20's V8 can crash in a garbage collection that a
# wasm memory.grow starts while incremental marking is on (a V8 fault, seen here as SIGSEGV or
# "Fatal error ... unreachable code" while a model loads); without incremental marking it is
# rarer. It still crashes now and then (SIGSEGV, SIGTRAP), mostly while Node exits after the
# program has returned: scripts/ci/wasi-run.mjs runs each program in a child Node that reports the
# program's exit code before it ends, and runs a program again (loudly, up to five times) only
# when Node died of a signal before the program finished; a failing test is never retried.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "test-wasm.sh needs Node.js (for its WASI)" >&2; exit 1; }
rustup target add wasm32-wasip1 >/dev/null
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128"
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings --no-incremental-marking $PWD/scripts/ci/wasi-run.mjs"
export SWORN_MODEL="$model" SWORN_GEMMA="$gemma" SWORN_REQUIRE_MODEL=1
target=(--release --locked --target wasm32-wasip1)
cargo clippy "${target[@]}" -p sworn-engine -p sworn-attest -p sworn-verifier --lib --tests \
    --features sworn-verifier/replay -- -D warnings
SWORN_EXPECT_ISA=wasm-simd128 cargo test "${target[@]}" -p sworn-engine --lib kernels::tests::
SWORN_REPLAY_ISAS=wasm-simd128 \
    cargo test "${target[@]}" -p sworn-verifier --features replay --test golden_replay
