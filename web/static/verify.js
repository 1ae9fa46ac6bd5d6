// The verify page's controller: reads the inputs, hands the bytes to worker.js (the wasm
// module), and shows what comes back. Nothing is sent anywhere but to that worker; the only
// network requests are the ones the user asks for (fetching a transcript by id) and, when the
// page is served by `sworn serve`, the operator's key at ../v1/operator to prefill the key.
const $ = (id) => document.getElementById(id);
const worker = new Worker("worker.js", { type: "module" });
let transcript = null; // ArrayBuffer

function setVerdict(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function useTranscript(bytes, name) {
  transcript = bytes;
  $("transcript-name").textContent = `${name} (${bytes.byteLength} bytes)`;
}

$("transcript-file").addEventListener("change", async (e) => {
  const f = e.target.files[0];
  if (f) useTranscript(await f.arrayBuffer(), f.name);
});

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) useTranscript(await f.arrayBuffer(), f.name);
});

function serverBase() {
  const s = $("server").value.trim().replace(/\/+$/, "");
  return s || new URL("..", location.href).href.replace(/\/+$/, "");
}

$("fetch-btn").addEventListener("click", async () => {
  const id = $("transcript-id").value.trim();
  if (!id) return;
  const url = `${serverBase()}/v1/attestations/${encodeURIComponent(id)}`;
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    useTranscript(await r.arrayBuffer(), url);
  } catch (e) {
    $("transcript-name").textContent = `could not fetch ${url}: ${e.message}`;
  }
});

// Served by `sworn serve` at /verify: offer that server's key (the user can replace it).
fetch(new URL("../v1/operator", location.href))
  .then((r) => (r.ok ? r.json() : null))
  .then((op) => { if (op && op.public_key && !$("key").value) $("key").value = op.public_key; })
  .catch(() => {});

$("verify-btn").addEventListener("click", () => {
  if (!transcript) {
    $("results").hidden = false;
    setVerdict($("verdict"), "error", "Choose a transcript first.");
    return;
  }
  $("results").hidden = false;
  setVerdict($("verdict"), "running", "Verifying…");
  worker.postMessage({ kind: "verify", transcript: transcript.slice(0), key: $("key").value });
});

function show(result) {
  const t = result.transcript;
  $("public-key").textContent = result.public_key || "";
  $("key-id").textContent = result.key_id || "";
  $("digest").textContent = result.digest || "";
  const c = result.commitments || {};
  $("c-model").textContent = c.model || "";
  $("c-request").textContent = c.request || "";
  $("c-output").textContent = c.output || "";
  $("model-blake3").textContent = t ? t.model.file_blake3 : "";
  $("backend").textContent = t ? t.meta.backend : "";
  $("finish").textContent = t ? t.output.finish_reason : "";
  $("prompt").textContent = t ? JSON.stringify(t.request.prompt, null, 2) : "";
  $("text").textContent = t ? t.output.text : "";
}

worker.onmessage = async (event) => {
  const m = event.data;
  if (m.kind === "verified") {
    const r = m.result;
    show(r);
    if (r.ok) {
      const warn = (r.warnings || []).map((w) => ` Warning: ${w}.`).join("");
      setVerdict($("verdict"), "valid", `Valid: signed by this operator key, and consistent.${warn}`);
      const f = $("model-file").files[0];
      if (f) {
        $("replay-section").hidden = false;
        setVerdict($("replay"), "running", "Replaying…");
        const model = await f.arrayBuffer();
        worker.postMessage({ kind: "replay", transcript: transcript.slice(0), model }, [model]);
      }
    } else {
      setVerdict($("verdict"), "invalid", `Invalid (${r.stage}): ${r.reason}`);
    }
  } else if (m.kind === "progress") {
    const p = $("progress");
    if (m.stage === "replaying") {
      p.max = Math.max(m.total, 1);
      p.value = m.done;
      $("progress-label").textContent = `replaying step ${m.done} of ${m.total}`;
    } else {
      p.removeAttribute("value"); // indeterminate while the model is hashed and loaded
      $("progress-label").textContent = m.stage === "hashing" ? "hashing the model file…" : "loading the model…";
    }
  } else if (m.kind === "replayed") {
    const r = m.result;
    const secs = r.seconds.toFixed(2);
    $("replay").dataset.seconds = secs;
    if (r.ok) {
      setVerdict($("replay"), "match", `Bit for bit: all ${r.steps} steps match (${secs} s, ${r.kernels}).`);
    } else if (r.stage) {
      setVerdict($("replay"), "error", `Could not replay (${r.stage}): ${r.reason}`);
    } else {
      setVerdict($("replay"), "mismatch", `Mismatch: ${r.reason}`);
    }
  } else if (m.kind === "failed") {
    setVerdict($("verdict"), "error", `The verifier failed: ${m.reason}`);
  }
};
