//! Fuzz the whole model loader (GGUF header, metadata, tensors, tokenizer, chat template) on
//! arbitrary bytes: it must return an error, never panic or allocate unboundedly.
//!
//!     cargo +nightly fuzz run gguf_load fuzz/corpus/gguf_load
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sworn_engine::fuzzing::load_from_bytes(data);
});
