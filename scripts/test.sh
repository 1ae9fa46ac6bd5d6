#!/usr/bin/env bash
# sworn's test command: fetches the default model and Gemma 3 270M (cached, SHA-256 checked; Gemma's
# vocabulary tests the SentencePiece-style tokenizer), the pinned official
# OpenAI Python client (in a cached virtualenv) and the pinned anvil node (npm, contracts/),
# starts a throwaway PostgreSQL server (scripts/postgres.sh: Debian's, on a loopback port), then
# runs every test of the workspace with all of them required, so that no real-model, client,
# chain or PostgreSQL test can silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}"
model="$(scripts/fetch-model.sh)"
gemma="$(scripts/fetch-model.sh gemma3)"
OPENAI_VERSION="3.51.0"
venv="$cache/pyenv"
if ! "$venv/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "openai==$OPENAI_VERSION"
fi
anvil="$PWD/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
if [ ! -x "$anvil" ]; then
    (cd contracts && npm ci --no-audit --no-fund)
fi
export SWORN_MODEL="$model" SWORN_GEMMA="$gemma" SWORN_REQUIRE_MODEL=1 SWORN_PYTHON="$venv/bin/python"
export SWORN_ANVIL="$anvil" SWORN_REQUIRE_ANVIL=1
pgdir="$(mktemp -d -u "${TMPDIR:-/tmp}/sworn-pg.XXXXXX")"
trap 'scripts/postgres.sh stop "$pgdir"' EXIT
SWORN_TEST_POSTGRES="$(scripts/postgres.sh start "$pgdir")"
export SWORN_TEST_POSTGRES SWORN_REQUIRE_POSTGRES=1
cargo test --workspace --locked "$@"
