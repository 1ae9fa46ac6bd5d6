//! Turning an engine completion into a signed transcript.

use std::time::{SystemTime, UNIX_EPOCH};

use sworn_attest::{Meta, OperatorKey, OutputRecord, RequestRecord, Transcript, FORMAT_VERSION};
use sworn_engine::commit::ModelManifest;
use sworn_engine::{Completion, Engine, Request};

/// Builds and signs the transcript of `c`, the completion of `req` by `engine` on the model
/// described by `manifest`.
pub fn sign_completion(
    engine: &Engine,
    manifest: &ModelManifest,
    req: &Request,
    c: &Completion,
    key: &OperatorKey,
) -> Transcript {
    let mut t = Transcript {
        version: FORMAT_VERSION,
        model: manifest.commitment.clone(),
        request: RequestRecord {
            prompt: req.prompt.clone(),
            prompt_tokens: c.prompt_tokens.clone(),
            sampling: req.params.clone(),
            max_tokens: req.max_tokens,
            stop: req.stop.clone(),
        },
        output: OutputRecord {
            tokens: c.tokens.clone(),
            text: c.text.clone(),
            finish_reason: c.finish_reason,
            step_hashes: c.logits_hashes.clone(),
        },
        meta: Meta {
            engine: "sworn".into(),
            engine_version: env!("CARGO_PKG_VERSION").into(),
            spec_version: sworn_engine::canon::SPEC_VERSION.into(),
            backend: format!("{} x{}", engine.runner.isa.name(), engine.runner.threads()),
            operator_key_id: [0; 32],
            timestamp_ms: now_ms(),
        },
        signature: [0; 64],
    };
    key.sign(&mut t);
    t
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
