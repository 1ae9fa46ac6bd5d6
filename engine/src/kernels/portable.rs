//! The portable fast path: the same row-group algorithm as the AVX2 kernels in plain Rust, with
//! fixed-size lane arrays that the compiler vectorizes for whatever the target has (SSE2, NEON,
//! ...). Used on CPUs without AVX2. As everywhere, lanes are independent outputs: each keeps the
//! spec's order over blocks.

use crate::canon::quant::{QActs, QK};
use crate::qmatrix::{QMatrix, WeightKind, CHUNK, GROUP, NIB_Q, WIDE_Q};
use crate::quant::{FormClass, QuantType};

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

/// Integer dot products of one activation block with the eight rows' 32 bytes (Q8_0's
/// interleaving), the two halves of 16 elements apart (chunks 0-3 and 4-7): the bytes signed
/// (`SIGNED`: Q8_0, Q5_1 and the K-quants' byte layout) or unsigned (Q5_0's `q + 16`).
#[inline(always)]
fn isums_bytes<const SIGNED: bool>(qs: &[u8], x: &[i8]) -> [[i32; GROUP]; 2] {
    let mut out = [[0i32; GROUP]; 2];
    for c in 0..8 {
        let chunk = &qs[c * CHUNK..][..CHUNK];
        for (lane, o) in out[c / 4].iter_mut().enumerate() {
            for i in 0..4 {
                let q = chunk[lane * 4 + i];
                let q = if SIGNED { q as i8 as i32 } else { q as i32 };
                *o += q * x[4 * c + i] as i32;
            }
        }
    }
    out
}

/// [`isums_bytes`] over the whole block.
#[inline(always)]
fn isums_whole<const SIGNED: bool>(qs: &[u8], x: &[i8]) -> [i32; GROUP] {
    let [h0, h1] = isums_bytes::<SIGNED>(qs, x);
    std::array::from_fn(|l| h0[l] + h1[l])
}

#[inline(always)]
fn f32s(b: &[u8]) -> [f32; GROUP] {
    let mut out = [0f32; GROUP];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    out
}

/// Eight rows' i8 sub-scales (or sub-mins) of a byte-layout block.
#[inline(always)]
fn i8s(b: &[u8]) -> [i32; GROUP] {
    let mut out = [0i32; GROUP];
    for (o, &v) in out.iter_mut().zip(b) {
        *o = v as i8 as i32;
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
        if let WeightKind::Blocks(qt) = w.kind {
            blocks_block(qt, p, xq, xb, x, &mut acc);
            continue;
        }
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
                let isum = isums_whole::<true>(&p[16..], x);
                for l in 0..GROUP {
                    acc[l] += (dw[l] * dx) * isum[l] as f32;
                }
            }
            WeightKind::Q5_0 => {
                let isum = isums_whole::<false>(&p[16..], x);
                let off = 16 * xq.qsum[xb];
                for l in 0..GROUP {
                    acc[l] += (dw[l] * dx) * (isum[l] - off) as f32;
                }
            }
            WeightKind::F32 | WeightKind::Blocks(_) => {
                unreachable!("f32 matrices are handled by the caller, block formats above")
            }
        }
    }
    acc
}

/// One block of a Q5_1 or K-quant row group (layout of `QMatrix::piece`) into the eight
/// accumulators: each form's term (spec §1.4), as `Piece::term` computes it.
#[inline(always)]
fn blocks_block(qt: QuantType, p: &[u8], xq: &QActs, xb: usize, x: &[i8], acc: &mut [f32; GROUP]) {
    let (dw, m2, dx, sx) = (f32s(&p[..32]), f32s(&p[32..64]), xq.d[xb], xq.s[xb]);
    if qt == QuantType::Q4K {
        let isum = isums_q4(&p[NIB_Q..], x);
        for l in 0..GROUP {
            acc[l] += (dw[l] * dx) * isum[l] as f32 + m2[l] * sx;
        }
        return;
    }
    let [h0, h1] = isums_bytes::<true>(&p[WIDE_Q..], x);
    let (s0, s1) = (i8s(&p[64..72]), i8s(&p[72..80]));
    let sub = |l: usize| s0[l] * h0[l] + s1[l] * h1[l];
    match qt.form_class() {
        FormClass::Scaled => {
            (0..GROUP).for_each(|l| acc[l] += (dw[l] * dx) * (h0[l] + h1[l]) as f32)
        }
        FormClass::Affine => {
            (0..GROUP).for_each(|l| acc[l] += (dw[l] * dx) * (h0[l] + h1[l]) as f32 + m2[l] * sx)
        }
        FormClass::SubScaled => (0..GROUP).for_each(|l| acc[l] += (dw[l] * dx) * sub(l) as f32),
        FormClass::SubAffine => {
            let (m0, m1) = (i8s(&p[80..88]), i8s(&p[88..96]));
            let sum = |r: &[i8]| r.iter().map(|&v| v as i32).sum::<i32>();
            let (x0, x1) = (sum(&x[..16]), sum(&x[16..]));
            for l in 0..GROUP {
                let msum = m0[l] * x0 + m1[l] * x1;
                acc[l] += (dw[l] * dx) * sub(l) as f32 - (m2[l] * dx) * msum as f32;
            }
        }
    }
}
