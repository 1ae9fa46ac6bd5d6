//! Perplexity of a model on a text, computed as llama.cpp's `llama-perplexity` computes it, so
//! that the two can be compared on the same GGUF and text:
//!
//! - the whole text is tokenized once (BOS first when the model adds one);
//! - it is cut into `n = len / ctx` chunks of `ctx` tokens (at least two are needed), each
//!   evaluated on its own from an empty context, its first token replaced by BOS when the model
//!   adds one;
//! - in each chunk, the logits at positions `ctx/2 .. ctx-1` are scored against the next token:
//!   `nll = ln(sum_v exp(l_v - max)) + max - l_next`, in f64;
//! - after each chunk the running estimate `exp(mean nll)` is reported; the final one comes with
//!   llama.cpp's uncertainty `ppl * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1))`.
//!
//! The logits are the canonical ones (batch- and thread-invariant), so the estimate is the same
//! on every machine; the f64 log-softmax is an evaluation metric, not part of any transcript.

use crate::error::{EngineError, Result};
use crate::generate::Engine;
use crate::sampling::argmax;

/// What a perplexity run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// Tokens per chunk.
    pub ctx: usize,
    /// Chunks evaluated.
    pub chunks: usize,
    /// Tokens scored (`chunks * (ctx - 1 - ctx/2)`).
    pub scored: usize,
    /// `exp(mean nll)`.
    pub ppl: f64,
    /// llama.cpp's uncertainty of `ppl`.
    pub err: f64,
    /// The running estimate after each chunk.
    pub running: Vec<f64>,
    /// The tokens evaluated, chunk after chunk (BOS in place of each chunk's first token when
    /// the model adds one), as llama.cpp's `--kl-divergence-base` file lists them.
    pub tokens: Vec<u32>,
    /// The most likely token at every scored position (lowest id on a tie), in order: what
    /// `scripts/bench/perplexity.py` compares with llama.cpp's.
    pub top1: Vec<u32>,
}

/// `-ln softmax(logits)[next]`, in f64.
pub fn nll(logits: &[f32], next: u32) -> f64 {
    let m = logits
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let sum: f64 = logits.iter().map(|&l| (l as f64 - m).exp()).sum();
    sum.ln() + m - logits[next as usize] as f64
}

/// Perplexity of `engine`'s model on `text` in chunks of `ctx` tokens (at most `max_chunks`).
/// `progress(chunk, running_ppl)` is called after each chunk.
pub fn perplexity(
    engine: &Engine,
    text: &str,
    ctx: usize,
    max_chunks: Option<usize>,
    mut progress: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    if ctx < 4 {
        return Err(EngineError::InvalidRequest(format!(
            "a context of {ctx} tokens is too short to score (at least 4)"
        )));
    }
    if ctx > engine.model.max_context {
        return Err(EngineError::InvalidRequest(format!(
            "a context of {ctx} tokens exceeds the model's {}",
            engine.model.max_context
        )));
    }
    let tok = &engine.tokenizer;
    let tokens = tok.encode(text, false)?;
    if tokens.len() < 2 * ctx {
        return Err(EngineError::InvalidRequest(format!(
            "the text is {} tokens; perplexity with a context of {ctx} needs at least {}",
            tokens.len(),
            2 * ctx
        )));
    }
    let mut chunks = tokens.len() / ctx;
    if let Some(m) = max_chunks {
        chunks = chunks.min(m.max(1));
    }
    let bos = tok.bos.filter(|_| tok.add_bos);
    let first = ctx / 2;
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0usize);
    let mut running = Vec::with_capacity(chunks);
    let (mut evaluated, mut top1) = (Vec::with_capacity(chunks * ctx), Vec::new());
    for c in 0..chunks {
        let mut chunk = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        // Logits at positions first..ctx-1 predict tokens first+1..ctx.
        engine.teacher_forced(&chunk[..=first], &chunk[first + 1..], |i, logits| {
            let v = nll(logits, chunk[first + 1 + i]);
            sum += v;
            sum2 += v * v;
            count += 1;
            top1.push(argmax(logits));
            Ok(())
        })?;
        evaluated.extend_from_slice(&chunk);
        let ppl = (sum / count as f64).exp();
        running.push(ppl);
        progress(c + 1, ppl);
    }
    let mean = sum / count as f64;
    let var = sum2 / count as f64 - mean * mean;
    let ppl = mean.exp();
    let err = if var > 0.0 && count > 1 {
        ppl * (var / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Perplexity {
        ctx,
        chunks,
        scored: count,
        ppl,
        err,
        running,
        tokens: evaluated,
        top1,
    })
}
