//! The tokenizer against golden ids from an independent implementation (Hugging Face
//! `tokenizers`, see scripts/golden_tokens.py), on the real model's vocabulary.

mod common;

use sworn_engine::gguf::GgufFile;
use sworn_engine::tokenizer::Tokenizer;

#[test]
fn matches_golden_ids_and_round_trips() {
    let Some(path) = common::real_model("tokenizer_golden") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/golden/tokens.json")).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, true).unwrap();
        assert_eq!(got, want, "text {text:?}");
        assert_eq!(tok.decode(&got, false), text, "round trip of {text:?}");
    }
}
