//! sworn's deterministic inference engine.
//!
//! Same weights, prompt, parameters and seed give the same output bits on any machine: scalar or
//! SIMD, any thread count, any batch, any chunking of the prompt. `docs/canonical-arithmetic.md`
//! is the contract; [`canon`] and [`kernels::scalar`] are its reference implementation.

pub mod canon;
pub mod error;
pub mod fuzzing;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod qmatrix;

pub use error::{EngineError, Result};
pub mod chat;
pub mod commit;
pub mod generate;
pub mod sampling;
pub mod synthetic;
pub mod tokenizer;

pub use chat::{ChatTemplate, Message};
pub use generate::{hash_logits, Completion, Engine, EngineOptions, FinishReason, Prompt, Request};
pub use kernels::Isa;
pub use sampling::SamplingParams;
