//! Canonical logprobs (spec §4.1): the log-softmax of a step's logits, written from IEEE
//! operations and the canonical `exp` and `ln`, so that a verifier recomputes the logprobs a
//! client was told bit for bit.
//!
//! They are the model's own distribution: the raw logits, before the repetition penalty, the
//! temperature, the filters and any grammar mask (what OpenAI-compatible servers such as vLLM
//! report by default).

use crate::canon::math::{exp_f32, ln_f64};
pub use sworn_attest::{StepLogprobs, TopLogprob};

/// `ln Σ exp(l_i - m)` with `m = max l`: the sum in vocabulary order from +0.0 in f32, its
/// logarithm by the canonical `ln` in f64, rounded to f32. The sum is at least 1 (the maximum's
/// own term), so the logarithm is finite and non-negative.
fn log_sum_exp(logits: &[f32], m: f32) -> f32 {
    let s = logits.iter().fold(0f32, |a, &l| a + exp_f32(l - m));
    ln_f64(s as f64) as f32
}

/// The largest logit (the first of equals; logits are finite).
fn max(logits: &[f32]) -> f32 {
    logits
        .iter()
        .fold(logits[0], |m, &l| if l > m { l } else { m })
}

/// Step logprobs: `chosen`'s, and the `top` most likely tokens' (by logit descending, ties by id
/// ascending). `logprob(i) = (l_i - m) - lse`.
pub fn step_logprobs(logits: &[f32], chosen: u32, top: usize) -> StepLogprobs {
    let m = max(logits);
    let lse = log_sum_exp(logits, m);
    let lp = |i: u32| (logits[i as usize] - m) - lse;
    let k = top.min(logits.len());
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let order = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    if k > 0 && k < ids.len() {
        ids.select_nth_unstable_by(k - 1, order);
    }
    ids.truncate(k);
    ids.sort_unstable_by(order);
    StepLogprobs {
        logprob: lp(chosen),
        top: ids
            .into_iter()
            .map(|t| TopLogprob {
                token: t,
                logprob: lp(t),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_a_normalised_log_softmax() {
        let l = [1.0f32, 3.0, 3.0, -2.0, 0.5];
        let s = step_logprobs(&l, 4, 3);
        let want: Vec<f64> = {
            let z: f64 = l.iter().map(|&x| (x as f64).exp()).sum();
            l.iter().map(|&x| (x as f64) - z.ln()).collect()
        };
        assert!((s.logprob as f64 - want[4]).abs() < 1e-6);
        let ids: Vec<u32> = s.top.iter().map(|t| t.token).collect();
        assert_eq!(ids, [1, 2, 0], "most likely first, ties by id");
        for t in &s.top {
            assert!((t.logprob as f64 - want[t.token as usize]).abs() < 1e-6);
        }
        let total: f64 = (0..5)
            .map(|i| (step_logprobs(&l, i, 0).logprob as f64).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert!(step_logprobs(&l, 1, 0).top.is_empty());
        assert_eq!(step_logprobs(&l, 1, 20).top.len(), 5);
    }

    /// The order of the sum is the spec's (vocabulary order): a reversed sum gives other bits
    /// for some vector, which is what makes the spec's order matter.
    #[test]
    fn the_sum_runs_in_vocabulary_order() {
        let l: Vec<f32> = (0..4096)
            .map(|i| ((i * 7919) % 1000) as f32 / 97.0)
            .collect();
        let m = max(&l);
        let forward = log_sum_exp(&l, m);
        let rev: Vec<f32> = l.iter().rev().copied().collect();
        let s_rev = rev.iter().fold(0f32, |a, &x| a + exp_f32(x - m));
        let s_fwd = l.iter().fold(0f32, |a, &x| a + exp_f32(x - m));
        assert_eq!(forward, ln_f64(s_fwd as f64) as f32);
        assert_ne!(
            s_fwd.to_bits(),
            s_rev.to_bits(),
            "pick a vector where order shows"
        );
    }
}
