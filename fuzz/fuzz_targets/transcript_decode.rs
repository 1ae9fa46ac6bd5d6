//! Fuzz transcript parsing (binary and JSON) and offline verification on arbitrary bytes: errors
//! only, never a panic; whatever parses must re-encode to a transcript that decodes to itself.
//!
//!     cargo +nightly fuzz run transcript_decode fuzz/corpus/transcript_decode
#![no_main]

use libfuzzer_sys::fuzz_target;
use sworn_verifier::{parse, verify, Limits, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = parse(data, Limits::default()) {
        let again =
            sworn_verifier::Transcript::decode(&t.encode(), Limits::default()).expect("re-decodes");
        assert_eq!(again, t);
        let key =
            PublicKey::parse("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        let _ = verify(t, &[key]);
    }
});
