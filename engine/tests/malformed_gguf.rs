//! Hostile and broken GGUF files: every one must give a clear error, never a panic. Replays the
//! fuzz corpus (fuzz/corpus/gguf_load, seeded by this test and grown by `cargo fuzz`) and runs a
//! bounded, deterministic mutation fuzzer over a valid synthetic model.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use candle_core::quantized::gguf_file::{self, Value};
use sworn_engine::fuzzing::load_from_bytes;
use sworn_engine::synthetic::{write_model, SyntheticSpec};

fn synthetic_bytes() -> Vec<u8> {
    synthetic_bytes_with(64)
}

/// A one-layer synthetic model with feed-forward width `d_ff`.
fn synthetic_bytes_with(d_ff: usize) -> Vec<u8> {
    let p = std::env::temp_dir().join(format!(
        "sworn-malformed-{}-{d_ff}.gguf",
        std::process::id()
    ));
    write_model(
        &p,
        &SyntheticSpec {
            n_layer: 1,
            d_ff,
            ..Default::default()
        },
    )
    .unwrap();
    let b = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    b
}

/// Loads without panicking; returns the error text (or "ok").
fn load(bytes: &[u8]) -> String {
    match catch_unwind(AssertUnwindSafe(|| load_from_bytes(bytes))) {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!(
            "loader panicked on {} bytes starting {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(16)]
        ),
    }
}

fn header_only(meta: &[(&str, Value)]) -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    let refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut c, &refs, &[]).unwrap();
    c.into_inner()
}

#[test]
fn structured_cases_give_clear_errors() {
    let good = synthetic_bytes();
    assert_eq!(load(&good), "ok");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "too short"),
        (
            "not gguf",
            b"GGML\x03\x00\x00\x00garbage".to_vec(),
            "malformed GGUF",
        ),
        ("truncated header", good[..40].to_vec(), "malformed GGUF"),
        (
            "truncated tensors",
            good[..good.len() - 1000].to_vec(),
            "truncated",
        ),
        (
            "alignment zero",
            header_only(&[("general.alignment", Value::U32(0))]),
            "general.alignment",
        ),
        (
            "no architecture",
            header_only(&[("general.name", Value::String("x".into()))]),
            "tokenizer model",
        ),
        (
            "wrong architecture",
            header_only(&[
                ("general.architecture", Value::String("mamba".into())),
                ("tokenizer.ggml.model", Value::String("gpt2".into())),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(vec![Value::String("a".into())]),
                ),
            ]),
            "architecture",
        ),
        (
            "no feed-forward width",
            synthetic_bytes_with(0),
            "implausible hyperparameters",
        ),
    ];
    for (name, bytes, want) in cases {
        let got = load(&bytes);
        assert!(
            got.contains(want),
            "{name}: error {got:?} does not mention {want:?}"
        );
    }
}

#[test]
fn corpus_replays_without_panics() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gguf_load");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let _ = load(&bytes);
        n += 1;
    }
    assert!(n >= 3, "corpus has only {n} files");
}

/// A one-layer synthetic model in the other block formats (spec §1.4), wide enough for K-quants.
fn k_quant_bytes() -> Vec<u8> {
    use candle_core::quantized::GgmlDType as T;
    let p = std::env::temp_dir().join(format!("sworn-malformed-{}-k.gguf", std::process::id()));
    write_model(
        &p,
        &SyntheticSpec {
            n_layer: 1,
            d_model: 256,
            d_ff: 256,
            kinds: vec![T::Q4K, T::Q6K, T::Q5_0, T::Q5K, T::Q3K, T::Q2K, T::Q5_1],
            embd_kind: T::Q6K,
            ..Default::default()
        },
    )
    .unwrap();
    let b = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    b
}

#[test]
fn mutation_fuzzing_never_panics() {
    mutate(&synthetic_bytes(), 1500, 0x0123_4567_89ab_cdef);
    // The block readers of §1.4 too: mutants of a K-quant model, damage in the weights as well.
    let k = k_quant_bytes();
    assert_eq!(load(&k), "ok");
    mutate(&k, 400, 0x0fed_cba9_8765_4321);
}

/// Loads `n` mutants of `good` (none may panic).
fn mutate(good: &[u8], n: usize, seed: u64) {
    let mut s = seed;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut ok = 0;
    for i in 0..n {
        let mut b = good.to_vec();
        // Most damage in the header and tensor table, where the parser lives.
        for _ in 0..1 + rnd() % 4 {
            let hot = (b.len() / 8).max(64).min(b.len());
            let at = if rnd() % 4 == 0 {
                rnd() as usize % b.len()
            } else {
                rnd() as usize % hot
            };
            match rnd() % 4 {
                0 => b[at] ^= 1 << (rnd() % 8),
                1 => b[at] = rnd() as u8,
                2 => {
                    let v = [0u64, 1, u32::MAX as u64, u64::MAX, 1 << 40][rnd() as usize % 5];
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                _ => b.truncate(at.max(1)),
            }
        }
        if load(&b) == "ok" {
            ok += 1;
        }
        if i == 0 {
            assert!(!b.is_empty());
        }
    }
    println!("mutation fuzzing: {n} mutants, {ok} still loaded, none panicked");
}

/// Writes the seed corpus (run with SWORN_WRITE_CORPUS=1 to refresh it).
#[test]
fn write_seed_corpus() {
    if std::env::var("SWORN_WRITE_CORPUS").as_deref() != Ok("1") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gguf_load");
    std::fs::create_dir_all(&dir).unwrap();
    let good = synthetic_bytes();
    std::fs::write(dir.join("synthetic-valid.gguf"), &good).unwrap();
    std::fs::write(
        dir.join("synthetic-truncated.gguf"),
        &good[..good.len() / 2],
    )
    .unwrap();
    std::fs::write(
        dir.join("alignment-zero.gguf"),
        header_only(&[("general.alignment", Value::U32(0))]),
    )
    .unwrap();
    std::fs::write(dir.join("header-only.gguf"), &good[..64]).unwrap();
    // The block formats of spec §1.4 (K-quants, Q5_0, Q5_1) as a loadable seed.
    std::fs::write(dir.join("synthetic-kquants.gguf"), k_quant_bytes()).unwrap();
}
