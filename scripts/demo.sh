#!/usr/bin/env bash
# sworn's main job on the default model: fetch it if missing (SHA-256 checked), build, and answer
# a chat prompt deterministically, printing the token ids and a BLAKE3 of every step's logits.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(scripts/fetch-model.sh)"
cargo build --release --locked --quiet
exec ./target/release/sworn generate --model "$model" --chat \
    --system "You are a helpful assistant." \
    --prompt "${1:-What is the capital of France?}" --max-tokens 64 --json
