//! Criterion benchmarks of transcripts: signing, verifying, encoding and decoding a signed
//! transcript of a 256-token completion (synthetic content: the cost does not depend on what the
//! tokens are). Model commitment and replay-vs-generation timings come from
//! `sworn bench --attest`, which needs the model.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sworn_attest::{
    FinishReason, Limits, Message, Meta, ModelCommitment, OperatorKey, OutputRecord, Prompt,
    RequestRecord, Sampling, Transcript, FORMAT_VERSION,
};

fn transcript(key: &OperatorKey) -> Transcript {
    let n = 256;
    let mut t = Transcript {
        version: FORMAT_VERSION,
        model: ModelCommitment {
            file_blake3: [1; 32],
            tensors_root: [2; 32],
            n_tensors: 272,
            tokenizer_blake3: [3; 32],
            chat_template_blake3: [4; 32],
            exec_root: Some([5; 32]),
        },
        request: RequestRecord {
            spec_version: "sworn-canon/1".into(),
            prompt: Prompt::Chat(vec![Message::new("user", "Tell me a long story.")]),
            prompt_tokens: (0..40).collect(),
            sampling: Sampling {
                temperature: 0.8,
                top_k: 40,
                top_p: 0.95,
                min_p: 0.05,
                repeat_penalty: 1.1,
                repeat_last_n: 64,
                seed: 7,
            },
            max_tokens: n,
            stop: vec![],
            logprobs: None,
            grammar: None,
            tools: None,
        },
        output: OutputRecord {
            tokens: (0..n).map(|i| i * 7 % 49152).collect(),
            text: "word ".repeat(n as usize),
            finish_reason: FinishReason::Length,
            step_hashes: (0..n)
                .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
                .collect(),
            logprobs: vec![],
        },
        meta: Meta {
            engine: "sworn".into(),
            engine_version: "0.1.0".into(),
            backend: "cpu-avx2 x2".into(),
            operator_key_id: [0; 32],
            timestamp_ms: 0,
            operator: None,
        },
        signature: [0; 64],
    };
    key.sign(&mut t);
    t
}

fn transcripts(c: &mut Criterion) {
    let key = OperatorKey::from_seed(&[5; 32]);
    let public = key.public();
    let t = transcript(&key);
    let bin = t.encode();
    let json = serde_json::to_string(&t.to_json()).unwrap();
    c.bench_function("transcript/sign_256", |b| {
        b.iter(|| key.sign(&mut black_box(t.clone())))
    });
    c.bench_function("transcript/verify_256", |b| {
        b.iter(|| sworn_verifier::verify(black_box(t.clone()), &[public]).unwrap())
    });
    c.bench_function("transcript/digest_256", |b| {
        b.iter(|| black_box(&t).digest())
    });
    c.bench_function("transcript/decode_binary", |b| {
        b.iter(|| Transcript::decode(black_box(&bin), Limits::default()).unwrap())
    });
    c.bench_function("transcript/parse_json", |b| {
        b.iter(|| Transcript::from_json(black_box(&json), Limits::default()).unwrap())
    });
}

criterion_group!(benches, transcripts);
criterion_main!(benches);
