//! The model's weights, provable row by row on chain (`docs/dispute.md` §5.5): every tensor a
//! trace step reads has a slot (fixed by its role, so the executor computes it), every slot a
//! Keccak tree over the tensor's rows (each row its GGUF bytes), and the weights root is the
//! tree over the slots' leaves. One row of one tensor is proven with `log2(rows) + log2(slots)`
//! hashes.
//!
//! Slots: 0 `token_embd`, 1 `output_norm`, 2 the head (`output.weight`, or the embedding when
//! the file has none), 3 `rope_freqs` (or absent); then per layer 16: its matrices in
//! [`LayerMat`] order, then its vectors in [`LayerVec`] order. A slot's leaf is
//! `keccak256(0x00 || u32 ggml_type || u32 rows || u32 cols || row_root)` (big-endian), an absent
//! tensor's with type `0xffffffff`, rows and cols 0 and a zero root.

use std::path::Path;

use crate::arch::{LayerMat, LayerVec, LAYER_MATRICES, LAYER_VECTORS};
use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::model::Config;
use sworn_attest::trace_tree::{bytes_leaf_hash, tensor_leaf as slot_leaf, words_hash, TraceTree};

/// Slots before the layers'.
pub const GLOBAL_SLOTS: usize = 4;
/// Slots per layer.
pub const LAYER_SLOTS: usize = 16;
/// The type code of an absent tensor's slot.
pub const ABSENT: u32 = 0xffff_ffff;
/// The slot of `rope_freqs.weight` (Llama 3's RoPE frequency factors), which a RoPE table's step
/// reads, or proves absent.
pub const ROPE_FREQS_SLOT: usize = 3;

/// The slot of layer `l`'s matrix.
pub fn mat_slot(l: usize, m: LayerMat) -> usize {
    GLOBAL_SLOTS
        + l * LAYER_SLOTS
        + LAYER_MATRICES
            .iter()
            .position(|t| t.role == m)
            .expect("a matrix")
}

/// The slot of layer `l`'s vector.
pub fn vec_slot(l: usize, v: LayerVec) -> usize {
    GLOBAL_SLOTS
        + l * LAYER_SLOTS
        + LAYER_MATRICES.len()
        + LAYER_VECTORS
            .iter()
            .position(|t| t.role == v)
            .expect("a vector")
}

/// One tensor of a slot: its type, shape, bytes and row tree.
pub struct Tensor {
    pub code: u32,
    pub rows: usize,
    pub cols: usize,
    pub row_bytes: usize,
    pub data: Vec<u8>,
    pub tree: TraceTree,
}

impl Tensor {
    /// Row `r`'s bytes.
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.row_bytes..][..self.row_bytes]
    }
}

/// Every slot's tensor and the weights root.
pub struct Weights {
    pub slots: Vec<Option<Tensor>>,
    pub tree: TraceTree,
}

/// The GGUF names of the slots' tensors, in slot order.
fn slot_names<R: std::io::Read + std::io::Seek>(
    f: &GgufFile<R>,
    cfg: &Config,
) -> Result<Vec<String>> {
    let mut names: Vec<String> = vec![
        "token_embd.weight".into(),
        "output_norm.weight".into(),
        "output.weight".into(),
        "rope_freqs.weight".into(),
    ];
    for l in 0..cfg.n_layer {
        names.extend(
            LAYER_MATRICES
                .iter()
                .map(|t| format!("blk.{l}.{}.weight", t.gguf)),
        );
        names.extend(LAYER_VECTORS.iter().map(|t| format!("blk.{l}.{}", t.gguf)));
    }
    if f.describe("output.weight")?.is_none() {
        names[2] = names[0].clone(); // tied: the head is the embedding
    }
    Ok(names)
}

/// A tensor's rows and columns, and its row's bytes.
fn row_shape(desc: &crate::gguf::TensorDesc) -> Result<(usize, usize, usize)> {
    let name = &desc.name;
    let (rows, cols) = match desc.dims[..] {
        [n] => (1, n),
        [r, c] => (r, c),
        _ => {
            return Err(EngineError::Unsupported(format!(
                "tensor {name} has {} dimensions",
                desc.dims.len()
            )))
        }
    };
    let row_bytes = desc
        .kind
        .byte_len(cols)
        .ok_or_else(|| EngineError::Malformed(format!("tensor {name}: row of {cols}")))?;
    Ok((rows, cols, row_bytes))
}

/// The weights root of an opened GGUF, streamed row by row (no tensor is held whole).
pub fn weights_root<R: std::io::Read + std::io::Seek>(
    f: &mut GgufFile<R>,
    cfg: &Config,
) -> Result<[u8; 32]> {
    let mut leaves = Vec::new();
    for name in slot_names(f, cfg)? {
        let Some(desc) = f.describe(&name)? else {
            leaves.push(slot_leaf(ABSENT, 0, 0, [0; 32]));
            continue;
        };
        let (rows, cols, row_bytes) = row_shape(&desc)?;
        let mut rd = f.tensor_reader(&name)?;
        if rd.left() != (rows * row_bytes) as u64 {
            return Err(EngineError::Malformed(format!("tensor {name}: size")));
        }
        let mut buf = vec![0u8; row_bytes];
        let mut hashes = Vec::with_capacity(rows);
        for _ in 0..rows {
            rd.read(&mut buf)?;
            hashes.push(bytes_leaf_hash(&buf));
        }
        let root = TraceTree::from_leaf_hashes(hashes).root();
        leaves.push(slot_leaf(
            desc.kind.ggml_code(),
            rows as u32,
            cols as u32,
            root,
        ));
    }
    Ok(TraceTree::from_leaf_hashes(leaves).root())
}

/// The model's execution commitment (`docs/dispute.md` §5.5): `keccak256` of 13 words, each
/// right-aligned in 32 bytes as Solidity's `abi.encode` lays them out: the architecture's code,
/// layers, `d`, heads, KV heads, head width, feed-forward width, vocabulary, sliding window (0:
/// none), RMSNorm's epsilon, the RoPE base and the local RoPE base (binary32 bits; 0 without a
/// window), then the weights root.
pub fn exec_root(cfg: &Config, weights_root: [u8; 32]) -> [u8; 32] {
    let mut words: Vec<[u8; 32]> = exec_words(cfg)
        .iter()
        .map(|&n| {
            let mut w = [0u8; 32];
            w[28..].copy_from_slice(&n.to_be_bytes());
            w
        })
        .collect();
    words.push(weights_root);
    words_hash(&words)
}

/// The execution commitment's 12 numbers before the weights root (see [`exec_root`]).
pub fn exec_words(cfg: &Config) -> [u32; 12] {
    let (window, local) = cfg
        .sliding_window
        .map_or((0, 0), |(w, b)| (w as u32, b.to_bits()));
    [
        super::layout::arch_code(cfg.arch),
        cfg.n_layer as u32,
        cfg.d_model as u32,
        cfg.n_head as u32,
        cfg.n_kv_head as u32,
        cfg.head_dim as u32,
        cfg.d_ff as u32,
        cfg.vocab as u32,
        window,
        cfg.rms_eps.to_bits(),
        cfg.rope_base.to_bits(),
        local,
    ]
}

impl Weights {
    /// Reads every slot's tensor from the GGUF file at `path` (the model `cfg` describes).
    pub fn load(path: &Path, cfg: &Config) -> Result<Weights> {
        let mut f = GgufFile::open(path)?;
        let mut slots = Vec::new();
        for name in slot_names(&f, cfg)? {
            let Some(desc) = f.describe(&name)? else {
                slots.push(None);
                continue;
            };
            let (rows, cols, row_bytes) = row_shape(&desc)?;
            let data = f.read_bytes(&desc)?;
            if data.len() != rows * row_bytes {
                return Err(EngineError::Malformed(format!("tensor {name}: size")));
            }
            let tree = TraceTree::from_leaf_hashes(
                data.chunks_exact(row_bytes).map(bytes_leaf_hash).collect(),
            );
            slots.push(Some(Tensor {
                code: desc.kind.ggml_code(),
                rows,
                cols,
                row_bytes,
                data,
                tree,
            }));
        }
        let leaves = slots
            .iter()
            .map(|s| match s {
                Some(t) => slot_leaf(t.code, t.rows as u32, t.cols as u32, t.tree.root()),
                None => slot_leaf(ABSENT, 0, 0, [0; 32]),
            })
            .collect();
        Ok(Weights {
            slots,
            tree: TraceTree::from_leaf_hashes(leaves),
        })
    }

    /// The weights root.
    pub fn root(&self) -> [u8; 32] {
        self.tree.root()
    }

    /// The tensor in `slot`, or `None` for an absent one (an error past the last slot).
    pub fn slot(&self, slot: usize) -> Result<Option<&Tensor>> {
        self.slots
            .get(slot)
            .map(|s| s.as_ref())
            .ok_or_else(|| EngineError::Trace(format!("no weight slot {slot}")))
    }

    /// The tensor in `slot`.
    pub fn tensor(&self, slot: usize) -> Result<&Tensor> {
        self.slots
            .get(slot)
            .and_then(|s| s.as_ref())
            .ok_or_else(|| EngineError::Trace(format!("weight slot {slot} is empty")))
    }
}
