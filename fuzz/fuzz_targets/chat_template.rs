//! Fuzz chat-template rendering: hostile conversations (any role, tool calls, tools JSON)
//! through six real templates and the tokenizer, and hostile template sources (as a GGUF file
//! may carry) compiled and rendered. Errors only, never a panic or a hang.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run chat_template fuzz/corpus/chat_template
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sworn_engine::fuzzing::{chat_engines, chat_template};
use sworn_engine::Engine;

static ENGINES: OnceLock<Vec<Engine>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let engines = ENGINES.get_or_init(|| chat_engines().expect("engines load"));
    let _ = chat_template(engines, data);
});
