//! The forward pass (spec §3) of every architecture sworn runs, written once against the
//! [`Backend`] operations. The architectures differ in the switches of their
//! [`crate::arch::ArchSpec`]; everything else is shared.
//!
//! Every token's computation depends only on its own sequence's earlier tokens, never on what
//! else is in the batch or how a prompt was chunked: matrix products run each (token, row) in the
//! spec's fixed order, and attention reads one query against its own sequence's cache. That is
//! what makes a batched server, a chunked prefill and a teacher-forced replay give the same bits,
//! on any backend.

use crate::arch::LayerMat::{Down, Gate as GateMat, Up, K, O, Q, V};
use crate::arch::LayerVec::{
    AttnNorm, FfnNorm, KBias, KNorm, PostAttnNorm, PostFfnNorm, QBias, QNorm, VBias,
};
use crate::backend::{Backend, Cpu, MatId, Qkv, VecId};
use crate::error::{EngineError, Result};
use crate::kernels::Runner;
use crate::model::{Config, Feed, Model};

/// Runs the new tokens of every feed through the model on backend `b`, appending them to their
/// sequences. Returns the final-normed hidden state of every new token, feeds in order,
/// `d_model` each.
pub fn forward<B: Backend>(
    cfg: &Config,
    max_context: usize,
    b: &B,
    feeds: &mut [Feed<'_>],
) -> Result<B::Buf> {
    let (d, qd) = (cfg.d_model, cfg.q_dim());
    // Where each new token sits: (feed index, position).
    let mut at: Vec<(usize, usize)> = Vec::new();
    let mut tokens = Vec::new();
    for (i, f) in feeds.iter().enumerate() {
        let start = f.seq.len();
        if start + f.tokens.len() > max_context {
            return Err(EngineError::InvalidRequest(format!(
                "sequence of {} tokens exceeds the context of {max_context}",
                start + f.tokens.len(),
            )));
        }
        for (j, &tok) in f.tokens.iter().enumerate() {
            if tok as usize >= cfg.vocab {
                return Err(EngineError::InvalidRequest(format!(
                    "token id {tok} is outside the vocabulary of {}",
                    cfg.vocab
                )));
            }
            at.push((i, start + j));
        }
        tokens.extend_from_slice(f.tokens);
    }
    let nt = at.len();
    let mut x = b.buf()?;
    b.embed(&tokens, &mut x)?;
    let spec = cfg.arch.spec();
    if spec.embed_scale {
        // Spec §3.9: embeddings times sqrt(d_model), itself rounded to f32.
        b.scale(&mut x, (d as f32).sqrt())?;
    }
    let mut xn = b.buf()?;
    let mut xq = b.acts()?;
    let (mut qb, mut kb, mut vb, mut ob) = (b.buf()?, b.buf()?, b.buf()?, b.buf()?);
    let (mut gb, mut ub, mut db, mut h) = (b.buf()?, b.buf()?, b.buf()?, b.buf()?);
    let mut att = b.buf()?;
    for li in 0..cfg.n_layer {
        let (m, v) = (|r| MatId::Layer(li, r), |r| VecId::Layer(li, r));
        // Attention block.
        b.rmsnorm(&x, v(AttnNorm), &mut xn)?;
        b.quantize(&xn, d, &mut xq)?;
        b.matmul(
            &[m(Q), m(K), m(V)],
            &xq,
            &xn,
            nt,
            &mut [&mut qb, &mut kb, &mut vb],
        )?;
        if spec.qkv_bias {
            // The projections' biases, one f32 add each (spec §3.10).
            b.add_rows(&mut qb, v(QBias))?;
            b.add_rows(&mut kb, v(KBias))?;
            b.add_rows(&mut vb, v(VBias))?;
        }
        if spec.qk_norm {
            // RMSNorm of every query and key head (rows of `head_dim`).
            b.rmsnorm_in_place(&mut qb, v(QNorm))?;
            b.rmsnorm_in_place(&mut kb, v(KNorm))?;
        }
        b.rope(li, &mut qb, &mut kb, &at)?;
        let qkv = Qkv {
            q: &qb,
            k: &kb,
            v: &vb,
        };
        b.attend(li, feeds, &at, qkv, &mut att)?;
        b.quantize(&att, qd, &mut xq)?;
        b.matmul(&[m(O)], &xq, &att, nt, &mut [&mut ob])?;
        if spec.post_attn_norm {
            b.rmsnorm_in_place(&mut ob, v(PostAttnNorm))?;
        }
        b.add(&mut x, &ob)?;
        // Feed-forward block.
        b.rmsnorm(&x, v(FfnNorm), &mut xn)?;
        b.quantize(&xn, d, &mut xq)?;
        b.matmul(&[m(GateMat), m(Up)], &xq, &xn, nt, &mut [&mut gb, &mut ub])?;
        b.gated(spec.gate, &gb, &ub, cfg.d_ff, &mut h)?;
        b.quantize(&h, cfg.d_ff, &mut xq)?;
        b.matmul(&[m(Down)], &xq, &h, nt, &mut [&mut db])?;
        if spec.post_ffn_norm {
            b.rmsnorm_in_place(&mut db, v(PostFfnNorm))?;
        }
        b.add(&mut x, &db)?;
    }
    for f in feeds.iter_mut() {
        f.seq.tokens.extend_from_slice(f.tokens);
    }
    b.rmsnorm(&x, VecId::OutNorm, &mut xn)?;
    Ok(xn)
}

/// Logits for the hidden states `hidden` (`d_model` each) on backend `b`: `n * vocab` out, on
/// the host.
pub fn logits<B: Backend>(cfg: &Config, b: &B, hidden: &B::Buf, n: usize) -> Result<Vec<f32>> {
    let mut xq = b.acts()?;
    b.quantize(hidden, cfg.d_model, &mut xq)?;
    let mut out = b.buf()?;
    b.matmul(&[MatId::LmHead], &xq, hidden, n, &mut [&mut out])?;
    let out = b.to_host(out)?;
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(EngineError::Numerical(format!(
            "logit {} of row {} is {}",
            i % cfg.vocab,
            i / cfg.vocab,
            out[i]
        )));
    }
    Ok(out)
}

impl Model {
    /// Runs the new tokens of every feed through the model on the CPU kernels, appending them
    /// to their sequences. Returns the final-normed hidden state of every new token, feeds in
    /// order, `d_model` each.
    pub fn forward(&self, rt: &Runner, feeds: &mut [Feed<'_>]) -> Result<Vec<f32>> {
        self.on_host()?;
        forward(&self.cfg, self.max_context, &Cpu::new(self, rt), feeds)
    }

    /// Logits for `n` final hidden states (`n * d_model` floats), `n * vocab` out. Fails if any
    /// logit is not finite: such a step has no defined sample.
    pub fn logits(&self, rt: &Runner, hidden: &[f32]) -> Result<Vec<f32>> {
        self.on_host()?;
        let n = hidden.len() / self.cfg.d_model;
        logits(&self.cfg, &Cpu::new(self, rt), &hidden.to_vec(), n)
    }

    fn on_host(&self) -> Result<()> {
        if self.has_host_weights() {
            Ok(())
        } else {
            Err(EngineError::Device(
                "this model's weights live on the device: the CPU kernels cannot run it".into(),
            ))
        }
    }
}
