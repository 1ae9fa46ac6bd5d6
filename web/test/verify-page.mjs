// The verify page in a real browser: headless Chromium (Debian's `chromium`), driven over the
// DevTools protocol by puppeteer-core (pinned in package.json). Serves the built page folder
// (scripts/build-web.sh) from a loopback HTTP server of its own, then:
//   1. every golden vector (tests/vectors) verifies with the operator key;
//   2. tampered transcripts are refused with their reason (a changed output text, a wrong key);
//   3. a SmolLM2 and a Gemma 3 vector are replayed with their model files and match bit for bit
//      (the replay times are printed), and a replay against the wrong model is a mismatch that
//      names the weights.
// Usage: node verify-page.mjs DIST_DIR SMOLLM2_GGUF GEMMA3_GGUF [CHROMIUM]. Exits non-zero on any
// failure; its last line is "N passed, N failed".
import { createServer } from "node:http";
import { readFile, writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { check, finish, launch } from "./checks.mjs";

const [dist, model, gemma, chromium = "/usr/bin/chromium"] = process.argv.slice(2);
if (!dist || !model || !gemma) {
  console.error("usage: node verify-page.mjs DIST_DIR SMOLLM2_GGUF GEMMA3_GGUF [CHROMIUM]");
  process.exit(2);
}
const root = resolve(new URL("../..", import.meta.url).pathname);
const vectors = join(root, "tests/vectors");
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

// Only files of the page folder, by name; everything else is 404.
const server = createServer(async (req, res) => {
  const name = new URL(req.url, "http://x").pathname.replace(/^\/+/, "") || "index.html";
  if (name.includes("..") || name.includes("/")) return res.writeHead(404).end();
  try {
    const body = await readFile(join(dist, name));
    res.writeHead(200, { "content-type": types[extname(name)] || "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/index.html`;

const browser = await launch(chromium);

const key = await readFile(join(vectors, "operator.pub.json"), "utf8");
const tmp = await mkdtemp(join(tmpdir(), "sworn-page-"));

/** Loads the page, gives it a transcript file, a key and maybe a model, and clicks Verify. */
async function run(transcriptPath, keyText, modelPath) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: "load" });
  await (await page.$("#transcript-file")).uploadFile(transcriptPath);
  await page.waitForFunction(() => document.getElementById("transcript-name").textContent !== "");
  await page.$eval("#key", (el, k) => { el.value = k; }, keyText);
  if (modelPath) await (await page.$("#model-file")).uploadFile(modelPath);
  await page.click("#verify-btn");
  await page.waitForFunction(
    () => ["valid", "invalid", "error"].includes(document.getElementById("verdict").dataset.state),
    { timeout: 60_000 },
  );
  return page;
}
const text = (page, sel) => page.$eval(sel, (el) => el.textContent);
const state = (page, sel) => page.$eval(sel, (el) => el.dataset.state);

try {
  for (const name of ["greedy-text", "greedy-chat", "sampled-text", "sampled-chat"].flatMap(
    (k) => [`${k}.json`, `gemma3-${k}.json`],
  )) {
    const page = await run(join(vectors, name), key);
    const want = JSON.parse(await readFile(join(vectors, name), "utf8"));
    const shown = await text(page, "#digest");
    check(`${name} verifies`, (await state(page, "#verdict")) === "valid", await text(page, "#verdict"));
    check(`${name} shows its digest`, shown === want.digest, shown);
    await page.close();
  }

  const original = JSON.parse(await readFile(join(vectors, "greedy-text.json"), "utf8"));
  const tampered = structuredClone(original);
  tampered.output.text = original.output.text + " (edited)";
  const tamperedPath = join(tmp, "tampered.json");
  await writeFile(tamperedPath, JSON.stringify(tampered));
  let page = await run(tamperedPath, key);
  let verdict = await text(page, "#verdict");
  check("an edited output is refused", (await state(page, "#verdict")) === "invalid", verdict);
  check("with its reason", /signature|digest|output/i.test(verdict), verdict);
  await page.close();

  const forged = structuredClone(original);
  const sig = forged.signature;
  forged.signature = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
  const forgedPath = join(tmp, "forged.json");
  await writeFile(forgedPath, JSON.stringify(forged));
  page = await run(forgedPath, key);
  verdict = await text(page, "#verdict");
  check("a forged signature is refused", (await state(page, "#verdict")) === "invalid", verdict);
  check("as a bad signature", /signature/i.test(verdict), verdict);
  await page.close();

  const wrongKey = "00".repeat(32);
  page = await run(join(vectors, "greedy-text.json"), wrongKey);
  verdict = await text(page, "#verdict");
  check("a transcript under another key is refused", (await state(page, "#verdict")) === "invalid", verdict);
  check("naming the untrusted key", /key/i.test(verdict), verdict);
  await page.close();

  /** Replays `name` with `modelPath`; returns the verdict's state and text. */
  async function replayed(name, modelPath) {
    const page = await run(join(vectors, name), key, modelPath);
    await page.waitForFunction(
      () => ["match", "mismatch", "error"].includes(document.getElementById("replay").dataset.state),
      { timeout: 300_000 },
    );
    const out = [await state(page, "#replay"), await text(page, "#replay")];
    const secs = await page.$eval("#replay", (el) => el.dataset.seconds);
    console.log(`browser replay of ${name} (one thread, SIMD128): ${secs} s`);
    if (process.env.SWORN_PAGE_SCREENSHOT && name === "greedy-text.json") {
      await page.setViewport({ width: 1000, height: 1400 });
      await page.screenshot({ path: process.env.SWORN_PAGE_SCREENSHOT, fullPage: true });
    }
    await page.close();
    return out;
  }
  let [st, why] = await replayed("greedy-text.json", model);
  check("greedy-text.json (SmolLM2) replays bit for bit in the browser", st === "match", why);
  [st, why] = await replayed("gemma3-sampled-chat.json", gemma);
  check("gemma3-sampled-chat.json (Gemma 3) replays bit for bit in the browser", st === "match", why);
  [st, why] = await replayed("greedy-text.json", gemma);
  check("a replay on the wrong model is a mismatch", st === "mismatch", why);
  check("naming the weights", /weights differ/.test(why), why);
} catch (e) {
  check("the page test ran to its end", false, e.stack || String(e));
} finally {
  await browser.close();
  server.close();
}
finish();
