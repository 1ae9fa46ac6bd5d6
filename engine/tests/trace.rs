//! Dispute traces (`sworn_engine::trace`, docs/dispute.md §5) on synthetic models of every
//! architecture and quantized type: the tracing backend computes what the kernels compute, the
//! honest trace samples the engine's own tokens, every region is filled in layout order, and a
//! corruption changes exactly its word first.

mod common;

use std::path::{Path, PathBuf};

use sworn_engine::model::Feed;
use sworn_engine::synthetic::{write_model, SyntheticSpec};
use sworn_engine::trace::layout::{Kind, Mat, LEAF};
use sworn_engine::trace::{trace, Corruption, Trace};
use sworn_engine::{Engine, EngineOptions, SamplingParams};

fn synthetic(name: &str, spec: &SyntheticSpec) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sworn-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    write_model(&p, spec).unwrap();
    p
}

fn engine(path: &Path) -> Engine {
    Engine::load(
        path,
        &EngineOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap()
}

fn greedy(penalty: f32) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: penalty,
        repeat_last_n: 8,
        seed: 7,
    }
}

/// `n` tokens sampled by the engine itself, one position at a time.
fn generate(e: &Engine, prompt: &[u32], n: usize, params: &SamplingParams) -> Vec<u32> {
    let mut seq = e.model.new_sequence();
    let mut history = prompt.to_vec();
    let mut feed = prompt.to_vec();
    let mut out = Vec::new();
    for step in 0..n {
        let hidden = e
            .model
            .forward(
                &e.runner,
                &mut [Feed {
                    seq: &mut seq,
                    tokens: &feed,
                }],
            )
            .unwrap();
        let d = e.model.cfg.d_model;
        let logits = e
            .model
            .logits(&e.runner, &hidden[hidden.len() - d..])
            .unwrap();
        let t = sworn_engine::sampling::sample(&logits, params, &history, step as u64).unwrap();
        out.push(t);
        history.push(t);
        feed = vec![t];
    }
    out
}

/// Synthetic models of every architecture and tensor type a trace lays out: quantized,
/// K-quants with BF16, Gemma 3, and float matrices (F32, F16, BF16; the head the F16 embedding).
fn specs() -> Vec<(&'static str, SyntheticSpec)> {
    use candle_core::quantized::GgmlDType as T;
    let llama = SyntheticSpec {
        kinds: vec![T::Q4_1, T::Q4_0, T::Q8_0],
        ..Default::default()
    };
    let mut k = SyntheticSpec::k_quants();
    k.n_layer = 1;
    let mut gemma = SyntheticSpec::gemma3();
    gemma.kinds.retain(|t| *t != T::F32);
    let float = SyntheticSpec {
        kinds: vec![T::F32, T::F16, T::BF16, T::Q8_0],
        embd_kind: T::F16,
        n_layer: 1,
        ..Default::default()
    };
    vec![
        ("llama", llama),
        ("k-quants", k),
        ("gemma3", gemma),
        ("float", float),
    ]
}

/// A model whose matrices of one role are float on some layers and quantized on others has
/// no trace layout: tracing it is refused with the reason (its disputes go to the committee).
#[test]
fn a_role_mixing_float_and_quantized_layers_is_refused() {
    let e = engine(&synthetic("mixed.gguf", &SyntheticSpec::gemma3()));
    let err = trace(&e.model, &e.runner, &[1, 2], &[3], &greedy(1.0), None).unwrap_err();
    assert!(err.to_string().contains("float on some layers"), "{err}");
}

fn check_layout(t: &Trace) {
    let l = &t.layout;
    assert_eq!(l.words % LEAF as u64, 0);
    assert_eq!(t.words.len() as u64, l.words);
    let mut at = 0;
    for r in &l.regions {
        assert_eq!(r.start, at, "{r:?} starts where the last one ended");
        assert!(r.len > 0);
        at = r.start + r.len.div_ceil(LEAF as u64) * LEAF as u64;
        assert_eq!(l.region_of(r.start), Some(r));
        assert_eq!(l.region_of(r.start + r.len - 1), Some(r));
    }
    assert_eq!(at, l.words);
}

#[test]
fn an_honest_trace_samples_the_engines_tokens() {
    for (name, spec) in specs() {
        let e = engine(&synthetic(&format!("{name}.gguf"), &spec));
        // Longer than Gemma's window of 8 keys, so that sliding-window rows are cut.
        let prompt: Vec<u32> = (0..13).map(|i| (i * 37 % 250) as u32 + 3).collect();
        for penalty in [1.0, 1.3] {
            let params = greedy(penalty);
            let output = generate(&e, &prompt, 6, &params);
            let t = trace(&e.model, &e.runner, &prompt, &output, &params, None)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            check_layout(&t);
            for (n, &tok) in output.iter().enumerate() {
                assert_eq!(t.token(n), tok, "{name} step {n}");
            }
            // The same trace every time (nothing depends on threads or allocation).
            let again = trace(&e.model, &e.runner, &prompt, &output, &params, None).unwrap();
            assert!(again.words == t.words, "{name}: deterministic");
        }
    }
}

/// A wrong output token: the trace (of what the model computes) samples another one there.
#[test]
fn a_trace_shows_where_the_output_is_not_the_models() {
    let (name, spec) = specs().remove(0);
    let e = engine(&synthetic(&format!("{name}-wrong.gguf"), &spec));
    let prompt = vec![5, 9, 200, 31, 77];
    let params = greedy(1.0);
    let mut output = generate(&e, &prompt, 5, &params);
    output[2] = (output[2] + 1) % e.model.cfg.vocab as u32;
    let t = trace(&e.model, &e.runner, &prompt, &output, &params, None).unwrap();
    assert_ne!(t.token(2), output[2]);
    assert_eq!(t.token(0), output[0]);
}

/// A corruption changes its own word first: every word before it is the honest trace's.
#[test]
fn a_corruption_is_the_first_difference() {
    for (name, spec) in specs() {
        let e = engine(&synthetic(&format!("{name}-c.gguf"), &spec));
        // Past 64 keys, so that attention's running values have two segments.
        let prompt: Vec<u32> = (0..70).map(|i| (i * 11 % 250) as u32 + 1).collect();
        let params = greedy(1.0);
        let output = generate(&e, &prompt, 3, &params);
        let honest = trace(&e.model, &e.runner, &prompt, &output, &params, None).unwrap();
        let points = [
            (
                Kind::MatOut {
                    mat: Mat::Layer(sworn_engine::arch::LayerMat::Q),
                },
                Some(0),
                5,
            ),
            (
                Kind::MatPartial {
                    mat: Mat::Layer(sworn_engine::arch::LayerMat::Down),
                },
                Some(0),
                3,
            ),
            (
                Kind::NormLanes {
                    norm: sworn_engine::trace::layout::Norm::Out,
                },
                None,
                9,
            ),
            (Kind::Scores, Some(0), 100),
            (Kind::Max, Some(0), 3),
            (Kind::Exps, Some(0), 7),
            (Kind::Sums, Some(0), 3),
            (Kind::Weighted, Some(0), 5),
            (Kind::AttnOut, Some(0), 2),
            (Kind::Rope { k: true }, Some(0), 1),
            (Kind::Embed, None, 3),
            (Kind::Residual { ffn: true }, Some(0), 40),
            (
                Kind::Quant {
                    of: sworn_engine::trace::layout::QuantOf::FfnIn,
                },
                Some(0),
                8,
            ),
            (Kind::Argmax, None, 1),
        ];
        let mut checked = 0;
        for (kind, layer, index) in points {
            let Some(region) = honest.layout.region(kind, layer).copied() else {
                continue; // e.g. no partials where a row is one segment
            };
            checked += 1;
            let c = Corruption {
                kind,
                layer,
                index,
                xor: 1 << 4,
            };
            let bad = trace(&e.model, &e.runner, &prompt, &output, &params, Some(c)).unwrap();
            let first = (0..honest.words.len())
                .find(|&i| honest.words[i] != bad.words[i])
                .unwrap_or_else(|| panic!("{name} {kind:?}: the corruption shows"));
            assert_eq!(first as u64, region.start + index, "{name} {kind:?}");
            // And it reaches the output's logits (all but a few corruptions change a token or
            // a logit; the last region is sampling's).
            assert!(bad.words[first..] != honest.words[first..]);
        }
        assert!(checked >= 13, "{name}: {checked} points");
    }
}

/// Sampling parameters that exercise every sampled step: temperatures hot and cold, top-k's
/// cut, top-p, min-p, the penalty, and several seeds.
fn sampled_params() -> Vec<SamplingParams> {
    let mut out = Vec::new();
    for seed in [1u64, 0xDEAD_BEEF_0042, u64::MAX] {
        let base = SamplingParams {
            temperature: 0.8,
            seed,
            ..greedy(1.0)
        };
        out.extend([
            base.clone(),
            SamplingParams {
                top_p: 0.9,
                min_p: 0.05,
                ..greedy(1.2)
            }
            .with(0.7, seed),
            SamplingParams {
                top_k: 7,
                top_p: 0.5,
                ..base.clone()
            },
            SamplingParams {
                top_k: 1,
                ..base.clone()
            },
            SamplingParams {
                min_p: 0.9,
                ..base.clone()
            }
            .with(3.0, seed),
        ]);
    }
    out
}

trait With {
    fn with(self, temperature: f32, seed: u64) -> Self;
}

impl With for SamplingParams {
    fn with(self, temperature: f32, seed: u64) -> Self {
        SamplingParams {
            temperature,
            seed,
            ..self
        }
    }
}

/// Sampled steps (docs/dispute.md §5.6): the trace's merge sort, top-p, min-p and draw give
/// the engine's own sampled tokens (the tracer also checks each against `sampling::sample`),
/// and the last merge level is the candidates in the total order.
#[test]
fn an_honest_sampled_trace_samples_the_engines_tokens() {
    for (name, spec) in specs() {
        let e = engine(&synthetic(&format!("{name}-s.gguf"), &spec));
        let prompt: Vec<u32> = (0..9).map(|i| (i * 53 % 250) as u32 + 2).collect();
        for params in sampled_params() {
            let output = generate(&e, &prompt, 5, &params);
            let t = trace(&e.model, &e.runner, &prompt, &output, &params, None)
                .unwrap_or_else(|err| panic!("{name} {params:?}: {err}"));
            check_layout(&t);
            for (n, &tok) in output.iter().enumerate() {
                assert_eq!(t.token(n), tok, "{name} {params:?} step {n}");
            }
            let v = e.model.cfg.vocab;
            let levels = t.layout.shape.merge_levels();
            let scaled = t.layout.region(Kind::Scaled, None).unwrap().start as usize;
            let sorted = t
                .layout
                .region(Kind::Merge { level: levels }, None)
                .unwrap();
            for n in 0..output.len() {
                let l = &t.words[scaled + n * v..][..v];
                let mut want: Vec<u32> = (0..v as u32).collect();
                want.sort_by(|&a, &b| {
                    f32::from_bits(l[b as usize])
                        .total_cmp(&f32::from_bits(l[a as usize]))
                        .then(a.cmp(&b))
                });
                let got: Vec<u32> = (0..v)
                    .map(|k| t.words[sorted.start as usize + (n * v + k) * 2])
                    .collect();
                assert_eq!(got, want, "{name} step {n}: the sort");
            }
        }
    }
}

/// A corruption of a sampled step's word is the first difference from the honest trace.
#[test]
fn a_sampled_corruption_is_the_first_difference() {
    let (name, spec) = specs().remove(0);
    let e = engine(&synthetic(&format!("{name}-sc.gguf"), &spec));
    let prompt = vec![5, 9, 200, 31, 77];
    let params = SamplingParams {
        top_p: 0.95,
        min_p: 0.01,
        ..greedy(1.1)
    }
    .with(0.9, 3);
    let output = generate(&e, &prompt, 3, &params);
    let honest = trace(&e.model, &e.runner, &prompt, &output, &params, None).unwrap();
    let (levels, v) = (honest.layout.shape.merge_levels(), e.model.cfg.vocab as u64);
    assert!(levels >= 5, "{v} candidates");
    let points = [
        (Kind::Scaled, 300, 1 << 22),
        (Kind::Merge { level: 1 }, 10, 1),
        (Kind::Merge { level: 5 }, 2 * 300, 1),
        (Kind::Merge { level: levels }, 2 * v + 4, 2),
        (Kind::Weights, 3, 1 << 20),
        (Kind::Cumsum, 2, 1 << 20),
        (Kind::TopP, 1, 1),
        (Kind::MinP, 0, 1),
        (Kind::Draw, 0, 1),
        (Kind::Sampled, 1, 1),
    ];
    for (kind, index, xor) in points {
        let region = *honest.layout.region(kind, None).unwrap();
        let c = Corruption {
            kind,
            layer: None,
            index,
            xor,
        };
        let bad = trace(&e.model, &e.runner, &prompt, &output, &params, Some(c))
            .unwrap_or_else(|err| panic!("{kind:?}: {err}"));
        let first = (0..honest.words.len())
            .find(|&i| honest.words[i] != bad.words[i])
            .unwrap_or_else(|| panic!("{name} {kind:?}: the corruption shows"));
        assert_eq!(first as u64, region.start + index, "{name} {kind:?}");
    }
}

/// The real SmolLM2 (Q4_1 and Q8_0) and Gemma 3 270M (Q5_0, Q8_0, Q4_K, Q6_K): the tracer's
/// reference agrees with the kernels on every operation and samples the engine's greedy tokens.
/// Prints the trace's size.
#[test]
fn real_models_trace_their_own_greedy_output() {
    let models = [
        common::real_model("real_models_trace_their_own_greedy_output"),
        common::gemma_model("real_models_trace_their_own_greedy_output"),
    ];
    for path in models.into_iter().flatten() {
        let e = engine(&path);
        let prompt = e
            .tokenizer
            .encode("The capital of France is", true)
            .unwrap();
        let params = greedy(1.0);
        let output = generate(&e, &prompt, 4, &params);
        let start = std::time::Instant::now();
        let t = trace(&e.model, &e.runner, &prompt, &output, &params, None).unwrap();
        check_layout(&t);
        for (n, &tok) in output.iter().enumerate() {
            assert_eq!(t.token(n), tok, "step {n}");
        }
        eprintln!(
            "{}: {} positions, {} steps: {} regions, {} leaves ({:.1} MiB), traced in {:.1?}",
            path.display(),
            t.layout.shape.positions,
            t.layout.shape.steps,
            t.layout.regions.len(),
            t.layout.leaves(),
            t.words.len() as f64 * 4.0 / (1 << 20) as f64,
            start.elapsed()
        );
    }
}
