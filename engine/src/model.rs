//! A loaded model: hyperparameters ([`Config`]), weights in the engine's layout, and sequences
//! (the forward pass over a batch of sequences at arbitrary positions is [`crate::forward`]).
//! What differs between architectures, and which tensors each has, is [`crate::arch`]: the
//! loader reads its tables.

use std::path::Path;

use crate::canon::quant::QK;
use crate::canon::rope::RopeTable;
use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;

use crate::qmatrix::{GgufKind, QMatrix};

pub use crate::arch::Arch;
use crate::arch::{Dim, LayerMat, LayerVec, LAYER_MATRICES, LAYER_VECTORS};

/// Gemma 3's local-attention RoPE base (llama.cpp's and transformers' fixed value; the GGUF
/// carries only the global one).
pub const GEMMA3_LOCAL_ROPE_BASE: f32 = 10_000.0;
/// Gemma 3 uses sliding-window attention on layers `i` with `i % 6 < 5`.
pub const GEMMA3_SWA_PATTERN: usize = 6;

/// Hyperparameters of a model, from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub d_ff: usize,
    pub vocab: usize,
    /// Training context length from the file.
    pub context_length: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
    /// Sliding-window attention (Gemma 3): the window in keys, and the base of the RoPE of
    /// those layers. `None` for full attention everywhere.
    pub sliding_window: Option<(usize, f32)>,
}

/// Longest context the engine will build tables for, whatever a file claims.
pub const MAX_CONTEXT: usize = 1 << 16;

impl Config {
    pub(crate) fn from_gguf<R: std::io::Read + std::io::Seek>(f: &GgufFile<R>) -> Result<Config> {
        let name = f.meta_str("general.architecture")?.unwrap_or("");
        let Some(arch) = Arch::from_name(name) else {
            let known: Vec<&str> = Arch::all().map(|a| a.name()).collect();
            return Err(EngineError::Unsupported(format!(
                "architecture {name:?} (sworn runs {})",
                known.join(", ")
            )));
        };
        let p = arch.name();
        let need = |k: &str| -> Result<usize> {
            f.meta_usize(&format!("{p}.{k}"))?
                .ok_or_else(|| EngineError::Malformed(format!("missing {p}.{k}")))
        };
        let d_model = need("embedding_length")?;
        let n_head = need("attention.head_count")?;
        let n_kv_head = f
            .meta_usize(&format!("{p}.attention.head_count_kv"))?
            .unwrap_or(n_head);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 {
            return Err(EngineError::Malformed(format!(
                "inconsistent heads: heads {n_head}, kv heads {n_kv_head}"
            )));
        }
        let head_dim = match f.meta_usize(&format!("{p}.attention.key_length"))? {
            Some(k) => {
                let v = f.meta_usize(&format!("{p}.attention.value_length"))?;
                if v.is_some_and(|v| v != k) {
                    return Err(EngineError::Unsupported(format!(
                        "key length {k} differs from value length {v:?}"
                    )));
                }
                k
            }
            None if d_model % n_head == 0 => d_model / n_head,
            None => {
                return Err(EngineError::Malformed(format!(
                    "d_model {d_model} is not a multiple of {n_head} heads"
                )))
            }
        };
        let sliding_window = if arch.spec().sliding_window {
            Some((need("attention.sliding_window")?, GEMMA3_LOCAL_ROPE_BASE))
        } else {
            None
        };
        if let Some(rd) = f.meta_usize(&format!("{p}.rope.dimension_count"))? {
            if rd != head_dim {
                return Err(EngineError::Unsupported(format!(
                    "partial rotary embeddings (rope dims {rd}, head dim {head_dim})"
                )));
            }
        }
        let vocab = match f.meta_usize(&format!("{p}.vocab_size"))? {
            Some(v) => v,
            None => f
                .describe("token_embd.weight")?
                .map(|d| d.dims[0])
                .unwrap_or(0),
        };
        let cfg = Config {
            arch,
            sliding_window,
            n_layer: need("block_count")?,
            d_model,
            n_head,
            n_kv_head,
            head_dim,
            d_ff: need("feed_forward_length")?,
            vocab,
            context_length: need("context_length")?,
            rope_base: f
                .meta_f32(&format!("{p}.rope.freq_base"))?
                .unwrap_or(10000.0),
            rms_eps: f
                .meta_f32(&format!("{p}.attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let bad = |w: String| Err(EngineError::Unsupported(w));
        if !self.d_model.is_multiple_of(QK)
            || !self.d_ff.is_multiple_of(QK)
            || !(self.n_head * self.head_dim).is_multiple_of(QK)
        {
            return bad(format!("dimensions must be multiples of {QK}: {self:?}"));
        }
        if !self.head_dim.is_multiple_of(8) || self.head_dim > 256 || self.head_dim == 0 {
            return bad(format!(
                "head dimension {} (need a multiple of 8, at most 256)",
                self.head_dim
            ));
        }
        if self.n_layer == 0
            || self.n_layer > 1024
            || self.vocab == 0
            || self.d_ff == 0
            || self.context_length == 0
        {
            return bad(format!("implausible hyperparameters {self:?}"));
        }
        if !(self.rope_base.is_finite() && self.rope_base > 1.0) {
            return bad(format!("rope base {}", self.rope_base));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps >= 0.0) {
            return bad(format!("rms epsilon {}", self.rms_eps));
        }
        if self.sliding_window.is_some_and(|(w, _)| w == 0) {
            return bad("a sliding window of 0 keys".into());
        }
        Ok(())
    }

    /// Whether layer `li` attends through the sliding window (Gemma 3: five layers of six).
    pub fn is_sliding(&self, li: usize) -> bool {
        self.sliding_window.is_some() && li % GEMMA3_SWA_PATTERN < GEMMA3_SWA_PATTERN - 1
    }

    /// The first key position a query at `pos` attends to, in a sliding-window layer or not:
    /// the window holds the query's own position and the `w - 1` before it.
    pub fn first_key(&self, sliding: bool, pos: usize) -> usize {
        match self.sliding_window {
            Some((w, _)) if sliding => (pos + 1).saturating_sub(w),
            _ => 0,
        }
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The length a [`Dim`] of the tensor tables stands for in this model.
    pub fn dim(&self, d: Dim) -> usize {
        match d {
            Dim::Model => self.d_model,
            Dim::Q => self.q_dim(),
            Dim::Kv => self.kv_dim(),
            Dim::Ff => self.d_ff,
            Dim::Head => self.head_dim,
        }
    }
}

/// One transformer block's weights, by role ([`crate::arch`]'s tables).
pub struct Layer {
    /// In [`LayerMat`] order.
    pub mats: Vec<QMatrix>,
    /// In [`LayerVec`] order; `None` where the architecture has no such vector.
    pub vecs: Vec<Option<Vec<f32>>>,
}

impl Layer {
    pub fn mat(&self, role: LayerMat) -> &QMatrix {
        &self.mats[role as usize]
    }

    /// The vector `role`, if this architecture has it.
    pub fn vec(&self, role: LayerVec) -> Option<&[f32]> {
        self.vecs[role as usize].as_deref()
    }
}

/// A loaded model: configuration, weights in the engine's layout, and the RoPE table.
pub struct Model {
    pub cfg: Config,
    pub tok_embd: QMatrix,
    pub layers: Vec<Layer>,
    pub out_norm: Vec<f32>,
    /// The output projection, or `None` when tied to `tok_embd`.
    pub output: Option<QMatrix>,
    pub rope: RopeTable,
    /// The RoPE table of sliding-window layers (Gemma 3), with its own base.
    pub rope_local: Option<RopeTable>,
    /// Positions the RoPE table covers: the longest sequence this model instance accepts.
    pub max_context: usize,
    /// Whether the weight matrices are in host memory (see [`Model::release_host_weights`]).
    host_weights: bool,
}

/// A sequence's state: the tokens it has seen and their keys and values, layer by layer.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    pub tokens: Vec<u32>,
    /// Per layer, `len * kv_dim` keys (after RoPE), on the CPU backend.
    pub(crate) k: Vec<Vec<f32>>,
    /// Per layer, `len * kv_dim` values, on the CPU backend.
    pub(crate) v: Vec<Vec<f32>>,
    /// The keys and values when another backend keeps them (GPU memory).
    pub(crate) dev: Option<crate::devmem::DeviceCache>,
}

impl Sequence {
    pub fn new(n_layer: usize) -> Sequence {
        Sequence {
            tokens: Vec::new(),
            k: vec![Vec::new(); n_layer],
            v: vec![Vec::new(); n_layer],
            dev: None,
        }
    }
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    /// Forgets everything after the first `n` tokens.
    pub fn truncate(&mut self, n: usize, kv_dim: usize) {
        self.tokens.truncate(n);
        for l in self.k.iter_mut().chain(self.v.iter_mut()) {
            l.truncate(n * kv_dim);
        }
        if let Some(d) = &mut self.dev {
            d.truncate(n);
        }
    }
}

/// New tokens for one sequence in a batched forward pass.
pub struct Feed<'a> {
    pub seq: &'a mut Sequence,
    pub tokens: &'a [u32],
}

impl Model {
    /// Loads a Llama-architecture GGUF file. `max_context` caps the positions served (and the
    /// RoPE table's size); `None` takes the file's context length, up to [`MAX_CONTEXT`].
    pub fn load(path: &Path, max_context: Option<usize>) -> Result<Model> {
        let mut f = GgufFile::open(path)?;
        Model::from_gguf(&mut f, max_context)
    }

    /// Loads from an already-opened GGUF.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        f: &mut GgufFile<R>,
        max_context: Option<usize>,
    ) -> Result<Model> {
        let cfg = Config::from_gguf(f)?;
        let d = cfg.d_model;
        let tok_embd = matrix(f, "token_embd.weight", cfg.vocab, d)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        let spec = cfg.arch.spec();
        for i in 0..cfg.n_layer {
            let mut vecs = Vec::with_capacity(LAYER_VECTORS.len());
            for t in &LAYER_VECTORS {
                vecs.push(if (t.has)(spec) {
                    Some(vector(f, &format!("blk.{i}.{}", t.gguf), cfg.dim(t.len))?)
                } else {
                    None
                });
            }
            let mut mats = Vec::with_capacity(LAYER_MATRICES.len());
            for t in &LAYER_MATRICES {
                let name = format!("blk.{i}.{}.weight", t.gguf);
                mats.push(matrix(f, &name, cfg.dim(t.rows), cfg.dim(t.cols))?);
            }
            layers.push(Layer { mats, vecs });
        }
        let out_norm = vector(f, "output_norm.weight", d)?;
        let output = match f.describe("output.weight")? {
            Some(_) => Some(matrix(f, "output.weight", cfg.vocab, d)?),
            None => None,
        };
        let max_context = max_context
            .unwrap_or(cfg.context_length)
            .clamp(1, MAX_CONTEXT);
        // Llama 3.1+: per-pair RoPE frequency factors, when the file has them.
        let factors = match f.describe("rope_freqs.weight")? {
            Some(_) => {
                let k = vector(f, "rope_freqs.weight", cfg.head_dim / 2)?;
                if k.iter().any(|&x| x <= 0.0) {
                    return Err(EngineError::Malformed(
                        "rope_freqs.weight has a factor that is not positive".into(),
                    ));
                }
                Some(k)
            }
            None => None,
        };
        let rope =
            RopeTable::with_factors(cfg.head_dim, cfg.rope_base, factors.as_deref(), max_context);
        let rope_local = cfg
            .sliding_window
            .map(|(_, base)| RopeTable::new(cfg.head_dim, base, max_context));
        Ok(Model {
            cfg,
            tok_embd,
            layers,
            out_norm,
            output,
            rope,
            rope_local,
            max_context,
            host_weights: true,
        })
    }

    /// Frees the host copy of every weight matrix, once a device has uploaded them (from the
    /// file): while a GPU serves, the host keeps only the configuration, the norm vectors and
    /// the RoPE tables. The CPU kernels refuse to run the model afterwards.
    pub(crate) fn release_host_weights(&mut self) {
        let mats = std::iter::once(&mut self.tok_embd)
            .chain(self.output.as_mut())
            .chain(self.layers.iter_mut().flat_map(|l| l.mats.iter_mut()));
        for m in mats {
            m.release();
        }
        self.host_weights = false;
    }

    /// Whether the CPU kernels can run this model (its weights are in host memory).
    pub fn has_host_weights(&self) -> bool {
        self.host_weights
    }

    pub fn new_sequence(&self) -> Sequence {
        Sequence::new(self.cfg.n_layer)
    }

    /// The output projection (the tied embedding when the file has no `output.weight`).
    pub fn lm_head(&self) -> &QMatrix {
        self.output.as_ref().unwrap_or(&self.tok_embd)
    }

    /// The RoPE table of layer `li` (Gemma 3's sliding-window layers have their own).
    pub fn rope_of(&self, li: usize) -> &RopeTable {
        match &self.rope_local {
            Some(local) if self.cfg.is_sliding(li) => local,
            _ => &self.rope,
        }
    }
}

/// Loads a weight matrix, checking its type and shape.
fn matrix<R: std::io::Read + std::io::Seek>(
    f: &mut GgufFile<R>,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<QMatrix> {
    let desc = f
        .describe(name)?
        .ok_or_else(|| EngineError::Malformed(format!("missing tensor {name}")))?;
    if desc.dims != [rows, cols] {
        return Err(EngineError::Malformed(format!(
            "tensor {name} has shape {:?}, expected [{rows}, {cols}]",
            desc.dims
        )));
    }
    // Row by row, so that the file's bytes of a large tensor are never held beside its layout.
    let mut rd = f.tensor_reader(&desc.name)?;
    let need = rows.checked_mul(cols).and_then(|n| desc.kind.byte_len(n));
    if need.map(|n| n as u64) != Some(rd.left()) {
        return Err(EngineError::Malformed(format!(
            "tensor {name}: {} bytes for a {rows}x{cols} {:?} matrix",
            rd.left(),
            desc.kind
        )));
    }
    QMatrix::from_gguf_rows(desc.kind, rows, cols, |_, buf| rd.read(buf))
        .map_err(|e| EngineError::Malformed(format!("tensor {name}: {e}")))
}

/// Loads a norm weight vector (F32 or F16).
fn vector<R: std::io::Read + std::io::Seek>(
    f: &mut GgufFile<R>,
    name: &str,
    n: usize,
) -> Result<Vec<f32>> {
    let desc = f
        .describe(name)?
        .ok_or_else(|| EngineError::Malformed(format!("missing tensor {name}")))?;
    if desc.dims != [n] {
        return Err(EngineError::Malformed(format!(
            "tensor {name} has shape {:?}, expected [{n}]",
            desc.dims
        )));
    }
    if !matches!(desc.kind, GgufKind::F32 | GgufKind::F16) {
        return Err(EngineError::Unsupported(format!(
            "norm {name} of type {:?}",
            desc.kind
        )));
    }
    let raw = f.read_bytes(&desc)?;
    let m = QMatrix::from_gguf(desc.kind, 1, n, &raw)?;
    let v = m.f32s;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(EngineError::Malformed(format!(
            "tensor {name} has non-finite values"
        )));
    }
    Ok(v)
}
