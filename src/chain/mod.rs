//! The Ethereum side of sworn (`docs/anchoring.md`): bindings to the `SwornRegistry` contract
//! generated from its committed ABI, the operator's wallet, anchoring the transcript store's
//! batches, inclusion proofs as claims, on-chain verification of a transcript, and the EIP-712
//! verdicts of the wrong-result committee. The CLI commands built on them are in [`commands`].
//!
//! `alloy` lives only here (and so only in the `sworn` binary): the engine, attest and verifier
//! crates stay free of it.

pub mod anchoring;
pub mod bindings;
pub mod client;
pub mod commands;
pub mod dispute;
pub mod onchain;
pub mod verdict;
pub mod wallet;

pub use bindings::SwornRegistry;
pub use client::{Chain, ChainError};
