//! The engine's error type.

use thiserror::Error;

/// Everything that can go wrong in the engine. Input from outside (files, prompts, parameters)
/// always yields one of these, never a panic.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed GGUF: {0}")]
    Malformed(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A request that failed while it generated (its grammar, say), as its event reported it.
    #[error("{0}")]
    Generation(String),
    #[error("numerical failure: {0}")]
    Numerical(String),
    #[error("GPU backend: {0}")]
    Device(String),
    /// A dispute trace whose reference computation disagrees with the kernels, or whose
    /// layout does not match the computation: a bug, reported rather than signed.
    #[error("trace: {0}")]
    Trace(String),
    #[error("starting kernel threads: {0}")]
    ThreadPool(#[from] std::io::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
