#!/usr/bin/env bash
# sworn's main job on the default model: fetch it if missing (SHA-256 checked), build, answer a
# chat prompt with a signed transcript, check that transcript offline (signature, consistency)
# and by replaying it bit for bit, then serve the OpenAI-compatible API until Ctrl-C.
#
#   scripts/demo.sh [--no-serve] ["your question"]
#
# The operator key is created on first use under ${SWORN_DATA_DIR:-~/.local/share/sworn}; the
# transcript is written to ./sworn-demo.json; the server listens on ${SWORN_LISTEN:-127.0.0.1:8080}.
set -euo pipefail
cd "$(dirname "$0")/.."
serve=1
if [ "${1:-}" = "--no-serve" ]; then
    serve=0
    shift
fi
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
if [ "$serve" = 1 ]; then
    echo "--- serve (OpenAI-compatible; Ctrl-C to stop)"
    exec "$sworn" serve --model "$model" --listen "${SWORN_LISTEN:-127.0.0.1:8080}"
fi
