//! End-to-end tests of the `sworn` binary on the real model: answers, JSON output, determinism
//! across threads and kernels, peak memory, and clear errors for bad input.

mod common;

use common::{model, require_model};

use std::process::{Command, Output};

fn sworn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sworn"))
        .args(args)
        .output()
        .unwrap()
}

fn generate_json(model: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["generate", "--model", model, "--json"];
    args.extend_from_slice(extra);
    let out = sworn(&args);
    assert!(
        out.status.success(),
        "sworn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn chat_answer_is_sensible_and_json_is_complete() {
    let Some(m) = require_model("chat_answer_is_sensible") else {
        return;
    };
    let m = m.to_str().unwrap();
    let q = [
        "--chat",
        "--system",
        "You are a helpful assistant.",
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "32",
    ];
    let j = generate_json(m, &q);
    let text = j["text"].as_str().unwrap();
    assert!(text.contains("Paris"), "answer {text:?}");
    let n = j["tokens"].as_array().unwrap().len();
    assert!(n > 0 && n <= 32);
    assert_eq!(j["logits_blake3"].as_array().unwrap().len(), n);
    assert_eq!(j["logits_blake3"][0].as_str().unwrap().len(), 64);
    // Same bits on another thread count and on the scalar reference kernels.
    let mut q2 = q.to_vec();
    q2.extend(["--threads", "2"]);
    let j2 = generate_json(m, &q2);
    assert_eq!(j["tokens"], j2["tokens"]);
    assert_eq!(j["logits_blake3"], j2["logits_blake3"]);
    let q3 = [
        "--chat",
        "--system",
        "You are a helpful assistant.",
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "2",
        "--kernels",
        "scalar",
    ];
    let j3 = generate_json(m, &q3);
    assert_eq!(j3["kernels"], "cpu-scalar");
    // What computed it, as the transcript's `meta.backend` names it.
    assert!(j3["backend"].as_str().unwrap().starts_with("cpu-scalar x"));
    assert_eq!(
        j3["logits_blake3"].as_array().unwrap()[..],
        j["logits_blake3"].as_array().unwrap()[..2]
    );
}

#[test]
fn sampled_generation_is_reproducible_and_seed_dependent() {
    let Some(m) = require_model("sampled_generation") else {
        return;
    };
    let m = m.to_str().unwrap();
    let args = |seed: &'static str| {
        [
            "--prompt",
            "Once upon a time",
            "--max-tokens",
            "24",
            "--temperature",
            "0.9",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--seed",
            seed,
        ]
    };
    let a = generate_json(m, &args("1"));
    assert_eq!(a["tokens"], generate_json(m, &args("1"))["tokens"]);
    assert_ne!(a["tokens"], generate_json(m, &args("2"))["tokens"]);
}

#[test]
fn peak_memory_is_under_one_and_a_half_model_sizes() {
    let Some(m) = require_model("peak_memory") else {
        return;
    };
    let size = std::fs::metadata(&m).unwrap().len() as f64;
    let out = sworn(&[
        "generate",
        "--model",
        m.to_str().unwrap(),
        "--prompt",
        "The history of",
        "--max-tokens",
        "256",
        "--threads",
        "2",
    ]);
    assert!(out.status.success());
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) },
        0
    );
    let peak = ru.ru_maxrss as f64 * 1024.0;
    println!(
        "peak RSS {:.1} MB = {:.2}x the {:.1} MB model",
        peak / 1e6,
        peak / size,
        size / 1e6
    );
    assert!(peak < 1.5 * size, "peak RSS {peak} >= 1.5 x {size}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let out = sworn(&["generate", "--model", "/nonexistent.gguf", "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let bad = std::env::temp_dir().join(format!("sworn-bad-{}.gguf", std::process::id()));
    std::fs::write(
        &bad,
        b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
    )
    .unwrap();
    let out = sworn(&[
        "generate",
        "--model",
        bad.to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("malformed GGUF"), "{err}");
    let _ = std::fs::remove_file(&bad);
    let Some(m) = model() else { return };
    // Out-of-range sampling parameters; a positive temperature below 2^-14 among them
    // (docs/canonical-arithmetic.md §4).
    for (flag, value, why) in [
        ("--top-p", "0", "top_p"),
        ("--temperature", "1e-38", "use 0 for greedy"),
    ] {
        let out = sworn(&[
            "generate",
            "--model",
            m.to_str().unwrap(),
            "--prompt",
            "x",
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{flag} {value}"
        );
    }
}

fn sworn_in(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sworn"))
        .env("SWORN_DATA_DIR", data_dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn keygen_writes_private_keys_and_refuses_readable_ones() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("sworn-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k.key");
    let out = sworn_in(&dir, &["keygen", "--out", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(dir.join("k.key.pub.json").exists());
    let again = sworn_in(&dir, &["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "must not overwrite a key");
    // A key others can read is refused (here: the default key that `verify` trusts).
    std::fs::rename(&key, dir.join("operator.key")).unwrap();
    std::fs::set_permissions(
        dir.join("operator.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let vector = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/greedy-text.json"
    );
    let out = sworn_in(&dir, &["verify", vector]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_out_verify_and_replay_exit_codes() {
    let Some(m) = require_model("generate_out_verify_and_replay_exit_codes") else {
        return;
    };
    let m = m.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("sworn-cli-tx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tx = dir.join("t.json");
    let tx_s = tx.to_str().unwrap();
    let out = sworn_in(
        &dir,
        &[
            "generate",
            "--model",
            m,
            "--prompt",
            "Hello",
            "--max-tokens",
            "12",
            "--temperature",
            "0.7",
            "--seed",
            "5",
            "--out",
            tx_s,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The operator key was created on first use, private.
    assert!(dir.join("operator.key").exists());
    let v = sworn_in(&dir, &["verify", tx_s]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("valid"));
    let pubdoc = dir.join("operator.key.pub.json");
    let v = sworn_in(
        &dir,
        &["verify", tx_s, "--key", pubdoc.to_str().unwrap(), "--json"],
    );
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["valid"], true);
    let r = sworn_in(&dir, &["replay", tx_s, "--model", m]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    // Binary form too.
    let bin = dir.join("t.bin");
    let out = sworn_in(
        &dir,
        &[
            "generate",
            "--model",
            m,
            "--prompt",
            "Hello",
            "--max-tokens",
            "4",
            "--out",
            bin.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        sworn_in(&dir, &["verify", bin.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    // Tampered: invalid, exit 1, with the reason.
    let text = std::fs::read_to_string(&tx).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut j2 = j.clone();
    j2["request"]["sampling"]["seed"] = serde_json::json!(6);
    j2.as_object_mut().unwrap().remove("digest");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&j2).unwrap()).unwrap();
    let v = sworn_in(&dir, &["verify", bad.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("bad signature"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    // Garbage and missing files.
    std::fs::write(&bad, b"{not json").unwrap();
    assert_eq!(
        sworn_in(&dir, &["verify", bad.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        sworn_in(&dir, &["verify", "/nonexistent.json"])
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sworn verify` takes every format sworn issued: a format-1 receipt verifies, with warnings
/// naming what format 1 lacks (text and `--json`); a format-3 one has none.
#[test]
fn verify_takes_old_formats_and_warns_about_them() {
    let dir = std::env::temp_dir().join(format!("sworn-old-formats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let key = format!("{vectors}/operator.pub.json");
    let old = format!("{vectors}/format1/greedy-chat.json");
    let out = sworn_in(&dir, &["verify", &old, "--key", &key]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("format 1"), "{text}");
    assert!(
        text.contains("warning: format 1: no operator binding"),
        "{text}"
    );
    let out = sworn_in(&dir, &["verify", &old, "--key", &key, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["format_version"], 1);
    assert!(v["warnings"].as_array().unwrap().len() >= 2, "{v}");
    let new = format!("{vectors}/greedy-text.json");
    let out = sworn_in(&dir, &["verify", &new, "--key", &key, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Offline, `sworn verify bundle.json` checks the bundle's inclusion proof against the root it
/// carries and says loudly that the root's presence on chain was not checked; a proof that
/// does not lead to its root is refused. (Before, the proof was not looked at offline.)
#[test]
fn offline_verify_checks_a_bundles_inclusion_proof() {
    use sworn_attest::anchor::{leaf_hash, AnchorProof, AnchoredTranscript};
    let dir = std::env::temp_dir().join(format!("sworn-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let key = format!("{vectors}/operator.pub.json");
    let text = std::fs::read_to_string(format!("{vectors}/greedy-chat.json")).unwrap();
    let t = sworn_attest::Transcript::from_json(&text, Default::default()).unwrap();
    let proof = AnchorProof {
        chain_id: 31337,
        registry: format!("0x{}", "5e".repeat(20)),
        operator: format!("0x{}", "09".repeat(20)),
        batch: 0,
        index: 0,
        batch_size: 1,
        anchored_at: 1,
        root: leaf_hash(&t.digest()),
        commitments: t.commitments().into(),
        proof: vec![],
    };
    let write = |name: &str, p: &AnchorProof| {
        let b = AnchoredTranscript::new(t.clone(), p.clone()).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, b.to_json().to_string()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = write("good.json", &proof);
    let out = sworn_in(&dir, &["verify", &good, "--key", &key]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("was NOT checked"), "{said}");
    let mut wrong = proof.clone();
    wrong.root[0] ^= 1;
    let bad = write("bad.json", &wrong);
    let out = sworn_in(&dir, &["verify", &bad, "--key", &key]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("does not lead to its root"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
