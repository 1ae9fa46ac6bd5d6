//! Which earlier words of a trace each word is computed from (`docs/dispute.md` §5.4): what a
//! player must prove to the on-chain executor (`contracts/src/SwornExecutor.sol`) for its one
//! step. The word lists mirror the executor's reads, step for step.

use super::layout::{
    Kind, Layout, Mat, Norm, QuantOf, Shape, ARGMAX_SEGMENT, FLOAT_SEGMENT, KEYS_PER_SEGMENT,
    NORM_SEGMENT, PIECES_PER_SEGMENT, QBLOCK_WORDS,
};
use super::weights::{mat_slot, vec_slot, ROPE_FREQS_SLOT};
use crate::arch::{LayerMat, LayerVec};
use crate::error::{EngineError, Result};

/// What the step computing a word reads: earlier words of the trace (sorted), rows of the
/// model's weights (`(slot, row)`, [`super::weights`]), and whether it reads the sequence's
/// tokens (the embedding's row, the repetition penalty's history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    pub words: Vec<u64>,
    pub weights: Vec<(usize, usize)>,
    pub tokens: bool,
}

/// What the step computing word `element` reads (nothing, for a leaf's padding). `tokens` is
/// the teacher-forced sequence (prompt, then output tokens but the last); `trace` the trace's
/// words before `element` at least (a sampled step's reads depend on them: the ids the sort
/// compares, the kept counts).
pub fn reads(layout: &Layout, element: u64, tokens: &[u32], trace: &[u32]) -> Result<Reads> {
    let r = *layout
        .region_of(element)
        .ok_or_else(|| EngineError::InvalidRequest(format!("word {element} is past the trace")))?;
    let i = element - r.start;
    if i >= r.len {
        return Ok(Reads::default());
    }
    let s = &layout.shape;
    let c = &s.cfg;
    let spec = c.arch.spec();
    let start = |kind: Kind, layer: Option<usize>| -> Result<u64> {
        layout
            .region(kind, layer)
            .map(|r| r.start)
            .ok_or_else(|| EngineError::Trace(format!("no region {kind:?} on {layer:?}")))
    };
    let stream = |l: usize| -> Result<u64> {
        if l == 0 {
            start(Kind::Embed, None)
        } else {
            start(Kind::Residual { ffn: true }, Some(l - 1))
        }
    };
    let mat_out = |m: LayerMat, l: usize| start(Kind::MatOut { mat: Mat::Layer(m) }, Some(l));
    let norm_out = |v: LayerVec, l: Option<usize>| {
        let norm = l.map_or(Norm::Out, |_| Norm::Layer(v));
        start(Kind::NormOut { norm }, l)
    };
    let (hd, qd, kvd, nh) = (c.head_dim, c.q_dim(), c.kv_dim(), c.n_head);
    let t_n = s.positions as u64;
    let mut out = Vec::new();
    let mut weights = Vec::new();
    let mut reads_tokens = false;
    let layer = r.layer.unwrap_or(0);
    // Attention rows: (t, h) with its window's keys, segments, and offsets.
    let row = |t: usize, h: usize| {
        let n = s.keys(layer, t);
        let keys_at: usize = (0..t).map(|p| s.keys(layer, p)).sum::<usize>() * nh;
        let segs_at: usize = (0..t)
            .map(|p| Shape::key_segments(s.keys(layer, p)))
            .sum::<usize>()
            * nh;
        (
            n,
            Shape::key_segments(n),
            keys_at as u64,
            segs_at as u64,
            t + 1 - n,
            h,
        )
    };
    // The (t, h, rest) of index i in a region of rows `unit * f(t)`.
    let locate = |i: u64, unit: usize, by_keys: bool| -> Result<(usize, usize, u64)> {
        let mut at = 0u64;
        for t in 0..s.positions {
            let n = s.keys(layer, t);
            let f = if by_keys { n } else { Shape::key_segments(n) };
            let size = (nh * unit * f) as u64;
            if i < at + size {
                let rem = i - at;
                let per = (unit * f) as u64;
                return Ok((t, (rem / per) as usize, rem % per));
            }
            at += size;
        }
        Err(EngineError::Trace(format!(
            "word {i} is past its attention region"
        )))
    };
    match r.kind {
        Kind::Residual { ffn } => {
            let x = if ffn {
                start(Kind::Residual { ffn: false }, r.layer)?
            } else {
                stream(layer)?
            };
            let y = match (spec.post_attn_norm, ffn) {
                (true, false) => norm_out(LayerVec::PostAttnNorm, r.layer)?,
                (true, true) => norm_out(LayerVec::PostFfnNorm, r.layer)?,
                (false, false) => mat_out(LayerMat::O, layer)?,
                (false, true) => mat_out(LayerMat::Down, layer)?,
            };
            out.extend([x + i, y + i]);
        }
        Kind::Gated => {
            out.push(mat_out(LayerMat::Gate, layer)? + i);
            out.push(mat_out(LayerMat::Up, layer)? + i);
        }
        Kind::ValuesT => {
            let v = if spec.qkv_bias {
                start(
                    Kind::Bias {
                        vec: LayerVec::VBias,
                    },
                    r.layer,
                )?
            } else {
                mat_out(LayerMat::V, layer)?
            };
            out.push(v + (i % t_n) * kvd as u64 + i / t_n);
        }
        Kind::Rope { k } => {
            let width = if k { kvd } else { qd } as u64;
            let col = (i % width) % hd as u64;
            let half = hd as u64 / 2;
            let (a, b, p) = if !spec.neox_rope {
                (col & !1, col | 1, col / 2)
            } else if col < half {
                (col, col + half, col)
            } else {
                (col - half, col, col - half)
            };
            let table = start(
                Kind::RopeTable {
                    table: s.table_of(layer),
                },
                None,
            )? + ((i / width) * half + p) * 2;
            let input = if spec.qk_norm {
                norm_out(if k { LayerVec::KNorm } else { LayerVec::QNorm }, r.layer)?
            } else if spec.qkv_bias {
                let vec = if k { LayerVec::KBias } else { LayerVec::QBias };
                start(Kind::Bias { vec }, r.layer)?
            } else {
                mat_out(if k { LayerMat::K } else { LayerMat::Q }, layer)?
            };
            let row = input + i - col;
            out.extend([table, table + 1, row + a, row + b]);
        }
        Kind::Scores => {
            let (t, h, j) = locate(i, 1, true)?;
            let (_, _, _, _, first, _) = row(t, h);
            let g = h / (nh / c.n_kv_head);
            let q = start(Kind::Rope { k: false }, r.layer)? + (t * qd + h * hd) as u64;
            let k = start(Kind::Rope { k: true }, r.layer)?
                + ((first + j as usize) * kvd + g * hd) as u64;
            for d in 0..hd as u64 {
                out.extend([q + d, k + d]);
            }
        }
        Kind::Max | Kind::Sums => {
            let (t, h, sg) = locate(i, 1, false)?;
            let (n, _, keys_at, _, _, _) = row(t, h);
            if sg > 0 {
                out.push(element - 1);
            }
            let from = if r.kind == Kind::Max {
                Kind::Scores
            } else {
                Kind::Exps
            };
            let base = start(from, r.layer)? + keys_at + (h * n) as u64;
            let seg = sg as usize * KEYS_PER_SEGMENT..((sg as usize + 1) * KEYS_PER_SEGMENT).min(n);
            out.extend(seg.map(|j| base + j as u64));
        }
        Kind::Exps => {
            let (t, h, _) = locate(i, 1, true)?;
            let (_, segs, _, segs_at, _, _) = row(t, h);
            out.push(start(Kind::Max, r.layer)? + segs_at + (h * segs + segs - 1) as u64);
            out.push(start(Kind::Scores, r.layer)? + i);
        }
        Kind::Weighted => {
            let (t, h, rest) = locate(i, hd, false)?;
            let (n, segs, keys_at, _, first, _) = row(t, h);
            let (d, sg) = ((rest / segs as u64) as usize, (rest % segs as u64) as usize);
            if sg > 0 {
                out.push(element - 1);
            }
            let g = h / (nh / c.n_kv_head);
            let e = start(Kind::Exps, r.layer)? + keys_at + (h * n) as u64;
            let v = start(Kind::ValuesT, r.layer)? + ((g * hd + d) * s.positions + first) as u64;
            for j in sg * KEYS_PER_SEGMENT..((sg + 1) * KEYS_PER_SEGMENT).min(n) {
                out.extend([e + j as u64, v + j as u64]);
            }
        }
        Kind::AttnOut => {
            let (t, h) = (
                (i / qd as u64) as usize,
                ((i % qd as u64) / hd as u64) as usize,
            );
            let (_, segs, _, segs_at, _, _) = row(t, h);
            let d = (i % hd as u64) as usize;
            out.push(
                start(Kind::Weighted, r.layer)?
                    + segs_at * hd as u64
                    + ((h * hd + d) * segs + segs - 1) as u64,
            );
            out.push(start(Kind::Sums, r.layer)? + segs_at + (h * segs + segs - 1) as u64);
        }
        Kind::NormLanes { norm } | Kind::NormScale { norm } => {
            let (x, n, _) = norm_source(layout, norm, layer)?;
            let segs = n.div_ceil(NORM_SEGMENT) as u64;
            if let Kind::NormLanes { .. } = r.kind {
                let (row, sg, lane) = (i / (segs * 8), (i / 8) % segs, i % 8);
                if sg > 0 {
                    out.push(element - 8);
                }
                let seg =
                    sg * NORM_SEGMENT as u64 + lane..((sg + 1) * NORM_SEGMENT as u64).min(n as u64);
                out.extend(seg.step_by(8).map(|e| x + row * n as u64 + e));
            } else {
                let lanes = start(Kind::NormLanes { norm }, r.layer)? + (i * segs + segs - 1) * 8;
                out.extend(lanes..lanes + 8);
            }
        }
        Kind::Quant { of } => {
            let (rec, k) = (i / QBLOCK_WORDS as u64, i % QBLOCK_WORDS as u64);
            if k < 10 {
                let (x, row0) = float_source(layout, of, r.layer)?;
                let cols = match of {
                    QuantOf::AttnOut => qd,
                    QuantOf::DownIn => c.d_ff,
                    _ => c.d_model,
                };
                let per = (cols / 32) as u64;
                let at = x + (row0 + rec / per) * cols as u64 + (rec % per) * 32;
                out.extend(at..at + 32);
            }
        }
        Kind::Argmax => {
            let g = s.argmax_segments() as u64;
            let (n, sg) = (i / (2 * g), (i / 2) % g);
            let pair = r.start + (n * g + sg) * 2;
            if sg > 0 {
                out.extend([pair - 2, pair - 1]);
            }
            let logits = if s.penalty {
                start(Kind::Penalized, None)?
            } else {
                start(Kind::MatOut { mat: Mat::Head }, None)?
            } + n * c.vocab as u64;
            let seg =
                sg * ARGMAX_SEGMENT as u64..((sg + 1) * ARGMAX_SEGMENT as u64).min(c.vocab as u64);
            out.extend(seg.map(|j| logits + j));
        }
        Kind::Embed => {
            let t = (i / c.d_model as u64) as usize;
            let tok = *tokens
                .get(t)
                .ok_or_else(|| EngineError::Trace(format!("no token at position {t}")))?;
            weights.push((0, tok as usize));
            reads_tokens = true;
        }
        Kind::NormOut { norm } => {
            let (x, n, slot) = norm_source(layout, norm, layer)?;
            out.push(x + i);
            out.push(start(Kind::NormScale { norm }, r.layer)? + i / n as u64);
            weights.push((slot, 0));
        }
        Kind::MatPartial { mat } | Kind::MatOut { mat } if s.is_float(mat) => {
            // Eight lanes per segment (spec §1.3): a lane folds its 16 elements of the segment
            // into its previous value; the output is the tree of the last segment's lanes.
            let (rows, cols, of, slot) = mat_shape(s, mat, layer);
            let segs = Shape::float_segments(cols) as u64;
            let partial = start(Kind::MatPartial { mat }, r.layer)?;
            if let Kind::MatOut { .. } = r.kind {
                let lanes = partial + (i * segs + segs - 1) * 8;
                out.extend(lanes..lanes + 8);
            } else {
                let (t, row, sg, lane) = (
                    i / (rows * segs * 8),
                    (i / (segs * 8)) % rows,
                    (i / 8) % segs,
                    i % 8,
                );
                if sg > 0 {
                    out.push(element - 8);
                }
                let (x, row0) = float_source(layout, of, r.layer)?;
                let at = x + (row0 + t) * cols as u64;
                let seg = sg * FLOAT_SEGMENT as u64 + lane
                    ..((sg + 1) * FLOAT_SEGMENT as u64).min(cols as u64);
                out.extend(seg.step_by(8).map(|e| at + e));
                weights.push((slot, row as usize));
            }
        }
        Kind::MatPartial { mat } | Kind::MatOut { mat } => {
            let (rows, cols, of, slot) = mat_shape(s, mat, layer);
            let segs = Shape::row_segments(cols) as u64;
            let (t, row, seg) = if let Kind::MatPartial { .. } = r.kind {
                (
                    i / (rows * (segs - 1)),
                    (i / (segs - 1)) % rows,
                    i % (segs - 1),
                )
            } else {
                (i / rows, i % rows, segs - 1)
            };
            if seg > 0 {
                out.push(
                    start(Kind::MatPartial { mat }, r.layer)? + (t * rows + row) * (segs - 1) + seg
                        - 1,
                );
            }
            let pieces = (cols / 32) as u64;
            let q = start(Kind::Quant { of }, r.layer)?;
            for k in
                seg * PIECES_PER_SEGMENT as u64..((seg + 1) * PIECES_PER_SEGMENT as u64).min(pieces)
            {
                let rec = q + (t * pieces + k) * QBLOCK_WORDS as u64;
                out.extend(rec..rec + 10);
            }
            weights.push((slot, row as usize));
        }
        Kind::Bias { vec } => {
            let m = match vec {
                LayerVec::QBias => LayerMat::Q,
                LayerVec::KBias => LayerMat::K,
                _ => LayerMat::V,
            };
            out.push(mat_out(m, layer)? + i);
            weights.push((vec_slot(layer, vec), 0));
        }
        Kind::Penalized => {
            out.push(start(Kind::MatOut { mat: Mat::Head }, None)? + i);
            reads_tokens = true;
        }
        k if k.is_sampled() => out = sampled_reads(layout, k, i, trace)?,
        Kind::RopeTable { table } => {
            // Table 0 reads Llama 3's frequency factors, or the proof that the file has none.
            if table == 0 {
                weights.push((ROPE_FREQS_SLOT, 0));
            }
        }
        k => return Err(EngineError::Trace(format!("no step computes a {k:?} word"))),
    }
    out.sort_unstable();
    out.dedup();
    if out.last().is_some_and(|&w| w >= element) {
        return Err(EngineError::Trace(format!(
            "word {element} would read a later word"
        )));
    }
    Ok(Reads {
        words: out,
        weights,
        tokens: reads_tokens,
    })
}

/// The words a sampled step's word `i` of region `kind` reads (`docs/dispute.md` §5.6).
fn sampled_reads(layout: &Layout, kind: Kind, i: u64, trace: &[u32]) -> Result<Vec<u64>> {
    let s = &layout.shape;
    let sm = s
        .sampled
        .ok_or_else(|| EngineError::Trace("a greedy layout has no sampled regions".into()))?;
    let (v, k) = (s.cfg.vocab as u64, sm.candidates as u64);
    let start = |kind: Kind| -> Result<u64> {
        layout
            .region(kind, None)
            .map(|r| r.start)
            .ok_or_else(|| EngineError::Trace(format!("no region {kind:?}")))
    };
    let at = |w: u64| -> Result<u32> {
        trace
            .get(w as usize)
            .copied()
            .ok_or_else(|| EngineError::Trace(format!("word {w} is past the trace given")))
    };
    let levels = s.merge_levels();
    // Step n's scaled logits, sorted ids and running regions.
    let step =
        |kind: Kind, n: u64| -> Result<u64> { Ok(start(kind)? + n * s.sampled_width(kind) as u64) };
    let sorted = |n: u64, j: u64| -> Result<(Option<u64>, u32)> {
        if levels == 0 {
            return Ok((None, j as u32));
        }
        let w = step(Kind::Merge { level: levels }, n)? + 2 * j;
        Ok((Some(w), at(w)?))
    };
    // The kept count after top-p and min-p, and the words it is read from.
    let keep = |n: u64, out: &mut Vec<u64>| -> Result<u64> {
        let kind = if sm.min_p {
            Kind::MinP
        } else if sm.top_p {
            Kind::TopP
        } else {
            return Ok(k);
        };
        let w = step(kind, n)? + k - 1;
        out.push(w);
        let last = at(w)?;
        Ok(if sm.min_p {
            u64::from(last).max(1)
        } else {
            super::sample::top_p_keep(last, k as usize) as u64
        })
    };
    let mut out = Vec::new();
    match kind {
        Kind::Scaled => {
            let logits = if s.penalty {
                start(Kind::Penalized)?
            } else {
                start(Kind::MatOut { mat: Mat::Head })?
            };
            out.push(logits + i);
        }
        Kind::Merge { level } => {
            // Both words of a pair (the id and the count) read the same.
            let (n, kk) = (i / (2 * v), (i / 2) % v);
            let m = super::sample::merge_at(level, v as usize, kk as usize);
            let here = step(kind, n)?;
            let a = if m.q > 0 {
                let w = here + 2 * kk - 1;
                out.push(w);
                at(w)? as usize
            } else {
                0
            };
            let scaled = step(Kind::Scaled, n)?;
            let b = m.q.checked_sub(a);
            let mut head = |j: usize| -> Result<()> {
                let id = if level == 1 {
                    j as u64
                } else {
                    let w = step(Kind::Merge { level: level - 1 }, n)? + 2 * j as u64;
                    out.push(w);
                    u64::from(at(w)?)
                };
                if id < v {
                    out.push(scaled + id);
                }
                Ok(())
            };
            if a < m.alen {
                head(m.a0 + a)?;
            }
            if let Some(b) = b.filter(|&b| b < m.blen) {
                head(m.b0 + b)?;
            }
        }
        Kind::Weights => {
            let (n, j) = (i / k, i % k);
            let scaled = step(Kind::Scaled, n)?;
            for j in [0, j] {
                let (w, id) = sorted(n, j)?;
                out.extend(w);
                out.push(scaled + u64::from(id).min(v - 1));
            }
        }
        Kind::Cumsum => {
            let (n, j) = (i / k, i % k);
            out.push(step(Kind::Weights, n)? + j);
            if j > 0 {
                out.push(step(Kind::Cumsum, n)? + j - 1);
            }
        }
        Kind::TopP => {
            let (n, j) = (i / k, i % k);
            let cum = step(Kind::Cumsum, n)?;
            out.extend([cum + k - 1, cum + j]);
            if j > 0 {
                out.push(step(Kind::TopP, n)? + j - 1);
            }
        }
        Kind::MinP => {
            let (n, j) = (i / k, i % k);
            if sm.top_p {
                out.push(step(Kind::TopP, n)? + k - 1);
            }
            out.push(step(Kind::Weights, n)? + j);
            if j > 0 {
                out.push(step(Kind::MinP, n)? + j - 1);
            }
        }
        Kind::Draw => {
            let (n, j) = (i / k, i % k);
            let kept = keep(n, &mut out)?;
            let cum = step(Kind::Cumsum, n)?;
            out.extend([cum + kept.clamp(1, k) - 1, cum + j]);
            if j > 0 {
                out.push(step(Kind::Draw, n)? + j - 1);
            }
        }
        Kind::Sampled => {
            let n = i;
            let kept = keep(n, &mut out)?;
            let w = step(Kind::Draw, n)? + k - 1;
            out.push(w);
            let pick = u64::from(at(w)?);
            let index = if pick == 0 {
                kept.clamp(1, k) - 1
            } else {
                (pick - 1).min(k - 1)
            };
            out.extend(sorted(n, index)?.0);
        }
        _ => unreachable!("only sampled kinds come here"),
    }
    Ok(out)
}

/// Where a product's activations lie before quantization (what a float matrix multiplies, and
/// what a quantization reads): the region's start, and the row the first position reads (the
/// head reads the output steps' positions only).
pub fn float_source(layout: &Layout, of: QuantOf, layer: Option<usize>) -> Result<(u64, u64)> {
    let s = &layout.shape;
    let start = |kind: Kind, layer: Option<usize>| -> Result<u64> {
        layout
            .region(kind, layer)
            .map(|r| r.start)
            .ok_or_else(|| EngineError::Trace(format!("no region {kind:?} on {layer:?}")))
    };
    let norm = |v: LayerVec| Kind::NormOut {
        norm: Norm::Layer(v),
    };
    Ok(match of {
        QuantOf::AttnIn => (start(norm(LayerVec::AttnNorm), layer)?, 0),
        QuantOf::AttnOut => (start(Kind::AttnOut, layer)?, 0),
        QuantOf::FfnIn => (start(norm(LayerVec::FfnNorm), layer)?, 0),
        QuantOf::DownIn => (start(Kind::Gated, layer)?, 0),
        QuantOf::Head => (
            start(Kind::NormOut { norm: Norm::Out }, None)?,
            (s.positions - s.steps) as u64,
        ),
    })
}

/// A product's rows, columns, input quantization and weight slot.
pub fn mat_shape(s: &Shape, mat: Mat, layer: usize) -> (u64, usize, QuantOf, usize) {
    let c = &s.cfg;
    let (qd, kvd) = (c.q_dim(), c.kv_dim());
    let (rows, cols, of) = match mat {
        Mat::Head => (c.vocab, c.d_model, QuantOf::Head),
        Mat::Layer(m) => match m {
            LayerMat::Q => (qd, c.d_model, QuantOf::AttnIn),
            LayerMat::K | LayerMat::V => (kvd, c.d_model, QuantOf::AttnIn),
            LayerMat::O => (c.d_model, qd, QuantOf::AttnOut),
            LayerMat::Gate | LayerMat::Up => (c.d_ff, c.d_model, QuantOf::FfnIn),
            LayerMat::Down => (c.d_model, c.d_ff, QuantOf::DownIn),
        },
    };
    let slot = match mat {
        Mat::Head => 2,
        Mat::Layer(m) => mat_slot(layer, m),
    };
    (rows as u64, cols, of, slot)
}

/// A norm's input region, its row width and its weight's slot.
pub fn norm_source(layout: &Layout, norm: Norm, layer: usize) -> Result<(u64, usize, usize)> {
    let c = &layout.shape.cfg;
    let start = |kind: Kind, layer: Option<usize>| -> Result<u64> {
        layout
            .region(kind, layer)
            .map(|r| r.start)
            .ok_or_else(|| EngineError::Trace(format!("no region {kind:?} on {layer:?}")))
    };
    let l = Some(layer);
    let mat = |m: LayerMat| start(Kind::MatOut { mat: Mat::Layer(m) }, l);
    Ok(match norm {
        Norm::Layer(v) => {
            let (x, n) = match v {
                LayerVec::AttnNorm if layer == 0 => (start(Kind::Embed, None)?, c.d_model),
                LayerVec::AttnNorm => (
                    start(Kind::Residual { ffn: true }, Some(layer - 1))?,
                    c.d_model,
                ),
                LayerVec::FfnNorm => (start(Kind::Residual { ffn: false }, l)?, c.d_model),
                LayerVec::QNorm => (mat(LayerMat::Q)?, c.head_dim),
                LayerVec::KNorm => (mat(LayerMat::K)?, c.head_dim),
                LayerVec::PostAttnNorm => (mat(LayerMat::O)?, c.d_model),
                LayerVec::PostFfnNorm => (mat(LayerMat::Down)?, c.d_model),
                v => return Err(EngineError::Trace(format!("no norm of {v:?}"))),
            };
            (x, n, vec_slot(layer, v))
        }
        Norm::Out => (
            start(Kind::Residual { ffn: true }, Some(c.n_layer - 1))?,
            c.d_model,
            1,
        ),
    })
}
