#!/usr/bin/env bash
# Builds and tests the Solidity contracts offline: installs the pinned toolchain from npm (solc-js
# and Foundry's forge/anvil/cast, contracts/package-lock.json), rebuilds the contract, checks the
# committed artifact (ABI + bytecode) against the build, writes the engine's float and trace
# vectors (cargo; fetches the real models), and runs `forge test` with a gas report.
#   scripts/contracts.sh          check and test (what CI runs)
#   scripts/contracts.sh --write  rewrite contracts/artifacts/SwornRegistry.json
set -euo pipefail
cd "$(dirname "$0")/../contracts"
if [ ! -x node_modules/@foundry-rs/forge-linux-amd64/bin/forge ] || [ ! -d node_modules/solc ]; then
  npm ci --no-audit --no-fund
fi
export PATH="$PWD/node_modules/@foundry-rs/forge-linux-amd64/bin:$PWD/node_modules/@foundry-rs/anvil-linux-amd64/bin:$PWD/node_modules/@foundry-rs/cast-linux-amd64/bin:$PATH"
forge --version | head -1
forge build --force
if [ "${1:-}" = "--write" ]; then
  node tools/artifacts.js
else
  node tools/artifacts.js --check
fi
forge fmt --check
# The vectors the executor libraries are checked on, from the engine (docs/dispute.md §3): the
# float vectors, and traces of synthetic and of the two real models (fetched and cached here, as
# scripts/test.sh does: the executor's gas is checked on their real shapes).
SWORN_MODEL="${SWORN_MODEL:-$(../scripts/fetch-model.sh)}" \
SWORN_GEMMA="${SWORN_GEMMA:-$(../scripts/fetch-model.sh gemma3)}" \
    cargo run -q --release --locked -p sworn-engine --features test-doubles --example float-vectors -- test/vectors/f32
forge test --gas-report
