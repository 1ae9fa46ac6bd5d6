// The chat page (`sworn serve`'s `/`) in a real browser: headless Chromium (Debian's `chromium`)
// driven by puppeteer-core (pinned in package.json), against a real `sworn serve` on SmolLM2 with
// the verify page's folder (--verify-dir) so the page verifies in WebAssembly:
//   1. a question is answered, streamed, and the answer shows "Verified"; a follow-up (the
//      conversation sent back) is answered and verified too;
//   2. a tampered attestation (its signed text changed on the wire) shows why it fails (its
//      digest no longer matches its content);
//   3. an answer altered on the wire, with its attestation intact, is refused because the text
//      shown is not the text signed.
// Usage: node chat-page.mjs SWORN_BIN DIST_DIR SMOLLM2_GGUF [CHROMIUM]. Exits non-zero on any
// failure; its last line is "N passed, N failed".
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check, finish, launch } from "./checks.mjs";

const [bin, dist, model, chromium = "/usr/bin/chromium"] = process.argv.slice(2);
if (!bin || !dist || !model) {
  console.error("usage: node chat-page.mjs SWORN_BIN DIST_DIR SMOLLM2_GGUF [CHROMIUM]");
  process.exit(2);
}
const dataDir = await mkdtemp(join(tmpdir(), "sworn-chat-"));
const server = spawn(bin, ["serve", "--model", model, "--data-dir", dataDir, "--listen", "127.0.0.1:0",
  "--verify-dir", dist], { stdio: ["ignore", "inherit", "pipe"] });
const base = await new Promise((ok, fail) => {
  let err = "";
  const timer = setTimeout(() => fail(new Error(`sworn serve did not start:\n${err}`)), 120_000);
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/serving .* on (http:\/\/\S+)/);
    if (m) { clearTimeout(timer); ok(m[1]); }
  });
  server.on("exit", (code) => fail(new Error(`sworn serve exited (${code}):\n${err}`)));
});

const browser = await launch(chromium);

/** Opens the page; `alter(url, body)`, if given, rewrites the server's answers on the wire. */
async function open(alter) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  if (alter) {
    await page.setRequestInterception(true);
    page.on("request", async (req) => {
      if (!req.url().includes("/v1/")) return req.continue();
      const r = await fetch(req.url(), { method: req.method(), headers: req.headers(), body: req.postData() });
      const headers = Object.fromEntries(r.headers.entries());
      req.respond({ status: r.status, headers, body: alter(new URL(req.url()).pathname, await r.text()) });
    });
  }
  await page.goto(`${base}/`);
  await page.waitForFunction(() => document.getElementById("verifier").textContent !== "…");
  await page.$eval("#max-tokens", (e) => { e.value = "24"; });
  return page;
}

/** Asks `question`; returns the newest answer's text and verdict once it is settled. */
async function ask(page, question) {
  const before = await page.$$eval(".turn.assistant", (t) => t.length);
  await page.type("#question", question);
  await page.click("#send");
  await page.waitForFunction(
    (n) => {
      const turns = document.querySelectorAll(".turn.assistant");
      const v = turns.length > n && turns[turns.length - 1].querySelector(".verdict");
      return v && v.dataset.state && v.dataset.state !== "running";
    },
    { timeout: 180_000 },
    before,
  );
  return page.$$eval(".turn.assistant", (turns) => {
    const t = turns[turns.length - 1];
    const v = t.querySelector(".verdict");
    return { text: t.querySelector(".text").textContent, state: v.dataset.state, verdict: v.textContent };
  });
}

/** Rewrites the first SSE chunk for which `f` (given the parsed chunk) returns true. */
function rewrite(sse, f) {
  let done = false;
  return sse.split("\n\n").map((block) => {
    if (done || !block.startsWith("data: {")) return block;
    const v = JSON.parse(block.slice(6));
    if (f(v)) { done = true; return `data: ${JSON.stringify(v)}`; }
    return block;
  }).join("\n\n");
}

try {
  const page = await open();
  const verifier = await page.$eval("#verifier", (e) => e.textContent);
  check("the page finds the WebAssembly verifier", verifier.includes("WebAssembly"), verifier);
  const a = await ask(page, "What is the capital of France?");
  check("a question is answered", a.text.trim().length > 0, JSON.stringify(a.text));
  check("the answer shows verified", a.state === "verified" && a.verdict.startsWith("Verified"), a.verdict);
  const b = await ask(page, "And of Italy?");
  check("a follow-up is answered and verified", b.state === "verified" && b.text.trim().length > 0, b.verdict);
  await page.close();

  // The stored attestation's signed output text is replaced (by text surgery: a JSON round trip
  // in JavaScript would also round the 64-bit seed).
  const tampered = await open((path, body) => {
    if (!path.startsWith("/v1/attestations/")) return body;
    const at = body.indexOf('"text":', body.indexOf('"output":'));
    let close = body.indexOf('"', at + 8); // the value's closing quote, past escaped ones
    while (body[close - 1] === "\\") close = body.indexOf('"', close + 1);
    return `${body.slice(0, at)}"text":"Rome, of course.${body.slice(close)}`;
  });
  const c = await ask(tampered, "What is the capital of France?");
  check("a tampered attestation shows why it fails",
    c.state === "invalid" && /^Not verified \(\w+\): .*digest.* does not match the content/.test(c.verdict),
    c.verdict);
  await tampered.close();

  const altered = await open((path, sse) => path !== "/v1/chat/completions" ? sse : rewrite(sse, (v) => {
    const d = v.choices && v.choices[0] && v.choices[0].delta;
    if (!d || !d.content) return false;
    d.content = `Trust me: ${d.content}`;
    return true;
  }));
  const d = await ask(altered, "What is the capital of France?");
  check("an answer altered on the wire is not the signed text",
    d.state === "invalid" && d.verdict.includes("not the answer shown"), d.verdict);
  await altered.close();
} catch (e) {
  check("the chat page test ran", false, e.stack || String(e));
} finally {
  await browser.close();
  server.kill("SIGTERM");
}
finish();
