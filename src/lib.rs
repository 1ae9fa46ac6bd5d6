//! The `sworn` package: the CLI (`src/main.rs`) and, for it and for integration tests, the glue
//! between the engine and signed transcripts.

pub mod attestation;
pub mod chain;
pub mod fuzzing;
pub mod gpu_check;
pub mod server;
