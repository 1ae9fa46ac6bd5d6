//! Device memory, and what of it a sequence holds: the CUDA backend allocates buffers and keeps
//! each sequence's keys and values in them ([`DevKv`]), and [`crate::model::Sequence`] owns its
//! cache. A module of its own, below both the model and the backends, so that neither imports
//! the other for it.
//!
//! Without the `cuda` feature there is no device memory: [`DeviceCache`] is then a type with no
//! values (as candle's `dummy_cuda` stands in for its CUDA device), so the code that holds one
//! needs no `cfg`, and no downcast finds it.

#[cfg(feature = "cuda")]
mod memory;

#[cfg(feature = "cuda")]
pub use memory::{Arg, DevBuf, DevKv, Device, Shape};

/// A sequence's keys and values kept off the CPU.
#[cfg(feature = "cuda")]
pub type DeviceCache = DevKv;

/// A sequence's keys and values kept off the CPU: none in this build.
#[cfg(not(feature = "cuda"))]
#[derive(Debug, Clone)]
pub enum DeviceCache {}

#[cfg(not(feature = "cuda"))]
impl DeviceCache {
    /// Forgets everything after the first `n` positions.
    pub fn truncate(&mut self, _n: usize) {
        match *self {}
    }
}
