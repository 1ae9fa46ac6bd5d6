// Runs a wasm32-wasip1 program (a cargo test binary) under Node's WASI: cargo's runner for the
// WebAssembly leg (scripts/ci/test-wasm.sh). Each top-level folder of the host is preopened under
// its own name (a preopened "/" alone is not matched by absolute paths), and the current
// directory as `.`, so absolute paths (the tests' CARGO_MANIFEST_DIR, the models) resolve as on
// the host; arguments and the environment are passed through. Single-threaded: wasip1 has no
// threads, which is the engine's fallback under test.
//
// Node 20's V8 crashes now and then under a large wasm program (SIGSEGV or SIGTRAP; seen here in
// up to a third of the golden-replay runs on a loaded machine, mostly while Node exits after the
// program has returned, sometimes while it runs). So the program runs in a child Node, which
// reports the program's exit code on file descriptor 3 and then kills itself (skipping the
// teardown): a reported code is the result; a child killed by a signal before reporting is run
// again, up to five times in all, each retry announced; any other exit is the result.
import { readdirSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { WASI } from "node:wasi";
import process from "node:process";

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error("usage: node wasi-run.mjs PROGRAM.wasm [ARGS...]");
  process.exit(2);
}
const CHILD = "SWORN_WASI_RUN_CHILD";
if (process.env[CHILD] !== "1") {
  const TRIES = 5;
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), file, ...args],
      { stdio: ["inherit", "inherit", "inherit", "pipe"], env: { ...process.env, [CHILD]: "1" } },
    );
    const reported = r.output?.[3]?.toString().trim();
    if (reported) {
      // The child ends itself with SIGKILL once it has reported (below).
      if (r.signal !== "SIGKILL") {
        console.error(
          `!!! wasi-run: node died (${r.signal ?? `exit ${r.status}`}) after the program had ` +
            `exited with ${reported}; the program's exit code stands !!!`,
        );
      }
      process.exit(Number(reported));
    }
    if (!r.signal || attempt === TRIES) {
      console.error(`wasi-run: the program did not finish (node ${r.signal ?? `exit ${r.status}`})`);
      process.exit(r.status || 1);
    }
    console.error(
      `!!! wasi-run: node crashed (${r.signal}) before the program finished; running it again ` +
        `(attempt ${attempt + 1} of ${TRIES}) !!!`,
    );
  }
}
const env = { ...process.env };
delete env[CHILD];
const wasi = new WASI({
  version: "preview1",
  args: [file, ...args],
  env,
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
const code = wasi.start(instance);
writeSync(3, `${code}\n`);
// The result is reported and every output written (WASI writes synchronously): end here,
// without the teardown in which Node 20 crashes.
process.kill(process.pid, "SIGKILL");
