//! Weight matrices in the engine's own memory layout.
//!
//! GGUF stores a quantized matrix row by row. The fast kernels want eight consecutive rows side
//! by side, so matrices are re-laid out once at load time into *row groups*: for group `g` and
//! block `b`, the eight rows' scales, then (Q4_1) their offsets, then their quants interleaved in
//! 4-byte units: chunk `c` (32 bytes) holds bytes `4c..4c+4` of each of the eight rows' GGUF
//! quant bytes, row after row. One 256-bit load of a chunk is then "eight rows x four bytes",
//! which `pmaddubsw` multiplies by four broadcast activation bytes into per-row sums that stay in
//! their SIMD lane: no horizontal reduction at all (the integer sums are exact, so the order inside
//! a block is free; the order *over* blocks is the spec's). The numbers are untouched: the layout
//! is invisible to the arithmetic, and [`QMatrix::block`] reads any block back in the GGUF's terms
//! for the scalar reference.

use crate::canon::quant::{QActs, QK};
use crate::error::{EngineError, Result};
use crate::quant::{ActBlock, Form, FormClass, Piece, QuantType};
use half::f16;

/// Rows per row group.
pub const GROUP: usize = 8;

/// The element types a weight matrix can have (spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightKind {
    /// f32 values (GGUF F32, or F16 widened exactly).
    F32,
    /// `d * (q - 8)`, q in 0..=15.
    Q4_0,
    /// `d * q + m`, q in 0..=15.
    Q4_1,
    /// `d * q`, q in -128..=127.
    Q8_0,
    /// GGUF Q5_0: `d * q`, q in -16..=15, kept in Q8_0's layout as the unsigned bytes `q + 16`
    /// (0..=31), so that the AVX2 kernel multiplies them without Q8_0's sign handling and
    /// subtracts `16 * sum(x)` from the exact integer sum (as Q4_0 subtracts `8 * sum(x)`).
    Q5_0,
    /// Q5_1 and the K-quants: the file's blocks read once at load into their 32-element pieces
    /// (spec §1.4) and laid out in row groups with exact f32 scales. Q4_K keeps its integers as
    /// nibbles in Q4_1's layout ([`NIB_Q`]); the others as bytes in Q8_0's ([`WIDE_Q`]). See
    /// [`QMatrix::piece`] for the field offsets.
    Blocks(QuantType),
}

impl WeightKind {
    /// Bytes per (row group, block) in the grouped layout.
    const fn group_block_bytes(self) -> usize {
        match self {
            WeightKind::F32 => 0,
            WeightKind::Blocks(QuantType::Q4K) => NIB_Q + GROUP * 16,
            WeightKind::Blocks(_) => WIDE_Q + GROUP * 32,
            WeightKind::Q4_0 => GROUP * 2 + GROUP * 16,
            WeightKind::Q4_1 => GROUP * 4 + GROUP * 16,
            WeightKind::Q8_0 | WeightKind::Q5_0 => GROUP * 2 + GROUP * 32,
        }
    }

    /// Bytes of one block in the GGUF file.
    const fn gguf_block_bytes(self) -> usize {
        match self {
            WeightKind::F32 | WeightKind::Blocks(_) => 0,
            WeightKind::Q4_0 => 18,
            WeightKind::Q4_1 => 20,
            WeightKind::Q8_0 | WeightKind::Q5_0 => 34,
        }
    }
}

/// One quantized block read back in GGUF terms: `value_i = d * q_i + m` (Q4_1), `d * (q_i - 8)`
/// (Q4_0, where `m` is 0 and `q` is stored unshifted) or `d * q_i` (Q8_0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    pub d: f32,
    pub m: f32,
    pub q: [i32; QK],
}

/// A `rows x cols` weight matrix; row `r` produces output `r` from an input of `cols` elements.
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub kind: WeightKind,
    pub rows: usize,
    pub cols: usize,
    /// Grouped blocks for quantized kinds (rows padded with zero blocks to a multiple of 8).
    pub(crate) bytes: Vec<u8>,
    /// Row-major values for [`WeightKind::F32`].
    pub(crate) f32s: Vec<f32>,
}

impl QMatrix {
    /// Frees the weights, keeping the shape and kind (the device holds them).
    pub(crate) fn release(&mut self) {
        self.bytes = Vec::new();
        self.f32s = Vec::new();
    }

    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// Row groups (rows rounded up to a multiple of [`GROUP`], divided by it).
    pub fn groups(&self) -> usize {
        self.rows.div_ceil(GROUP)
    }

    /// Bytes per (group, block).
    pub(crate) fn gbb(&self) -> usize {
        self.kind.group_block_bytes()
    }

    /// Builds a matrix from a GGUF tensor's raw bytes (`rows` rows of `cols` elements, GGUF
    /// layout).
    pub fn from_gguf(kind: GgufKind, rows: usize, cols: usize, raw: &[u8]) -> Result<Self> {
        let need = rows
            .checked_mul(cols)
            .and_then(|n| kind.byte_len(n))
            .ok_or_else(|| bad_shape(kind, rows, cols))?;
        if raw.len() != need {
            return Err(EngineError::Malformed(format!(
                "{kind:?} matrix {rows}x{cols} needs {need} bytes, got {}",
                raw.len()
            )));
        }
        let row_bytes = need.checked_div(rows).unwrap_or(0);
        QMatrix::from_gguf_rows(kind, rows, cols, |r, buf| {
            buf.copy_from_slice(&raw[r * row_bytes..][..row_bytes]);
            Ok(())
        })
    }

    /// Builds a matrix from a GGUF tensor read one row at a time: `read_row(r, buf)` fills
    /// `buf` with row `r`'s file bytes, rows in order. A loader then never holds a whole tensor's
    /// file bytes beside its layout (for Gemma 3's 180 MB embedding, the difference between
    /// fitting in 1.5x the file and not).
    pub fn from_gguf_rows(
        kind: GgufKind,
        rows: usize,
        cols: usize,
        mut read_row: impl FnMut(usize, &mut [u8]) -> Result<()>,
    ) -> Result<Self> {
        let bad = |why: String| EngineError::Malformed(why);
        rows.checked_mul(cols)
            .ok_or_else(|| bad(format!("matrix {rows}x{cols} overflows")))?;
        let row_bytes = kind
            .byte_len(cols)
            .ok_or_else(|| bad_shape(kind, rows, cols))?;
        let mut buf = vec![0u8; row_bytes];
        let (nb, groups) = (cols / QK, rows.div_ceil(GROUP));
        let kind =
            match kind {
                GgufKind::F32 | GgufKind::F16 | GgufKind::BF16 => {
                    if !cols.is_multiple_of(8) {
                        return Err(bad(format!("matrix width {cols} is not a multiple of 8")));
                    }
                    let mut f32s = Vec::with_capacity(rows * cols);
                    for r in 0..rows {
                        read_row(r, &mut buf)?;
                        match kind {
                            GgufKind::F32 => f32s.extend(
                                buf.chunks_exact(4)
                                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                            ),
                            GgufKind::BF16 => f32s.extend(buf.chunks_exact(2).map(|c| {
                                crate::quant::bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))
                            })),
                            _ => f32s.extend(buf.chunks_exact(2).map(|c| {
                                f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()
                            })),
                        }
                    }
                    return Ok(QMatrix {
                        kind: WeightKind::F32,
                        rows,
                        cols,
                        bytes: Vec::new(),
                        f32s,
                    });
                }
                GgufKind::Q4_0 => WeightKind::Q4_0,
                GgufKind::Q4_1 => WeightKind::Q4_1,
                GgufKind::Q8_0 => WeightKind::Q8_0,
                // A Q5_0 block is a Q8_0 block in all but storage: f16 `d`, and values `d * q` with
                // `q = q5 - 16` in -16..15, whose product term (spec §1.4, "scaled") is Q8_0's. So it
                // is widened to bytes at load (as `q + 16`, see `WeightKind::Q5_0`), bit for bit.
                GgufKind::Blocks(QuantType::Q5_0) => WeightKind::Q5_0,
                GgufKind::Blocks(qt) => WeightKind::Blocks(qt),
            };
        let gbb = kind.group_block_bytes();
        let mut bytes = vec![0u8; groups * nb * gbb];
        let mut pieces = Vec::with_capacity(nb);
        for r in 0..rows {
            read_row(r, &mut buf)?;
            let (g, lane) = (r / GROUP, r % GROUP);
            match kind {
                WeightKind::Blocks(qt) => {
                    pieces.clear();
                    for blk in buf.chunks_exact(qt.block_bytes()) {
                        qt.read_block(blk, &mut pieces);
                    }
                    for (b, p) in pieces.iter().enumerate() {
                        if !p.form.is_finite() {
                            return Err(bad(format!(
                                "non-finite {} block scale in row {r}",
                                qt.name()
                            )));
                        }
                        put_piece(qt, p, &mut bytes[(g * nb + b) * gbb..][..gbb], lane);
                    }
                }
                WeightKind::Q5_0 => {
                    for (b, src) in buf.chunks_exact(QuantType::Q5_0.block_bytes()).enumerate() {
                        pieces.clear();
                        QuantType::Q5_0.read_block(src, &mut pieces);
                        let d = &mut bytes[(g * nb + b) * gbb..][..gbb];
                        d[lane * 2..lane * 2 + 2].copy_from_slice(&src[0..2]);
                        let q: [u8; QK] = pieces[0].q.map(|v| (v + 16) as u8);
                        interleave(&q, &mut d[16..], lane);
                    }
                }
                _ => {
                    let src_bb = kind.gguf_block_bytes();
                    for (b, src) in buf.chunks_exact(src_bb).enumerate() {
                        let d = &mut bytes[(g * nb + b) * gbb..][..gbb];
                        d[lane * 2..lane * 2 + 2].copy_from_slice(&src[0..2]);
                        match kind {
                            WeightKind::Q4_0 => interleave(&src[2..18], &mut d[16..], lane),
                            WeightKind::Q4_1 => {
                                d[16 + lane * 2..][..2].copy_from_slice(&src[2..4]);
                                interleave(&src[4..20], &mut d[32..], lane);
                            }
                            _ => interleave(&src[2..34], &mut d[16..], lane),
                        }
                    }
                }
            }
        }
        let m = QMatrix {
            kind,
            rows,
            cols,
            bytes,
            f32s: Vec::new(),
        };
        m.check_finite_scales()?;
        Ok(m)
    }

    /// Rejects NaN or infinite block scales: they would poison every output, and a loader is the
    /// place to say so.
    fn check_finite_scales(&self) -> Result<()> {
        if let WeightKind::Blocks(_) = self.kind {
            return Ok(()); // checked piece by piece at load
        }
        let (nb, gbb) = (self.blocks(), self.gbb());
        let nscales = match self.kind {
            WeightKind::Q4_1 => 2 * GROUP,
            _ => GROUP,
        };
        for gb in 0..self.groups() * nb {
            let base = &self.bytes[gb * gbb..];
            for i in 0..nscales {
                let h = f16::from_bits(u16::from_le_bytes([base[2 * i], base[2 * i + 1]]));
                if !h.is_finite() {
                    return Err(EngineError::Malformed(format!(
                        "non-finite block scale in row group {} block {}",
                        gb / nb,
                        gb % nb
                    )));
                }
            }
        }
        Ok(())
    }

    /// Block `b` of row `r`, in GGUF terms (the scalar reference's view of the weights).
    pub fn block(&self, r: usize, b: usize) -> Block {
        let (nb, gbb) = (self.blocks(), self.gbb());
        let (g, lane) = (r / GROUP, r % GROUP);
        let base = &self.bytes[(g * nb + b) * gbb..][..gbb];
        let h = |o: usize| f16::from_bits(u16::from_le_bytes([base[o], base[o + 1]])).to_f32();
        let mut q = [0i32; QK];
        let nibbles = |qs: &[u8], q: &mut [i32; QK]| {
            for j in 0..16 {
                q[j] = (qs[j] & 0x0f) as i32;
                q[j + 16] = (qs[j] >> 4) as i32;
            }
        };
        match self.kind {
            WeightKind::Q4_0 => {
                nibbles(&gather::<16>(&base[16..], lane), &mut q);
                Block {
                    d: h(lane * 2),
                    m: 0.0,
                    q,
                }
            }
            WeightKind::Q4_1 => {
                nibbles(&gather::<16>(&base[32..], lane), &mut q);
                Block {
                    d: h(lane * 2),
                    m: h(16 + lane * 2),
                    q,
                }
            }
            WeightKind::Q8_0 | WeightKind::Q5_0 => {
                let off = if self.kind == WeightKind::Q5_0 { 16 } else { 0 };
                for (j, v) in gather::<32>(&base[16..], lane).iter().enumerate() {
                    q[j] = if off == 0 {
                        *v as i8 as i32
                    } else {
                        *v as i32 - off
                    };
                }
                Block {
                    d: h(lane * 2),
                    m: 0.0,
                    q,
                }
            }
            WeightKind::F32 | WeightKind::Blocks(_) => {
                panic!("block() on a matrix without row groups")
            }
        }
    }

    /// Piece `b` of row `r` of a [`WeightKind::Blocks`] matrix, read back from the row-group
    /// layout (the scalar reference's view of the weights).
    ///
    /// Per (row group, block), lane `l` being row `8g + l`: `dw` as f32 at `4l`; the second
    /// scale (`mw` for affine forms, `dmin` for Q2_K) as f32 at `32 + 4l`; then, for the byte
    /// layout, the sub-scales `s_0`, `s_1` and sub-mins `m_0`, `m_1` as i8 at `64 + l`,
    /// `72 + l`, `80 + l`, `88 + l`, and the 32 integers at [`WIDE_Q`], interleaved as Q8_0's;
    /// for Q4_K, the nibbles at [`NIB_Q`], interleaved as Q4_1's (`q_j | q_{j+16} << 4`).
    pub fn piece(&self, r: usize, b: usize) -> Piece {
        let WeightKind::Blocks(qt) = self.kind else {
            panic!("piece() on a {:?} matrix", self.kind)
        };
        let (nb, gbb) = (self.blocks(), self.gbb());
        let (g, l) = (r / GROUP, r % GROUP);
        let base = &self.bytes[(g * nb + b) * gbb..][..gbb];
        let f = |o: usize| f32::from_le_bytes(base[o..o + 4].try_into().expect("4 bytes"));
        let (dw, m2) = (f(4 * l), f(32 + 4 * l));
        let mut q = [0i8; QK];
        let (mut s, mut m) = ([0i32; 2], [0i32; 2]);
        if qt == QuantType::Q4K {
            for (j, v) in gather::<16>(&base[NIB_Q..], l).iter().enumerate() {
                q[j] = (v & 0x0f) as i8;
                q[j + 16] = (v >> 4) as i8;
            }
        } else {
            for (j, v) in gather::<32>(&base[WIDE_Q..], l).iter().enumerate() {
                q[j] = *v as i8;
            }
            let i8at = |o: usize| base[o + l] as i8 as i32;
            (s, m) = ([i8at(64), i8at(72)], [i8at(80), i8at(88)]);
        }
        let form = match qt.form_class() {
            FormClass::Scaled => Form::Scaled { dw },
            FormClass::Affine => Form::Affine { dw, mw: m2 },
            FormClass::SubScaled => Form::SubScaled { dw, s },
            FormClass::SubAffine => Form::SubAffine { dw, dmin: m2, s, m },
        };
        Piece { form, q }
    }

    /// Output `r` for activation row `t` of a [`WeightKind::Blocks`] matrix: the reference
    /// product (spec §1.4), the left fold of the pieces' terms.
    pub(crate) fn blocks_dot(&self, r: usize, xq: &QActs, t: usize) -> f32 {
        let nb = self.blocks();
        let mut acc = 0f32;
        for b in 0..nb {
            let xb = t * nb + b;
            let x = ActBlock {
                q: &xq.q[xb * QK..][..QK],
                d: xq.d[xb],
                s: xq.s[xb],
            };
            acc += self.piece(r, b).term(x);
        }
        acc
    }

    /// Row `r` as f32 values (embedding lookup, spec §3.1): `d * q` (rounded once) for Q8_0,
    /// `d * (q - 8)` for Q4_0, `d * q + m` (product rounded, then sum) for Q4_1.
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols);
        if self.kind == WeightKind::F32 {
            out.copy_from_slice(&self.f32s[r * self.cols..][..self.cols]);
            return;
        }
        if let WeightKind::Blocks(_) = self.kind {
            for b in 0..self.blocks() {
                let p = self.piece(r, b);
                for j in 0..QK {
                    out[b * QK + j] = p.value(j);
                }
            }
            return;
        }
        for b in 0..self.blocks() {
            let blk = self.block(r, b);
            for j in 0..QK {
                out[b * QK + j] = match self.kind {
                    WeightKind::Q4_0 => blk.d * (blk.q[j] - 8) as f32,
                    WeightKind::Q4_1 => blk.d * blk.q[j] as f32 + blk.m,
                    _ => blk.d * blk.q[j] as f32,
                };
            }
        }
    }
}

/// The error for a shape whose rows do not fill whole blocks of `kind`.
fn bad_shape(kind: GgufKind, rows: usize, cols: usize) -> EngineError {
    EngineError::Malformed(format!(
        "{kind:?} matrix {rows}x{cols}: rows of {cols} elements do not fill whole blocks"
    ))
}

/// Bytes of a quant chunk: four bytes from each of the eight rows of a group.
pub(crate) const CHUNK: usize = 4 * GROUP;

/// Where a Q4_K (row group, block)'s nibbles start: after eight f32 `dw` and eight f32 `mw`.
pub(crate) const NIB_Q: usize = 2 * 4 * GROUP;

/// Where a byte-layout (row group, block)'s integers start: after eight f32 `dw`, eight f32
/// second scales and four rows of eight i8 sub-scales and sub-mins.
pub(crate) const WIDE_Q: usize = 2 * 4 * GROUP + 4 * GROUP;

/// Writes piece `p` of a `qt` row into its (row group, block) `dst` as lane `lane` (the layout
/// of [`QMatrix::piece`]).
fn put_piece(qt: QuantType, p: &Piece, dst: &mut [u8], lane: usize) {
    let (dw, m2, s, m) = match p.form {
        Form::Scaled { dw } => (dw, 0.0, [0; 2], [0; 2]),
        Form::Affine { dw, mw } => (dw, mw, [0; 2], [0; 2]),
        Form::SubScaled { dw, s } => (dw, 0.0, s, [0; 2]),
        Form::SubAffine { dw, dmin, s, m } => (dw, dmin, s, m),
    };
    dst[4 * lane..][..4].copy_from_slice(&dw.to_le_bytes());
    dst[32 + 4 * lane..][..4].copy_from_slice(&m2.to_le_bytes());
    if qt == QuantType::Q4K {
        let mut nib = [0u8; 16];
        for (j, n) in nib.iter_mut().enumerate() {
            *n = p.q[j] as u8 | (p.q[j + 16] as u8) << 4;
        }
        interleave(&nib, &mut dst[NIB_Q..], lane);
    } else {
        // Every type's sub-scales and sub-mins fit in i8 (6 bits at most, or Q6_K's i8 itself).
        for (o, v) in [(64, s[0]), (72, s[1]), (80, m[0]), (88, m[1])] {
            dst[o + lane] = i8::try_from(v).expect("sub-scales fit in i8") as u8;
        }
        let q: [u8; QK] = p.q.map(|v| v as u8);
        interleave(&q, &mut dst[WIDE_Q..], lane);
    }
}

/// Writes one row's GGUF quant bytes `qs` into the group's interleaved quants `dst`, as lane
/// `lane`: bytes `4c..4c+4` go to chunk `c`, at offset `4 * lane`.
fn interleave(qs: &[u8], dst: &mut [u8], lane: usize) {
    for (c, four) in qs.chunks_exact(4).enumerate() {
        dst[c * CHUNK + lane * 4..][..4].copy_from_slice(four);
    }
}

/// The inverse of [`interleave`]: lane `lane`'s `N` quant bytes, in GGUF order.
fn gather<const N: usize>(src: &[u8], lane: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (c, four) in out.chunks_exact_mut(4).enumerate() {
        four.copy_from_slice(&src[c * CHUNK + lane * 4..][..4]);
    }
    out
}

/// The GGUF tensor types the engine loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufKind {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    /// Q5_0, Q5_1 and the K-quants (spec §1.4).
    Blocks(QuantType),
}

impl GgufKind {
    /// The block format of a quantized type; `None` for F32, F16 and BF16.
    pub fn quant(self) -> Option<QuantType> {
        match self {
            GgufKind::F32 | GgufKind::F16 | GgufKind::BF16 => None,
            GgufKind::Q4_0 => Some(QuantType::Q4_0),
            GgufKind::Q4_1 => Some(QuantType::Q4_1),
            GgufKind::Q8_0 => Some(QuantType::Q8_0),
            GgufKind::Blocks(qt) => Some(qt),
        }
    }

    /// ggml's numeric code of the type (as files store it).
    pub fn ggml_code(self) -> u32 {
        match self {
            GgufKind::F32 => 0,
            GgufKind::F16 => 1,
            GgufKind::BF16 => 30,
            k => k.quant().map_or(0, QuantType::ggml_code),
        }
    }

    /// The type ggml's code `code` names, if the engine loads it.
    pub fn from_ggml_code(code: u32) -> Option<GgufKind> {
        use GgufKind::*;
        let whole = [F32, F16, BF16, Q4_0, Q4_1, Q8_0];
        whole
            .into_iter()
            .find(|k| k.ggml_code() == code)
            .or_else(|| {
                QuantType::ALL
                    .into_iter()
                    .map(Blocks)
                    .find(|k| k.ggml_code() == code)
            })
    }

    /// Bytes a tensor of `elems` elements occupies in the file, or `None` if `elems` does not fill
    /// whole blocks or overflows.
    pub fn byte_len(self, elems: usize) -> Option<usize> {
        match self.quant() {
            None if self == GgufKind::F32 => elems.checked_mul(4),
            None => elems.checked_mul(2),
            Some(qt) => {
                if !elems.is_multiple_of(qt.block_elements()) {
                    return None;
                }
                (elems / qt.block_elements()).checked_mul(qt.block_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The layout is invisible: every block reads back exactly as the GGUF bytes say, decoded
    //! here straight from the file format, not through the layout code.
    use super::*;

    fn raw_block(kind: GgufKind, raw: &[u8], r: usize, b: usize, nb: usize) -> Block {
        let bb = kind.quant().unwrap().block_bytes();
        let s = &raw[(r * nb + b) * bb..][..bb];
        let h = |o: usize| f16::from_bits(u16::from_le_bytes([s[o], s[o + 1]])).to_f32();
        let mut q = [0i32; QK];
        let (m, qs) = match kind {
            GgufKind::Q4_1 => (h(2), &s[4..]),
            _ => (0.0, &s[2..]),
        };
        for j in 0..QK {
            q[j] = match kind {
                GgufKind::Q8_0 => qs[j] as i8 as i32,
                _ if j < 16 => (qs[j] & 0x0f) as i32,
                _ => (qs[j - 16] >> 4) as i32,
            };
        }
        Block { d: h(0), m, q }
    }

    /// The row-group layout of Q5_1 and the K-quants reads back, for every row and block,
    /// exactly the pieces the reference readers give for the file's bytes.
    #[test]
    fn block_layout_reads_back_the_files_pieces() {
        use crate::quant::QuantType;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8 & 0xbf // finite f16 fields wherever they are
        };
        let (rows, cols) = (19, 256 * 3);
        for qt in [
            QuantType::Q5_1,
            QuantType::Q2K,
            QuantType::Q3K,
            QuantType::Q4K,
            QuantType::Q5K,
            QuantType::Q6K,
        ] {
            let kind = GgufKind::Blocks(qt);
            let raw: Vec<u8> = (0..kind.byte_len(rows * cols).unwrap())
                .map(|_| byte())
                .collect();
            let m = QMatrix::from_gguf(kind, rows, cols, &raw).unwrap();
            let row_bytes = raw.len() / rows;
            for r in 0..rows {
                let want = qt.read_row(&raw[r * row_bytes..][..row_bytes], cols);
                for (b, p) in want.iter().enumerate() {
                    assert_eq!(m.piece(r, b), *p, "{} row {r} piece {b}", qt.name());
                }
            }
        }
    }

    #[test]
    fn blocks_read_back_as_the_gguf_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Keep f16 scales finite: clear the top exponent bit of every byte.
            (state >> 24) as u8 & 0xbf
        };
        let (rows, cols) = (21, 32 * 5);
        let nb = cols / QK;
        for kind in [GgufKind::Q4_0, GgufKind::Q4_1, GgufKind::Q8_0] {
            let len = kind.byte_len(rows * cols).unwrap();
            let raw: Vec<u8> = (0..len).map(|_| byte()).collect();
            let m = QMatrix::from_gguf(kind, rows, cols, &raw).unwrap();
            for r in 0..rows {
                for b in 0..nb {
                    assert_eq!(
                        m.block(r, b),
                        raw_block(kind, &raw, r, b, nb),
                        "{kind:?} {r} {b}"
                    );
                }
            }
        }
    }
}
