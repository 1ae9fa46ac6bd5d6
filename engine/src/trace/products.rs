//! The products' references as a trace records them (spec §1.2–§1.4): the running values a
//! kernel never shows — a quantized row's accumulator after each segment of pieces, a float
//! row's eight lanes after each segment of columns — with the outputs, which the tracer checks
//! against the kernel's. `corrupt(index, value)` may change a running value as it is computed
//! (a test double's cheating operator, [`super::Corruption`]); the rest follows from it.

use super::layout::{Shape, FLOAT_SEGMENT, PIECES_PER_SEGMENT};
use super::record::word;
use crate::canon::math::tree8;
use crate::canon::quant::{QActs, QK};
use crate::qmatrix::{QMatrix, WeightKind};
use crate::quant::{ActBlock, Form, Piece};

/// The pieces of row `r` of `m` (spec §1.4), whatever its storage.
pub fn pieces(m: &QMatrix, r: usize) -> Vec<Piece> {
    (0..m.blocks())
        .map(|b| match m.kind {
            WeightKind::Blocks(_) => m.piece(r, b),
            _ => {
                let blk = m.block(r, b);
                let (form, minus) = match m.kind {
                    WeightKind::Q4_1 => (
                        Form::Affine {
                            dw: blk.d,
                            mw: blk.m,
                        },
                        0,
                    ),
                    WeightKind::Q4_0 => (Form::Scaled { dw: blk.d }, 8),
                    _ => (Form::Scaled { dw: blk.d }, 0),
                };
                Piece {
                    form,
                    q: blk.q.map(|q| (q - minus) as i8),
                }
            }
        })
        .collect()
}

/// A quantized product by the reference (spec §1.2, §1.4): the partial accumulators after
/// each segment but the last, and the outputs.
pub fn quantized_product(
    m: &QMatrix,
    xq: &QActs,
    tokens: usize,
    corrupt: impl Fn(usize, f32) -> f32,
) -> (Vec<u32>, Vec<f32>) {
    let (rows, nb) = (m.rows, m.blocks());
    let segs = Shape::row_segments(m.cols);
    let mut partials = Vec::with_capacity(tokens * rows * (segs - 1));
    let mut y = vec![0f32; tokens * rows];
    for r in 0..rows {
        let pieces = pieces(m, r);
        for t in 0..tokens {
            let mut acc = 0f32;
            for (b, p) in pieces.iter().enumerate() {
                let xb = t * nb + b;
                acc += p.term(ActBlock {
                    q: &xq.q[xb * QK..][..QK],
                    d: xq.d[xb],
                    s: xq.s[xb],
                });
                let seg = b / PIECES_PER_SEGMENT;
                if (b + 1) % PIECES_PER_SEGMENT == 0 && seg + 1 < segs {
                    let at = (t * rows + r) * (segs - 1) + seg;
                    acc = corrupt(at, acc);
                    partials.push((at, word(acc)));
                }
            }
            y[t * rows + r] = acc;
        }
    }
    partials.sort_unstable_by_key(|&(at, _)| at);
    (partials.into_iter().map(|(_, w)| w).collect(), y)
}

/// A float matrix's product by the reference (spec §1.3, unquantized activations `xf`):
/// the eight lanes after every segment of [`FLOAT_SEGMENT`] elements, and `tree8` of the
/// last ones.
pub fn float_product(
    m: &QMatrix,
    xf: &[f32],
    tokens: usize,
    corrupt: impl Fn(usize, f32) -> f32,
) -> (Vec<u32>, Vec<f32>) {
    let (rows, cols) = (m.rows, m.cols);
    let segs = Shape::float_segments(cols);
    let mut lanes = vec![0u32; tokens * rows * segs * 8];
    let mut y = vec![0f32; tokens * rows];
    let mut w = vec![0f32; cols];
    for r in 0..rows {
        m.row_f32(r, &mut w);
        for t in 0..tokens {
            let x = &xf[t * cols..][..cols];
            let mut a = [0f32; 8];
            for seg in 0..segs {
                let chunks = seg * FLOAT_SEGMENT / 8..((seg + 1) * FLOAT_SEGMENT / 8).min(cols / 8);
                for c in chunks {
                    for (l, acc) in a.iter_mut().enumerate() {
                        *acc += x[8 * c + l] * w[8 * c + l];
                    }
                }
                for (l, acc) in a.iter_mut().enumerate() {
                    let at = ((t * rows + r) * segs + seg) * 8 + l;
                    *acc = corrupt(at, *acc);
                    lanes[at] = word(*acc);
                }
            }
            y[t * rows + r] = tree8(a);
        }
    }
    (lanes, y)
}
