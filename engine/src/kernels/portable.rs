//! The portable fast path: the same row-group algorithm as the AVX2 kernels in plain Rust, with
//! fixed-size lane arrays that the compiler vectorizes for whatever the target has (SSE2, NEON,
//! ...). Used on CPUs without AVX2. As everywhere, lanes are independent outputs: each keeps the
//! spec's order over blocks.

use crate::canon::quant::{QActs, QK};
use crate::qmatrix::{QMatrix, WeightKind, CHUNK, GROUP};

/// Integer dot products of one activation block with the eight rows' blocks, from the
/// interleaved quants (chunk `c`, lane `l`: bytes `4c..4c+4` of row `l`; see `qmatrix`).
#[inline(always)]
fn isums_q4(qs: &[u8], x: &[i8]) -> [i32; GROUP] {
    let mut out = [0i32; GROUP];
    for c in 0..4 {
        let chunk = &qs[c * CHUNK..][..CHUNK];
        for (lane, o) in out.iter_mut().enumerate() {
            for i in 0..4 {
                let q = chunk[lane * 4 + i];
                *o += (q & 0x0f) as i32 * x[4 * c + i] as i32
                    + (q >> 4) as i32 * x[16 + 4 * c + i] as i32;
            }
        }
    }
    out
}

#[inline(always)]
fn isums_q8(qs: &[u8], x: &[i8]) -> [i32; GROUP] {
    let mut out = [0i32; GROUP];
    for c in 0..8 {
        let chunk = &qs[c * CHUNK..][..CHUNK];
        for (lane, o) in out.iter_mut().enumerate() {
            for i in 0..4 {
                *o += chunk[lane * 4 + i] as i8 as i32 * x[4 * c + i] as i32;
            }
        }
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
            WeightKind::F32 | WeightKind::Q5_0 | WeightKind::Blocks(_) => {
                unreachable!("f32 and block-format matrices are handled by the caller")
            }
        }
    }
    acc
}
