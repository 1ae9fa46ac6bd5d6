#!/usr/bin/env bash
# sworn's test command: fetches the default model (cached, SHA-256 checked), then runs every test
# of the workspace with the model required, so that no real-model test can silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(scripts/fetch-model.sh)"
export SWORN_MODEL="$model" SWORN_REQUIRE_MODEL=1
cargo test --workspace --locked "$@"
