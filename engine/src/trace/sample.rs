//! A sampled step's trace (`docs/dispute.md` §5.2, §5.6): canonical-arithmetic §4 laid out so
//! that every word is one bounded step from earlier words.
//!
//! The candidates' order is the hard part: the first word two sorted lists disagree on cannot
//! be checked locally (a liar's skipped candidate shows only at the end). So the order is a
//! bottom-up merge sort whose every level is committed, each output word a pair `(id, a)` with
//! `a` the count taken from the run's first half so far: word `k` is then a pure function of
//! word `k - 1` and two words of the level below, whatever the input. After the sort, top-p,
//! min-p and the draw are running values, one word per candidate.

use super::layout::{merge_levels, Kind, Sampled};
use crate::canon::math::exp_f32;
use crate::error::{EngineError, Result};
use crate::sampling::{candidate_order, uniform, SamplingParams};

/// Whether candidate `a` comes before `b` in the total order (canonical-arithmetic §4.4):
/// scaled logit descending (`total_cmp` of the trace's words), then id ascending.
pub fn before(scaled: &[u32], a: u32, b: u32) -> Result<bool> {
    let value = |id: u32| {
        scaled
            .get(id as usize)
            .map(|&w| f32::from_bits(w))
            .ok_or_else(|| EngineError::Trace(format!("candidate id {id} is past the vocabulary")))
    };
    Ok(candidate_order(value(a)?, a, value(b)?, b).is_lt())
}

/// Where output `k` of a merge level of `v` candidates takes its inputs from: `q` its index in
/// its run, `(a0, alen)` and `(b0, blen)` the run's two halves in the level below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeAt {
    pub q: usize,
    pub a0: usize,
    pub alen: usize,
    pub b0: usize,
    pub blen: usize,
}

/// [`MergeAt`] of output `k` of level `level` (from 1) over `v` candidates.
pub fn merge_at(level: usize, v: usize, k: usize) -> MergeAt {
    let h = 1usize << (level - 1);
    let base = k / (2 * h) * (2 * h);
    let a_end = (base + h).min(v);
    let b_end = (base + 2 * h).min(v);
    MergeAt {
        q: k - base,
        a0: base,
        alen: a_end - base,
        b0: a_end,
        blen: b_end - a_end,
    }
}

/// One merge step: given `a` (taken from the first half before this output) and the ids at the
/// halves' heads (`None` past a half's end), whether the output takes the first half's head.
/// Errors when `a` is inconsistent with `q` (only a corrupted trace has such a count).
pub fn merge_step(
    scaled: &[u32],
    m: MergeAt,
    a: usize,
    head_a: impl Fn(usize) -> u32,
    head_b: impl Fn(usize) -> u32,
) -> Result<(u32, usize)> {
    if a > m.q || a > m.alen || m.q - a > m.blen {
        return Err(EngineError::Trace(format!(
            "a merge count {a} is out of range at {m:?}"
        )));
    }
    let b = m.q - a;
    let take_a = b >= m.blen || (a < m.alen && before(scaled, head_a(m.a0 + a), head_b(m.b0 + b))?);
    Ok(if take_a {
        (head_a(m.a0 + a), a + 1)
    } else {
        (head_b(m.b0 + b), a)
    })
}

/// The words of a sampled step's regions (each for this step only).
#[derive(Debug, Clone, Default)]
pub struct StepWords {
    pub scaled: Vec<u32>,
    /// Level `l` at index `l - 1`: pairs `(id, a)`.
    pub merge: Vec<Vec<u32>>,
    pub weights: Vec<u32>,
    pub cumsum: Vec<u32>,
    pub top_p: Vec<u32>,
    pub min_p: Vec<u32>,
    pub draw: Vec<u32>,
    pub token: u32,
}

/// The count of candidates top-p keeps, from its region's last word.
pub fn top_p_keep(last: u32, k: usize) -> usize {
    if last == 0 {
        k
    } else {
        last as usize
    }
}

/// Computes step `n`'s sampled regions from its logits' words (after any penalty), as
/// canonical-arithmetic §4 steps 3–8 do. `corrupt(kind, index, word)` may change a word as it
/// is computed (index within the step's part of the region); everything after uses the change.
pub fn sample_step(
    logits: &[u32],
    params: &SamplingParams,
    shape: Sampled,
    n: u64,
    mut corrupt: impl FnMut(Kind, usize, u32) -> u32,
) -> Result<StepWords> {
    let v = logits.len();
    let word = super::record::word;
    let mut w = StepWords::default();
    for (i, &x) in logits.iter().enumerate() {
        let s = word(f32::from_bits(x) / params.temperature);
        w.scaled.push(corrupt(Kind::Scaled, i, s));
    }
    let mut ids: Vec<u32> = (0..v as u32).collect();
    for level in 1..=merge_levels(v) {
        let mut out = Vec::with_capacity(2 * v);
        let mut next = Vec::with_capacity(v);
        let mut a = 0usize;
        for k in 0..v {
            let m = merge_at(level, v, k);
            if m.q == 0 {
                a = 0;
            }
            let (id, taken) = merge_step(&w.scaled, m, a, |j| ids[j], |j| ids[j])?;
            let id = corrupt(Kind::Merge { level }, 2 * k, id);
            let taken = corrupt(Kind::Merge { level }, 2 * k + 1, taken as u32);
            out.extend([id, taken]);
            next.push(id);
            a = taken as usize;
        }
        w.merge.push(out);
        ids = next;
    }
    let kk = shape.candidates;
    let value = |id: u32| -> Result<f32> {
        w.scaled
            .get(id as usize)
            .map(|&x| f32::from_bits(x))
            .ok_or_else(|| EngineError::Trace(format!("sorted id {id} is past the vocabulary")))
    };
    let m = value(ids[0])?;
    let mut acc = 0f32;
    for (j, &id) in ids.iter().enumerate().take(kk) {
        let e = corrupt(Kind::Weights, j, word(exp_f32(value(id)? - m)));
        w.weights.push(e);
        acc = f32::from_bits(corrupt(Kind::Cumsum, j, word(acc + f32::from_bits(e))));
        w.cumsum.push(acc.to_bits());
    }
    let cum = |j: usize| f32::from_bits(w.cumsum[j]);
    let mut keep = kk;
    if shape.top_p {
        let target = params.top_p * cum(kk - 1);
        let mut cut = 0u32;
        for j in 0..kk {
            if cut == 0 && cum(j) >= target {
                cut = j as u32 + 1;
            }
            cut = corrupt(Kind::TopP, j, cut);
            w.top_p.push(cut);
        }
        keep = top_p_keep(cut, kk);
    }
    if shape.min_p {
        let mut run = 0u32;
        for j in 0..kk {
            if run as usize == j && j < keep && f32::from_bits(w.weights[j]) >= params.min_p {
                run = j as u32 + 1;
            }
            run = corrupt(Kind::MinP, j, run);
            w.min_p.push(run);
        }
        keep = (run as usize).max(1);
    }
    if keep == 0 || keep > kk {
        return Err(EngineError::Trace(format!(
            "a kept count {keep} is out of range"
        )));
    }
    let target = uniform(params.seed, n) * cum(keep - 1);
    let mut pick = 0u32;
    for j in 0..kk {
        if pick == 0 && j < keep && cum(j) > target {
            pick = j as u32 + 1;
        }
        pick = corrupt(Kind::Draw, j, pick);
        w.draw.push(pick);
    }
    let index = if pick == 0 {
        keep - 1
    } else {
        pick as usize - 1
    };
    let token = *ids
        .get(index)
        .ok_or_else(|| EngineError::Trace(format!("a drawn index {index} is out of range")))?;
    w.token = corrupt(Kind::Sampled, 0, token);
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    /// The merge sort's last level is the total order, for awkward sizes and values (ties,
    /// signed zeros, infinities, canonical NaN); every word of every level is one step.
    #[test]
    fn the_merge_sort_is_the_total_order() {
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            2.5,
        ];
        let mut rng = Rng(9);
        for v in [1usize, 2, 3, 5, 8, 31, 256, 257, 1000] {
            let scaled: Vec<u32> = (0..v)
                .map(|i| match rng.next_u64() % 4 {
                    0 => specials[i % specials.len()].to_bits(),
                    1 => 0x7FC0_0000,
                    _ => ((rng.next_u64() % 2000) as f32 / 100.0 - 10.0).to_bits(),
                })
                .collect();
            let params = SamplingParams {
                temperature: 1.0,
                ..Default::default()
            };
            let shape = Sampled {
                candidates: v,
                top_p: false,
                min_p: false,
            };
            // Dividing by 1 keeps every value (NaN stays canonical).
            let w = sample_step(&scaled, &params, shape, 0, |_, _, w| w).unwrap();
            assert_eq!(w.scaled, scaled);
            assert_eq!(w.merge.len(), merge_levels(v));
            let mut want: Vec<u32> = (0..v as u32).collect();
            want.sort_by(|&a, &b| {
                if before(&scaled, a, b).unwrap() {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            });
            let last = w.merge.last().map_or_else(
                || (0..v as u32).collect::<Vec<_>>(),
                |l| l.iter().step_by(2).copied().collect(),
            );
            assert_eq!(last, want, "{v} candidates");
            assert!(want.contains(&w.token));
        }
    }

    #[test]
    fn merge_levels_are_ceil_log2() {
        let got: Vec<usize> = [1, 2, 3, 4, 5, 49152, 65536, 262144]
            .iter()
            .map(|&n| merge_levels(n))
            .collect();
        assert_eq!(got, [0, 1, 2, 2, 3, 16, 16, 18]);
    }
}
