//! The `sworn` package: the CLI (`src/main.rs`, one module per command under `src/cli/`) and,
//! for it and for integration tests, the glue between the engine and signed transcripts.
//!
//! Modules depend one way: `server` uses `chain` (to anchor) and `store`; `chain` uses `store`
//! (the anchor log); `store` uses neither.

pub mod attestation;
pub mod chain;
pub mod fuzzing;
pub mod gpu_check;
pub mod server;
pub mod store;
