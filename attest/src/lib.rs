//! Signed transcripts of sworn completions: the record of what a completion commits to (model,
//! tokenizer, request, output, per-step logits trace, engine), its canonical binary encoding and
//! JSON form, the SHA-256 commitments an EVM contract can recompute, and Ed25519 operator keys.
//! `docs/transcript.md` is the specification.
//!
//! This crate has no dependency on the engine, so a verifier can embed it without the weights.

pub mod anchor;
pub mod codec;
pub mod error;
pub mod hexser;
pub mod keys;
pub mod merkle;
pub mod strict_json;
pub mod trace_tree;
pub mod transcript;

pub use codec::Limits;
pub use error::AttestError;
pub use keys::{key_binding_message, key_id, OperatorKey, PublicKey, PublicKeyDoc};
pub use transcript::{
    Commitments, FinishReason, Message, Meta, ModelCommitment, OperatorBinding, OutputRecord,
    Prompt, RequestRecord, Sampling, StepLogprobs, ToolCall, TopLogprob, Transcript,
    FORMAT_VERSION, FORMAT_VERSIONS, MAX_TOP_LOGPROBS, MIN_TEMPERATURE,
};
