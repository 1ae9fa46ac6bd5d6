//! sworn's deterministic inference engine.
//!
//! Same weights, prompt, parameters and seed give the same output bits on any machine: scalar or
//! SIMD, any thread count, any batch, any chunking of the prompt. `docs/canonical-arithmetic.md`
//! is the contract; [`canon`] and [`kernels::scalar`] are its reference implementation.

pub mod accel;
pub mod arch;
pub mod backend;
pub mod batcher;
pub mod canon;
pub mod error;
pub mod float_vectors;
pub mod forward;
pub mod fuzzing;
pub mod gguf;
pub mod grammar;
pub mod kernels;
pub mod logprobs;
pub mod model;
mod packed;
pub mod perplexity;
pub mod qmatrix;
pub mod quant;
pub mod record;

pub use error::{EngineError, Result};
pub mod chat;
pub mod commit;
pub mod detok;
pub mod devmem;
#[cfg(feature = "test-doubles")]
pub mod dispute_vectors;
pub mod generate;
pub mod sampling;
pub mod schedule;
pub mod slice;
pub mod spm;
pub mod synthetic;
pub mod tokenizer;
pub mod trace;

pub use chat::{ChatTemplate, Message};
pub use generate::{
    hash_logits, Completion, DeviceKind, Engine, EngineOptions, FinishReason, Prompt, Request,
};
pub use kernels::Isa;
pub use sampling::SamplingParams;

/// Where `scripts/fetch-model.sh` caches the default model (SmolLM2-135M-Instruct, Q4_1):
/// `$SWORN_CACHE_DIR/models/…`, else `$XDG_CACHE_HOME/sworn/models/…`, else
/// `~/.cache/sworn/models/…`.
pub fn default_model_path() -> std::path::PathBuf {
    use std::path::PathBuf;
    let cache = std::env::var_os("SWORN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                })
                .join("sworn")
        });
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}
