//! Replay: re-run a transcript's completion on a local copy of the model and compare, bit for bit.
//!
//! The replay is teacher-forced: one batched forward pass over prompt + claimed output gives every
//! step's logits (the engine is batch- and chunking-invariant, so they equal the logits of the
//! original token-by-token run), then each step's token is re-derived from its logits, the
//! sampling parameters and the seed. A dishonest or broken run shows up as the first step whose
//! logits hash or token differs, or as a stop rule the claimed output breaks.

use std::path::Path;

use sworn_attest::{FinishReason, OutputRecord, Transcript};
use sworn_engine::commit::ModelManifest;
use sworn_engine::logprobs::{step_logprobs, StepLogprobs};
use sworn_engine::sampling::sample_masked;
use sworn_engine::{Engine, EngineError, EngineOptions, Request};

/// Times a replay. A browser's WebAssembly has no clock in `std` (`Instant::now` panics there),
/// so there it reads 0 and the page times the replay itself.
struct Clock(#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))] std::time::Instant);

impl Clock {
    fn start() -> Clock {
        Clock(
            #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
            std::time::Instant::now(),
        )
    }

    fn seconds(&self) -> f64 {
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        return self.0.elapsed().as_secs_f64();
        #[allow(unreachable_code)]
        0.0
    }
}

/// Where a replay first disagrees with the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// Step `step`'s logits hash differs from the claimed trace.
    Logits { step: usize },
    /// The token sampled at `step` from the replayed logits differs from the claimed one.
    Token {
        step: usize,
        claimed: u32,
        replayed: u32,
    },
    /// Generation would have ended after `step`, but the transcript has more tokens.
    ExtraTokens { step: usize },
    /// The transcript ends although generation would have gone on (truncated output).
    Truncated { tokens: usize },
    /// The output text is not the decoding of the output tokens under the stop rules.
    Text,
    /// The finish reason is not the one the stop rules give.
    FinishReason {
        claimed: FinishReason,
        replayed: FinishReason,
    },
    /// The token at `step` is one the request's grammar does not allow there.
    Grammar { step: usize, token: u32 },
    /// The logprobs claimed for `step` are not those its logits give.
    Logprobs { step: usize },
}

/// The outcome of a replay.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Model commitments that differ from the local model: any of "file", "tensors", "tokenizer",
    /// "chat_template".
    pub model_mismatches: Vec<&'static str>,
    /// Whether the prompt, tokenized by the local engine, gives the claimed prompt token ids.
    pub prompt_tokens_match: bool,
    /// The first disagreement in the output, if any.
    pub divergence: Option<Divergence>,
    /// Steps replayed.
    pub steps: usize,
    /// Seconds the teacher-forced pass and re-sampling took.
    pub seconds: f64,
    /// The local model's manifest (per-tensor hashes), for naming swapped tensors.
    pub manifest: ModelManifest,
}

impl ReplayReport {
    /// True when the transcript is exactly what the local model gives.
    pub fn ok(&self) -> bool {
        self.model_mismatches.is_empty() && self.prompt_tokens_match && self.divergence.is_none()
    }

    /// One line saying why not, naming what disagrees first: weights, then tokenizer, then
    /// request, then the output step.
    pub fn reason(&self) -> String {
        let mut why = Vec::new();
        if self
            .model_mismatches
            .iter()
            .any(|m| *m == "file" || *m == "tensors")
        {
            why.push("the weights differ from the committed model".to_string());
        }
        if self
            .model_mismatches
            .iter()
            .any(|m| *m == "tokenizer" || *m == "chat_template")
        {
            why.push("the tokenizer or chat template differs from the committed one".to_string());
        }
        if !self.prompt_tokens_match {
            why.push("the prompt does not tokenize to the committed prompt tokens".to_string());
        }
        if let Some(d) = &self.divergence {
            why.push(match d {
                Divergence::Logits { step } => {
                    format!("step {step}: logits differ from the committed trace")
                }
                Divergence::Token {
                    step,
                    claimed,
                    replayed,
                } => {
                    format!("step {step}: claimed token {claimed}, but sampling gives {replayed}")
                }
                Divergence::ExtraTokens { step } => {
                    format!("generation ends after step {step}, but the output has more tokens")
                }
                Divergence::Truncated { tokens } => {
                    format!("output truncated: generation would go on after {tokens} tokens")
                }
                Divergence::Text => {
                    "the output text is not the decoding of the output tokens".into()
                }
                Divergence::FinishReason { claimed, replayed } => {
                    format!("finish reason {claimed:?} claimed, {replayed:?} replayed")
                }
                Divergence::Grammar { step, token } => {
                    format!("step {step}: token {token} is outside the request's grammar")
                }
                Divergence::Logprobs { step } => {
                    format!("step {step}: the logprobs differ from what the logits give")
                }
            });
        }
        if why.is_empty() {
            "replay matches bit for bit".into()
        } else {
            why.join("; ")
        }
    }
}

/// Converts a transcript's request to the engine's.
pub fn engine_request(t: &Transcript) -> Request {
    Request::from_record(&t.request)
}

/// Replays `t` on the model at `model` (loaded with `opts`).
pub fn replay(
    t: &Transcript,
    model: &Path,
    opts: &EngineOptions,
) -> Result<ReplayReport, EngineError> {
    let (engine, m) = Engine::load_with_manifest(model, opts)?;
    replay_with(t, &engine, m)
}

/// Refuses a transcript made under another canonical arithmetic: this engine cannot say what
/// that arithmetic gives, so a replay would prove nothing either way.
fn check_spec(t: &Transcript) -> Result<(), EngineError> {
    if t.request.spec_version != sworn_engine::canon::SPEC_VERSION {
        return Err(EngineError::InvalidRequest(format!(
            "the transcript was made under arithmetic {:?}, this engine implements {:?}",
            t.request.spec_version,
            sworn_engine::canon::SPEC_VERSION
        )));
    }
    Ok(())
}

/// Refuses, before any work, a transcript longer than the model's context: replay's cost grows
/// with prompt + output tokens, and no honest transcript exceeds what the model serves.
fn check_size(t: &Transcript, engine: &Engine) -> Result<(), EngineError> {
    let (p, o) = (t.request.prompt_tokens.len(), t.output.tokens.len());
    let max = engine.max_context();
    if p.saturating_add(o) > max {
        return Err(EngineError::InvalidRequest(format!(
            "the transcript has {p} prompt and {o} output tokens, more than the model's context \
             of {max} positions: refused before replaying (no honest run can be that long)"
        )));
    }
    Ok(())
}

/// Replays `t` on a model file held in memory (a browser's `File`, say), reporting progress
/// as [`replay_with_progress`] does, after the stages `"hashing"` and `"loading"` (each reported
/// once, as `(stage, 0, 1)`, before it starts).
pub fn replay_bytes(
    t: &Transcript,
    model: &[u8],
    opts: &EngineOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ReplayReport, EngineError> {
    progress("hashing", 0, 1);
    let m = sworn_engine::commit::manifest_bytes(model)?;
    progress("loading", 0, 1);
    let mut f = sworn_engine::gguf::GgufFile::from_reader(std::io::Cursor::new(model))?;
    let engine = Engine::from_gguf(&mut f, opts)?;
    drop(f);
    replay_with_progress(t, &engine, m, progress)
}

/// Replays `t` on an already loaded engine whose model has manifest `m`.
pub fn replay_with(
    t: &Transcript,
    engine: &Engine,
    m: ModelManifest,
) -> Result<ReplayReport, EngineError> {
    replay_with_progress(t, engine, m, &mut |_, _, _| {})
}

/// [`replay_with`], calling `progress("replaying", done, total)` as the output's steps are
/// checked (`total` is the number of output tokens).
pub fn replay_with_progress(
    t: &Transcript,
    engine: &Engine,
    m: ModelManifest,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ReplayReport, EngineError> {
    check_spec(t)?;
    check_size(t, engine)?;
    let (c, mine) = (&t.model, &m.commitment);
    let mut model_mismatches = Vec::new();
    if c.file_blake3 != mine.file_blake3 {
        model_mismatches.push("file");
    }
    if c.tensors_root != mine.tensors_root || c.n_tensors != mine.n_tensors {
        model_mismatches.push("tensors");
    }
    if c.tokenizer_blake3 != mine.tokenizer_blake3 {
        model_mismatches.push("tokenizer");
    }
    if c.chat_template_blake3 != mine.chat_template_blake3 {
        model_mismatches.push("chat_template");
    }
    // Formats 1 to 3 carry no execution commitment; from format 4 it must be the file's.
    if c.exec_root.is_some() && c.exec_root != mine.exec_root {
        model_mismatches.push("exec_root");
    }
    let req = engine_request(t);
    req.params.validate().map_err(EngineError::InvalidRequest)?;
    let prompt = &t.request.prompt_tokens;
    let retokenized = match t.version {
        1 => engine.prompt_tokens_format1(&req.prompt),
        _ => engine.request_prompt_tokens(&req),
    };
    let prompt_tokens_match = retokenized.map(|p| &p == prompt).unwrap_or(false);
    let mut constraint = match &req.grammar {
        Some(g) => Some(engine.constraint(g)?),
        None => None,
    };
    let out = &t.output;
    let start = Clock::start();
    let mut divergence = None;
    let mut history = prompt.clone();
    let total = out.tokens.len();
    progress("replaying", 0, total);
    engine.teacher_forced_hashed(prompt, &out.tokens, |i, logits, hash| {
        progress("replaying", i + 1, total);
        if divergence.is_some() {
            return Ok(());
        }
        if *hash != out.step_hashes[i] {
            divergence = Some(Divergence::Logits { step: i });
            return Ok(());
        }
        let claimed = out.tokens[i];
        let outside = Divergence::Grammar {
            step: i,
            token: claimed,
        };
        let mask = match constraint.as_mut().map(|c| c.mask()) {
            None => None,
            Some(Ok(m)) if m.allows(claimed) => Some(m),
            Some(_) => {
                divergence = Some(outside);
                return Ok(());
            }
        };
        let tok = sample_masked(logits, &req.params, &history, i as u64, mask.as_ref())?;
        if tok != claimed {
            divergence = Some(Divergence::Token {
                step: i,
                claimed,
                replayed: tok,
            });
            return Ok(());
        }
        if let Some(n) = req.logprobs {
            let mine = step_logprobs(logits, tok, n as usize);
            if !same_logprobs(&mine, &out.logprobs[i]) {
                divergence = Some(Divergence::Logprobs { step: i });
                return Ok(());
            }
        }
        if let Some(c) = constraint.as_mut() {
            if c.consume(tok).is_err() {
                divergence = Some(outside);
                return Ok(());
            }
        }
        history.push(tok);
        if i + 1 < out.tokens.len() && engine.finish_reason(&out.tokens[..=i], &req).is_some() {
            divergence = Some(Divergence::ExtraTokens { step: i });
        }
        Ok(())
    })?;
    if divergence.is_none() {
        let (text, finish) = engine.finish_after(&out.tokens, &req);
        divergence = match finish {
            None => Some(Divergence::Truncated {
                tokens: out.tokens.len(),
            }),
            Some(f) if f != out.finish_reason => Some(Divergence::FinishReason {
                claimed: out.finish_reason,
                replayed: f,
            }),
            Some(_) if text != out.text => Some(Divergence::Text),
            Some(_) => None,
        };
    }
    Ok(ReplayReport {
        model_mismatches,
        prompt_tokens_match,
        divergence,
        steps: out.tokens.len(),
        seconds: start.seconds(),
        manifest: m,
    })
}

/// Bit-equality of two steps' logprobs (`-0.0` is not `0.0` here: the bits are what is signed).
fn same_logprobs(a: &StepLogprobs, b: &StepLogprobs) -> bool {
    a.logprob.to_bits() == b.logprob.to_bits()
        && a.top.len() == b.top.len()
        && a.top
            .iter()
            .zip(&b.top)
            .all(|(x, y)| x.token == y.token && x.logprob.to_bits() == y.logprob.to_bits())
}

/// The output the committed model really gives for `t`'s request: a fresh generation (not
/// teacher-forced), with the same sampling parameters and seed. A wrong-result verdict signs this
/// output's commitment (`docs/anchoring.md` section 5): it equals the transcript's own output
/// commitment exactly when the transcript is honest. Refused when the local model is not the
/// committed one, since then the answer would be about another model.
pub fn regenerate(
    t: &Transcript,
    engine: &Engine,
    m: &ModelManifest,
) -> Result<OutputRecord, EngineError> {
    check_spec(t)?;
    check_size(t, engine)?;
    if t.model.commitment() != m.commitment.for_version(t.version).commitment() {
        return Err(EngineError::InvalidRequest(
            "the local model is not the one the transcript commits to".into(),
        ));
    }
    let req = engine_request(t);
    req.params.validate().map_err(EngineError::InvalidRequest)?;
    Ok(engine.generate(&req)?.to_record())
}
