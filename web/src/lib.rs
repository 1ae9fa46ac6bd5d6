//! The verify page's WebAssembly module (`scripts/build-web.sh` builds it with the page): a
//! transcript is verified offline (encoding, Ed25519 signature by the given operator key,
//! consistency) and, given the model file, replayed bit for bit, entirely in the browser. The
//! functions take bytes and return JSON text, which `web/static/verify.js` renders; nothing
//! leaves the page. Only the `wasm32-unknown-unknown` build has content.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use serde_json::{json, Value};
use sworn_attest::{hexser, Limits, PublicKey, Transcript};
use sworn_engine::EngineOptions;
use sworn_verifier::replay::replay_bytes;
use wasm_bindgen::prelude::*;

/// What the page shows of a transcript whatever the verdict: its digest, the four commitments
/// the digest is made of, and the transcript itself (JSON form).
fn summary(t: &Transcript) -> Value {
    let c = t.commitments();
    json!({
        "digest": hexser::encode(&t.digest()),
        "commitments": {
            "model": hexser::encode(&c.model),
            "request": hexser::encode(&c.request),
            "output": hexser::encode(&c.output),
            "meta": hexser::encode(&c.meta),
        },
        "key_id": hexser::encode(&t.meta.operator_key_id),
        "transcript": t.to_json(),
    })
}

fn refusal(stage: &str, reason: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "stage": stage, "reason": reason.to_string() })
}

/// Verifies a transcript (JSON or binary form) against the operator key `key` (64 hex digits,
/// or the key's `.pub.json`). Returns `{"ok": true, ...summary, "public_key": ...}`, or
/// `{"ok": false, "stage": "parse" | "key" | "verify", "reason": ...}` (with the summary when the
/// transcript parsed).
#[wasm_bindgen]
pub fn verify(transcript: &[u8], key: &str) -> String {
    let t = match sworn_verifier::parse(transcript, Limits::default()) {
        Ok(t) => t,
        Err(e) => return refusal("parse", e).to_string(),
    };
    let mut out = summary(&t);
    let key = match PublicKey::parse(key.trim()) {
        Ok(k) => k,
        Err(e) => {
            let r = refusal("key", format!("the operator key: {e}"));
            out.as_object_mut()
                .expect("an object")
                .extend(r.as_object().cloned().unwrap());
            return out.to_string();
        }
    };
    out["public_key"] = json!(key.to_hex());
    let verdict = match sworn_verifier::verify(t, &[key]) {
        Ok(v) => json!({ "ok": true, "warnings": v.warnings }),
        Err(e) => refusal("verify", e),
    };
    out.as_object_mut()
        .expect("an object")
        .extend(verdict.as_object().cloned().unwrap());
    out.to_string()
}

/// Replays a transcript on `model` (the GGUF file's bytes), one thread, calling
/// `progress(stage, done, total)` with stage `"hashing"`, `"loading"`, then `"replaying"` per
/// step. Returns `{"ok": bool, "reason", "steps", "model_mismatches", "prompt_tokens_match",
/// "divergence"}`, or `{"ok": false, "stage": "parse" | "replay", "reason"}` when it cannot run.
#[wasm_bindgen]
pub fn replay(transcript: &[u8], model: &[u8], progress: &js_sys::Function) -> String {
    let t = match sworn_verifier::parse(transcript, Limits::default()) {
        Ok(t) => t,
        Err(e) => return refusal("parse", e).to_string(),
    };
    let opts = EngineOptions {
        threads: 1,
        ..Default::default()
    };
    let mut report = |stage: &str, done: usize, total: usize| {
        // A throwing callback must not stop the replay; the page's own errors show there.
        let _ = progress.call3(
            &JsValue::NULL,
            &JsValue::from_str(stage),
            &JsValue::from_f64(done as f64),
            &JsValue::from_f64(total as f64),
        );
    };
    match replay_bytes(&t, model, &opts, &mut report) {
        Ok(r) => json!({
            "ok": r.ok(),
            "reason": if r.ok() { String::new() } else { r.reason() },
            "steps": r.steps,
            "model_mismatches": r.model_mismatches,
            "prompt_tokens_match": r.prompt_tokens_match,
            "divergence": r.divergence.map(|d| format!("{d:?}")),
            "kernels": sworn_engine::Isa::detect().name(),
        })
        .to_string(),
        Err(e) => refusal("replay", e).to_string(),
    }
}
