#!/usr/bin/env bash
# sworn's main job on the default model: fetch it if missing (SHA-256 checked), build, answer a
# chat prompt deterministically with a signed transcript, then check that transcript twice:
# offline (signature, consistency) and by replaying it bit for bit.
#
#   scripts/demo.sh ["your question"]
#
# The operator key is created on first use under ${SWORN_DATA_DIR:-~/.local/share/sworn}; the
# transcript is written to ./sworn-demo.json.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(scripts/fetch-model.sh)"
cargo build --release --locked --quiet
sworn=./target/release/sworn
out=sworn-demo.json
"$sworn" generate --model "$model" --chat --system "You are a helpful assistant." \
    --prompt "${1:-What is the capital of France?}" --max-tokens 64 --out "$out"
echo "--- verify (offline: signature and consistency)"
"$sworn" verify "$out"
echo "--- replay (re-run on this machine, compare every step's logits)"
"$sworn" replay "$out" --model "$model"
