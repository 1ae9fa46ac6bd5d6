//! Hostile anchoring documents: the `anchor_bundle` fuzz corpus replayed, a bounded deterministic
//! mutation fuzzer over a valid bundle, and inclusion-proof arithmetic at the edges of `u64`.
//! Parsing must fail cleanly, never panic; whatever parses must re-serialize to itself and pair a
//! transcript only with its own proof.

use std::path::PathBuf;

use sworn_attest::anchor::{
    inclusion_proof, root, root_from_inclusion, AnchorProof, AnchoredTranscript,
};
use sworn_attest::{Commitments, Limits, Transcript};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn valid_bundle() -> String {
    let text = std::fs::read_to_string(repo().join("tests/vectors/greedy-text.json")).unwrap();
    let t = Transcript::from_json(&text, Limits::default()).unwrap();
    let mut leaves: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
    leaves[2] = t.digest();
    let p = AnchorProof {
        chain_id: 31337,
        registry: "0x5fbdb2315678afecb367f032d93f642f64180aa3".into(),
        operator: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into(),
        batch: 4,
        index: 2,
        batch_size: 5,
        anchored_at: 1_700_000_000,
        root: root(&leaves).unwrap(),
        commitments: t.commitments().into(),
        proof: inclusion_proof(&leaves, 2).unwrap(),
    };
    AnchoredTranscript::new(t, p).unwrap().to_json().to_string()
}

/// Parses; panics only on a panic inside (reported) or a broken invariant.
fn check(bytes: &[u8]) -> bool {
    let r = std::panic::catch_unwind(|| {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        let _ = serde_json::from_str::<AnchorProof>(text).map(|p| p.verifies());
        match AnchoredTranscript::parse(text, Limits::default()) {
            Ok(Some(b)) => {
                assert_eq!(
                    Commitments::from(b.anchor.commitments),
                    b.transcript.commitments()
                );
                let again = AnchoredTranscript::parse(&b.to_json().to_string(), Limits::default())
                    .unwrap()
                    .unwrap();
                assert_eq!(again, b, "round trip");
                b.anchor.verifies()
            }
            Ok(None) => false,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    });
    r.unwrap_or_else(|_| panic!("panicked on {} bytes", bytes.len()))
}

#[test]
fn the_valid_bundle_parses_and_verifies() {
    assert!(check(valid_bundle().as_bytes()));
}

#[test]
fn corpus_replays_without_panics() {
    let dir = repo().join("fuzz/corpus/anchor_bundle");
    if std::env::var_os("SWORN_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("valid-bundle.json"), valid_bundle()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&valid_bundle()).unwrap();
        std::fs::write(dir.join("valid-proof.json"), v["anchor"].to_string()).unwrap();
        let mut raw = vec![7u8; 32];
        raw.extend_from_slice(&3u64.to_le_bytes());
        raw.extend_from_slice(&5u64.to_le_bytes());
        raw.extend_from_slice(&[9u8; 96]);
        std::fs::write(dir.join("raw-proof.bin"), raw).unwrap();
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
    {
        check(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 3, "corpus has only {n} files");
}

#[test]
fn mutated_bundles_fail_cleanly() {
    let base = valid_bundle().into_bytes();
    // A small deterministic PRNG (xorshift): the same mutations every run.
    let mut x: u64 = 0x5eed_5eed_5eed_5eed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut verified = 0;
    for _ in 0..3000 {
        let mut b = base.clone();
        match next() % 4 {
            0 => {
                let i = next() as usize % b.len();
                b[i] ^= 1 << (next() % 8);
            }
            1 => b.truncate(next() as usize % b.len()),
            2 => {
                let i = next() as usize % b.len();
                let pool = b"0123456789abcdef{}[]\",:-";
                b.insert(i, pool[next() as usize % pool.len()]);
            }
            _ => {
                let i = next() as usize % b.len();
                b.remove(i);
            }
        }
        if check(&b) {
            verified += 1;
        }
    }
    // Some mutations only touch white space or case: a handful still verify, most must not.
    assert!(verified < 300, "{verified} mutated bundles still verified");
}

#[test]
fn proof_arithmetic_at_the_edges_of_u64() {
    let leaf = [1u8; 32];
    let many = vec![[2u8; 32]; 70];
    for (index, size) in [
        (u64::MAX - 1, u64::MAX),
        (0, u64::MAX),
        (u64::MAX, u64::MAX),
        (1 << 63, (1 << 63) + 1),
        (0, 0),
        (5, 3),
    ] {
        for len in [0, 1, 63, 64, 70] {
            let r = root_from_inclusion(&leaf, index, size, &many[..len]);
            if index >= size {
                assert!(r.is_none());
            }
        }
    }
    // In a tree of 2^64 - 1 leaves the first leaf is 64 levels deep and the last one 63: exactly
    // that proof length fits, no other.
    let fits = |index: u64| -> Vec<usize> {
        (0..=70)
            .filter(|&l| root_from_inclusion(&leaf, index, u64::MAX, &many[..l]).is_some())
            .collect()
    };
    assert_eq!(fits(0), vec![64]);
    assert_eq!(fits(u64::MAX - 1), vec![63]);
}
