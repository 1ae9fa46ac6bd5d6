//! Fuzz the HTTP API's request checks: arbitrary bodies for `/v1/completions` and
//! `/v1/chat/completions` through parsing, limits, tools, `response_format` grammars and
//! tokenizing, exactly as the handlers run them before queueing. Refusals only, never a panic.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run api_request fuzz/corpus/api_request
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sworn::fuzzing::{api_request, REQUEST_TEMPLATE};
use sworn_engine::Engine;

static ENGINE: OnceLock<Engine> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let engine = ENGINE.get_or_init(|| {
        sworn_engine::fuzzing::synthetic_engine(Some(REQUEST_TEMPLATE)).expect("engine loads")
    });
    let _ = api_request(engine, data);
});
