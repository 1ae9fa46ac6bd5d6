//! Scalar reference kernels: the spec written as plainly as possible. Every fast path is tested
//! for bit-equality against these.

use crate::canon::math::{dot8_f32, exp_f32, gelu_tanh_f32, silu_f32, sumsq8_f32};
use crate::canon::quant::{quantize_block_ref, QActs, QBlocksMut, QK};
use crate::qmatrix::{QMatrix, WeightKind};

/// Output `r` for activation row `t` (spec §1.2): blocks combined in order, each block's integer
/// sum exact, then scaled.
pub fn dot_row(w: &QMatrix, r: usize, xq: &QActs, xf: &[f32], t: usize) -> f32 {
    if w.kind == WeightKind::F32 {
        let c = w.cols;
        return dot8_f32(&w.f32s[r * c..][..c], &xf[t * c..][..c]);
    }
    if let WeightKind::Blocks(_) = w.kind {
        return w.blocks_dot(r, xq, t);
    }
    let nb = w.blocks();
    let mut acc = 0f32;
    for b in 0..nb {
        let blk = w.block(r, b);
        let xb = t * nb + b;
        let qx = &xq.q[xb * QK..][..QK];
        let isum: i32 = blk.q.iter().zip(qx).map(|(&w, &x)| w * x as i32).sum();
        let dx = xq.d[xb];
        acc = match w.kind {
            WeightKind::Q4_1 => {
                let t = (blk.d * dx) * isum as f32;
                let u = blk.m * xq.s[xb];
                acc + (t + u)
            }
            WeightKind::Q4_0 => acc + (blk.d * dx) * (isum - 8 * xq.qsum[xb]) as f32,
            _ => acc + (blk.d * dx) * isum as f32,
        };
    }
    acc
}

/// Quantizes `x` block by block into `out` (spec §1.1); `out` has room for every block.
pub fn quantize_blocks(x: &[f32], out: QBlocksMut) {
    for (i, xb) in x.chunks_exact(QK).enumerate() {
        let (d, qsum, s) = quantize_block_ref(xb, &mut out.q[i * QK..][..QK]);
        out.d[i] = d;
        out.qsum[i] = qsum;
        out.s[i] = s;
    }
}

/// RMSNorm of one row (spec §3.2): `y_i = (x_i * r) * w_i`, `r = 1 / sqrt(sumsq / n + eps)`.
pub fn rmsnorm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let ss = sumsq8_f32(x);
    let r = 1.0 / (ss / x.len() as f32 + eps).sqrt();
    for i in 0..x.len() {
        y[i] = (x[i] * r) * w[i];
    }
}

/// `h_i = gelu(g_i) * u_i` (GeGLU, spec §2.5, §3.8).
pub fn gelu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    for i in 0..g.len() {
        h[i] = gelu_tanh_f32(g[i]) * u[i];
    }
}

/// `h_i = silu(g_i) * u_i` (spec §3.6).
pub fn silu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    for i in 0..g.len() {
        h[i] = silu_f32(g[i]) * u[i];
    }
}

/// One attention head for one query (spec §3.5). `keys`/`values` hold `n` rows of `stride`
/// floats, this head's slice starting at `off`; `scores` is scratch of length `n`.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n: usize,
    stride: usize,
    off: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    let mut m = f32::NEG_INFINITY;
    for j in 0..n {
        let s = dot8_f32(q, &keys[j * stride + off..][..hd]) * scale;
        scores[j] = s;
        if s > m {
            m = s;
        }
    }
    let mut sum = 0f32;
    for s in scores[..n].iter_mut() {
        *s = exp_f32(*s - m);
        sum += *s;
    }
    out.fill(0.0);
    for (j, &e) in scores[..n].iter().enumerate() {
        let v = &values[j * stride + off..][..hd];
        for d in 0..hd {
            out[d] += e * v[d];
        }
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}
