//! The tokenizer and chat-template fuzz corpora (`fuzz/corpus/tokenize`, `chat_template`),
//! minimized after their libFuzzer runs, replayed through the targets' own entry points: what a
//! fuzzer once found stays fixed, and every corpus file keeps the properties the targets assert
//! (round trips, no control token from protected text). The real tokenizers join when
//! `SWORN_MODEL` / `SWORN_GEMMA` name the models, as in CI.

use sworn_engine::fuzzing::{
    chat_engines, chat_template, corpus, is_seed, tokenizer_case, tokenizers,
};

#[test]
fn tokenize_corpus_round_trips_on_every_tokenizer() {
    let toks = tokenizers().unwrap();
    for (path, data) in corpus("tokenize").expect("fuzz/corpus/tokenize") {
        // Every file through every tokenizer, not only the one its first byte picks.
        for k in 0..toks.len() {
            let mut d = data.clone();
            if let Some(b) = d.first_mut() {
                *b = k as u8;
            }
            // A byte the vocabulary cannot spell is refused (SmolLM2 has no token for some
            // control bytes); the hand-written seeds are text every tokenizer encodes.
            let r = tokenizer_case(&toks, &d);
            if is_seed(&path, "seed-text") {
                r.unwrap_or_else(|e| panic!("{}: tokenizer {k}: {e}", path.display()));
            }
        }
    }
}

#[test]
fn chat_template_corpus_replays_without_panics() {
    let engines = chat_engines().unwrap();
    assert_eq!(engines.len(), 6);
    // Refusals are fine (Gemma's template refuses tool turns); a panic fails the test.
    for (_, data) in corpus("chat_template").expect("fuzz/corpus/chat_template") {
        let _ = chat_template(&engines, &data);
    }
}

#[test]
fn a_plain_conversation_renders_on_every_template() {
    let engines = chat_engines().unwrap();
    let seed = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/chat_template/seed-simple"),
    )
    .unwrap();
    for k in 0..engines.len() {
        let mut d = seed.clone();
        d[0] = k as u8;
        chat_template(&engines, &d).unwrap_or_else(|e| panic!("template {k}: {e}"));
    }
}
