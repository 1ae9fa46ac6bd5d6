#!/usr/bin/env node
// Writes the committed artifacts (ABI and bytecode, from forge's build output) of the contracts
// sworn deploys and calls: the registry, the dispute game, its executor and the executor's three
// step contracts, to artifacts/NAME.json; or with --check compares and fails if any differs: CI
// rebuilds the contracts and refuses a stale artifact (the Rust bindings are generated from
// these files, so they cannot drift from the contracts).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const CONTRACTS = [
  "SwornRegistry",
  "SwornGame",
  "SwornExecutor",
  "SwornAttentionSteps",
  "SwornWeightSteps",
  "SwornTableSteps",
  "SwornSampleSteps",
];
const check = process.argv.includes("--check");
let stale = 0;
for (const name of CONTRACTS) {
  const built = JSON.parse(fs.readFileSync(path.join(root, `out/${name}.sol/${name}.json`), "utf8"));
  const artifact = {
    contractName: name,
    compiler: "solc 0.8.37 (solc-js), optimizer 10000 runs, evm cancun, no metadata hash",
    abi: built.abi,
    bytecode: built.bytecode.object,
    deployedBytecode: built.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 2) + "\n";
  const dest = path.join(root, `artifacts/${name}.json`);
  if (check) {
    const have = fs.existsSync(dest) ? fs.readFileSync(dest, "utf8") : "";
    if (have !== text) {
      process.stderr.write(`contracts/artifacts/${name}.json is stale: run scripts/contracts.sh --write and commit it\n`);
      stale++;
    } else {
      process.stdout.write(`contracts/artifacts/${name}.json matches the build\n`);
    }
  } else {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, text);
    process.stdout.write(`wrote ${dest}\n`);
  }
}
process.exit(stale ? 1 : 0);
