//! Fuzz structured output: JSON schemas (`response_format`) and `tools` arrays compiled to
//! grammars and walked token by token, and model output parsed for tool calls. Errors only,
//! never a panic.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run json_schema fuzz/corpus/json_schema
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sworn::fuzzing::json_schema;
use sworn_engine::Engine;

static ENGINE: OnceLock<Engine> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let engine =
        ENGINE.get_or_init(|| sworn_engine::fuzzing::synthetic_engine(None).expect("engine loads"));
    let _ = json_schema(engine, data);
});
