//! Bit-equality of the full logits vector at every step, whatever the execution: thread count,
//! scalar reference vs fast path, token-by-token vs one prefill vs arbitrary chunkings, alone vs
//! batched with other requests, run after run. On tiny synthetic GGUF models written here, and on
//! the real model.

mod common;

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use sworn_engine::batcher::{Batcher, Event};
use sworn_engine::model::Feed;
use sworn_engine::schedule::Policy;
use sworn_engine::synthetic::{filtered_sampling as sampled, request, write_model, SyntheticSpec};
use sworn_engine::{
    hash_logits, Completion, Engine, EngineOptions, Isa, Message, Prompt, Request, SamplingParams,
};

fn engine(path: &Path, isa: Isa, threads: usize) -> Engine {
    Engine::load(
        path,
        &EngineOptions {
            threads,
            isa: Some(isa),
            max_context: None,
            ..Default::default()
        },
    )
    .unwrap()
}

fn synthetic(name: &str, spec: &SyntheticSpec) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sworn-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    write_model(&p, spec).unwrap();
    p
}

/// BLAKE3 of the logits at every position, feeding `tokens` in the given chunk sizes.
fn logits_by_chunks(e: &Engine, tokens: &[u32], chunks: &[usize]) -> Vec<[u8; 32]> {
    assert_eq!(chunks.iter().sum::<usize>(), tokens.len());
    let mut seq = e.model.new_sequence();
    let mut out = Vec::new();
    let mut i = 0;
    for &c in chunks {
        let hidden = e
            .model
            .forward(
                &e.runner,
                &mut [Feed {
                    seq: &mut seq,
                    tokens: &tokens[i..i + c],
                }],
            )
            .unwrap();
        let logits = e.model.logits(&e.runner, &hidden).unwrap();
        out.extend(logits.chunks_exact(e.model.cfg.vocab).map(hash_logits));
        i += c;
    }
    out
}

fn tokens_for(e: &Engine, n: usize) -> Vec<u32> {
    let text =
        "The quick brown fox jumps over the lazy dog; then the dog, in turn, naps under an oak. ";
    let mut t = e.tokenizer.encode(&text.repeat(1 + n / 10), false).unwrap();
    t.truncate(n);
    assert_eq!(t.len(), n);
    t
}

fn requests() -> Vec<Request> {
    vec![
        request(
            Prompt::Text("Once upon a time".into()),
            SamplingParams::default(),
            12,
            &[],
        ),
        request(
            Prompt::Chat(vec![Message::new("user", "Name three colours.")]),
            sampled(7, 0.8),
            16,
            &[],
        ),
        request(
            Prompt::Text("1, 2, 3, 4,".into()),
            sampled(42, 1.3),
            9,
            &[", 9", "\n\n"],
        ),
        request(Prompt::Text("x".repeat(40)), sampled(3, 0.5), 5, &[]),
    ]
}

/// Every invariance on one model. `n` tokens for the chunking checks; `scalar_n` for the (slow)
/// scalar reference.
fn check_all(path: &Path, n: usize, scalar_n: usize) {
    let fast = engine(path, Isa::detect(), 1);
    let toks = tokens_for(&fast, n);
    let whole = logits_by_chunks(&fast, &toks, &[n]);
    assert_eq!(
        whole,
        logits_by_chunks(&fast, &toks, &[n]),
        "two runs in a row differ"
    );
    assert_eq!(
        whole,
        logits_by_chunks(&fast, &toks, &vec![1; n]),
        "token-by-token differs from one prefill"
    );
    assert_eq!(
        whole,
        logits_by_chunks(&fast, &toks, &[n - 1, 1]),
        "{}+1 chunking differs",
        n - 1
    );
    let mut odd = Vec::new();
    let (mut left, mut c) = (n, 1);
    while left > 0 {
        let k = c.min(left);
        odd.push(k);
        left -= k;
        c = c * 3 % 37 + 1;
    }
    assert_eq!(
        whole,
        logits_by_chunks(&fast, &toks, &odd),
        "chunking {odd:?} differs"
    );
    for threads in [2, 3] {
        let e = engine(path, Isa::detect(), threads);
        assert_eq!(
            whole,
            logits_by_chunks(&e, &toks, &[n]),
            "{threads} threads differ"
        );
        assert_eq!(
            whole,
            logits_by_chunks(&e, &toks, &vec![1; n]),
            "{threads} threads token-by-token differ"
        );
    }
    let portable = engine(path, Isa::Portable, 2);
    assert_eq!(
        whole,
        logits_by_chunks(&portable, &toks, &[n]),
        "portable kernels differ from {}",
        Isa::detect().name()
    );
    let scalar = engine(path, Isa::Scalar, 1);
    assert_eq!(
        whole[..scalar_n],
        logits_by_chunks(&scalar, &toks[..scalar_n], &[scalar_n])[..],
        "scalar reference differs from {}",
        Isa::detect().name()
    );

    // Generation: alone vs batched (with and without chunked prefill), any threads, twice.
    let reqs = requests();
    let solo: Vec<_> = reqs.iter().map(|r| fast.generate(r).unwrap()).collect();
    assert_eq!(
        solo,
        reqs.iter()
            .map(|r| fast.generate(r).unwrap())
            .collect::<Vec<_>>(),
        "generation not repeatable"
    );
    let e2 = engine(path, Isa::detect(), 2);
    assert_eq!(
        solo,
        e2.generate_batch(&reqs, None).unwrap(),
        "batched generation differs from solo runs"
    );
    assert_eq!(
        solo,
        e2.generate_batch(&reqs, Some(7)).unwrap(),
        "chunked batched generation differs"
    );
    let mut rev = reqs.clone();
    rev.reverse();
    let mut got = fast.generate_batch(&rev, Some(3)).unwrap();
    got.reverse();
    assert_eq!(solo, got, "batch order changes results");
    // Continuous batching: requests arriving at different steps, one cancelled midway; streamed
    // text adds up to the final text.
    let mut b = Batcher::new(&e2, Some(5));
    let mut ids = vec![b.submit(reqs[0].clone()).unwrap()];
    let doomed = b.submit(reqs[1].clone()).unwrap();
    let mut streamed: HashMap<u64, String> = HashMap::new();
    let mut finished: HashMap<u64, Completion> = HashMap::new();
    let mut step = 0;
    while !b.is_idle() || ids.len() < reqs.len() {
        if step == 2 {
            assert!(b.cancel(doomed));
            ids.push(b.submit(reqs[1].clone()).unwrap());
        }
        if step == 3 {
            ids.push(b.submit(reqs[2].clone()).unwrap());
            ids.push(b.submit(reqs[3].clone()).unwrap());
        }
        for ev in b.step().unwrap() {
            match ev {
                Event::Token { id, text, .. } => streamed.entry(id).or_default().push_str(&text),
                Event::Finished { id, completion } => {
                    finished.insert(id, completion);
                }
                Event::Failed { id, error } => panic!("request {id} failed: {error}"),
            }
        }
        step += 1;
    }
    assert!(!finished.contains_key(&doomed));
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            finished[id], solo[i],
            "continuous batching differs for request {i}"
        );
        assert_eq!(streamed[id], solo[i].text, "streamed text of request {i}");
    }
    // A per-pass budget (engine::schedule): a long prompt arriving while others decode is fed
    // in priced chunks, every decoding request gets its token in every pass, and every output
    // is still its solo run's, streamed text included.
    let long = Request {
        prompt: Prompt::Text("The committee met again on the bridge. ".repeat(5)),
        params: SamplingParams::default(),
        max_tokens: 4,
        ..Default::default()
    };
    let long_solo = fast.generate(&long).unwrap();
    let policy = Policy {
        prefill_chunk: 256,
        pass_budget: Some(8),
    };
    let mut b = Batcher::with_policy(&e2, policy);
    let early = b.submit(reqs[0].clone()).unwrap();
    let mut finished: HashMap<u64, Completion> = HashMap::new();
    let mut streamed: HashMap<u64, String> = HashMap::new();
    let (mut long_id, mut long_passes) = (None, 0);
    while !b.is_idle() {
        let decoding = b.decoding();
        if long_id.is_none() && decoding == 1 {
            long_id = Some(b.submit(long.clone()).unwrap());
        }
        let events = b.step().unwrap();
        let shape = b.last_pass();
        // Whoever was decoding got a token in this pass.
        assert_eq!(shape.decoding, decoding, "{shape:?}");
        if shape.prompt_tokens > 0 && shape.decoding > 0 {
            long_passes += 1;
            // A budget of 8 units feeds a few prompt tokens at a time, not the whole prompt.
            assert!(shape.prompt_tokens <= 8, "{shape:?}");
        }
        for ev in events {
            match ev {
                Event::Token { id, text, .. } => streamed.entry(id).or_default().push_str(&text),
                Event::Finished { id, completion } => {
                    finished.insert(id, completion);
                }
                Event::Failed { id, error } => panic!("request {id} failed: {error}"),
            }
        }
    }
    let long_id = long_id.expect("the long prompt arrived while the first request decoded");
    assert!(
        long_passes >= 3,
        "the long prompt shared {long_passes} passes"
    );
    assert_eq!(
        finished[&early], solo[0],
        "under a budget, the early request"
    );
    assert_eq!(
        finished[&long_id], long_solo,
        "under a budget, the long prompt"
    );
    assert_eq!(streamed[&long_id], long_solo.text);
    // Teacher-forced replay reproduces every step's logits.
    for (r, c) in reqs.iter().zip(&solo) {
        let mut hashes = Vec::new();
        fast.teacher_forced(&c.prompt_tokens, &c.tokens, |_, l| {
            hashes.push(hash_logits(l));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            hashes, c.logits_hashes,
            "teacher-forced replay differs for {:?}",
            r.prompt
        );
        // The variant that hashes on the kernel threads hands over the same logits and hashes.
        let mut steps = 0;
        fast.teacher_forced_hashed(&c.prompt_tokens, &c.tokens, |i, l, h| {
            assert_eq!(*h, hash_logits(l), "step {i}: the hash is of these logits");
            assert_eq!(*h, c.logits_hashes[i], "step {i}: hashed teacher forcing");
            steps += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(steps, c.tokens.len());
    }
}

#[test]
fn synthetic_models_are_bit_exact_across_execution_modes() {
    let p = synthetic("default.gguf", &SyntheticSpec::default());
    check_all(&p, 64, 64);
    // Other shapes: no GQA, untied-looking sizes, every projection in one type.
    for (i, kind) in [
        candle_core::quantized::GgmlDType::Q4_1,
        candle_core::quantized::GgmlDType::Q8_0,
    ]
    .into_iter()
    .enumerate()
    {
        let spec = SyntheticSpec {
            n_head: 2,
            n_kv_head: 2,
            d_model: 96,
            d_ff: 64,
            kinds: vec![kind],
            seed: 9 + i as u64,
            ..Default::default()
        };
        let p = synthetic(&format!("alt{i}.gguf"), &spec);
        check_all(&p, 40, 40);
    }
}

/// A model whose projections are in every other block format (spec §1.4: Q5_0, Q5_1, the
/// K-quants) and BF16: width 256 so that K-quant super-blocks fit. These run the reference
/// product on every ISA for now; the whole determinism suite holds for them too.
#[test]
fn k_quant_synthetic_model_is_bit_exact_across_execution_modes() {
    let spec = SyntheticSpec::k_quants();
    let p = synthetic("kquants.gguf", &spec);
    // Every block format is loaded as such (BF16 is widened to f32 at load).
    let e = engine(&p, Isa::Scalar, 1);
    let mut seen: Vec<_> = e
        .model
        .layers
        .iter()
        .flat_map(|l| &l.mats)
        .chain([&e.model.tok_embd])
        .map(|m| format!("{:?}", m.kind))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "{seen:?}");
    check_all(&p, 24, 24);
}

/// A Gemma 3 synthetic model (spec §3.9): heads wider than d_model / n_head, extra norms,
/// GeGLU, NeoX RoPE with two bases, and a sliding window of 8 keys on five layers of six, so
/// that the 40-token prompts run far past the window. Batching, chunking, threads and ISAs must
/// not change a bit, windowed or not.
#[test]
fn gemma3_synthetic_model_is_bit_exact_across_execution_modes() {
    let spec = SyntheticSpec::gemma3();
    let p = synthetic("gemma3.gguf", &spec);
    let e = engine(&p, Isa::Scalar, 1);
    assert_eq!(e.model.cfg.arch, sworn_engine::model::Arch::Gemma3);
    assert_eq!(e.model.cfg.q_dim(), 128);
    assert!(e.model.cfg.is_sliding(0) && !e.model.cfg.is_sliding(5));
    check_all(&p, 40, 40);
}

/// Llama 3 style: RoPE frequency factors and an untied output matrix.
#[test]
fn llama3_synthetic_model_is_bit_exact_across_execution_modes() {
    let spec = SyntheticSpec {
        llama3: true,
        seed: 50,
        ..Default::default()
    };
    let p = synthetic("llama3.gguf", &spec);
    let e = engine(&p, Isa::Scalar, 1);
    assert!(e.model.output.is_some(), "untied output");
    // The factors slow the rotation: a pair's angle at position 1 is smaller than without.
    let plain = sworn_engine::canon::rope::RopeTable::new(e.model.cfg.head_dim, 10000.0, 4);
    assert!(e.model.rope.row(1).1[0] < plain.row(1).1[0]);
    check_all(&p, 40, 40);
}

/// Qwen 2 (Q/K/V biases) and Qwen 3 (per-head q/k norms, heads wider than d_model / n_head),
/// both with NeoX RoPE, on synthetic models.
#[test]
fn qwen_synthetic_models_are_bit_exact_across_execution_modes() {
    use sworn_engine::model::Arch;
    for (i, arch) in [Arch::Qwen2, Arch::Qwen3].into_iter().enumerate() {
        let spec = SyntheticSpec {
            arch,
            head_dim: (arch == Arch::Qwen3).then_some(32),
            n_head: 4,
            n_kv_head: 2,
            seed: 40 + i as u64,
            ..Default::default()
        };
        let p = synthetic(&format!("{}.gguf", arch.name()), &spec);
        let e = engine(&p, Isa::Scalar, 1);
        assert_eq!(e.model.cfg.arch, arch);
        let l = &e.model.layers[0];
        use sworn_engine::arch::LayerVec;
        assert_eq!(l.vec(LayerVec::QBias).is_some(), arch == Arch::Qwen2);
        assert_eq!(l.vec(LayerVec::QNorm).is_some(), arch == Arch::Qwen3);
        check_all(&p, 40, 40);
    }
}

#[test]
fn real_model_is_bit_exact_across_execution_modes() {
    let Some(path) = common::real_model("real_model_is_bit_exact_across_execution_modes") else {
        return;
    };
    check_all(&path, 128, 6);
}

/// The real Gemma 3 270M (Q4_K_M: Q5_0, Q4_K, Q6_K and Q8_0 tensors): the determinism suite on
/// a short prompt (its K-quant products run on the reference kernel for now, so it is kept short).
#[test]
fn real_gemma3_is_bit_exact_across_execution_modes() {
    let Some(path) = common::gemma_model("real_gemma3_is_bit_exact_across_execution_modes") else {
        return;
    };
    check_all(&path, 12, 3);
}
