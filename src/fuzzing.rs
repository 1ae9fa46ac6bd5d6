//! Entry points of the server's fuzz targets (`fuzz/fuzz_targets/api_request.rs`,
//! `json_schema.rs`) and of the tests that replay their corpora (`tests/fuzz_corpora.rs`): each
//! takes the bytes a fuzz target gets, so a corpus file replays in `cargo test` exactly as
//! libFuzzer ran it. The engines they run on are synthetic (`sworn_engine::fuzzing`).

use serde_json::{json, Value};
use sworn_engine::chat::ToolCallStyle;
use sworn_engine::Engine;

use crate::server::api::{check_request, Rules};
use crate::server::{structured, Limits};

/// The chat template the request fuzzer's engine renders: Qwen 2.5's, whose tools and Hermes
/// tool calls exercise tool shaping.
pub const REQUEST_TEMPLATE: &str =
    include_str!("../tests/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja");

/// Checks `data` as a request body the way the API does before queueing it (parse, limits,
/// tools, grammar, tokenizing): the first byte picks the endpoint (odd: chat, even:
/// completions), the rest is the body. Refusals are expected; panics are the findings.
pub fn api_request(engine: &Engine, data: &[u8]) -> Result<usize, String> {
    let Some((&kind, body)) = data.split_first() else {
        return Err("empty input".into());
    };
    let limits = Limits {
        max_prompt_bytes: 16 << 10,
        ..Limits::default()
    };
    let rules = Rules {
        model_id: "synthetic",
        limits: &limits,
        engine,
    };
    check_request(&rules, kind % 2 == 1, body)
}

/// The structured-output parsers on `data`: the first byte picks one (modulo 3), the rest is
/// split at the first `0x00` into a JSON text and the bytes that steer a walk of its grammar
/// ([`sworn_engine::fuzzing::grammar`]).
/// - 0: the text is a JSON schema, compiled as `response_format` does;
/// - 1: the text is a `tools` array, compiled under `tool_choice` `required` and `auto`, in both
///   tool-call conventions;
/// - 2: the text is model output, parsed for tool calls in both conventions.
pub fn json_schema(engine: &Engine, data: &[u8]) -> Result<(), String> {
    let Some((&kind, rest)) = data.split_first() else {
        return Err("empty input".into());
    };
    let (text, steer) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let walk =
        |g: &str| sworn_engine::fuzzing::grammar(engine, g, steer).map_err(|e| e.to_string());
    let styles = [ToolCallStyle::Hermes, ToolCallStyle::LlamaJson];
    match kind % 3 {
        0 => {
            let schema: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let rf = json!({"type": "json_schema", "json_schema": {"name": "f", "schema": schema}});
            if let Some(g) = structured::response_format_grammar(&rf)? {
                walk(&g)?;
            }
        }
        1 => {
            let tools: Vec<Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let (parsed, _canonical) = structured::parse_tools(&tools)?;
            for choice in [json!("required"), json!("auto")] {
                let choice = structured::parse_tool_choice(Some(&choice), &parsed)?;
                for style in styles {
                    if let Some(g) = structured::tool_call_grammar(style, &parsed, &choice)? {
                        walk(&g)?;
                    }
                }
            }
        }
        _ => {
            for style in styles {
                let _ = structured::parse_tool_calls(style, &text);
            }
        }
    }
    Ok(())
}
