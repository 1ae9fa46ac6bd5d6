//! The backend seam: the operations an architecture's forward pass is written against
//! ([`crate::forward`]), and who implements them. [`Cpu`] runs the CPU kernels of
//! [`crate::kernels`]; the `cuda` feature's [`cuda::Kernels`] runs sworn's CUDA kernels, on a GPU
//! or executed on the host by a shim. Every backend computes the same bits: the spec
//! (`docs/canonical-arithmetic.md`) fixes each output's operations, and backends only choose how
//! to spread outputs over hardware.

use crate::arch::{LayerMat, LayerVec};
use crate::error::Result;
use crate::model::{Feed, Model};
use crate::qmatrix::QMatrix;

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;

pub use cpu::Cpu;

/// A weight matrix of the model, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatId {
    /// The token embedding (also the output projection when tied).
    TokEmbd,
    /// The output projection (`output.weight`, or the embedding when the file has none).
    LmHead,
    /// A layer's matrix.
    Layer(usize, LayerMat),
}

/// A vector of the model (norm weights, biases), by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecId {
    /// A layer's vector.
    Layer(usize, LayerVec),
    OutNorm,
}

impl Model {
    /// The matrix `id` names.
    pub fn mat(&self, id: MatId) -> &QMatrix {
        match id {
            MatId::TokEmbd => &self.tok_embd,
            MatId::LmHead => self.lm_head(),
            MatId::Layer(i, role) => self.layers[i].mat(role),
        }
    }

    /// The vector `id` names; empty when this architecture has none there.
    pub fn vector(&self, id: VecId) -> &[f32] {
        match id {
            VecId::Layer(i, role) => self.layers[i].vec(role).unwrap_or(&[]),
            VecId::OutNorm => &self.out_norm,
        }
    }
}

pub use crate::arch::Gate;

/// Where a batch's new tokens sit: `(feed index, position)` per token, feeds in order.
pub type Positions = [(usize, usize)];

/// The operations of the forward pass (spec §3). Buffers hold rows of f32 (`Buf`) or of
/// quantized activation blocks (`Acts`); an operation sizes its outputs itself.
pub trait Backend {
    type Buf;
    type Acts;

    /// An empty buffer.
    fn buf(&self) -> Result<Self::Buf>;
    /// Empty quantized activations.
    fn acts(&self) -> Result<Self::Acts>;
    /// The embedding rows of `tokens` (spec §3.1), `d_model` each.
    fn embed(&self, tokens: &[u32], x: &mut Self::Buf) -> Result<()>;
    /// `x *= s`, elementwise.
    fn scale(&self, x: &mut Self::Buf, s: f32) -> Result<()>;
    /// RMSNorm of every row of `x` (rows as long as the weight) into `y` (spec §3.2).
    fn rmsnorm(&self, x: &Self::Buf, w: VecId, y: &mut Self::Buf) -> Result<()>;
    /// RMSNorm of every row of `x` in place.
    fn rmsnorm_in_place(&self, x: &mut Self::Buf, w: VecId) -> Result<()>;
    /// Quantizes every `cols`-wide row of `x` (spec §1.1).
    fn quantize(&self, x: &Self::Buf, cols: usize, xq: &mut Self::Acts) -> Result<()>;
    /// `outs[i] = mats[i] x` for `tokens` rows of `x`, given quantized (`xq`, for quantized
    /// weights) and as f32 (`xf`, for f32 weights) (spec §1.2-1.4).
    fn matmul(
        &self,
        mats: &[MatId],
        xq: &Self::Acts,
        xf: &Self::Buf,
        tokens: usize,
        outs: &mut [&mut Self::Buf],
    ) -> Result<()>;
    /// Adds vector `b` to every row of `x` (as wide as `b`).
    fn add_rows(&self, x: &mut Self::Buf, b: VecId) -> Result<()>;
    /// RoPE on every head of `q` and `k` (spec §3.4), at each token's position, with layer
    /// `layer`'s table.
    fn rope(
        &self,
        layer: usize,
        q: &mut Self::Buf,
        k: &mut Self::Buf,
        at: &Positions,
    ) -> Result<()>;
    /// Appends each token's key and value to its sequence's cache for `layer`, then computes
    /// every query head's attention output into `att` (spec §3.5, §3.9).
    fn attend(
        &self,
        layer: usize,
        feeds: &mut [Feed<'_>],
        at: &Positions,
        qkv: Qkv<'_, Self::Buf>,
        att: &mut Self::Buf,
    ) -> Result<()>;
    /// `x += y`, elementwise.
    fn add(&self, x: &mut Self::Buf, y: &Self::Buf) -> Result<()>;
    /// `h = act(g) * u`, elementwise, rows of `cols`.
    fn gated(
        &self,
        act: Gate,
        g: &Self::Buf,
        u: &Self::Buf,
        cols: usize,
        h: &mut Self::Buf,
    ) -> Result<()>;
    /// The buffer's values, on the host.
    fn to_host(&self, x: Self::Buf) -> Result<Vec<f32>>;
}

/// One layer's queries, keys and values for the tokens of a pass (rows in token order).
pub struct Qkv<'a, B> {
    pub q: &'a B,
    pub k: &'a B,
    pub v: &'a B,
}
