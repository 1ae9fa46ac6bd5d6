// The chat page's controller (`sworn serve` serves it at /, with no build step). It streams an
// answer from /v1/chat/completions, then fetches the answer's signed transcript (by the id in
// the x-sworn-transcript-id header, from /v1/attestations) and checks it in the browser, with
// the WebAssembly verifier of the verify page (/verify/worker.js, installed by `sworn serve
// --verify-dir`): Ed25519 signature by the operator key from /v1/operator, consistency, and that
// the text shown is the signed text.
// Nothing is verified by the server on the page's behalf: without the verifier the page says so.
const $ = (id) => document.getElementById(id);
const history = []; // {role, content} of the finished turns, sent with each question
let operatorKey = null;
let verifier = null; // the worker, once it loaded
const pending = new Map(); // verification number -> resolve
let nextCheck = 0;

$("api-key").value = sessionStorage.getItem("sworn-api-key") || "";
$("api-key").addEventListener("change", () => sessionStorage.setItem("sworn-api-key", $("api-key").value));

function authHeaders() {
  const k = $("api-key").value.trim();
  return k ? { authorization: `Bearer ${k}` } : {};
}

const ready = (async () => {
  try {
    const r = await fetch("v1/operator", { headers: authHeaders() });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    const op = await r.json();
    operatorKey = op.public_key;
    $("operator-key").textContent = `${op.public_key} (id ${op.key_id})`;
    $("model").textContent = `${op.model.id} (blake3 ${op.model.file_blake3})`;
  } catch (e) {
    $("operator-key").textContent = `could not read /v1/operator: ${e.message}`;
  }
  // The verifier is the verify page's module: only there when the server was given --verify-dir.
  const probe = await fetch("verify/sworn_web_bg.wasm", { method: "HEAD" }).catch(() => null);
  if (probe && probe.ok) {
    verifier = new Worker("verify/worker.js", { type: "module" });
    verifier.onmessage = (event) => {
      const m = event.data;
      const done = pending.get(m.check);
      if (done) { pending.delete(m.check); done(m); }
    };
    $("verifier").textContent = "sworn's WebAssembly verifier, in this page";
  } else {
    $("verifier").textContent =
      "not installed on this server (sworn serve --verify-dir): answers are shown unverified; check them with `sworn verify`";
  }
})();

/** Verifies a transcript (its bytes) with the worker: resolves to its result object. */
function verifyInBrowser(bytes) {
  const check = nextCheck++;
  bytes = bytes.slice(0);
  return new Promise((resolve) => {
    pending.set(check, (m) =>
      resolve(m.kind === "verified" ? m.result : { ok: false, stage: "verifier", reason: m.reason }));
    verifier.postMessage({ kind: "verify", check, transcript: bytes, key: operatorKey || "" }, [bytes]);
  });
}

function turn(role) {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  div.innerHTML = `<div class="who"></div><div class="text"></div>`;
  div.querySelector(".who").textContent = role === "user" ? "you" : "model";
  $("conversation").append(div);
  return div;
}

function setVerdict(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

/** Fetches the stored attestation of answer `transcriptId` and shows under `div` what it says
 * and whether it verifies. The bytes are the server's own (JSON numbers such as the 64-bit seed
 * do not survive a JavaScript round trip, and the digest covers them). */
async function attest(div, transcriptId, shownText) {
  const box = document.createElement("div");
  box.className = "attestation";
  box.innerHTML = `<span class="verdict"></span><dl></dl>`;
  div.append(box);
  const verdict = box.querySelector(".verdict");
  const dl = box.querySelector("dl");
  const row = (k, v) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    dl.append(dt, dd);
  };
  if (!transcriptId) return setVerdict(verdict, "error", "Not verified: the answer came without an attestation.");
  row("transcript id", transcriptId);
  let bytes;
  try {
    const r = await fetch(`v1/attestations/${encodeURIComponent(transcriptId)}`, { headers: authHeaders() });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    bytes = await r.arrayBuffer();
  } catch (e) {
    return setVerdict(verdict, "error", `Not verified: the attestation could not be fetched (${e.message}).`);
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/json" }));
  link.download = `${transcriptId}.json`;
  link.textContent = "download the attestation";
  if (!verifier) {
    box.append(link);
    return setVerdict(verdict, "unavailable", "Not verified here: this server has no in-browser verifier installed.");
  }
  setVerdict(verdict, "running", "Verifying…");
  const r = await verifyInBrowser(bytes);
  if (r.digest) row("digest", r.digest);
  if (r.transcript) {
    const out = r.transcript.output;
    row("finish", `${out.finish_reason}, ${out.tokens.length} tokens`);
  }
  box.append(link);
  if (!r.ok) return setVerdict(verdict, "invalid", `Not verified (${r.stage}): ${r.reason}`);
  if (r.transcript.output.text !== shownText)
    return setVerdict(verdict, "invalid", "Not verified: the signed text is not the answer shown above.");
  setVerdict(verdict, "verified", `Verified: signed by operator key ${r.public_key.slice(0, 16)}…, consistent, and the text shown is the text signed.`);
}

/** Reads an SSE body, calling `onData` with each `data:` payload (events other than the
 * default one are passed with their name). */
async function readEvents(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onData(event, data.join("\n"));
    }
    if (done) return;
  }
}

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  await ready;
  $("send").disabled = true;
  $("question").value = "";
  turn("user").querySelector(".text").textContent = question;
  const div = turn("assistant");
  const out = div.querySelector(".text");
  const messages = [...history, { role: "user", content: question }];
  let text = "";
  let failure = null;
  try {
    const r = await fetch("v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders() },
      body: JSON.stringify({
        messages, stream: true,
        max_tokens: Number($("max-tokens").value) || 128,
        temperature: Number($("temperature").value) || 0,
      }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : `${r.status} ${r.statusText}`);
    }
    const id = r.headers.get("x-sworn-transcript-id");
    await readEvents(r.body, (event, data) => {
      if (event === "error") { failure = data; return; }
      if (data === "[DONE]") return;
      const v = JSON.parse(data);
      const delta = v.choices && v.choices[0] && v.choices[0].delta;
      if (delta && delta.content) { text += delta.content; out.textContent = text; }
    });
    if (failure) throw new Error(failure);
    history.push({ role: "user", content: question }, { role: "assistant", content: text });
    await attest(div, id, text);
  } catch (err) {
    const v = document.createElement("span");
    v.className = "verdict";
    div.append(v);
    setVerdict(v, "error", `The request failed: ${err.message}`);
  } finally {
    $("send").disabled = false;
  }
});

$("reset").addEventListener("click", () => {
  history.length = 0;
  $("conversation").replaceChildren();
});
