//! Hostile transcripts: the fuzz corpus replayed, plus a bounded deterministic mutation fuzzer
//! over the golden vectors in both encodings. Parsing and verifying must fail cleanly, never
//! panic, and whatever parses must re-encode to itself.

use std::path::PathBuf;

use sworn_verifier::{parse, verify, Limits, PublicKey, Transcript};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn key() -> PublicKey {
    let doc = std::fs::read_to_string(root().join("tests/vectors/operator.pub.json")).unwrap();
    PublicKey::parse(&doc).unwrap()
}

/// Parses and verifies; returns the canonical encoding of what verified. Panics only on a panic
/// inside (reported) or a broken round trip.
fn check(bytes: &[u8]) -> Option<Vec<u8>> {
    let r = std::panic::catch_unwind(|| match parse(bytes, Limits::default()) {
        Ok(t) => {
            let bin = t.encode();
            let again = Transcript::decode(&bin, Limits::default()).expect("re-decodes");
            assert_eq!(again.encode(), bin, "round trip");
            verify(t, &[key()]).ok().map(|_| bin)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    });
    r.unwrap_or_else(|_| {
        panic!(
            "panicked on {} bytes: {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(24)]
        )
    })
}

#[test]
fn fuzz_corpus_replays() {
    let dir = root().join("fuzz/corpus/transcript_decode");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        check(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 2, "corpus has {n} files");
}

#[test]
fn mutants_of_the_golden_vectors_never_panic_and_verify_only_if_unchanged() {
    let json = std::fs::read(root().join("tests/vectors/sampled-chat.json")).unwrap();
    let bin = parse(&json, Limits::default()).unwrap().encode();
    assert_eq!(
        check(&json).as_ref(),
        Some(&bin),
        "the vector itself must verify"
    );
    assert_eq!(check(&bin).as_ref(), Some(&bin));
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for (name, base) in [("binary", &bin), ("json", &json)] {
        for _ in 0..3000 {
            let mut b = base.clone();
            for _ in 0..1 + rnd() % 3 {
                let at = rnd() as usize % b.len();
                match rnd() % 5 {
                    0 => b[at] ^= 1 << (rnd() % 8),
                    1 => b[at] = rnd() as u8,
                    2 => b.truncate(at),
                    3 => {
                        let end = (at + 4).min(b.len());
                        b[at..end].copy_from_slice(&[0xff; 4][..end - at]);
                    }
                    _ => b.insert(at, rnd() as u8),
                }
                if b.is_empty() {
                    break;
                }
            }
            if b == *base {
                continue;
            }
            // A JSON mutant may still say the same thing (whitespace, hex case); then it is the
            // same transcript, byte for byte. Anything else must fail.
            if let Some(enc) = check(&b) {
                assert_eq!(enc, bin, "{name}: a mutant with different content verifies");
            }
        }
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; (64 << 20) + 1];
    let e = parse(&big, Limits::default()).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
}

/// A signed transcript whose temperature is a positive value below 2^-14 is refused: no
/// sampler may run it (it would divide logits into infinities and draw seed-dependent tokens).
#[test]
fn a_tiny_positive_temperature_is_refused() {
    let bytes = std::fs::read(root().join("tests/vectors/sampled-text.json")).unwrap();
    let mut t = parse(&bytes, Limits::default()).unwrap();
    let k = sworn_attest::OperatorKey::from_seed(&[7; 32]);
    assert!(verify(t.clone(), &[k.public()]).is_ok());
    t.request.sampling.temperature = 1e-38;
    k.sign(&mut t);
    let e = verify(t, &[k.public()]).unwrap_err().to_string();
    assert!(e.contains("below the smallest positive temperature"), "{e}");
}
