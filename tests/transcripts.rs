//! Signed transcripts end to end, on the real model: golden vectors that must verify and replay
//! bit for bit, a tamper suite (every bit of a signed transcript), and replays that catch wrong
//! weights, another seed, truncated or extended outputs and swapped keys, each with its reason.

mod common;

use common::{model, require_model};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sworn::attestation::sign_completion;
use sworn_attest::{hexser, FinishReason, Limits, OperatorBinding, OperatorKey, Transcript};
use sworn_engine::commit::{manifest, ModelManifest};
use sworn_engine::{Engine, EngineOptions, Message, Prompt, Request, SamplingParams};
use sworn_verifier::replay::{replay_with, Divergence};
use sworn_verifier::{verify, verify_bytes, AttestError};

/// The golden vectors' signing key. Its secret is public (it is right here): it proves nothing
/// about who ran anything, only that the vectors were not changed since they were signed.
const VECTOR_KEY_SEED: [u8; 32] = [7; 32];

/// The engine and manifest, loaded once for all tests of this file.
fn setup(path: &Path) -> &'static (Engine, ModelManifest) {
    static S: OnceLock<(Engine, ModelManifest)> = OnceLock::new();
    S.get_or_init(|| {
        let opts = EngineOptions {
            threads: 2,
            ..Default::default()
        };
        (Engine::load(path, &opts).unwrap(), manifest(path).unwrap())
    })
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn sampled(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.1,
        repeat_last_n: 64,
        seed,
    }
}

/// The requests behind the golden vectors: greedy and sampled, plain and chat.
fn vector_requests() -> Vec<(&'static str, Request)> {
    let chat = |q: &str| {
        Prompt::Chat(vec![
            Message::new("system", "You are a helpful assistant."),
            Message::new("user", q),
        ])
    };
    vec![
        (
            "greedy-text",
            Request {
                prompt: Prompt::Text("The three primary colours are".into()),
                params: SamplingParams::default(),
                max_tokens: 24,
                stop: vec![],
                ..Default::default()
            },
        ),
        (
            "greedy-chat",
            Request {
                prompt: chat("What is the capital of France?"),
                params: SamplingParams::default(),
                max_tokens: 48,
                stop: vec![],
                ..Default::default()
            },
        ),
        (
            "sampled-text",
            Request {
                prompt: Prompt::Text("Once upon a time, in a small village,".into()),
                params: sampled(1234),
                max_tokens: 40,
                stop: vec!["\n\n".into()],
                ..Default::default()
            },
        ),
        (
            "sampled-chat",
            Request {
                prompt: chat("Write a haiku about the sea."),
                params: sampled(99),
                max_tokens: 48,
                stop: vec![],
                ..Default::default()
            },
        ),
    ]
}

fn sign(engine: &Engine, m: &ModelManifest, req: &Request, key: &OperatorKey) -> Transcript {
    let c = engine.generate(req).unwrap();
    sign_completion(engine, m, req, &c, key, None)
}

/// The chat vectors name an on-chain operator (a made-up registration), so that both forms of
/// `meta.operator` have golden vectors.
fn vector_binding(name: &str) -> Option<OperatorBinding> {
    name.ends_with("-chat").then_some(OperatorBinding {
        chain_id: 31337,
        registry: [0x5e; 20],
        address: [0x09; 20],
    })
}

/// Regenerates tests/vectors (run with SWORN_WRITE_VECTORS=1, on purpose, when the spec version
/// changes).
#[test]
fn write_golden_vectors() {
    if std::env::var("SWORN_WRITE_VECTORS").as_deref() != Ok("1") {
        return;
    }
    let path = model().expect("SWORN_MODEL");
    let (engine, m) = setup(&path);
    let key = OperatorKey::from_seed(&VECTOR_KEY_SEED);
    std::fs::create_dir_all(vectors_dir()).unwrap();
    for (name, req) in vector_requests() {
        let c = engine.generate(&req).unwrap();
        let t = sign_completion(engine, m, &req, &c, &key, vector_binding(name).as_ref());
        let json = serde_json::to_string_pretty(&t.to_json()).unwrap() + "\n";
        std::fs::write(vectors_dir().join(format!("{name}.json")), json).unwrap();
    }
    std::fs::write(
        vectors_dir().join("operator.pub.json"),
        serde_json::to_string_pretty(&key.public().doc()).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn golden_vectors_verify_and_replay_bit_for_bit() {
    let key = OperatorKey::from_seed(&VECTOR_KEY_SEED).public();
    let mut seen = 0;
    let mut loaded = Vec::new();
    for (name, req) in vector_requests() {
        let bytes = std::fs::read(vectors_dir().join(format!("{name}.json"))).unwrap();
        let v = verify_bytes(&bytes, &[key]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            v.transcript.request.spec_version,
            sworn_engine::canon::SPEC_VERSION,
            "{name}: spec version"
        );
        assert_eq!(
            v.transcript.meta.operator,
            vector_binding(name),
            "{name}: operator binding"
        );
        assert_eq!(
            sworn_verifier::replay::engine_request(&v.transcript),
            req,
            "{name}: request"
        );
        loaded.push((name, v.transcript));
        seen += 1;
    }
    assert_eq!(seen, 4);
    let Some(path) = require_model("golden_vectors_verify_and_replay_bit_for_bit") else {
        return;
    };
    let (engine, m) = setup(&path);
    for (name, t) in &loaded {
        let r = replay_with(t, engine, m.clone()).unwrap();
        assert!(r.ok(), "{name}: {}", r.reason());
        // And a fresh generation reproduces the same output bits.
        let again = engine
            .generate(&sworn_verifier::replay::engine_request(t))
            .unwrap();
        assert_eq!(again.tokens, t.output.tokens, "{name}");
        assert_eq!(again.logits_hashes, t.output.step_hashes, "{name}");
    }
    let chat = &loaded[1].1;
    assert!(chat.output.text.contains("Paris"), "{}", chat.output.text);
}

/// Gemma 3's golden vectors (greedy and sampled, plain and chat), written with
/// `SWORN_WRITE_VECTORS=1` like SmolLM2's: they verify, replay bit for bit on the real model
/// and regenerate to the same tokens and trace.
#[test]
fn gemma3_golden_vectors_verify_and_replay_bit_for_bit() {
    let key = OperatorKey::from_seed(&VECTOR_KEY_SEED);
    let Some(path) = common::require_gemma("gemma3_golden_vectors") else {
        return;
    };
    let engine = Engine::load(
        &path,
        &EngineOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let m = manifest(&path).unwrap();
    let requests: Vec<(String, Request)> = vector_requests()
        .into_iter()
        .map(|(name, mut r)| {
            r.max_tokens = r.max_tokens.min(16);
            (format!("gemma3-{name}"), r)
        })
        .collect();
    if std::env::var("SWORN_WRITE_VECTORS").as_deref() == Ok("1") {
        for (name, req) in &requests {
            let c = engine.generate(req).unwrap();
            let t = sign_completion(&engine, &m, req, &c, &key, vector_binding(name).as_ref());
            let json = serde_json::to_string_pretty(&t.to_json()).unwrap() + "\n";
            std::fs::write(vectors_dir().join(format!("{name}.json")), json).unwrap();
        }
    }
    for (name, req) in &requests {
        let bytes = std::fs::read(vectors_dir().join(format!("{name}.json"))).unwrap();
        let t = verify_bytes(&bytes, &[key.public()])
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .transcript;
        assert_eq!(&sworn_verifier::replay::engine_request(&t), req, "{name}");
        assert_eq!(t.model.commitment(), m.commitment.commitment(), "{name}");
        assert!(
            t.model.exec_root.is_some(),
            "{name}: format 4 commits to the execution"
        );
        let r = replay_with(&t, &engine, m.clone()).unwrap();
        assert!(r.ok(), "{name}: {}", r.reason());
        let again = engine.generate(req).unwrap();
        assert_eq!(again.tokens, t.output.tokens, "{name}");
        assert_eq!(again.logits_hashes, t.output.step_hashes, "{name}");
    }
}

/// Receipts are forever: the golden vectors sworn issued in formats 1, 2 and 3 (kept as they
/// were written, from the repository's history) still verify, keep their exact JSON and digest
/// through a read and a write, warn about what their format lacks, and replay bit for bit.
#[test]
fn older_formats_verify_and_replay_bit_for_bit() {
    let key = OperatorKey::from_seed(&VECTOR_KEY_SEED).public();
    let mut loaded = Vec::new();
    for (version, dir) in [(1u16, "format1"), (2, "format2"), (3, "format3")] {
        let mut names: Vec<_> = std::fs::read_dir(vectors_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names.len(), if version == 1 { 4 } else { 8 }, "{dir}");
        for path in names {
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let bytes = std::fs::read(&path).unwrap();
            let v = verify_bytes(&bytes, &[key]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let t = v.transcript;
            assert_eq!(t.version, version, "{name}");
            // Format 1 lacks much; formats 2 and 3 lack the execution commitment.
            assert!(!v.warnings.is_empty(), "{name}");
            assert_eq!(
                v.warnings.iter().any(|w| w.contains("exec_root")),
                version != 1,
                "{name}: {:?}",
                v.warnings
            );
            // The writer gives back the very document (same fields, same digest).
            let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(t.to_json(), doc, "{name}: JSON round trip");
            assert_eq!(doc["digest"], hexser::encode(&v.digest), "{name}");
            // And the binary form round-trips.
            let bin = t.encode();
            assert_eq!(Transcript::decode(&bin, Limits::default()).unwrap(), t);
            loaded.push((name, t));
        }
    }
    let Some(path) = require_model("older_formats_verify_and_replay_bit_for_bit") else {
        return;
    };
    let (engine, m) = setup(&path);
    for (name, t) in loaded.iter().filter(|(n, _)| !n.contains("gemma3")) {
        let r = replay_with(t, engine, m.clone()).unwrap();
        assert!(r.ok(), "{name}: {}", r.reason());
    }
    let Some(gemma) = common::require_gemma("older_formats (gemma3)") else {
        return;
    };
    let opts = EngineOptions {
        threads: 2,
        ..Default::default()
    };
    let (g, gm) = Engine::load_with_manifest(&gemma, &opts).unwrap();
    for (name, t) in loaded.iter().filter(|(n, _)| n.contains("gemma3")) {
        let r = replay_with(t, &g, gm.clone()).unwrap();
        assert!(r.ok(), "{name}: {}", r.reason());
    }
}

/// A hostile transcript longer than the model's context is refused before any replay work,
/// with the bound in the message.
#[test]
fn replay_refuses_a_transcript_longer_than_the_context_up_front() {
    let Some(path) = require_model("replay_refuses_a_transcript_longer_than_the_context") else {
        return;
    };
    let (engine, m) = setup(&path);
    let bytes = std::fs::read(vectors_dir().join("greedy-text.json")).unwrap();
    let mut t = sworn_verifier::parse(&bytes, Limits::default()).unwrap();
    let n = engine.max_context() + 1 - t.request.prompt_tokens.len();
    t.output.tokens = vec![1; n];
    t.output.step_hashes = vec![[0; 32]; n];
    t.request.max_tokens = n as u32;
    let e = replay_with(&t, engine, m.clone()).unwrap_err().to_string();
    assert!(e.contains("more than the model's context"), "{e}");
}

#[test]
fn every_single_bit_flip_fails_verification() {
    let key = OperatorKey::from_seed(&VECTOR_KEY_SEED).public();
    for name in ["greedy-chat", "sampled-text"] {
        let bytes = std::fs::read(vectors_dir().join(format!("{name}.json"))).unwrap();
        let t = verify_bytes(&bytes, &[key]).unwrap().transcript;
        let bin = t.encode();
        let mut reasons = std::collections::HashSet::new();
        for bit in 0..bin.len() * 8 {
            let mut b = bin.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let res = Transcript::decode(&b, Limits::default()).and_then(|t| verify(t, &[key]));
            match res {
                Ok(_) => panic!("{name}: flipping bit {bit} still verifies"),
                Err(e) => {
                    reasons.insert(std::mem::discriminant(&e));
                }
            }
        }
        // Flips fail for different reasons: decoding, signature, untrusted key, ...
        assert!(
            reasons.len() >= 3,
            "{name}: only {} kinds of failure",
            reasons.len()
        );
    }
}

#[test]
fn swapped_operator_keys_are_named() {
    let bytes = std::fs::read(vectors_dir().join("greedy-text.json")).unwrap();
    let a = OperatorKey::from_seed(&VECTOR_KEY_SEED);
    let b = OperatorKey::from_seed(&[8; 32]);
    let t = sworn_verifier::parse(&bytes, Limits::default()).unwrap();
    // Verified against the wrong key set: untrusted.
    let e = verify(t.clone(), &[b.public()]).unwrap_err();
    assert!(matches!(e, AttestError::UntrustedKey(_)), "{e}");
    assert!(e.to_string().contains(&hexser::encode(&a.public().id())));
    // Key id swapped to a trusted key, signature left: the signature fails.
    let mut swapped = t.clone();
    swapped.meta.operator_key_id = b.public().id();
    let e = verify(swapped, &[a.public(), b.public()]).unwrap_err();
    assert!(matches!(e, AttestError::Signature(_)), "{e}");
    // Re-signed by the other operator: valid only for those who trust that operator.
    let mut resigned = t;
    b.sign(&mut resigned);
    assert!(verify(resigned.clone(), &[b.public()]).is_ok());
    assert!(matches!(
        verify(resigned, &[a.public()]).unwrap_err(),
        AttestError::UntrustedKey(_)
    ));
}

#[test]
fn replay_catches_what_a_signature_cannot() {
    let Some(path) = require_model("replay_catches_what_a_signature_cannot") else {
        return;
    };
    let (engine, m) = setup(&path);
    let key = OperatorKey::from_seed(&[9; 32]);
    let trusted = [key.public()];

    // Another seed: the operator claims seed 2 for the output of seed 1. Replay fails at the
    // first step whose sampled token changes with the seed.
    let req = Request {
        prompt: Prompt::Text("My favourite animal is".into()),
        params: sampled(1),
        max_tokens: 32,
        stop: vec![],
        ..Default::default()
    };
    let honest = sign(engine, m, &req, &key);
    let other = engine
        .generate(&Request {
            params: sampled(2),
            ..req.clone()
        })
        .unwrap();
    let first = honest
        .output
        .tokens
        .iter()
        .zip(&other.tokens)
        .position(|(a, b)| a != b)
        .expect("seeds 1 and 2 differ");
    let mut lie = honest.clone();
    lie.request.sampling.seed = 2;
    key.sign(&mut lie);
    assert!(
        verify(lie.clone(), &trusted).is_ok(),
        "a signed lie is still well-formed"
    );
    let r = replay_with(&lie, engine, m.clone()).unwrap();
    assert_eq!(
        r.divergence,
        Some(Divergence::Token {
            step: first,
            claimed: honest.output.tokens[first],
            replayed: other.tokens[first]
        }),
        "{}",
        r.reason()
    );
    assert!(r.reason().contains(&format!("step {first}")));

    // Truncated output: the last token dropped, finish reason "stop".
    let greedy = Request {
        prompt: Prompt::Chat(vec![Message::new("user", "Say hello.")]),
        params: SamplingParams::default(),
        max_tokens: 64,
        stop: vec![],
        ..Default::default()
    };
    let full = sign(engine, m, &greedy, &key);
    assert_eq!(
        full.output.finish_reason,
        FinishReason::Stop,
        "needs a completion that ends on its own"
    );
    let mut cut = full.clone();
    cut.output.tokens.pop();
    cut.output.step_hashes.pop();
    key.sign(&mut cut);
    let r = replay_with(&cut, engine, m.clone()).unwrap();
    assert_eq!(
        r.divergence,
        Some(Divergence::Truncated {
            tokens: cut.output.tokens.len()
        }),
        "{}",
        r.reason()
    );
    assert!(r.reason().contains("truncated"));

    // An extra token after the end-of-turn token.
    let mut extra = full.clone();
    extra.request.max_tokens = 64;
    extra.output.tokens.push(42);
    extra.output.step_hashes.push([0; 32]);
    key.sign(&mut extra);
    let r = replay_with(&extra, engine, m.clone()).unwrap();
    assert_eq!(
        r.divergence,
        Some(Divergence::ExtraTokens {
            step: full.output.tokens.len() - 1
        }),
        "{}",
        r.reason()
    );

    // A changed text.
    let mut text = full.clone();
    text.output.text.push('!');
    key.sign(&mut text);
    assert_eq!(
        replay_with(&text, engine, m.clone()).unwrap().divergence,
        Some(Divergence::Text)
    );

    // The honest one replays.
    let r = replay_with(&full, engine, m.clone()).unwrap();
    assert!(r.ok(), "{}", r.reason());
}

#[test]
fn replay_names_changed_weights() {
    let Some(path) = require_model("replay_names_changed_weights") else {
        return;
    };
    let (engine, m) = setup(&path);
    let key = OperatorKey::from_seed(&[9; 32]);
    let req = Request {
        prompt: Prompt::Text("Water boils at".into()),
        params: SamplingParams::default(),
        max_tokens: 8,
        stop: vec![],
        ..Default::default()
    };
    let t = sign(engine, m, &req, &key);
    // One byte changed inside one tensor's data (blk.7.ffn_up: a Q4_1 block's quants).
    let mut bytes = std::fs::read(&path).unwrap();
    let f = sworn_engine::gguf::GgufFile::from_reader(std::io::Cursor::new(&bytes)).unwrap();
    let target = "blk.7.ffn_up.weight";
    let at = f.tensor_data_range(target).unwrap().start as usize + 1000;
    drop(f);
    bytes[at] ^= 0x10;
    let dir = std::env::temp_dir().join(format!("sworn-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let changed = dir.join("changed.gguf");
    std::fs::write(&changed, &bytes).unwrap();
    let cm = manifest(&changed).unwrap();
    let ce = Engine::load(
        &changed,
        &EngineOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let r = replay_with(&t, &ce, cm.clone()).unwrap();
    assert!(!r.ok());
    // The execution commitment's weights root holds the changed row too.
    assert_eq!(
        r.model_mismatches,
        vec!["file", "tensors", "exec_root"],
        "{}",
        r.reason()
    );
    assert!(
        r.reason().starts_with("the weights differ"),
        "{}",
        r.reason()
    );
    // With the operator's per-tensor list, the changed tensor is named.
    let differing: Vec<&str> = m
        .tensors
        .iter()
        .zip(&cm.tensors)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(differing, vec![target]);
    let _ = std::fs::remove_dir_all(&dir);
}
