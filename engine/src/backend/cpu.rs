//! The CPU backend: [`crate::kernels`] on a [`Runner`]'s threads, buffers in host memory, keys
//! and values in each [`crate::model::Sequence`].

use super::{Backend, Gate, MatId, Positions, Qkv, VecId};
use crate::canon::quant::QActs;
use crate::error::{EngineError, Result};
use crate::kernels::{Query, Runner};
use crate::model::{Feed, Model};

/// Queries per attention task aimed at: a tile's tokens (1 to 8) times the query heads that
/// share a KV head.
const ATTENTION_TILE_QUERIES: usize = 24;

/// The CPU kernels over one model's weights.
pub struct Cpu<'a> {
    pub model: &'a Model,
    pub rt: &'a Runner,
    /// The buffer in-place RMSNorm writes through (kept, so that no step allocates one).
    scratch: std::cell::RefCell<Vec<f32>>,
}

impl<'a> Cpu<'a> {
    pub fn new(model: &'a Model, rt: &'a Runner) -> Cpu<'a> {
        Cpu {
            model,
            rt,
            scratch: Default::default(),
        }
    }
}

/// Raw pointer for tasks that write disjoint slices of one buffer.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every task writes its own disjoint range; the buffer outlives the parallel region.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

impl Backend for Cpu<'_> {
    type Buf = Vec<f32>;
    type Acts = QActs;

    fn buf(&self) -> Result<Vec<f32>> {
        Ok(Vec::new())
    }

    fn acts(&self) -> Result<QActs> {
        Ok(QActs::default())
    }

    fn embed(&self, tokens: &[u32], x: &mut Vec<f32>) -> Result<()> {
        let d = self.model.cfg.d_model;
        x.resize(tokens.len() * d, 0.0);
        for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
            self.model.tok_embd.row_f32(tok as usize, row);
        }
        Ok(())
    }

    fn scale(&self, x: &mut Vec<f32>, s: f32) -> Result<()> {
        x.iter_mut().for_each(|v| *v *= s);
        Ok(())
    }

    fn rmsnorm(&self, x: &Vec<f32>, w: VecId, y: &mut Vec<f32>) -> Result<()> {
        y.resize(x.len(), 0.0);
        self.rt
            .rmsnorm(x, self.model.vector(w), self.model.cfg.rms_eps, y);
        Ok(())
    }

    fn rmsnorm_in_place(&self, x: &mut Vec<f32>, w: VecId) -> Result<()> {
        let mut y = self.scratch.take();
        self.rmsnorm(x, w, &mut y)?;
        std::mem::swap(x, &mut y);
        self.scratch.replace(y);
        Ok(())
    }

    fn quantize(&self, x: &Vec<f32>, cols: usize, xq: &mut QActs) -> Result<()> {
        self.rt.quantize_rows(x, cols, xq);
        Ok(())
    }

    fn matmul(
        &self,
        mats: &[MatId],
        xq: &QActs,
        xf: &Vec<f32>,
        tokens: usize,
        outs: &mut [&mut Vec<f32>],
    ) -> Result<()> {
        let ms: Vec<_> = mats.iter().map(|&m| self.model.mat(m)).collect();
        self.rt.matmul_many(&ms, xq, xf, tokens, outs);
        Ok(())
    }

    fn add_rows(&self, x: &mut Vec<f32>, id: VecId) -> Result<()> {
        let b = self.model.vector(id);
        if b.is_empty() {
            return Err(EngineError::Unsupported(format!("the model has no {id:?}")));
        }
        for row in x.chunks_exact_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(x, b)| *x += *b);
        }
        Ok(())
    }

    fn rope(&self, layer: usize, q: &mut Vec<f32>, k: &mut Vec<f32>, at: &Positions) -> Result<()> {
        let (m, rt) = (self.model, self.rt);
        let cfg = &m.cfg;
        let (hd, qd, kvd) = (cfg.head_dim, cfg.q_dim(), cfg.kv_dim());
        let rope = m.rope_of(layer);
        let per = rt.rows_per_part(at.len());
        let parts: Vec<_> = (q.chunks_mut(per * qd).zip(k.chunks_mut(per * kvd)))
            .zip(at.chunks(per))
            .collect();
        rt.each_part(parts, |((qp, kp), atp)| {
            let rot = |x: &mut [f32], pos| {
                if cfg.arch.neox_rope() {
                    rope.apply_neox(x, pos)
                } else {
                    rope.apply(x, pos)
                }
            };
            for (t, &(_, pos)) in atp.iter().enumerate() {
                for hh in 0..cfg.n_head {
                    rot(&mut qp[t * qd + hh * hd..][..hd], pos);
                }
                for hh in 0..cfg.n_kv_head {
                    rot(&mut kp[t * kvd + hh * hd..][..hd], pos);
                }
            }
        });
        Ok(())
    }

    fn attend(
        &self,
        li: usize,
        feeds: &mut [Feed<'_>],
        at: &Positions,
        qkv: Qkv<'_, Vec<f32>>,
        att: &mut Vec<f32>,
    ) -> Result<()> {
        let Qkv {
            q: qb,
            k: kb,
            v: vb,
        } = qkv;
        let cfg = &self.model.cfg;
        let (hd, qd, kvd) = (cfg.head_dim, cfg.q_dim(), cfg.kv_dim());
        let nt = at.len();
        let sliding = cfg.is_sliding(li);
        for (t, &(fi, _)) in at.iter().enumerate() {
            let seq = &mut *feeds[fi].seq;
            seq.k[li].extend_from_slice(&kb[t * kvd..][..kvd]);
            seq.v[li].extend_from_slice(&vb[t * kvd..][..kvd]);
        }
        let group = cfg.n_head / cfg.n_kv_head;
        // Attention tiles: runs of consecutive tokens of one sequence, whose queries of one KV
        // head are computed together (they share its keys and values). A tile's queries also
        // share their first key: on sliding-window layers, tokens past the window each start
        // elsewhere.
        let tile_tokens = (ATTENTION_TILE_QUERIES / group).clamp(1, 8);
        let first = |t: usize| cfg.first_key(sliding, at[t].1);
        let mut tiles: Vec<(usize, usize)> = Vec::new();
        let mut t0 = 0;
        for t in 1..=nt {
            if t == nt || at[t].0 != at[t0].0 || t - t0 == tile_tokens || first(t) != first(t0) {
                tiles.push((t0, t));
                t0 = t;
            }
        }
        att.resize(nt * qd, 0.0);
        let scale = 1.0 / (hd as f32).sqrt();
        let isa = self.rt.isa;
        let out = SharedMut(att.as_mut_ptr());
        let feeds_ref = &*feeds;
        self.rt.for_each(tiles.len() * cfg.n_kv_head, |task| {
            let ((t0, t1), g) = (tiles[task / cfg.n_kv_head], task % cfg.n_kv_head);
            let seq = &feeds_ref[at[t0].0].seq;
            // Every query of the tile starts at the same key (see above).
            let first = cfg.first_key(sliding, at[t0].1);
            let mut queries = Vec::with_capacity((t1 - t0) * group);
            for (t, &(_, pos)) in at.iter().enumerate().take(t1).skip(t0) {
                for hh in g * group..(g + 1) * group {
                    let o = t * qd + hh * hd;
                    queries.push(Query {
                        q: &qb[o..][..hd],
                        n: pos + 1 - first,
                        // SAFETY: only this task's query (t, hh) writes att[o..o + hd].
                        out: unsafe { std::slice::from_raw_parts_mut(out.at(o), hd) },
                    });
                }
            }
            let (keys, values) = (&seq.k[li][first * kvd..], &seq.v[li][first * kvd..]);
            isa.attend_many(&mut queries, keys, values, kvd, g * hd, scale);
        });
        Ok(())
    }

    fn add(&self, x: &mut Vec<f32>, y: &Vec<f32>) -> Result<()> {
        for (a, b) in x.iter_mut().zip(y) {
            *a += *b;
        }
        Ok(())
    }

    fn gated(
        &self,
        act: Gate,
        g: &Vec<f32>,
        u: &Vec<f32>,
        cols: usize,
        h: &mut Vec<f32>,
    ) -> Result<()> {
        h.resize(g.len(), 0.0);
        match act {
            Gate::Silu => self.rt.silu_mul(g, u, cols, h),
            Gate::Gelu => self.rt.gelu_mul(g, u, cols, h),
        }
        Ok(())
    }

    fn to_host(&self, x: Vec<f32>) -> Result<Vec<f32>> {
        Ok(x)
    }
}
