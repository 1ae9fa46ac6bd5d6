//! The canonical arithmetic (`docs/canonical-arithmetic.md`): the functions whose bits every
//! implementation must reproduce.

pub mod math;
pub mod quant;
pub mod rope;

/// Version of `docs/canonical-arithmetic.md` that this engine implements. Any change to the bits
/// the engine produces must bump it.
pub const SPEC_VERSION: &str = "sworn-canon/1";
