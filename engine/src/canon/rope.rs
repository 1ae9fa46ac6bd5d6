//! The RoPE table (spec §3.4), built once per model from the canonical f64 functions.

use super::math::{exp_f64, ln_f64, sin_cos_f64};

/// `cos` and `sin` of `pos * base^(-2i/dim)` for every position below `max_pos` and every pair
/// `i < dim / 2`, rounded to f32. Row `pos` holds `dim / 2` values.
#[derive(Debug, Clone)]
pub struct RopeTable {
    pub half: usize,
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
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
        let mut cos = Vec::with_capacity(max_pos * half);
        let mut sin = Vec::with_capacity(max_pos * half);
        for p in 0..max_pos {
            for &f in &inv_freq {
                let (s, c) = sin_cos_f64(p as f64 * f);
                cos.push(c as f32);
                sin.push(s as f32);
            }
        }
        RopeTable { half, cos, sin }
    }

    /// Rotates the pairs `(x[i], x[i + half])` of one head at position `pos` (the "NeoX" pairing
    /// of Gemma and Qwen): the same arithmetic as [`RopeTable::apply`], other pairs.
    pub fn apply_neox(&self, x: &mut [f32], pos: usize) {
        let c = &self.cos[pos * self.half..][..self.half];
        let s = &self.sin[pos * self.half..][..self.half];
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
        let c = &self.cos[pos * self.half..][..self.half];
        let s = &self.sin[pos * self.half..][..self.half];
        for i in 0..self.half {
            let (x0, x1) = (x[2 * i], x[2 * i + 1]);
            x[2 * i] = x0 * c[i] - x1 * s[i];
            x[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
    }
}
