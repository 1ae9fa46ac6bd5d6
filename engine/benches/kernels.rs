//! Criterion benchmarks of the canonical kernels at SmolLM2-135M's shapes (synthetic weights, no
//! download needed), and of whole decode/prefill steps on the real model when it is present.
//! Run: `cargo bench -p sworn-engine --bench kernels`. For side-by-side figures with llama.cpp
//! and candle, see `scripts/bench/compare.py`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sworn_engine::canon::quant::QActs;
use sworn_engine::kernels::{Isa, Query, Runner};
use sworn_engine::model::{Feed, Sequence};
use sworn_engine::qmatrix::{GgufKind, QMatrix};
use sworn_engine::{Engine, EngineOptions};

/// A Q4_1 or Q8_0 matrix with pseudo-random blocks.
fn random_matrix(kind: GgufKind, rows: usize, cols: usize) -> QMatrix {
    let quant_bytes = if kind == GgufKind::Q8_0 { 32 } else { 16 };
    let mut s = 7u32;
    let mut raw = Vec::with_capacity(rows * cols / 32 * (quant_bytes + 4));
    for _ in 0..rows * cols / 32 {
        raw.extend(half::f16::from_f32(0.01).to_le_bytes());
        if kind == GgufKind::Q4_1 {
            raw.extend(half::f16::from_f32(-0.07).to_le_bytes());
        }
        for _ in 0..quant_bytes {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            raw.push((s >> 24) as u8);
        }
    }
    QMatrix::from_gguf(kind, rows, cols, &raw).unwrap()
}

/// `tokens` activation rows of `cols` values in [-1, 1), and their quantization.
fn activations(isa: Isa, tokens: usize, cols: usize) -> (Vec<f32>, QActs) {
    let x: Vec<f32> = (0..tokens * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let mut xq = QActs::default();
    isa.quantize_rows(&x, cols, &mut xq);
    (x, xq)
}

/// The products of a replay at SmolLM2-135M's shapes on two threads: the layers' Q4_1 matrices
/// over 256 positions, and the tied Q8_0 output head over a chunk of 16 steps' logits (as
/// `Engine::teacher_forced` computes them). Throughput is in multiply-adds.
fn replay_products(c: &mut Criterion) {
    let isa = Isa::detect();
    let rt = Runner::new(isa, 2).unwrap();
    let mut g = c.benchmark_group("replay_products_2t");
    for (kind, rows, cols, tokens) in [
        (GgufKind::Q4_1, 1536, 576, 256),
        (GgufKind::Q4_1, 576, 1536, 256),
        (GgufKind::Q8_0, 49152, 576, 16),
    ] {
        let w = random_matrix(kind, rows, cols);
        let (x, xq) = activations(isa, tokens, cols);
        let mut out = Vec::new();
        g.throughput(Throughput::Elements((rows * cols * tokens) as u64));
        g.bench_function(format!("{kind:?}_{rows}x{cols}/{tokens}tok"), |b| {
            b.iter(|| rt.matmul_many(&[&w], black_box(&xq), &x, tokens, &mut [&mut out]))
        });
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    let isa = Isa::detect();
    let (rows, cols) = (1536, 576);
    let w = random_matrix(GgufKind::Q4_1, rows, cols);
    for tokens in [1usize, 128] {
        let (x, mut xq) = activations(isa, tokens, cols);
        let mut out = Vec::new();
        for (name, isa) in [("fast", isa), ("scalar", Isa::Scalar)] {
            if name == "scalar" && tokens > 1 {
                continue;
            }
            let rt = Runner::new(isa, 1).unwrap();
            let mut g = c.benchmark_group(format!("q4_1_matmul_{rows}x{cols}"));
            g.throughput(Throughput::Elements((rows * cols * tokens) as u64));
            g.bench_function(format!("{name}/{tokens}tok"), |b| {
                b.iter(|| rt.matmul_many(&[&w], black_box(&xq), &x, tokens, &mut [&mut out]))
            });
            g.finish();
        }
        c.bench_function(&format!("quantize_rows/{tokens}x{cols}"), |b| {
            b.iter(|| isa.quantize_rows(black_box(&x), cols, &mut xq))
        });
    }
}

/// Causal attention of a 256-token prefill for one KV head shared by three query heads
/// (SmolLM2's shape: head size 64, 3 KV heads): one query at a time, and in the tiles of eight
/// tokens that the forward pass uses (the same bits; the tiles read each block of keys once).
fn attention(c: &mut Criterion) {
    let isa = Isa::detect();
    let (hd, kvd, nt, group) = (64usize, 192usize, 256usize, 3usize);
    let k: Vec<f32> = (0..nt * kvd)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let v: Vec<f32> = (0..nt * kvd)
        .map(|i| ((i * 31 % 97) as f32 - 50.0) / 50.0)
        .collect();
    let q: Vec<f32> = (0..hd).map(|i| i as f32 / 64.0).collect();
    let mut g = c.benchmark_group("attention_256tok_1kvhead");
    g.throughput(Throughput::Elements((group * nt * (nt + 1) / 2) as u64));
    g.bench_function("one_query_at_a_time", |b| {
        let (mut scores, mut out) = (vec![0f32; nt], vec![0f32; hd]);
        b.iter(|| {
            for t in 0..nt {
                for _ in 0..group {
                    isa.attend(&q, &k, &v, t + 1, kvd, 0, 0.125, &mut scores, &mut out);
                }
            }
            black_box(&out);
        })
    });
    g.bench_function("tiles_of_8_tokens", |b| {
        let mut outs = vec![vec![0f32; hd]; 8 * group];
        b.iter(|| {
            for t0 in (0..nt).step_by(8) {
                let mut qs: Vec<Query> = outs
                    .iter_mut()
                    .enumerate()
                    .map(|(i, out)| Query {
                        q: &q,
                        n: t0 + i / group + 1,
                        out,
                    })
                    .collect();
                isa.attend_many(&mut qs, &k, &v, kvd, 0, 0.125);
            }
            black_box(&outs);
        })
    });
    g.finish();
}

fn model_path() -> Option<PathBuf> {
    let p = std::env::var_os("SWORN_MODEL").map(PathBuf::from)?;
    p.exists().then_some(p)
}

/// Feeds `tokens` to `seq` alone; returns their hidden states.
fn feed(e: &Engine, seq: &mut Sequence, tokens: &[u32]) -> Vec<f32> {
    e.model
        .forward(&e.runner, &mut [Feed { seq, tokens }])
        .unwrap()
}

fn model_steps(c: &mut Criterion) {
    let Some(path) = model_path() else {
        eprintln!("!!! model benchmarks skipped: set SWORN_MODEL to the GGUF (scripts/fetch-model.sh prints it) !!!");
        return;
    };
    for threads in [1, 2] {
        let e = Engine::load(
            &path,
            &EngineOptions {
                threads,
                ..Default::default()
            },
        )
        .unwrap();
        let prompt: Vec<u32> = (0..128u32).map(|i| (i * 7919 + 13) % 49152).collect();
        let mut g = c.benchmark_group(format!("smollm2_{threads}t"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(128));
        g.bench_function("prefill_128", |b| {
            b.iter(|| {
                let h = feed(&e, &mut e.model.new_sequence(), &prompt);
                let d = e.model.cfg.d_model;
                e.model.logits(&e.runner, &h[h.len() - d..]).unwrap()
            })
        });
        let mut seq = e.model.new_sequence();
        feed(&e, &mut seq, &prompt);
        g.throughput(Throughput::Elements(1));
        g.bench_function("decode_1_at_128", |b| {
            b.iter(|| {
                let h = feed(&e, &mut seq, &[42]);
                seq.truncate(128, e.model.cfg.kv_dim());
                e.model.logits(&e.runner, &h).unwrap()
            })
        });
        // The server's steady state under load: sixteen sequences decoding together, one token
        // each, every one needing its logits.
        let mut seqs: Vec<_> = (0..16).map(|_| e.model.new_sequence()).collect();
        for s in seqs.iter_mut() {
            feed(&e, s, &prompt[..64]);
        }
        g.throughput(Throughput::Elements(16));
        g.bench_function("decode_16_at_64", |b| {
            b.iter(|| {
                let mut feeds: Vec<Feed> = seqs
                    .iter_mut()
                    .map(|s| Feed {
                        seq: s,
                        tokens: &[42],
                    })
                    .collect();
                let h = e.model.forward(&e.runner, &mut feeds).unwrap();
                drop(feeds);
                for s in seqs.iter_mut() {
                    s.truncate(64, e.model.cfg.kv_dim());
                }
                e.model.logits(&e.runner, &h).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, kernels, replay_products, attention, model_steps);
criterion_main!(benches);
