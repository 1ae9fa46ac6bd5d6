//! Fuzz the tokenizers: encoding arbitrary text (plain, with specials parsed, and protected as
//! chat messages are) must decode to the same text, and protected text must never yield a
//! control token. The synthetic tokenizer always; SmolLM2's and Gemma 3's when `SWORN_MODEL`
//! and `SWORN_GEMMA` name their files.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run tokenize fuzz/corpus/tokenize
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sworn_engine::fuzzing::{tokenizer_case, tokenizers};
use sworn_engine::tokenizer::Tokenizer;

static TOKENIZERS: OnceLock<Vec<Arc<Tokenizer>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let toks = TOKENIZERS.get_or_init(|| tokenizers().expect("tokenizers load"));
    let _ = tokenizer_case(toks, data);
});
