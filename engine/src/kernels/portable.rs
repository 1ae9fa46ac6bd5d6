//! The portable fast path: the same row-group algorithm as the AVX2 kernels in plain Rust, with
//! fixed-size lane arrays that the compiler vectorizes for whatever the target has (SSE2, NEON,
//! ...). Used on CPUs without AVX2. As everywhere, lanes are independent outputs: each keeps the
//! spec's order over blocks.

use crate::canon::quant::{QActs, QK};
use crate::qmatrix::{QMatrix, WeightKind, GROUP};

/// Integer dot products of one activation block with the eight rows' blocks.
#[inline(always)]
fn isums_q4(qs: &[u8], x: &[i8]) -> [i32; GROUP] {
    let mut out = [0i32; GROUP];
    for (lane, o) in out.iter_mut().enumerate() {
        let q = &qs[lane * 16..lane * 16 + 16];
        let mut s = 0i32;
        for j in 0..16 {
            s += (q[j] & 0x0f) as i32 * x[j] as i32 + (q[j] >> 4) as i32 * x[j + 16] as i32;
        }
        *o = s;
    }
    out
}

#[inline(always)]
fn isums_q8(qs: &[u8], x: &[i8]) -> [i32; GROUP] {
    let mut out = [0i32; GROUP];
    for (lane, o) in out.iter_mut().enumerate() {
        let q = &qs[lane * 32..lane * 32 + 32];
        *o = q
            .iter()
            .zip(x)
            .map(|(&w, &v)| w as i8 as i32 * v as i32)
            .sum();
    }
    out
}

#[inline(always)]
fn f16s(b: &[u8]) -> [f32; GROUP] {
    let mut out = [0f32; GROUP];
    for (i, o) in out.iter_mut().enumerate() {
        *o = half::f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])).to_f32();
    }
    out
}

/// The eight outputs of row group `g` for activation row `t` (quantized kinds only).
pub fn group_row(w: &QMatrix, g: usize, xq: &QActs, t: usize) -> [f32; GROUP] {
    let nb = w.blocks();
    let gbb = w.gbb();
    let mut acc = [0f32; GROUP];
    for b in 0..nb {
        let p = &w.bytes[(g * nb + b) * gbb..][..gbb];
        let xb = t * nb + b;
        let x = &xq.q[xb * QK..][..QK];
        let dx = xq.d[xb];
        let dw = f16s(&p[..16]);
        match w.kind {
            WeightKind::Q4_1 => {
                let mw = f16s(&p[16..32]);
                let isum = isums_q4(&p[32..], x);
                let sx = xq.s[xb];
                for l in 0..GROUP {
                    acc[l] += (dw[l] * dx) * isum[l] as f32 + mw[l] * sx;
                }
            }
            WeightKind::Q4_0 => {
                let isum = isums_q4(&p[16..], x);
                let off = 8 * xq.qsum[xb];
                for l in 0..GROUP {
                    acc[l] += (dw[l] * dx) * (isum[l] - off) as f32;
                }
            }
            WeightKind::Q8_0 => {
                let isum = isums_q8(&p[16..], x);
                for l in 0..GROUP {
                    acc[l] += (dw[l] * dx) * isum[l] as f32;
                }
            }
            WeightKind::F32 => unreachable!("f32 matrices are handled by the caller"),
        }
    }
    acc
}
