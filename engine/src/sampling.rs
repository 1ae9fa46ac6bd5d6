//! Token sampling (spec §4): every step's choice is a pure function of that step's logits, the
//! parameters, the tokens so far and `(seed, step)`; nothing carries state between steps.

use crate::canon::math::exp_f32;
use crate::error::{EngineError, Result};

/// Sampling parameters (spec §4): the transcript format's own type, so what a transcript records
/// is exactly what the sampler used. Defaults are greedy decoding; `validate` gives the reason a
/// parameter is out of range.
pub use sworn_attest::Sampling as SamplingParams;

/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011): a
/// counter-based generator, so draw `step` needs nothing but `(seed, step)`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The uniform draw in [0, 1) for sampling step `step` under `seed`: the top 24 bits of Philox's
/// first output word, times 2^-24 (exact in f32).
pub fn uniform(seed: u64, step: u64) -> f32 {
    let out = philox4x32_10(
        [step as u32, (step >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    (out[0] >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The tokens a grammar allows at one step (spec §4.2): bit `i % 32` of word `i / 32`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMask {
    words: Vec<u32>,
}

impl TokenMask {
    /// A mask from its bit words (bits past the vocabulary are ignored).
    pub fn from_words(words: Vec<u32>) -> TokenMask {
        TokenMask { words }
    }

    pub fn allows(&self, id: u32) -> bool {
        self.words
            .get(id as usize / 32)
            .is_some_and(|w| w >> (id % 32) & 1 == 1)
    }

    pub fn allow(&mut self, id: u32) {
        let i = id as usize / 32;
        if i >= self.words.len() {
            self.words.resize(i + 1, 0);
        }
        self.words[i] |= 1 << (id % 32);
    }

    /// Allowed ids below `n`, ascending.
    pub fn ids(&self, n: usize) -> Vec<u32> {
        (0..n as u32).filter(|&i| self.allows(i)).collect()
    }
}

/// Picks the next token from `logits` (spec §4). `history` is every token so far (prompt and
/// output), for the repetition penalty; `step` is the index of the token being generated.
pub fn sample(logits: &[f32], params: &SamplingParams, history: &[u32], step: u64) -> Result<u32> {
    sample_masked(logits, params, history, step, None)
}

/// [`sample`] among the tokens `mask` allows (spec §4.2): the greedy choice and the candidates
/// are only allowed tokens; everything else is as without a mask.
pub fn sample_masked(
    logits: &[f32],
    params: &SamplingParams,
    history: &[u32],
    step: u64,
    mask: Option<&TokenMask>,
) -> Result<u32> {
    if logits.is_empty() {
        return Err(EngineError::InvalidRequest("empty logits".into()));
    }
    if let Some(m) = mask {
        if !(0..logits.len() as u32).any(|i| m.allows(i)) {
            return Err(EngineError::InvalidRequest(
                "the grammar allows no token here".into(),
            ));
        }
    }
    let allowed = |i: usize| mask.is_none_or(|m| m.allows(i as u32));
    if params.temperature > 0.0 && params.temperature < sworn_attest::MIN_TEMPERATURE {
        return Err(EngineError::InvalidRequest(format!(
            "temperature {:e} is below 2^-14: use 0 for greedy decoding",
            params.temperature
        )));
    }
    if params.is_greedy() && params.repeat_penalty == 1.0 {
        // Nothing to modify: no copy on the common greedy path.
        return Ok(argmax_where(logits, allowed));
    }
    let mut l = logits.to_vec();
    if params.repeat_penalty != 1.0 {
        let n = (params.repeat_last_n as usize).min(history.len());
        let mut seen = vec![false; l.len()];
        for &t in &history[history.len() - n..] {
            let t = t as usize;
            if t < l.len() && !seen[t] {
                seen[t] = true;
                l[t] = if l[t] > 0.0 {
                    l[t] / params.repeat_penalty
                } else {
                    l[t] * params.repeat_penalty
                };
            }
        }
    }
    if params.is_greedy() {
        return Ok(argmax_where(&l, allowed));
    }
    for v in l.iter_mut() {
        *v /= params.temperature;
    }
    let order = |a: &u32, b: &u32| candidate_order(l[*a as usize], *a, l[*b as usize], *b);
    let mut cand: Vec<u32> = match mask {
        None => (0..l.len() as u32).collect(),
        Some(m) => m.ids(l.len()),
    };
    let k = params.top_k as usize;
    if k > 0 && k < cand.len() {
        cand.select_nth_unstable_by(k - 1, order);
        cand.truncate(k);
    }
    cand.sort_unstable_by(order);
    let m = l[cand[0] as usize];
    let mut p: Vec<f32> = cand.iter().map(|&i| exp_f32(l[i as usize] - m)).collect();
    // top-p over the (unnormalised) mass, in sorted order.
    if params.top_p < 1.0 {
        let total: f32 = p.iter().fold(0.0, |a, &b| a + b);
        let target = params.top_p * total;
        let mut acc = 0f32;
        let mut keep = p.len();
        for (i, &pi) in p.iter().enumerate() {
            acc += pi;
            if acc >= target {
                keep = i + 1;
                break;
            }
        }
        p.truncate(keep);
    }
    // min-p: the top candidate has weight exp(0) = 1.
    if params.min_p > 0.0 {
        let keep = p
            .iter()
            .take_while(|&&pi| pi >= params.min_p)
            .count()
            .max(1);
        p.truncate(keep);
    }
    let total: f32 = p.iter().fold(0.0, |a, &b| a + b);
    let target = uniform(params.seed, step) * total;
    let mut acc = 0f32;
    for (i, &pi) in p.iter().enumerate() {
        acc += pi;
        if acc > target {
            return Ok(cand[i]);
        }
    }
    Ok(cand[p.len() - 1])
}

/// The candidates' total order (spec §4.4) of candidate `a` with logit `la` against `b` with
/// `lb`: `Less` when `a` comes first, the larger logit by IEEE totalOrder (`total_cmp`), then
/// the lower id. The dispute trace's merge sort compares by it too.
pub fn candidate_order(la: f32, a: u32, lb: f32, b: u32) -> std::cmp::Ordering {
    lb.total_cmp(&la).then(a.cmp(&b))
}

/// Index of the largest value, the lowest index among equals.
pub fn argmax(v: &[f32]) -> u32 {
    argmax_where(v, |_| true)
}

/// [`argmax`] over the indices `ok` accepts (at least one must be).
fn argmax_where(v: &[f32], ok: impl Fn(usize) -> bool) -> u32 {
    let mut best = None;
    for (i, &x) in v.iter().enumerate() {
        if ok(i) && best.is_none_or(|b: usize| x > v[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answers() {
        // Known-answer vectors of Random123 (kat_vectors, philox4x32 10 rounds).
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_is_in_range_and_depends_on_both_inputs() {
        let a = uniform(1, 0);
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, uniform(2, 0));
        assert_ne!(a, uniform(1, 1));
        let mean: f32 = (0..10_000).map(|s| uniform(7, s)).sum::<f32>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn greedy_and_filters() {
        let logits = [1.0, 3.0, 3.0, -2.0, 0.5];
        let greedy = SamplingParams::default();
        assert_eq!(
            sample(&logits, &greedy, &[], 0).unwrap(),
            1,
            "ties go to the lowest id"
        );
        let top1 = SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        for s in 0..20 {
            assert_eq!(
                sample(
                    &logits,
                    &SamplingParams {
                        seed: s,
                        ..top1.clone()
                    },
                    &[],
                    3
                )
                .unwrap(),
                1
            );
        }
        let pen = SamplingParams {
            repeat_penalty: 10.0,
            ..Default::default()
        };
        assert_eq!(sample(&logits, &pen, &[1], 0).unwrap(), 2);
        let hot = SamplingParams {
            temperature: 1.0,
            ..Default::default()
        };
        let mut counts = [0usize; 5];
        for step in 0..4000 {
            counts[sample(&logits, &hot, &[], step).unwrap() as usize] += 1;
        }
        assert!(
            counts[1] > 1300 && counts[2] > 1300 && counts[3] < 50,
            "{counts:?}"
        );
        let minp = SamplingParams {
            temperature: 1.0,
            min_p: 0.5,
            ..Default::default()
        };
        for step in 0..200 {
            assert!(matches!(sample(&logits, &minp, &[], step).unwrap(), 1 | 2));
        }
        assert!(SamplingParams {
            top_p: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SamplingParams {
            temperature: f32::NAN,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    /// Spec §4: a temperature is 0 or at least 2^-14. Tiny positive temperatures used to overflow
    /// `logit / T` to infinity and draw seed-dependent tokens; they are refused everywhere the
    /// parameters are validated (CLI, server, engine, verifier), and by `sample` itself.
    #[test]
    fn tiny_positive_temperatures_are_refused() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        for t in [1e-38f32, 1e-37, 1e-10, f32::from_bits(1), 6.1e-5] {
            let p = SamplingParams {
                temperature: t,
                ..Default::default()
            };
            let e = p.validate().unwrap_err();
            assert!(e.contains("use 0 for greedy"), "{t:e}: {e}");
            assert!(sample(&logits, &p, &[], 0).is_err(), "{t:e}");
        }
        for t in [0.0f32, sworn_attest::MIN_TEMPERATURE, 0.7] {
            let p = SamplingParams {
                temperature: t,
                ..Default::default()
            };
            assert!(p.validate().is_ok(), "{t:e}");
        }
        // At the smallest temperature the scaled logits stay finite and the draw is the argmax
        // whatever the seed (ties aside).
        let p = SamplingParams {
            temperature: sworn_attest::MIN_TEMPERATURE,
            ..Default::default()
        };
        for seed in 0..50 {
            let tok = sample(&logits, &SamplingParams { seed, ..p.clone() }, &[], 3).unwrap();
            assert!(tok == 1 || tok == 3, "seed {seed}: {tok}");
        }
    }
}
