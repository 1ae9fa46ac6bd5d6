//! ggml's 32-element block formats (`block_q4_0` … `block_q8_0`): one piece each.
//!
//! In a 4- or 5-bit block, quant byte `j` holds element `j` in its low nibble and element
//! `j + 16` in its high nibble; a 5-bit block's `qh` (a little-endian u32) holds element `i`'s
//! fifth bit in bit `i`.

use super::{f16_at, Form, Piece};
use crate::canon::quant::QK;

/// The 4-bit values of a block's 16 quant bytes, in element order.
fn nibbles(qs: &[u8]) -> [i32; QK] {
    let mut q = [0i32; QK];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0f) as i32;
        q[j + 16] = (qs[j] >> 4) as i32;
    }
    q
}

/// The 5-bit values: nibbles plus the fifth bits from `qh`.
fn five_bits(qh: &[u8], qs: &[u8]) -> [i32; QK] {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = nibbles(qs);
    for (i, v) in q.iter_mut().enumerate() {
        *v |= (((high >> i) & 1) as i32) << 4;
    }
    q
}

/// The 8-bit form of a piece's integers, shifted by `minus` (all fit: see `Piece::q`).
fn narrow(q: [i32; QK], minus: i32) -> [i8; QK] {
    q.map(|v| (v - minus) as i8)
}

/// `block_q4_0`: f16 `d`, 16 quant bytes; `value = d * (q - 8)`.
pub(super) fn q4_0(raw: &[u8]) -> Piece {
    Piece {
        form: Form::Scaled { dw: f16_at(raw, 0) },
        q: narrow(nibbles(&raw[2..18]), 8),
    }
}

/// `block_q4_1`: f16 `d`, f16 `m`, 16 quant bytes; `value = d * q + m`.
pub(super) fn q4_1(raw: &[u8]) -> Piece {
    Piece {
        form: Form::Affine {
            dw: f16_at(raw, 0),
            mw: f16_at(raw, 2),
        },
        q: narrow(nibbles(&raw[4..20]), 0),
    }
}

/// `block_q5_0`: f16 `d`, 4 bytes `qh`, 16 quant bytes; `value = d * (q - 16)`.
pub(super) fn q5_0(raw: &[u8]) -> Piece {
    Piece {
        form: Form::Scaled { dw: f16_at(raw, 0) },
        q: narrow(five_bits(&raw[2..6], &raw[6..22]), 16),
    }
}

/// `block_q5_1`: f16 `d`, f16 `m`, 4 bytes `qh`, 16 quant bytes; `value = d * q + m`.
pub(super) fn q5_1(raw: &[u8]) -> Piece {
    Piece {
        form: Form::Affine {
            dw: f16_at(raw, 0),
            mw: f16_at(raw, 2),
        },
        q: narrow(five_bits(&raw[4..8], &raw[8..24]), 0),
    }
}

/// `block_q8_0`: f16 `d`, 32 signed bytes; `value = d * q`.
pub(super) fn q8_0(raw: &[u8]) -> Piece {
    let mut q = [0i8; QK];
    for (v, &b) in q.iter_mut().zip(&raw[2..34]) {
        *v = b as i8;
    }
    Piece {
        form: Form::Scaled { dw: f16_at(raw, 0) },
        q,
    }
}
