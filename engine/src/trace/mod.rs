//! Execution traces for trustless disputes (`docs/dispute.md` §5): a replay laid out as a
//! fixed sequence of regions of 32-bit words ([`layout`]), every operation's output and every
//! long reduction's running values, so that each word is computed from earlier words (and the
//! model and transcript) by one bounded step that the on-chain executor can re-run.
//!
//! [`record::trace`] computes a trace with the engine's own forward pass on a tracing backend.

pub mod bind;
pub mod inputs;
pub mod layout;
pub mod products;
pub mod record;
pub mod sample;
pub mod weights;
pub mod witness;

pub use layout::{Kind, Layout, Region, Shape, LEAF};
pub use record::{trace, Corruption, Trace};
