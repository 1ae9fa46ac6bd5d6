//! What goes into a forward pass: the batcher's admission policy.
//!
//! A pass is as slow as the work in it, and every request in it waits for the whole pass. A
//! long prompt fed in large chunks therefore stalls the decoding of everyone else; fed in tiny
//! chunks it pays the pass's fixed cost (reading every weight once) over and over. The policy:
//!
//! - every request that is decoding gets its one token in every pass (a stream never waits for
//!   someone else's prompt);
//! - prompts share what is left of a per-pass **budget**, each at most
//!   [`Policy::prefill_chunk`] tokens: first the oldest, which always gets at least a quarter of
//!   the budget (so every prompt progresses even when decoding fills it), then the shortest
//!   first (a short prompt costs a long one little and starts its stream);
//! - a prompt alone in the batch gets [`LONE_PROMPT_BUDGETS`] budgets per pass: nobody waits on
//!   it, and large chunks pay the pass's fixed cost (reading every weight) least often.
//!
//! The budget is in *token units*: one unit is what a token's weight products cost. A token's
//! attention grows with its position, and at the positions of a long prompt it costs more than
//! its products (with SmolLM2-135M on the AVX2 kernels a prompt token at position 1,500 costs
//! about four units), so a budget in plain tokens would let the late chunks of a long prompt
//! make passes four times as slow as the early ones. [`CostModel`] prices each token from the
//! model's shape.
//!
//! Scheduling never changes an output bit (the engine is batch- and chunking-invariant); it
//! only decides who waits.

use crate::model::Config;

/// How a [`crate::batcher::Batcher`] fills each forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Most prompt tokens one request is fed in one pass.
    pub prefill_chunk: usize,
    /// Most work in one pass, in token units (see the module docs); `None`: no limit (every
    /// prompt gets its `prefill_chunk`).
    pub pass_budget: Option<usize>,
}

impl Policy {
    /// Every prompt at most `prefill_chunk` tokens per pass (all at once for `None`), no budget:
    /// the batcher's behaviour before budgets.
    pub fn chunked(prefill_chunk: Option<usize>) -> Policy {
        Policy {
            prefill_chunk: prefill_chunk.unwrap_or(usize::MAX).max(1),
            pass_budget: None,
        }
    }
}

/// A request as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Tokens waiting to be fed (the rest of a prompt, or the one sampled token).
    pub pending: usize,
    /// Tokens already in its cache: the position of its next token.
    pub position: usize,
    /// Its prompt is consumed: it is decoding one token per pass.
    pub decoding: bool,
}

/// Prices the tokens of a pass in token units from the model's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Units one key costs a query token, summed over the layers that attend to it (full
    /// attention layers; a sliding-window layer only within its window).
    per_key: f64,
    global_layers: usize,
    sliding: Option<(usize, usize)>,
}

/// How much slower, per multiply-add, the f32 attention kernels run than the quantized weight
/// products (which use 8-bit integer dot products). Measured on SmolLM2-135M and the AVX2
/// kernels: whole prompts (`sworn bench`, 64 to 1,536 tokens: 0.75 ms per token of products,
/// 1.05 us per token per earlier position) give 4.3; the server's passes (8 to 27 prompt tokens
/// beside 4 decoding streams, `sworn_pass_seconds` and its debug log) give 5-6, as small
/// chunks fill the attention kernel's tiles less. The NEON and CUDA kernels differ; a wrong
/// factor only shifts where the budget cuts, never what is computed.
const ATTENTION_SLOWDOWN: f64 = 5.5;

/// A prompt alone in the batch (nobody decoding, nothing else waiting) is fed up to this many
/// budgets per pass: nobody waits on the pass but requests that arrive during it, and few big
/// passes pay the fixed cost of a pass (reading every weight) least often.
pub const LONE_PROMPT_BUDGETS: usize = 8;

impl CostModel {
    pub fn new(cfg: &Config) -> CostModel {
        let (q, kv, d, f) = (cfg.q_dim(), cfg.kv_dim(), cfg.d_model, cfg.d_ff);
        // Q, K, V and O, then gate, up and down: multiply-adds per token per layer.
        let products = (d * (q + 2 * kv) + q * d + 3 * d * f).max(1) as f64;
        // One query's score and weighted value for one key, over all heads.
        let attention = (2 * cfg.n_head * cfg.head_dim) as f64 * ATTENTION_SLOWDOWN;
        let sliding_layers = (0..cfg.n_layer).filter(|&l| cfg.is_sliding(l)).count();
        CostModel {
            per_key: attention / (products * cfg.n_layer.max(1) as f64),
            global_layers: cfg.n_layer - sliding_layers,
            sliding: cfg
                .sliding_window
                .map(|(w, _)| (sliding_layers, w))
                .filter(|&(n, _)| n > 0),
        }
    }

    /// The cost of one token at `position`.
    pub fn token(&self, position: usize) -> f64 {
        let keys = position + 1;
        let mut attended = self.global_layers * keys;
        if let Some((layers, window)) = self.sliding {
            attended += layers * keys.min(window);
        }
        1.0 + self.per_key * attended as f64
    }
}

/// How many tokens each request is fed this pass (`wants` in arrival order).
pub fn plan(policy: &Policy, cost: &CostModel, wants: &[Want]) -> Vec<usize> {
    let chunk = |w: &Want| w.pending.min(policy.prefill_chunk);
    let Some(budget) = policy.pass_budget else {
        return wants.iter().map(chunk).collect();
    };
    let alone = wants.len() == 1 && !wants[0].decoding;
    let budget = budget
        .max(1)
        .saturating_mul(if alone { LONE_PROMPT_BUDGETS } else { 1 }) as f64;
    let mut fed = vec![0; wants.len()];
    let mut used = 0.0;
    for (i, w) in wants.iter().enumerate().filter(|(_, w)| w.decoding) {
        fed[i] = w.pending.min(1);
        used += cost.token(w.position) * fed[i] as f64;
    }
    // Prompts: the oldest first gets at least a quarter of the budget, whatever decoding took
    // (so no prompt waits forever), then the shortest first (a short prompt ahead of a long
    // one costs it little and gets its stream started).
    let prompts: Vec<usize> = (0..wants.len()).filter(|&i| !wants[i].decoding).collect();
    let Some((&oldest, rest)) = prompts.split_first() else {
        return fed;
    };
    let mut order = rest.to_vec();
    order.sort_by_key(|&i| (wants[i].pending, i));
    let mut take = |i: usize, room: f64, at_least_one: bool| -> f64 {
        let w = &wants[i];
        let (mut n, mut spent) = (0, 0.0);
        while n < chunk(w) {
            let c = cost.token(w.position + n);
            if spent + c > room && !(at_least_one && n == 0) {
                break;
            }
            spent += c;
            n += 1;
        }
        fed[i] = n;
        spent
    };
    let reserved = take(oldest, (budget - used).max(budget / 4.0), true);
    used += reserved;
    for i in order {
        used += take(i, budget - used, false);
    }
    fed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> Config {
        Config {
            arch: crate::arch::Arch::Llama,
            n_layer: 30,
            d_model: 576,
            n_head: 9,
            n_kv_head: 3,
            head_dim: 64,
            d_ff: 1536,
            vocab: 49152,
            context_length: 8192,
            rope_base: 100000.0,
            rms_eps: 1e-5,
            sliding_window: None,
        }
    }

    fn prompt(pending: usize, position: usize) -> Want {
        Want {
            pending,
            position,
            decoding: false,
        }
    }

    fn decoding(position: usize) -> Want {
        Want {
            pending: 1,
            position,
            decoding: true,
        }
    }

    #[test]
    fn the_cost_model_matches_the_measured_kernels() {
        // SmolLM2-135M on the AVX2 kernels: a token at position 1,500 costs about four times
        // one at the start (see ATTENTION_SLOWDOWN).
        let c = CostModel::new(&smollm2());
        assert!((c.token(0) - 1.0).abs() < 0.01);
        let late = c.token(1500);
        assert!((3.5..4.2).contains(&late), "{late}");
    }

    #[test]
    fn sliding_layers_stop_growing_at_their_window() {
        let mut cfg = smollm2();
        cfg.arch = crate::arch::Arch::Gemma3;
        cfg.n_layer = 12;
        cfg.sliding_window = Some((512, 10000.0));
        let c = CostModel::new(&cfg);
        // 10 of 12 layers slide: past the window only the 2 global layers keep growing.
        let slope_in = c.token(400) - c.token(300);
        let slope_out = c.token(2100) - c.token(2000);
        assert!(
            (slope_out * 6.0 - slope_in).abs() < 1e-9,
            "{slope_in} {slope_out}"
        );
    }

    #[test]
    fn without_a_budget_every_prompt_gets_its_chunk() {
        let c = CostModel::new(&smollm2());
        let p = Policy::chunked(Some(64));
        let wants = [prompt(1000, 0), decoding(10), prompt(5, 0)];
        assert_eq!(plan(&p, &c, &wants), vec![64, 1, 5]);
        assert_eq!(plan(&Policy::chunked(None), &c, &wants), vec![1000, 1, 5]);
    }

    #[test]
    fn decoding_comes_first_and_prompts_share_the_rest_oldest_first() {
        let c = CostModel::new(&smollm2());
        let p = Policy {
            prefill_chunk: 256,
            pass_budget: Some(32),
        };
        let wants = [prompt(100, 0), decoding(10), decoding(20), prompt(100, 0)];
        let got = plan(&p, &c, &wants);
        assert_eq!((got[1], got[2]), (1, 1));
        // About 30 units are left: the older prompt takes them, the younger waits.
        assert!((28..=30).contains(&got[0]), "{got:?}");
        assert_eq!(got[3], 0);
        // After the oldest, the shortest prompt goes first.
        let wants = [prompt(12, 0), decoding(10), prompt(100, 0), prompt(6, 0)];
        let got = plan(&p, &c, &wants);
        assert_eq!((got[0], got[1], got[3]), (12, 1, 6));
        assert!((10..=12).contains(&got[2]), "{got:?}");
    }

    #[test]
    fn late_chunks_of_a_long_prompt_are_smaller() {
        let c = CostModel::new(&smollm2());
        let p = Policy {
            prefill_chunk: 256,
            pass_budget: Some(30),
        };
        let early = plan(&p, &c, &[decoding(10), prompt(2000, 0)])[1];
        let late = plan(&p, &c, &[decoding(10), prompt(500, 1500)])[1];
        assert!(early >= 24 && (6..=8).contains(&late), "{early} {late}");
        // Either way the pass's cost stays within the budget, decoding included.
        let cost = |start: usize, n: usize| (start..start + n).map(|i| c.token(i)).sum::<f64>();
        let decode = c.token(10);
        assert!(decode + cost(0, early) <= 30.0 && decode + cost(1500, late) <= 30.0);
    }

    #[test]
    fn the_oldest_prompt_progresses_when_decoding_fills_the_budget() {
        let c = CostModel::new(&smollm2());
        let p = Policy {
            prefill_chunk: 64,
            pass_budget: Some(16),
        };
        let mut wants: Vec<Want> = (0..40).map(|i| decoding(100 + i)).collect();
        wants.push(prompt(100, 0));
        wants.push(prompt(100, 0));
        let got = plan(&p, &c, &wants);
        assert!(got[..40].iter().all(|&n| n == 1));
        // A quarter of the budget is 4 units: three tokens (their attention makes a fourth
        // overshoot).
        assert_eq!(got[40], 3);
        assert_eq!(got[41], 0);
        // Even a budget below one token's cost feeds the oldest prompt a token.
        let tiny = Policy {
            prefill_chunk: 64,
            pass_budget: Some(1),
        };
        assert_eq!(
            plan(&tiny, &c, &[decoding(1), prompt(10, 5000)]),
            vec![1, 1]
        );
    }

    #[test]
    fn a_lone_prompt_gets_several_budgets() {
        let c = CostModel::new(&smollm2());
        let p = Policy {
            prefill_chunk: 256,
            pass_budget: Some(32),
        };
        // As many tokens as 8 budgets pay for: most of a chunk early, fewer late.
        let fits = |at: usize, n: usize| {
            let cost = |n: usize| (at..at + n).map(|i| c.token(i)).sum::<f64>();
            cost(n) <= 256.0 && cost(n + 1) > 256.0
        };
        let early = plan(&p, &c, &[prompt(2000, 0)])[0];
        let late = plan(&p, &c, &[prompt(1000, 1500)])[0];
        assert!(fits(0, early) && fits(1500, late), "{early} {late}");
        assert!(early > 200 && late < 70, "{early} {late}");
        // A short prompt is never cut.
        assert_eq!(plan(&p, &c, &[prompt(40, 0)]), vec![40]);
        // Any budget an operator gives is safe (no overflow).
        let huge = Policy {
            prefill_chunk: 256,
            pass_budget: Some(usize::MAX),
        };
        assert_eq!(plan(&huge, &c, &[prompt(2000, 0)]), vec![256]);
        // Two prompts, nobody decoding: one budget, as usual.
        let two = plan(&p, &c, &[prompt(2000, 0), prompt(50, 0)]);
        assert!(two.iter().sum::<usize>() <= 32, "{two:?}");
    }
}
