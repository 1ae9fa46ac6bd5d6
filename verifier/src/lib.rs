//! Check sworn transcripts.
//!
//! [`verify`] needs nothing but the transcript and the operator keys you trust: it checks the
//! encoding, the signature, and that the transcript is consistent with itself. With the `replay`
//! feature, [`replay::replay`] re-runs the completion on your own copy of the model and says
//! whether the output is what the model gives, and if not, where it first differs.
//!
//! ```no_run
//! let bytes = std::fs::read("completion.sworn.json").unwrap();
//! let key = sworn_verifier::PublicKey::parse("…64 hex digits…").unwrap();
//! match sworn_verifier::verify_bytes(&bytes, &[key]) {
//!     Ok(v) => println!("valid: {} tokens signed by {}", v.transcript.output.tokens.len(), v.key.to_hex()),
//!     Err(e) => println!("invalid: {e}"),
//! }
//! ```

#[cfg(feature = "replay")]
pub mod replay;

use sworn_attest::{hexser, FinishReason, MAX_TOP_LOGPROBS};
pub use sworn_attest::{AttestError, Limits, PublicKey, Transcript};

/// A transcript that passed [`verify`], with the key that signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub transcript: Transcript,
    pub key: PublicKey,
    pub digest: [u8; 32],
    /// What the transcript's (older) format does not prove, one line each
    /// ([`Transcript::format_warnings`]); empty for the current format. A weakness of an old
    /// format is reported, never a reason to refuse the receipt.
    pub warnings: Vec<String>,
}

/// Parses a transcript in either form: the canonical binary encoding, or its JSON form.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Transcript, AttestError> {
    if bytes.starts_with(b"SWORNTX\0") {
        return Transcript::decode(bytes, limits);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AttestError::Malformed("neither the binary encoding nor UTF-8 JSON".into()))?;
    Transcript::from_json(text, limits)
}

/// Parses and verifies (see [`verify`]).
pub fn verify_bytes(bytes: &[u8], trusted: &[PublicKey]) -> Result<Verified, AttestError> {
    verify(parse(bytes, Limits::default())?, trusted)
}

/// Verifies a transcript offline: it is signed by one of the `trusted` operator keys, and it is
/// internally consistent. Says nothing about whether the output is right: that is [`replay`]'s
/// job.
pub fn verify(t: Transcript, trusted: &[PublicKey]) -> Result<Verified, AttestError> {
    let key = *trusted
        .iter()
        .find(|k| k.id() == t.meta.operator_key_id)
        .ok_or_else(|| AttestError::UntrustedKey(hexser::encode(&t.meta.operator_key_id)))?;
    t.check_format()?;
    key.verify(&t)?;
    check_consistency(&t)?;
    let digest = t.digest();
    let warnings = t.format_warnings();
    Ok(Verified {
        transcript: t,
        key,
        digest,
        warnings,
    })
}

/// What a transcript must satisfy whatever the model.
fn check_consistency(t: &Transcript) -> Result<(), AttestError> {
    let bad = |w: String| Err(AttestError::Inconsistent(w));
    let (req, out) = (&t.request, &t.output);
    if req.prompt_tokens.is_empty() {
        return bad("no prompt tokens".into());
    }
    if out.step_hashes.len() != out.tokens.len() {
        return bad(format!(
            "{} step hashes for {} tokens",
            out.step_hashes.len(),
            out.tokens.len()
        ));
    }
    if out.tokens.len() > req.max_tokens as usize {
        return bad(format!(
            "{} tokens exceed max_tokens {}",
            out.tokens.len(),
            req.max_tokens
        ));
    }
    if out.finish_reason == FinishReason::Length && out.tokens.len() != req.max_tokens as usize {
        return bad(format!(
            "finish reason \"length\" with {} of {} tokens (truncated output?)",
            out.tokens.len(),
            req.max_tokens
        ));
    }
    if out.tokens.is_empty() && req.max_tokens > 0 {
        return bad("no output tokens".into());
    }
    match req.logprobs {
        None if !out.logprobs.is_empty() => {
            return bad("logprobs in the output, but the request asked for none".into())
        }
        Some(n) if n > MAX_TOP_LOGPROBS => {
            return bad(format!(
                "{n} top logprobs asked for (at most {MAX_TOP_LOGPROBS})"
            ))
        }
        Some(_) if out.logprobs.len() != out.tokens.len() => {
            return bad(format!(
                "{} logprob steps for {} tokens",
                out.logprobs.len(),
                out.tokens.len()
            ))
        }
        Some(n) => {
            if let Some(i) = out.logprobs.iter().position(|s| s.top.len() > n as usize) {
                return bad(format!(
                    "step {i}: {} top logprobs, {n} asked for",
                    out.logprobs[i].top.len()
                ));
            }
        }
        None => {}
    }
    req.sampling.validate().map_err(AttestError::Inconsistent)
}
