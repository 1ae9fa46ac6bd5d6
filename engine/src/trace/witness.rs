//! The witness of one step (`docs/dispute.md` §6.4): what a player hands the on-chain executor
//! to compute one word of a trace, every input proven. The leaves holding the words the step
//! reads ([`super::inputs::reads`]) with their proofs in the player's trace tree, the weight
//! rows it reads with their proofs in the tensor's row tree and in the weights tree, and
//! whether it reads the teacher-forced tokens.

use super::inputs::reads;
use super::layout::LEAF;
use super::record::Trace;
use super::weights::{Weights, ABSENT, ROPE_FREQS_SLOT};
use crate::error::Result;
use sworn_attest::trace_tree::TraceTree;

/// A leaf of the trace and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenLeaf {
    pub index: u64,
    pub words: [u32; LEAF],
    pub proof: Vec<[u8; 32]>,
}

/// Row `row` of the tensor in weight slot `slot` (type `code`, `rows` x `cols`) and its two
/// proofs: in the tensor's row tree, and the tensor's leaf in the weights tree. An absent
/// tensor (only `rope_freqs` is read so) has type [`ABSENT`], no shape, no data and no row
/// proof: its slot proof proves the absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenRow {
    pub slot: usize,
    pub code: u32,
    pub rows: usize,
    pub cols: usize,
    pub row: usize,
    pub data: Vec<u8>,
    pub row_proof: Vec<[u8; 32]>,
    pub slot_proof: Vec<[u8; 32]>,
}

/// Everything the step computing one word reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    pub leaves: Vec<ProvenLeaf>,
    pub rows: Vec<ProvenRow>,
    pub tokens: bool,
}

/// The witness of word `element` of `trace`, whose tree is `tree`; `tokens` is the
/// teacher-forced sequence.
pub fn witness(
    trace: &Trace,
    tree: &TraceTree,
    weights: &Weights,
    tokens: &[u32],
    element: u64,
) -> Result<Witness> {
    let r = reads(&trace.layout, element, tokens, &trace.words)?;
    let mut indices: Vec<u64> = r.words.iter().map(|w| w / LEAF as u64).collect();
    indices.dedup(); // `reads` sorts its words
    let leaves = indices
        .into_iter()
        .map(|index| ProvenLeaf {
            index,
            words: trace.leaf(index).try_into().expect("a leaf is LEAF words"),
            proof: tree.proof(index),
        })
        .collect();
    let mut rows = Vec::with_capacity(r.weights.len());
    for &(slot, row) in &r.weights {
        if slot == ROPE_FREQS_SLOT && weights.slot(slot)?.is_none() {
            // The RoPE table's step proves the factors absent by the slot's leaf.
            rows.push(ProvenRow {
                slot,
                code: ABSENT,
                rows: 0,
                cols: 0,
                row: 0,
                data: Vec::new(),
                row_proof: Vec::new(),
                slot_proof: weights.tree.proof(slot as u64),
            });
            continue;
        }
        let t = weights.tensor(slot)?;
        rows.push(ProvenRow {
            slot,
            code: t.code,
            rows: t.rows,
            cols: t.cols,
            row,
            data: t.row(row).to_vec(),
            row_proof: t.tree.proof(row as u64),
            slot_proof: weights.tree.proof(slot as u64),
        });
    }
    Ok(Witness {
        leaves,
        rows,
        tokens: r.tokens,
    })
}
