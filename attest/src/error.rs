//! Errors of decoding, verifying and key handling. Each names its cause precisely: a verifier
//! shows these to people deciding whether to trust a result.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AttestError {
    #[error("transcript of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("truncated transcript: it ends inside {0}")]
    Truncated(String),
    #[error("malformed transcript: {0}")]
    Malformed(String),
    #[error("unsupported transcript format version {0}")]
    Version(u16),
    #[error("bad signature: {0}")]
    Signature(String),
    #[error("untrusted operator key {0}")]
    UntrustedKey(String),
    #[error("inconsistent transcript: {0}")]
    Inconsistent(String),
    #[error("key file {path}: {why}")]
    Key { path: String, why: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("JSON: {0}")]
    Json(String),
}
