//! Fuzz the anchoring documents (bundles of transcript + inclusion proof, bare proofs) and the
//! inclusion-proof arithmetic on arbitrary bytes: errors only, never a panic; whatever parses
//! must re-serialize to itself.
//!
//!     cargo +nightly fuzz run anchor_bundle fuzz/corpus/anchor_bundle
#![no_main]

use libfuzzer_sys::fuzz_target;
use sworn_attest::anchor::{root_from_inclusion, AnchorProof, AnchoredTranscript};
use sworn_attest::Limits;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Some(b)) = AnchoredTranscript::parse(text, Limits::default()) {
            let again = AnchoredTranscript::parse(&b.to_json().to_string(), Limits::default())
                .expect("re-parses")
                .expect("is a bundle");
            assert_eq!(again, b);
            let _ = b.anchor.verifies();
        }
        if let Ok(p) = serde_json::from_str::<AnchorProof>(text) {
            let _ = p.verifies();
        }
    }
    // Leaf, index, size and any number of proof hashes, straight from the bytes.
    if data.len() >= 48 {
        let leaf: [u8; 32] = data[..32].try_into().unwrap();
        let index = u64::from_le_bytes(data[32..40].try_into().unwrap());
        let size = u64::from_le_bytes(data[40..48].try_into().unwrap());
        let proof: Vec<[u8; 32]> = data[48..]
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        let _ = root_from_inclusion(&leaf, index, size, &proof);
    }
});
