//! ggml's K-quant super-blocks of 256 elements (`block_q2_K` … `block_q6_K`): eight pieces each.
//!
//! Each reader follows the layout of ggml's `dequantize_row_q*_K`; the scale products it forms
//! (`d * sc`, `dmin * m`) are exact in f32 (an f16 times an integer of at most 8 bits), so the
//! pieces carry the file's numbers unrounded.

use super::{f16_at, Form, Piece};
use crate::canon::quant::QK;

/// Eight empty pieces of `form`, to be filled element by element.
fn pieces(out: &mut Vec<Piece>, form: impl Fn(usize) -> Form) -> usize {
    let start = out.len();
    for k in 0..8 {
        out.push(Piece {
            form: form(k),
            q: [0; QK],
        });
    }
    start
}

/// Sets element `e` (0..256) of the super-block whose pieces start at `start`.
fn set(out: &mut [Piece], start: usize, e: usize, q: i32) {
    out[start + e / QK].q[e % QK] = q as i8; // every K-quant value fits (see `Piece::q`)
}

/// `block_q2_K`: 16 bytes of (scale | min << 4) per 16 elements, 64 bytes of 2-bit quants,
/// f16 `d`, f16 `dmin`; `value = (d * scale) * q - dmin * min`.
pub(super) fn q2_k(raw: &[u8], out: &mut Vec<Piece>) {
    let (scales, qs) = (&raw[0..16], &raw[16..80]);
    let (d, dmin) = (f16_at(raw, 80), f16_at(raw, 82));
    let sc = |k: usize, h: usize| (scales[2 * k + h] & 0x0f) as i32;
    let mn = |k: usize, h: usize| (scales[2 * k + h] >> 4) as i32;
    let start = pieces(out, |k| Form::SubAffine {
        dw: d,
        dmin,
        s: [sc(k, 0), sc(k, 1)],
        m: [mn(k, 0), mn(k, 1)],
    });
    for n in 0..2 {
        for j in 0..4 {
            for l in 0..32 {
                let q = (qs[32 * n + l] >> (2 * j)) & 3;
                set(out, start, 128 * n + 32 * j + l, q as i32);
            }
        }
    }
}

/// The 16 six-bit scales of `block_q3_K`, unpacked from their 12 bytes and centred (`- 32`).
fn q3_k_scales(packed: &[u8]) -> [i32; 16] {
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let aux = [
        (a0 & LOW4) | ((tmp & LOW2) << 4),
        (a1 & LOW4) | (((tmp >> 2) & LOW2) << 4),
        ((a0 >> 4) & LOW4) | (((tmp >> 4) & LOW2) << 4),
        ((a1 >> 4) & LOW4) | (((tmp >> 6) & LOW2) << 4),
    ];
    let mut s = [0i32; 16];
    for (i, v) in s.iter_mut().enumerate() {
        *v = ((aux[i / 4] >> (8 * (i % 4))) & 0xff) as i32 - 32;
    }
    s
}

/// `block_q3_K`: 32 bytes `hmask`, 64 bytes of low 2-bit quants, 12 bytes of packed 6-bit
/// scales, f16 `d`; `value = (d * (scale - 32)) * (q - 4)` with the third bit of `q` from
/// `hmask` (set means "no -4").
pub(super) fn q3_k(raw: &[u8], out: &mut Vec<Piece>) {
    let (hmask, qs, d) = (&raw[0..32], &raw[32..96], f16_at(raw, 108));
    let s = q3_k_scales(&raw[96..108]);
    let start = pieces(out, |k| Form::SubScaled {
        dw: d,
        s: [s[2 * k], s[2 * k + 1]],
    });
    for n in 0..2 {
        for j in 0..4 {
            let bit = 1u8 << (4 * n + j);
            for l in 0..32 {
                let low = ((qs[32 * n + l] >> (2 * j)) & 3) as i32;
                let q = if hmask[l] & bit != 0 { low } else { low - 4 };
                set(out, start, 128 * n + 32 * j + l, q);
            }
        }
    }
}

/// Scale and min `k` (0..8) of a Q4_K / Q5_K super-block, from its 12 packed bytes (ggml's
/// `get_scale_min_k4`).
fn scale_min_k4(k: usize, q: &[u8]) -> (i32, i32) {
    if k < 4 {
        ((q[k] & 63) as i32, (q[k + 4] & 63) as i32)
    } else {
        (
            ((q[k + 4] & 0x0f) | ((q[k - 4] >> 6) << 4)) as i32,
            ((q[k + 4] >> 4) | ((q[k] >> 6) << 4)) as i32,
        )
    }
}

/// The eight affine pieces of a Q4_K / Q5_K super-block: `dw = d * sc`, `mw = -(dmin * m)`.
fn affine_k(raw: &[u8], out: &mut Vec<Piece>) -> usize {
    let (d, dmin) = (f16_at(raw, 0), f16_at(raw, 2));
    let scales = &raw[4..16];
    pieces(out, |k| {
        let (sc, m) = scale_min_k4(k, scales);
        Form::Affine {
            dw: d * sc as f32,
            mw: -(dmin * m as f32),
        }
    })
}

/// `block_q4_K`: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins, 128 quant bytes; in
/// each 64 elements, the low nibbles of 32 bytes are the first 32, the high nibbles the next.
pub(super) fn q4_k(raw: &[u8], out: &mut Vec<Piece>) {
    let start = affine_k(raw, out);
    let qs = &raw[16..144];
    for c in 0..4 {
        for l in 0..32 {
            let b = qs[32 * c + l];
            set(out, start, 64 * c + l, (b & 0x0f) as i32);
            set(out, start, 64 * c + 32 + l, (b >> 4) as i32);
        }
    }
}

/// `block_q5_K`: as Q4_K plus 32 bytes `qh` whose bits `2c` and `2c + 1` are the fifth bits of
/// element `l` of the two halves of the `c`-th 64 elements.
pub(super) fn q5_k(raw: &[u8], out: &mut Vec<Piece>) {
    let start = affine_k(raw, out);
    let (qh, qs) = (&raw[16..48], &raw[48..176]);
    for c in 0..4 {
        for l in 0..32 {
            let b = qs[32 * c + l];
            let hi = |bit: usize| (((qh[l] >> bit) & 1) as i32) << 4;
            set(out, start, 64 * c + l, (b & 0x0f) as i32 | hi(2 * c));
            set(out, start, 64 * c + 32 + l, (b >> 4) as i32 | hi(2 * c + 1));
        }
    }
}

/// `block_q6_K`: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed 8-bit
/// scales (one per 16 elements), f16 `d`; `value = (d * scale) * (q - 32)`.
pub(super) fn q6_k(raw: &[u8], out: &mut Vec<Piece>) {
    let (ql, qh, d) = (&raw[0..128], &raw[128..192], f16_at(raw, 208));
    let sc = |i: usize| raw[192 + i] as i8 as i32;
    let start = pieces(out, |k| Form::SubScaled {
        dw: d,
        s: [sc(2 * k), sc(2 * k + 1)],
    });
    for n in 0..2 {
        let (ql, qh) = (&ql[64 * n..], &qh[32 * n..]);
        for l in 0..32 {
            let q = |low: u8, shift: usize| (low | ((qh[l] >> shift) & 3) << 4) as i32 - 32;
            let e = 128 * n + l;
            set(out, start, e, q(ql[l] & 0x0f, 0));
            set(out, start, e + 32, q(ql[l + 32] & 0x0f, 2));
            set(out, start, e + 64, q(ql[l] >> 4, 4));
            set(out, start, e + 96, q(ql[l + 32] >> 4, 6));
        }
    }
}
