//! The architectures sworn runs, as descriptions rather than code: what each one's forward pass
//! does beyond the shared Llama block (the switches of [`ArchSpec`], one row of [`ARCHS`] per
//! architecture), and which tensors a layer carries (one table, [`LAYER_MATRICES`] and
//! [`LAYER_VECTORS`], from a tensor's role to its GGUF name and shape).
//!
//! Loading (`model.rs`), the CUDA upload and the synthetic model writer read the tables; the
//! forward pass (`forward.rs`) reads the switches. So an architecture that differs from these
//! only in which tensors and norms it has is one row here: the test-only `llama-postnorm`
//! below (Llama with Gemma's norm after attention) touches this file alone.
//!
//! Qwen (spec §3.10) adds Q/K/V biases (2) or q/k head norms (3) and NeoX RoPE; Gemma 3 (spec
//! §3.9): embeddings scaled by `sqrt(d_model)`, RMSNorm of each query and key head, norms after
//! attention and after the feed-forward as well as before, GeGLU instead of SwiGLU, NeoX-paired
//! RoPE with another base on sliding-window layers, and sliding-window attention on five layers
//! of six.

/// The architectures sworn runs (`general.architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 1-3 and SmolLM.
    Llama,
    /// Qwen 2 / 2.5: biases on the Q, K and V projections, NeoX RoPE.
    Qwen2,
    /// Qwen 3: RMSNorm of each query and key head, NeoX RoPE.
    Qwen3,
    /// Gemma 3 (spec §3.9).
    Gemma3,
    /// Llama with an RMSNorm of the attention output before the residual: no real model, the
    /// proof that a new architecture of this kind is a row of [`ARCHS`] (engine tests only).
    #[cfg(test)]
    LlamaPostNorm,
}

/// The gated activation of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `silu(g) * u` (spec §3.6).
    Silu,
    /// `gelu(g) * u` (spec §3.9).
    Gelu,
}

/// What an architecture's forward pass does beyond the shared Llama block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchSpec {
    pub arch: Arch,
    /// `general.architecture`, and the prefix of its metadata keys.
    pub name: &'static str,
    /// Embeddings times `sqrt(d_model)` (spec §3.9).
    pub embed_scale: bool,
    /// Biases added to the Q, K and V projections (spec §3.10).
    pub qkv_bias: bool,
    /// RMSNorm of each query and key head before RoPE.
    pub qk_norm: bool,
    /// RoPE rotates `(x_i, x_{i+hd/2})` ("NeoX") rather than adjacent pairs.
    pub neox_rope: bool,
    /// RMSNorm of the attention output before it joins the residual.
    pub post_attn_norm: bool,
    /// RMSNorm of the feed-forward output before it joins the residual.
    pub post_ffn_norm: bool,
    pub gate: Gate,
    /// Sliding-window attention on five layers of six (`attention.sliding_window` keys), with
    /// their own RoPE base.
    pub sliding_window: bool,
}

const LLAMA: ArchSpec = ArchSpec {
    arch: Arch::Llama,
    name: "llama",
    embed_scale: false,
    qkv_bias: false,
    qk_norm: false,
    neox_rope: false,
    post_attn_norm: false,
    post_ffn_norm: false,
    gate: Gate::Silu,
    sliding_window: false,
};

/// Every architecture, one row each.
pub const ARCHS: &[ArchSpec] = &[
    LLAMA,
    ArchSpec {
        arch: Arch::Qwen2,
        name: "qwen2",
        qkv_bias: true,
        neox_rope: true,
        ..LLAMA
    },
    ArchSpec {
        arch: Arch::Qwen3,
        name: "qwen3",
        qk_norm: true,
        neox_rope: true,
        ..LLAMA
    },
    ArchSpec {
        arch: Arch::Gemma3,
        name: "gemma3",
        embed_scale: true,
        qk_norm: true,
        neox_rope: true,
        post_attn_norm: true,
        post_ffn_norm: true,
        gate: Gate::Gelu,
        sliding_window: true,
        ..LLAMA
    },
    #[cfg(test)]
    ArchSpec {
        arch: Arch::LlamaPostNorm,
        name: "llama-postnorm",
        post_attn_norm: true,
        ..LLAMA
    },
];

impl Arch {
    /// This architecture's row of [`ARCHS`].
    pub fn spec(self) -> &'static ArchSpec {
        ARCHS
            .iter()
            .find(|s| s.arch == self)
            .expect("every architecture has a row in ARCHS")
    }

    /// The architecture a GGUF file's `general.architecture` names.
    pub fn from_name(name: &str) -> Option<Arch> {
        ARCHS.iter().find(|s| s.name == name).map(|s| s.arch)
    }

    /// Every architecture, in table order.
    pub fn all() -> impl Iterator<Item = Arch> {
        ARCHS.iter().map(|s| s.arch)
    }

    /// The GGUF metadata prefix.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// RoPE rotates `(x_i, x_{i+hd/2})` ("NeoX") rather than adjacent pairs.
    pub fn neox_rope(self) -> bool {
        self.spec().neox_rope
    }

    /// Each query and key head is RMS-normed before RoPE.
    pub fn qk_norm(self) -> bool {
        self.spec().qk_norm
    }
}

/// A tensor dimension, in terms of the model's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// `d_model`.
    Model,
    /// The queries' width, `n_head * head_dim`.
    Q,
    /// The keys' (and values') width, `n_kv_head * head_dim`.
    Kv,
    /// `d_ff`.
    Ff,
    /// `head_dim`.
    Head,
}

/// A layer's weight matrices, by role (the order of [`LAYER_MATRICES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMat {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

/// A layer's vectors (norm weights, biases), by role (the order of [`LAYER_VECTORS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerVec {
    AttnNorm,
    FfnNorm,
    QNorm,
    KNorm,
    PostAttnNorm,
    PostFfnNorm,
    QBias,
    KBias,
    VBias,
}

/// A layer matrix: its GGUF name is `blk.N.{gguf}.weight`, its shape `rows x cols`.
#[derive(Debug, Clone, Copy)]
pub struct MatTensor {
    pub role: LayerMat,
    pub gguf: &'static str,
    pub rows: Dim,
    pub cols: Dim,
}

/// A layer vector: its GGUF name is `blk.N.{gguf}`, its length `len`; the architectures whose
/// switch `has` is on carry it (then it is required).
#[derive(Debug, Clone, Copy)]
pub struct VecTensor {
    pub role: LayerVec,
    pub gguf: &'static str,
    pub len: Dim,
    pub has: fn(&ArchSpec) -> bool,
    /// A norm's weights (around 1) or a bias (around 0): what a synthetic model writes.
    pub is_norm: bool,
}

/// Every layer's matrices, in [`LayerMat`] order.
pub const LAYER_MATRICES: [MatTensor; 7] = [
    mat(LayerMat::Q, "attn_q", Dim::Q, Dim::Model),
    mat(LayerMat::K, "attn_k", Dim::Kv, Dim::Model),
    mat(LayerMat::V, "attn_v", Dim::Kv, Dim::Model),
    mat(LayerMat::O, "attn_output", Dim::Model, Dim::Q),
    mat(LayerMat::Gate, "ffn_gate", Dim::Ff, Dim::Model),
    mat(LayerMat::Up, "ffn_up", Dim::Ff, Dim::Model),
    mat(LayerMat::Down, "ffn_down", Dim::Model, Dim::Ff),
];

const fn mat(role: LayerMat, gguf: &'static str, rows: Dim, cols: Dim) -> MatTensor {
    MatTensor {
        role,
        gguf,
        rows,
        cols,
    }
}

/// Every layer's vectors, in [`LayerVec`] order.
pub const LAYER_VECTORS: [VecTensor; 9] = [
    norm(LayerVec::AttnNorm, "attn_norm.weight", Dim::Model, |_| true),
    norm(LayerVec::FfnNorm, "ffn_norm.weight", Dim::Model, |_| true),
    norm(LayerVec::QNorm, "attn_q_norm.weight", Dim::Head, |a| {
        a.qk_norm
    }),
    norm(LayerVec::KNorm, "attn_k_norm.weight", Dim::Head, |a| {
        a.qk_norm
    }),
    norm(
        LayerVec::PostAttnNorm,
        "post_attention_norm.weight",
        Dim::Model,
        |a| a.post_attn_norm,
    ),
    norm(
        LayerVec::PostFfnNorm,
        "post_ffw_norm.weight",
        Dim::Model,
        |a| a.post_ffn_norm,
    ),
    bias(LayerVec::QBias, "attn_q.bias", Dim::Q),
    bias(LayerVec::KBias, "attn_k.bias", Dim::Kv),
    bias(LayerVec::VBias, "attn_v.bias", Dim::Kv),
];

const fn norm(
    role: LayerVec,
    gguf: &'static str,
    len: Dim,
    has: fn(&ArchSpec) -> bool,
) -> VecTensor {
    VecTensor {
        role,
        gguf,
        len,
        has,
        is_norm: true,
    }
}

const fn bias(role: LayerVec, gguf: &'static str, len: Dim) -> VecTensor {
    VecTensor {
        role,
        gguf,
        len,
        has: |a| a.qkv_bias,
        is_norm: false,
    }
}

impl LayerMat {
    /// This role's row of [`LAYER_MATRICES`].
    pub fn tensor(self) -> &'static MatTensor {
        &LAYER_MATRICES[self as usize]
    }
}

impl LayerVec {
    /// This role's row of [`LAYER_VECTORS`].
    pub fn tensor(self) -> &'static VecTensor {
        &LAYER_VECTORS[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_in_role_order_and_names_are_unique() {
        for (i, t) in LAYER_MATRICES.iter().enumerate() {
            assert_eq!(t.role as usize, i);
        }
        for (i, t) in LAYER_VECTORS.iter().enumerate() {
            assert_eq!(t.role as usize, i);
        }
        let mut names: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ARCHS.len());
        for a in Arch::all() {
            assert_eq!(Arch::from_name(a.name()), Some(a));
        }
    }

    /// The fifth architecture, `llama-postnorm` (Llama with an RMSNorm of the attention output),
    /// is one row of [`ARCHS`]: the synthetic writer, the loader and the forward pass handle it
    /// from the tables and switches, with no other change. It loads with its norms, applies
    /// them (other norm weights give other hidden states), and is bit-exact across kernels,
    /// threads and batch chunking like every architecture.
    #[test]
    fn a_fifth_architecture_is_a_row_of_the_table() {
        use crate::kernels::{Isa, Runner};
        use crate::model::{Feed, Model};
        use crate::synthetic::{write_model, SyntheticSpec};

        let p = std::env::temp_dir().join(format!("sworn-postnorm-{}.gguf", std::process::id()));
        let spec = SyntheticSpec {
            arch: Arch::LlamaPostNorm,
            seed: 55,
            ..Default::default()
        };
        write_model(&p, &spec).unwrap();
        let (model, scaled) = (Model::load(&p, Some(64)), Model::load(&p, Some(64)));
        let _ = std::fs::remove_file(&p);
        let (model, mut scaled) = (model.unwrap(), scaled.unwrap());
        assert_eq!(model.cfg.arch, Arch::LlamaPostNorm);
        for l in &model.layers {
            assert!(l.vec(LayerVec::PostAttnNorm).is_some());
            assert!(l.vec(LayerVec::PostFfnNorm).is_none() && l.vec(LayerVec::QNorm).is_none());
        }
        let tokens: Vec<u32> = (0..24).map(|i| (i * 37 + 5) % 260).collect();
        let run = |m: &Model, isa: Isa, threads: usize, chunk: usize| -> Vec<u32> {
            let rt = Runner::new(isa, threads).unwrap();
            let mut seq = m.new_sequence();
            let mut out = Vec::new();
            for c in tokens.chunks(chunk) {
                let h = m
                    .forward(
                        &rt,
                        &mut [Feed {
                            seq: &mut seq,
                            tokens: c,
                        }],
                    )
                    .unwrap();
                out.extend(h.iter().map(|v| v.to_bits()));
            }
            out
        };
        let reference = run(&model, Isa::Scalar, 1, tokens.len());
        for isa in Isa::ALL.into_iter().filter(|i| i.is_supported()) {
            for (threads, chunk) in [(1, 1), (2, 7), (3, 24)] {
                assert_eq!(
                    run(&model, isa, threads, chunk),
                    reference,
                    "{} x{threads}, chunks of {chunk}",
                    isa.name()
                );
            }
        }
        // Other post-attention norm weights, other hidden states: the norm is applied.
        for l in &mut scaled.layers {
            let w = l.vecs[LayerVec::PostAttnNorm as usize].as_mut().unwrap();
            w.iter_mut().for_each(|x| *x *= 2.0);
        }
        assert_ne!(run(&scaled, Isa::Scalar, 1, tokens.len()), reference);
    }
}
