//! How a dispute binds a transcript to its trace (`docs/dispute.md` §6.1), computed as the
//! on-chain `SwornExecutor.bind` computes it: the trace's layout, the execution context the
//! executor checks every step against, the leaf count, and the word holding the disputed output
//! token.

use super::layout::arch_code;
use super::layout::{Layout, Shape};
use super::weights::{slots_float_mats, slots_root, Slot};
use crate::error::{EngineError, Result};
use crate::model::Config;
use crate::sampling::SamplingParams;
use sworn_attest::trace_tree::words_hash;

/// A transcript's binding to its trace.
#[derive(Debug, Clone)]
pub struct Binding {
    pub layout: Layout,
    /// The teacher-forced sequence: the prompt, then every output token but the last.
    pub tokens: Vec<u32>,
    pub context: [u8; 32],
    /// The trace's leaves.
    pub leaves: u64,
}

impl Binding {
    /// The word holding output step `step`'s token.
    pub fn element(&self, step: usize) -> u64 {
        self.layout.token_element(step)
    }
}

/// A number as a 32-byte ABI word.
fn word(n: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&n.to_be_bytes());
    w
}

/// `keccak256(abi.encode(uint32[] tokens))`: the offset word, the length, one word a token.
pub fn tokens_hash(tokens: &[u32]) -> [u8; 32] {
    let mut words = vec![word(32), word(tokens.len() as u64)];
    words.extend(tokens.iter().map(|&t| word(u64::from(t))));
    words_hash(&words)
}

/// The shape's 17 words as the executor's `SwornLayout.Shape` holds them: the model's, the
/// sequence's, the sampled steps' (candidates, top-p, min-p; all 0 when greedy), then the
/// float matrices' bits.
pub fn shape_words(s: &Shape) -> [u32; 17] {
    let c = &s.cfg;
    let sm = s.sampled;
    [
        arch_code(c.arch),
        c.n_layer as u32,
        c.d_model as u32,
        c.n_head as u32,
        c.n_kv_head as u32,
        c.head_dim as u32,
        c.d_ff as u32,
        c.vocab as u32,
        c.sliding_window.map_or(0, |(w, _)| w as u32),
        s.positions as u32,
        s.steps as u32,
        u32::from(s.penalty),
        c.rms_eps.to_bits(),
        sm.map_or(0, |m| m.candidates as u32),
        u32::from(sm.is_some_and(|m| m.top_p)),
        u32::from(sm.is_some_and(|m| m.min_p)),
        u32::from(s.float_mats),
    ]
}

/// The local RoPE base's bits (Gemma 3's sliding-window layers), 0 without a window.
pub fn local_base(cfg: &Config) -> u32 {
    cfg.sliding_window.map_or(0, |(_, b)| b.to_bits())
}

/// `keccak256(abi.encode(Context))` of `SwornExecutor.Context`: the shape's words, the weights
/// root, the tokens' hash, the penalty's bits and its window, the RoPE bases' bits (the local
/// one 0 without a sliding window), then the sampling's temperature, top-p and min-p bits and
/// its seed.
pub fn context_hash(
    s: &Shape,
    weights: [u8; 32],
    tokens: [u8; 32],
    sampling: &SamplingParams,
) -> [u8; 32] {
    let mut words: Vec<[u8; 32]> = shape_words(s).iter().map(|&w| word(u64::from(w))).collect();
    words.extend([
        weights,
        tokens,
        word(u64::from(sampling.repeat_penalty.to_bits())),
        word(u64::from(sampling.repeat_last_n)),
        word(u64::from(s.cfg.rope_base.to_bits())),
        word(u64::from(local_base(&s.cfg))),
        word(u64::from(sampling.temperature.to_bits())),
        word(u64::from(sampling.top_p.to_bits())),
        word(u64::from(sampling.min_p.to_bits())),
        word(sampling.seed),
    ]);
    words_hash(&words)
}

/// The binding of a completion of `output` after `prompt` on the model `cfg` describes, whose
/// weight slots are `slots`, sampled with `sampling` (greedy or not; a grammar's transcripts
/// are refused before this, by the players and by the executor's `bind`). Refuses a model whose
/// matrices of one role are float on some layers only (no layout has them).
pub fn bind(
    cfg: &Config,
    slots: &[Slot],
    prompt: &[u32],
    output: &[u32],
    sampling: &SamplingParams,
) -> Result<Binding> {
    if let Err(why) = sampling.validate() {
        return Err(EngineError::InvalidRequest(why));
    }
    if prompt.is_empty() || output.is_empty() {
        return Err(EngineError::InvalidRequest(
            "a dispute needs a prompt and an output token".into(),
        ));
    }
    let mut tokens = prompt.to_vec();
    tokens.extend_from_slice(&output[..output.len() - 1]);
    let layout = Layout::new(Shape::new(
        cfg.clone(),
        tokens.len(),
        output.len(),
        sampling,
        slots_float_mats(slots, cfg.n_layer)?,
    ));
    let weights = slots_root(slots);
    let context = context_hash(&layout.shape, weights, tokens_hash(&tokens), sampling);
    Ok(Binding {
        leaves: layout.leaves(),
        layout,
        tokens,
        context,
    })
}
