//! The RoPE table (spec §3.4), from the canonical f64 functions.
//!
//! The table is filled lazily, [`CHUNK`] positions at a time, the first time a position in a
//! chunk is used: a model with a 32k-position context would otherwise hold two f32 tables of
//! `32768 x head_dim / 2` values (67 MB for Gemma 3's two RoPE bases) that a server rarely
//! reaches. Every value is a function of its position and pair alone, so when (or on which
//! thread) a chunk is filled cannot change a bit.

use std::sync::OnceLock;

use super::math::{exp_f64, ln_f64, sin_cos_f64};

/// Positions per lazily filled part of the table.
pub const CHUNK: usize = 256;

/// `cos` and `sin` of `pos * base^(-2i/dim)` (divided by Llama 3's factor for pair `i`, if any)
/// for every position below `max_pos` and every pair `i < dim / 2`, rounded to f32.
#[derive(Debug)]
pub struct RopeTable {
    pub half: usize,
    max_pos: usize,
    inv_freq: Vec<f64>,
    /// Chunk `k`: positions `k * CHUNK ..`, `cos` row after row, then `sin` row after row.
    chunks: Vec<OnceLock<Box<[f32]>>>,
}

impl RopeTable {
    pub fn new(dim: usize, base: f32, max_pos: usize) -> RopeTable {
        RopeTable::with_factors(dim, base, None, max_pos)
    }

    /// As [`RopeTable::new`], with Llama 3's per-pair frequency factors (`rope_freqs.weight`):
    /// pair `i`'s frequency is divided by `factors[i]` (widened to f64), spec §3.4.
    pub fn with_factors(
        dim: usize,
        base: f32,
        factors: Option<&[f32]>,
        max_pos: usize,
    ) -> RopeTable {
        let half = dim / 2;
        let ln_base = ln_f64(base as f64);
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| {
                let f = exp_f64(-((2 * i) as f64 / dim as f64) * ln_base);
                match factors {
                    Some(k) => f / k[i] as f64,
                    None => f,
                }
            })
            .collect();
        RopeTable {
            half,
            max_pos,
            inv_freq,
            chunks: (0..max_pos.div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// Positions the table covers.
    pub fn max_pos(&self) -> usize {
        self.max_pos
    }

    /// `(cos, sin)` of every pair at position `pos` (which must be below `max_pos`).
    pub fn row(&self, pos: usize) -> (&[f32], &[f32]) {
        assert!(
            pos < self.max_pos,
            "RoPE position {pos} >= {}",
            self.max_pos
        );
        let (k, i) = (pos / CHUNK, pos % CHUNK);
        let chunk = self.chunks[k].get_or_init(|| {
            let mut v = vec![0f32; 2 * CHUNK * self.half];
            let (cos, sin) = v.split_at_mut(CHUNK * self.half);
            for j in 0..CHUNK {
                for n in 0..self.half {
                    let (c, s) = self.entry(k * CHUNK + j, n);
                    cos[j * self.half + n] = c;
                    sin[j * self.half + n] = s;
                }
            }
            v.into_boxed_slice()
        });
        let h = self.half;
        (&chunk[i * h..][..h], &chunk[(CHUNK + i) * h..][..h])
    }

    /// `(cos, sin)` of pair `i` at position `pos`, computed directly (at any position, whatever
    /// `max_pos`): what [`RopeTable::row`] holds, and what one RoPE table step of a dispute
    /// recomputes on chain (`contracts/src/SwornRopeTable.sol`).
    pub fn entry(&self, pos: usize, i: usize) -> (f32, f32) {
        let (s, c) = sin_cos_f64(pos as f64 * self.inv_freq[i]);
        (c as f32, s as f32)
    }

    /// Rotates the pairs `(x[i], x[i + half])` of one head at position `pos` (the "NeoX" pairing
    /// of Gemma and Qwen): the same arithmetic as [`RopeTable::apply`], other pairs.
    pub fn apply_neox(&self, x: &mut [f32], pos: usize) {
        let (c, s) = self.row(pos);
        let h = self.half;
        for i in 0..h {
            let (x0, x1) = (x[i], x[i + h]);
            x[i] = x0 * c[i] - x1 * s[i];
            x[i + h] = x0 * s[i] + x1 * c[i];
        }
    }

    /// Rotates consecutive pairs `(x[2i], x[2i+1])` of one head at position `pos`:
    /// `(x0 c - x1 s, x0 s + x1 c)`, each product rounded, then the sum.
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let (c, s) = self.row(pos);
        for i in 0..self.half {
            let (x0, x1) = (x[2 * i], x[2 * i + 1]);
            x[2 * i] = x0 * c[i] - x1 * s[i];
            x[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lazily filled chunks hold exactly what a direct computation gives, whichever chunk is
    /// touched first, and rows across a chunk boundary are contiguous in meaning.
    #[test]
    fn lazy_rows_equal_direct_computation() {
        let t = RopeTable::new(64, 10000.0, 3 * CHUNK + 5);
        for &pos in &[3 * CHUNK + 4, 0, CHUNK - 1, CHUNK, 2 * CHUNK + 17] {
            let (c, s) = t.row(pos);
            for (i, &f) in t.inv_freq.iter().enumerate() {
                let (ws, wc) = sin_cos_f64(pos as f64 * f);
                assert_eq!(c[i].to_bits(), (wc as f32).to_bits(), "cos {pos} {i}");
                assert_eq!(s[i].to_bits(), (ws as f32).to_bits(), "sin {pos} {i}");
            }
        }
        // Only the chunks used were filled.
        assert_eq!(t.chunks.iter().filter(|c| c.get().is_some()).count(), 4);
    }
}
