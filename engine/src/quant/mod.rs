//! GGUF's quantized block formats, read into the canonical form that sworn's products use
//! (`docs/canonical-arithmetic.md` §1.2 and §1.4), with the scalar reference dot product of each.
//!
//! Every format is seen as a sequence of 32-element pieces ([`Piece`]), one per activation block
//! (§1.1): integer weights `q` and the few scales that turn `sum(q * qx)` into the piece's
//! contribution to an output. A 32-element format (Q4_0 … Q8_0, `legacy`) has one piece per
//! block; a 256-element K-quant super-block (`kquants`) has eight. Reading a block never rounds:
//! each piece's scales are exact products of the block's f16 fields and small integers, so the
//! pieces say exactly what the file says, and every value equals what ggml's dequantization gives
//! (tested against llama.cpp's independent `gguf` Python package, `tests/golden/quants.json`).
//!
//! These are the reference: the fast kernels lay the same numbers out for SIMD, and are tested
//! to give the bits [`row_dot`] gives.

mod kquants;
mod legacy;

use crate::canon::quant::QK;

/// Elements in a K-quant super-block.
pub const QK_K: usize = 256;

/// The quantized tensor types sworn reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

impl QuantType {
    /// Every type, in ggml's code order.
    pub const ALL: [QuantType; 10] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2K,
        QuantType::Q3K,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
    ];

    /// ggml's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q2K => "Q2_K",
            QuantType::Q3K => "Q3_K",
            QuantType::Q4K => "Q4_K",
            QuantType::Q5K => "Q5_K",
            QuantType::Q6K => "Q6_K",
        }
    }

    /// ggml's numeric code of the type (`ggml_type`, as files store it, and the CUDA kernels'
    /// `T_*`).
    pub fn ggml_code(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q2K => 10,
            QuantType::Q3K => 11,
            QuantType::Q4K => 12,
            QuantType::Q5K => 13,
            QuantType::Q6K => 14,
        }
    }

    /// Elements per block in the file (32, or 256 for K-quants).
    pub fn block_elements(self) -> usize {
        match self {
            QuantType::Q2K | QuantType::Q3K | QuantType::Q4K | QuantType::Q5K | QuantType::Q6K => {
                QK_K
            }
            _ => QK,
        }
    }

    /// Bytes per block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::Q4_0 => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q5_0 => 22,
            QuantType::Q5_1 => 24,
            QuantType::Q8_0 => 34,
            QuantType::Q2K => 84,
            QuantType::Q3K => 110,
            QuantType::Q4K => 144,
            QuantType::Q5K => 176,
            QuantType::Q6K => 210,
        }
    }

    /// Reads one block of the file (`block_bytes()` bytes) into its 32-element pieces, in
    /// element order.
    pub fn read_block(self, raw: &[u8], out: &mut Vec<Piece>) {
        debug_assert_eq!(raw.len(), self.block_bytes());
        match self {
            QuantType::Q4_0 => out.push(legacy::q4_0(raw)),
            QuantType::Q4_1 => out.push(legacy::q4_1(raw)),
            QuantType::Q5_0 => out.push(legacy::q5_0(raw)),
            QuantType::Q5_1 => out.push(legacy::q5_1(raw)),
            QuantType::Q8_0 => out.push(legacy::q8_0(raw)),
            QuantType::Q2K => kquants::q2_k(raw, out),
            QuantType::Q3K => kquants::q3_k(raw, out),
            QuantType::Q4K => kquants::q4_k(raw, out),
            QuantType::Q5K => kquants::q5_k(raw, out),
            QuantType::Q6K => kquants::q6_k(raw, out),
        }
    }

    /// The form of every piece of this type (spec §1.4).
    pub fn form_class(self) -> FormClass {
        match self {
            QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => FormClass::Scaled,
            QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4K | QuantType::Q5K => {
                FormClass::Affine
            }
            QuantType::Q3K | QuantType::Q6K => FormClass::SubScaled,
            QuantType::Q2K => FormClass::SubAffine,
        }
    }

    /// Reads a whole row (`cols` elements, a multiple of the block size) into pieces.
    pub fn read_row(self, raw: &[u8], cols: usize) -> Vec<Piece> {
        let mut out = Vec::with_capacity(cols / QK);
        for b in raw.chunks_exact(self.block_bytes()) {
            self.read_block(b, &mut out);
        }
        debug_assert_eq!(out.len() * QK, cols);
        out
    }
}

/// How a piece's integers become values, and its term in a product (§1.2, §1.4). All scales are
/// exact: f16 fields widened to f32, times integers of at most 8 bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Form {
    /// `value_i = dw * q_i + mw`. Term: `(dw * dx) * isum + mw * sx`.
    /// Q4_1, Q5_1 (`mw` the block's `m`), Q4_K, Q5_K (`dw = d * sc`, `mw = -(dmin * m)`).
    Affine { dw: f32, mw: f32 },
    /// `value_i = dw * q_i` (q signed). Term: `(dw * dx) * isum`. Q4_0, Q5_0, Q8_0.
    Scaled { dw: f32 },
    /// Two halves of 16 with integer sub-scales: `value_i = (dw * s_h) * q_i` for `i` in half
    /// `h`; `isum = s_0 * sum_{i<16} q_i qx_i + s_1 * sum_{i>=16} q_i qx_i`. Term:
    /// `(dw * dx) * isum`. Q3_K, Q6_K.
    SubScaled { dw: f32, s: [i32; 2] },
    /// Two halves of 16 with integer sub-scales and sub-mins: `value_i = (dw * s_h) * q_i -
    /// dmin * m_h`; `isum` as for `SubScaled`, `msum = m_0 * sum_{i<16} qx_i + m_1 *
    /// sum_{i>=16} qx_i`. Term: `(dw * dx) * isum - (dmin * dx) * msum`. Q2_K.
    SubAffine {
        dw: f32,
        dmin: f32,
        s: [i32; 2],
        m: [i32; 2],
    },
}

/// Which [`Form`] a type's pieces take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormClass {
    Scaled,
    Affine,
    SubScaled,
    SubAffine,
}

impl Form {
    /// Whether every float scale is finite (a NaN or infinite scale is a malformed file).
    pub fn is_finite(&self) -> bool {
        match *self {
            Form::Affine { dw, mw } => dw.is_finite() && mw.is_finite(),
            Form::Scaled { dw } | Form::SubScaled { dw, .. } => dw.is_finite(),
            Form::SubAffine { dw, dmin, .. } => dw.is_finite() && dmin.is_finite(),
        }
    }
}

/// 32 consecutive weights of a row in canonical form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub form: Form,
    /// The integer weights (their range depends on the type; every type's fit in 8 signed bits).
    pub q: [i8; QK],
}

/// One activation block (§1.1): quantized values, scale `dx`, and `sx = f16(qsum * d0)`.
#[derive(Debug, Clone, Copy)]
pub struct ActBlock<'a> {
    pub q: &'a [i8],
    pub d: f32,
    pub s: f32,
}

impl Piece {
    /// The piece's `i`-th value, as ggml dequantizes it.
    pub fn value(&self, i: usize) -> f32 {
        let q = self.q[i] as f32;
        let h = i / 16;
        match self.form {
            Form::Affine { dw, mw } => dw * q + mw,
            Form::Scaled { dw } => dw * q,
            Form::SubScaled { dw, s } => (dw * s[h] as f32) * q,
            Form::SubAffine { dw, dmin, s, m } => (dw * s[h] as f32) * q - dmin * m[h] as f32,
        }
    }

    /// The piece's term in a product with activation block `x` (§1.2, §1.4): exact integer
    /// sums, then the fixed float operations of its form.
    pub fn term(&self, x: ActBlock<'_>) -> f32 {
        let half = |h: usize| -> (i32, i32) {
            let mut dot = 0i32;
            let mut sum = 0i32;
            for i in 16 * h..16 * h + 16 {
                dot += self.q[i] as i32 * x.q[i] as i32;
                sum += x.q[i] as i32;
            }
            (dot, sum)
        };
        let ((dot0, sum0), (dot1, sum1)) = (half(0), half(1));
        match self.form {
            Form::Affine { dw, mw } => (dw * x.d) * (dot0 + dot1) as f32 + mw * x.s,
            Form::Scaled { dw } => (dw * x.d) * (dot0 + dot1) as f32,
            Form::SubScaled { dw, s } => (dw * x.d) * (s[0] * dot0 + s[1] * dot1) as f32,
            Form::SubAffine { dw, dmin, s, m } => {
                let isum = s[0] * dot0 + s[1] * dot1;
                let msum = m[0] * sum0 + m[1] * sum1;
                (dw * x.d) * isum as f32 - (dmin * x.d) * msum as f32
            }
        }
    }
}

/// The reference product of one weight row (as pieces) with one activation row (§1.2): the left
/// fold of the pieces' terms, in order, from `+0.0`.
pub fn row_dot(row: &[Piece], acts: &[i8], d: &[f32], s: &[f32]) -> f32 {
    let mut acc = 0f32;
    for (b, p) in row.iter().enumerate() {
        let x = ActBlock {
            q: &acts[b * QK..b * QK + QK],
            d: d[b],
            s: s[b],
        };
        acc += p.term(x);
    }
    acc
}

/// Widens a bfloat16 (the top half of an f32) exactly.
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// An f16 field of a block, widened exactly.
fn f16_at(raw: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([raw[at], raw[at + 1]])).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::quant::quantize_block_ref;

    fn golden() -> serde_json::Value {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/quants.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The golden file's block types (BF16 left out): name, type, and each block's pieces.
    fn golden_pieces() -> Vec<(String, QuantType, Vec<Piece>)> {
        let g = golden();
        g["types"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| {
                let name = t["type"].as_str().unwrap();
                let qt = *QuantType::ALL.iter().find(|q| q.name() == name)?;
                let raw = hex(t["bytes"].as_str().unwrap());
                let pieces = qt.read_row(&raw, raw.len() / qt.block_bytes() * qt.block_elements());
                Some((name.to_string(), qt, pieces))
            })
            .collect()
    }

    /// Every type's values equal llama.cpp's `gguf` package's dequantization, bit for bit.
    #[test]
    fn blocks_read_as_ggml_dequantizes_them() {
        let g = golden();
        let mut seen = Vec::new();
        for t in g["types"].as_array().unwrap() {
            let name = t["type"].as_str().unwrap();
            let raw = hex(t["bytes"].as_str().unwrap());
            let want: Vec<u32> = t["values_f32_bits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got: Vec<u32> = if name == "BF16" {
                raw.chunks_exact(2)
                    .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])).to_bits())
                    .collect()
            } else {
                let qt = *QuantType::ALL.iter().find(|q| q.name() == name).unwrap();
                assert_eq!(t["block_bytes"], qt.block_bytes(), "{name}");
                assert_eq!(t["block_elements"], qt.block_elements(), "{name}");
                let pieces = qt.read_row(&raw, raw.len() / qt.block_bytes() * qt.block_elements());
                pieces
                    .iter()
                    .flat_map(|p| (0..QK).map(|i| p.value(i).to_bits()))
                    .collect()
            };
            assert_eq!(got.len(), want.len(), "{name}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g,
                    w,
                    "{name} element {i}: {} vs gguf's {}",
                    f32::from_bits(*g),
                    f32::from_bits(*w)
                );
            }
            seen.push(name.to_string());
        }
        assert_eq!(seen.len(), QuantType::ALL.len() + 1, "{seen:?}");
    }

    /// Integer ranges: what the fast kernels may assume about each type's pieces.
    #[test]
    fn piece_integers_stay_in_their_ranges() {
        for (name, qt, pieces) in golden_pieces() {
            let (lo, hi) = match qt {
                QuantType::Q4_0 => (-8, 7),
                QuantType::Q5_0 => (-16, 15),
                QuantType::Q8_0 => (-128, 127),
                QuantType::Q4_1 | QuantType::Q4K => (0, 15),
                QuantType::Q5_1 | QuantType::Q5K => (0, 31),
                QuantType::Q2K => (0, 3),
                QuantType::Q3K => (-4, 3),
                QuantType::Q6K => (-32, 31),
            };
            for p in pieces {
                assert!(
                    p.q.iter().all(|&q| (lo..=hi).contains(&(q as i32))),
                    "{name}"
                );
            }
        }
    }

    /// For the three types the engine already loads, the pieces' fold is exactly the engine's
    /// scalar reference kernel (§1.2): the new table restates §1.2, bit for bit.
    #[test]
    fn row_dot_is_the_engines_scalar_product_for_q4_0_q4_1_q8_0() {
        use crate::canon::quant::QActs;
        use crate::kernels::scalar;
        use crate::qmatrix::{GgufKind, QMatrix};
        let (rows, cols) = (9, 96);
        let mut seed = 0x5eed_u64;
        let mut byte = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let x: Vec<f32> = (0..2 * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.03)
            .collect();
        let mut acts = QActs::default();
        acts.resize(2, cols);
        scalar::quantize_blocks(&x, acts.blocks_mut());
        for (kind, qt) in [
            (GgufKind::Q4_0, QuantType::Q4_0),
            (GgufKind::Q4_1, QuantType::Q4_1),
            (GgufKind::Q8_0, QuantType::Q8_0),
        ] {
            let bb = qt.block_bytes();
            let mut raw: Vec<u8> = (0..rows * cols / QK * bb).map(|_| byte()).collect();
            for blk in raw.chunks_exact_mut(bb) {
                // Finite f16 scale (and offset) fields.
                let d = half::f16::from_f32(0.01 + blk[5] as f32 * 1e-4);
                let m = half::f16::from_f32((blk[6] as f32 - 128.0) * 1e-3);
                blk[0..2].copy_from_slice(&d.to_le_bytes());
                if qt == QuantType::Q4_1 {
                    blk[2..4].copy_from_slice(&m.to_le_bytes());
                }
            }
            let w = QMatrix::from_gguf(kind, rows, cols, &raw).unwrap();
            let row_bytes = cols / QK * bb;
            for r in 0..rows {
                let pieces = qt.read_row(&raw[r * row_bytes..][..row_bytes], cols);
                for t in 0..2 {
                    let nb = cols / QK;
                    let want = scalar::dot_row(&w, r, &acts, &x, t);
                    let got = row_dot(
                        &pieces,
                        &acts.q[t * cols..][..cols],
                        &acts.d[t * nb..][..nb],
                        &acts.s[t * nb..][..nb],
                    );
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{} row {r} token {t}",
                        qt.name()
                    );
                }
            }
        }
    }

    /// Q5_0 matrices are widened to bytes at load (`QMatrix::from_gguf`): every kernel then
    /// gives, bit for bit, the Q5_0 reference product of the file's blocks.
    #[test]
    fn q5_0_widened_to_bytes_keeps_every_bit() {
        use crate::canon::quant::QActs;
        use crate::kernels::{Isa, Runner};
        use crate::qmatrix::{GgufKind, QMatrix, WeightKind};
        let g = golden();
        let t = g["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "Q5_0")
            .unwrap();
        let raw = hex(t["bytes"].as_str().unwrap());
        let (rows, cols) = (2, 64); // the four golden blocks as a 2x64 matrix
        let w = QMatrix::from_gguf(GgufKind::Blocks(QuantType::Q5_0), rows, cols, &raw).unwrap();
        assert_eq!(w.kind, WeightKind::Q5_0);
        let x: Vec<f32> = (0..3 * cols)
            .map(|i| ((i * 29 % 61) as f32 - 30.0) * 0.05)
            .collect();
        let mut acts = QActs::default();
        acts.resize(3, cols);
        crate::kernels::scalar::quantize_blocks(&x, acts.blocks_mut());
        let nb = cols / QK;
        for isa in [Isa::Scalar, Isa::Portable, Isa::detect()] {
            let rt = Runner::new(isa, 1).unwrap();
            let mut out = Vec::new();
            rt.matmul_many(&[&w], &acts, &x, 3, &mut [&mut out]);
            for t in 0..3 {
                for r in 0..rows {
                    let pieces = QuantType::Q5_0.read_row(&raw[r * 44..][..44], cols);
                    let want = row_dot(
                        &pieces,
                        &acts.q[t * cols..][..cols],
                        &acts.d[t * nb..][..nb],
                        &acts.s[t * nb..][..nb],
                    );
                    assert_eq!(
                        out[t * rows + r].to_bits(),
                        want.to_bits(),
                        "{}",
                        isa.name()
                    );
                }
            }
            // Embedding rows are the same values too.
            let mut row = vec![0f32; cols];
            w.row_f32(1, &mut row);
            let pieces = QuantType::Q5_0.read_row(&raw[44..88], cols);
            for (i, v) in row.iter().enumerate() {
                assert_eq!(v.to_bits(), pieces[i / QK].value(i % QK).to_bits());
            }
        }
    }

    /// A piece's term is the spec's formula; checked here against a product computed from the
    /// values in f64, which it must approximate closely (it is not bit-equal: the spec rounds
    /// at fixed points, f64 does not).
    #[test]
    fn terms_approximate_the_exact_product() {
        for (name, _, pieces) in golden_pieces() {
            for (k, p) in pieces.iter().enumerate() {
                let x: Vec<f32> = (0..QK)
                    .map(|i| ((k * 31 + i * 17) % 23) as f32 * 0.1 - 1.1)
                    .collect();
                let mut q = [0i8; QK];
                let (d, _, s) = quantize_block_ref(&x, &mut q);
                let term = p.term(ActBlock { q: &q, d, s }) as f64;
                // The same product from the dequantized values and activations.
                let exact: f64 = (0..QK)
                    .map(|i| p.value(i) as f64 * (q[i] as f64 * d as f64))
                    .sum();
                let scale: f64 = (0..QK)
                    .map(|i| (p.value(i) as f64 * x[i] as f64).abs())
                    .sum::<f64>()
                    .max(1e-6);
                // Affine forms use sx, which rounds the activation sum to f16.
                assert!(
                    (term - exact).abs() <= 2e-3 * scale,
                    "{name} piece {k}: {term} vs {exact}"
                );
            }
        }
    }

    /// The CUDA kernels' type codes (`T_*` in `engine/cuda/common.cuh`) are ggml's, as
    /// [`QuantType::ggml_code`] gives them: one source, checked against the header.
    #[test]
    fn the_cuda_header_uses_the_same_type_codes() {
        let header = include_str!("../../cuda/common.cuh");
        for qt in QuantType::ALL {
            let define = format!("#define T_{} {}", qt.name(), qt.ggml_code());
            assert!(header.contains(&define), "common.cuh lacks {define:?}");
        }
    }

    #[test]
    fn ggml_codes_name_each_file_type_once() {
        use crate::qmatrix::GgufKind;
        let whole = [GgufKind::F32, GgufKind::F16, GgufKind::BF16];
        for k in whole
            .into_iter()
            .chain(QuantType::ALL.map(GgufKind::Blocks))
        {
            let back = GgufKind::from_ggml_code(k.ggml_code()).unwrap();
            assert_eq!(back.ggml_code(), k.ggml_code());
            assert_eq!(back.byte_len(256), k.byte_len(256), "{k:?}");
        }
        assert_eq!(GgufKind::from_ggml_code(2), Some(GgufKind::Q4_0));
        assert_eq!(
            GgufKind::from_ggml_code(6),
            Some(GgufKind::Blocks(QuantType::Q5_0))
        );
        assert_eq!(
            GgufKind::from_ggml_code(15),
            None,
            "Q8_K is not a weight type sworn reads"
        );
    }
}
