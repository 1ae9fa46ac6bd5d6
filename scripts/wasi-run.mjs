// Runs a wasm32-wasip1 program (a cargo test binary) under Node's WASI: cargo's runner for the
// WebAssembly leg (scripts/test-wasm.sh). Each top-level folder of the host is preopened under
// its own name (a preopened "/" alone is not matched by absolute paths), and the current
// directory as `.`, so absolute paths (the tests' CARGO_MANIFEST_DIR, the models) resolve as on
// the host; arguments and the environment are passed through. Single-threaded: wasip1 has no
// threads, which is the engine's fallback under test.
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error("usage: node wasi-run.mjs PROGRAM.wasm [ARGS...]");
  process.exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [file, ...args],
  env: process.env,
  preopens: Object.fromEntries([
    ...readdirSync("/", { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => [`/${d.name}`, `/${d.name}`]),
    [".", process.cwd()],
  ]),
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
// Exit at once with the program's code: letting Node tear down a multi-hundred-MB wasm memory
// has crashed Node 20's V8 (SIGSEGV after the tests had passed, seen once in CI). The program's
// output is already written: WASI writes synchronously, and stdout/stderr pipes are
// synchronous on Linux.
process.exit(wasi.start(instance));
