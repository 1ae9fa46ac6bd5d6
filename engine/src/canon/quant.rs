//! Quantization of activations to 8-bit blocks (spec §1.1), so that dot products with quantized
//! weights are exact integer sums within a block.

/// Elements per quantization block, for weights and activations alike.
pub const QK: usize = 32;

/// A batch of activation rows, each quantized in blocks of [`QK`] (spec §1.1).
#[derive(Debug, Default, Clone)]
pub struct QActs {
    /// Number of rows (tokens).
    pub rows: usize,
    /// Elements per row; a multiple of [`QK`].
    pub cols: usize,
    /// Quantized values, `rows * cols`.
    pub q: Vec<i8>,
    /// Block scales `d`, `rows * cols / QK`.
    pub d: Vec<f32>,
    /// Integer block sums `sum(q)`.
    pub qsum: Vec<i32>,
    /// `d * (sum(q) as f32)`, the term Q4_1's offset multiplies.
    pub s: Vec<f32>,
}

impl QActs {
    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// Re-shape for `rows` rows of `cols` elements, reusing the allocations.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        assert_eq!(
            cols % QK,
            0,
            "activation width {cols} is not a multiple of {QK}"
        );
        self.rows = rows;
        self.cols = cols;
        let nb = rows * cols / QK;
        self.q.resize(rows * cols, 0);
        self.d.resize(nb, 0.0);
        self.qsum.resize(nb, 0);
        self.s.resize(nb, 0.0);
    }

    /// The whole batch as a view for a quantizer to write.
    pub fn blocks_mut(&mut self) -> QBlocksMut<'_> {
        QBlocksMut {
            q: &mut self.q,
            d: &mut self.d,
            qsum: &mut self.qsum,
            s: &mut self.s,
        }
    }

    /// Disjoint views of `rows_per` rows each (the last may be shorter), for quantizing parts of
    /// the batch on different threads.
    pub fn row_parts(&mut self, rows_per: usize) -> Vec<QBlocksMut<'_>> {
        let (qn, bn) = (rows_per * self.cols, rows_per * self.blocks());
        self.q
            .chunks_mut(qn)
            .zip(self.d.chunks_mut(bn))
            .zip(self.qsum.chunks_mut(bn))
            .zip(self.s.chunks_mut(bn))
            .map(|(((q, d), qsum), s)| QBlocksMut { q, d, qsum, s })
            .collect()
    }
}

/// Consecutive blocks of a [`QActs`], as a quantizer writes them: block `i`'s values are
/// `q[32i..32i + 32]`, its scale `d[i]`, its integer sum `qsum[i]` and `s[i]`.
pub struct QBlocksMut<'a> {
    pub q: &'a mut [i8],
    pub d: &'a mut [f32],
    pub qsum: &'a mut [i32],
    pub s: &'a mut [f32],
}

/// Rounds to the nearest f16 (ties to even) and back: activation block scales are kept at f16
/// precision, as ggml's Q8_0/Q8_1 keep them, so that sworn tracks llama.cpp's numerics closely.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// The block scale and its inverse for a block whose largest magnitude is `amax > 0`.
#[inline]
pub fn block_scale(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    (d, 1.0 / d)
}

/// The scalar reference of block quantization (spec §1.1): writes `q` (32 values) and returns
/// `(d, sum q, s)` with `d` and `s = d * sum q` both rounded to f16 precision.
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; the spec maps it to -127
pub fn quantize_block_ref(x: &[f32], q: &mut [i8]) -> (f32, i32, f32) {
    debug_assert_eq!(x.len(), QK);
    let mut amax = 0f32;
    for &v in x {
        let a = v.abs();
        if a > amax {
            amax = a;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        return (0.0, 0, 0.0);
    }
    let (d, id) = block_scale(amax);
    let mut sum = 0i32;
    for (qi, &v) in q.iter_mut().zip(x) {
        let r = (v * id).round_ties_even().max(-127.0).min(127.0);
        *qi = r as i8;
        sum += r as i32;
    }
    (round_f16(d), sum, round_f16(sum as f32 * d))
}
