#!/usr/bin/env node
// Writes the committed artifact of SwornRegistry (ABI and bytecode, from forge's build output)
// to artifacts/SwornRegistry.json, or with --check compares and fails if they differ: CI rebuilds
// the contract and refuses a stale artifact.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const built = JSON.parse(fs.readFileSync(path.join(root, "out/SwornRegistry.sol/SwornRegistry.json"), "utf8"));
const artifact = {
  contractName: "SwornRegistry",
  compiler: "solc 0.8.37 (solc-js), optimizer 10000 runs, evm cancun, no metadata hash",
  abi: built.abi,
  bytecode: built.bytecode.object,
  deployedBytecode: built.deployedBytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";
const dest = path.join(root, "artifacts/SwornRegistry.json");
if (process.argv.includes("--check")) {
  const have = fs.existsSync(dest) ? fs.readFileSync(dest, "utf8") : "";
  if (have !== text) {
    process.stderr.write("contracts/artifacts/SwornRegistry.json is stale: run scripts/contracts.sh --write and commit it\n");
    process.exit(1);
  }
  process.stdout.write("contracts/artifacts/SwornRegistry.json matches the build\n");
} else {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, text);
  process.stdout.write(`wrote ${dest}\n`);
}
