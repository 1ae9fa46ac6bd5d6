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

/// A slot's leaf preimage: its tensor's ggml type, shape and row root ([`ABSENT`], zeros and a
/// zero root for an absent tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub code: u32,
    pub rows: u32,
    pub cols: u32,
    pub root: [u8; 32],
}

impl Slot {
    const ABSENT: Slot = Slot {
        code: ABSENT,
        rows: 0,
        cols: 0,
        root: [0; 32],
    };

    /// The slot's leaf in the weights tree.
    pub fn leaf(&self) -> [u8; 32] {
        slot_leaf(self.code, self.rows, self.cols, self.root)
    }

    /// Whether the tensor is float (F32, F16 or BF16: ggml types 0, 1 and 30), whose products
    /// are §1.3's eight-lane dot products.
    pub fn is_float(&self) -> bool {
        matches!(self.code, 0 | 1 | 30)
    }
}

/// The weights root over the slots' leaves.
pub fn slots_root(slots: &[Slot]) -> [u8; 32] {
    TraceTree::from_leaf_hashes(slots.iter().map(Slot::leaf).collect()).root()
}

/// The slots as `SwornExecutor.bind` reads them: 44 bytes each, `u32 code, u32 rows, u32 cols`
/// (big-endian) and the row root: each a leaf's preimage after its `0x00`.
pub fn pack_slots(slots: &[Slot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots.len() * 44);
    for s in slots {
        for n in [s.code, s.rows, s.cols] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&s.root);
    }
    out
}

/// The float matrices of a model with these slots (`layout::float_mats`).
pub fn slots_float_mats(slots: &[Slot], n_layer: usize) -> Result<u8> {
    let float = |slot: usize| slots.get(slot).is_some_and(Slot::is_float);
    super::layout::float_mats(n_layer, |at| match at {
        None => float(2),
        Some((l, role)) => float(mat_slot(l, role)),
    })
}

/// The leaf preimages of loaded slots.
fn preimages(slots: &[Option<Tensor>]) -> Vec<Slot> {
    slots
        .iter()
        .map(|s| match s {
            Some(t) => Slot {
                code: t.code,
                rows: t.rows as u32,
                cols: t.cols as u32,
                root: t.tree.root(),
            },
            None => Slot::ABSENT,
        })
        .collect()
}

/// The slots of an opened GGUF, streamed row by row (no tensor is held whole).
pub fn slot_preimages<R: std::io::Read + std::io::Seek>(
    f: &mut GgufFile<R>,
    cfg: &Config,
) -> Result<Vec<Slot>> {
    let mut slots = Vec::new();
    for name in slot_names(f, cfg)? {
        let Some(desc) = f.describe(&name)? else {
            slots.push(Slot::ABSENT);
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
        slots.push(Slot {
            code: desc.kind.ggml_code(),
            rows: rows as u32,
            cols: cols as u32,
            root: TraceTree::from_leaf_hashes(hashes).root(),
        });
    }
    Ok(slots)
}

/// The weights root of an opened GGUF, streamed row by row (no tensor is held whole).
pub fn weights_root<R: std::io::Read + std::io::Seek>(
    f: &mut GgufFile<R>,
    cfg: &Config,
) -> Result<[u8; 32]> {
    Ok(slots_root(&slot_preimages(f, cfg)?))
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
        let leaves = preimages(&slots).iter().map(Slot::leaf).collect();
        Ok(Weights {
            slots,
            tree: TraceTree::from_leaf_hashes(leaves),
        })
    }

    /// The slots' leaf preimages.
    pub fn preimages(&self) -> Vec<Slot> {
        preimages(&self.slots)
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
