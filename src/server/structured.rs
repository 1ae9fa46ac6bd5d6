//! OpenAI's structured output and tools, in sworn's terms (`docs/structured-output.md`):
//! `response_format` and forced tool calls become llguidance grammars, which the transcript's
//! request commits to and replay enforces; offered tools go into the request as canonical JSON,
//! which the model's chat template renders; and tool calls are parsed back out of the output
//! text (which is what the transcript signs).

use serde_json::{json, Value};
use sworn_engine::chat::ToolCallStyle;

/// How JSON is laid out under a grammar: no free whitespace (a small model given the choice can
/// spend its whole budget on spaces), and Python's separators, as chat templates render tool
/// calls back into prompts.
fn layout() -> Value {
    json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
}

/// `schema` with sworn's JSON layout (llguidance's `x-guidance` options).
fn with_layout(schema: &Value) -> Result<Value, String> {
    let mut s = match schema {
        Value::Object(_) => schema.clone(),
        Value::Bool(true) => json!({}),
        _ => return Err("a JSON schema must be an object".into()),
    };
    s["x-guidance"] = layout();
    Ok(s)
}

/// The grammar of one JSON value matching `schema`.
pub fn json_grammar(schema: &Value) -> Result<String, String> {
    Ok(format!("start: %json {}", with_layout(schema)?))
}

/// The grammar `response_format` asks for: `None` for text.
pub fn response_format_grammar(rf: &Value) -> Result<Option<String>, String> {
    match rf.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => json_grammar(&json!({"type": "object"})).map(Some),
        Some("json_schema") => {
            let schema = rf
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .ok_or("response_format json_schema needs json_schema.schema")?;
            json_grammar(schema).map(Some)
        }
        Some(t) => Err(format!(
            "response_format type {t:?} is not supported (text, json_object, json_schema)"
        )),
    }
}

/// One offered function tool.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    /// The JSON schema of its arguments (`{"type": "object"}` when none is given).
    pub parameters: Value,
    /// `function.strict`: its arguments must match `parameters`, under any `tool_choice`.
    pub strict: bool,
}

/// Checks OpenAI's `tools` array; returns the tools and the canonical JSON the request commits
/// to (the array as given, compact, keys in the client's order).
pub fn parse_tools(tools: &[Value]) -> Result<(Vec<Tool>, String), String> {
    if tools.is_empty() || tools.len() > 128 {
        return Err("tools takes 1 to 128 tools".into());
    }
    let mut out = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(format!("tools[{i}]: only type \"function\" is supported"));
        }
        let f = t
            .get("function")
            .ok_or(format!("tools[{i}]: missing function"))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if !ok {
            return Err(format!(
                "tools[{i}]: the function name must be 1 to 64 of a-z, A-Z, 0-9, _ and -"
            ));
        }
        if out.iter().any(|o: &Tool| o.name == name) {
            return Err(format!("tools[{i}]: {name:?} is offered twice"));
        }
        let parameters = f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        let strict = match f.get("strict") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("tools[{i}]: strict must be true or false")),
        };
        out.push(Tool {
            name: name.into(),
            parameters,
            strict,
        });
    }
    let canonical = serde_json::to_string(tools).map_err(|e| e.to_string())?;
    Ok((out, canonical))
}

/// What `tool_choice` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Tools are shown but the model answers in text (`"none"`).
    None,
    /// The model may call a tool (`"auto"`, the default with tools): calls are parsed, not forced.
    Auto,
    /// The model must call one of the tools (`"required"`): forced by a grammar.
    Required,
    /// The model must call this tool (`{"type": "function", "function": {"name": …}}`).
    Named(String),
}

pub fn parse_tool_choice(v: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, String> {
    let c = match v {
        None => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            _ => return Err(format!("tool_choice {s:?} is not none, auto or required")),
        },
        Some(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or("tool_choice must be a string or {\"type\": \"function\", \"function\": {\"name\": …}}")?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(format!("tool_choice names {name:?}, which is not offered"));
            }
            ToolChoice::Named(name.into())
        }
    };
    Ok(c)
}

/// The grammar `tool_choice` asks for, in the model's convention: under `required` or a named
/// tool, one call of an offered (or that) tool whose arguments match its schema; under `auto`
/// with a `strict` tool among those offered, either an answer in text or one call (a strict
/// tool's arguments matching its schema, another's any object); otherwise none.
///
/// Under `auto` the text alternative may not contain the call syntax (Hermes: `<tool_call>`
/// anywhere; Llama: an answer opening with `{`), so that every call goes through the grammar:
/// a call comes first or not at all.
pub fn tool_call_grammar(
    style: ToolCallStyle,
    tools: &[Tool],
    choice: &ToolChoice,
) -> Result<Option<String>, String> {
    let (chosen, forced): (Vec<&Tool>, bool) = match choice {
        ToolChoice::None => return Ok(None),
        ToolChoice::Auto if !tools.iter().any(|t| t.strict) => return Ok(None),
        ToolChoice::Auto => (tools.iter().collect(), false),
        ToolChoice::Required => (tools.iter().collect(), true),
        ToolChoice::Named(n) => (tools.iter().filter(|t| &t.name == n).collect(), true),
    };
    let args_key = match style {
        ToolCallStyle::Hermes => "arguments",
        ToolCallStyle::LlamaJson => "parameters",
    };
    let calls: Vec<Value> = chosen
        .iter()
        .map(|t| {
            let mut props = serde_json::Map::new();
            props.insert("name".into(), json!({"const": t.name}));
            // A forced call always matches its tool's schema (as before `strict` existed).
            let args = if forced || t.strict {
                t.parameters.clone()
            } else {
                json!({"type": "object"})
            };
            props.insert(args_key.into(), args);
            json!({"type": "object", "properties": props,
                   "required": ["name", args_key], "additionalProperties": false})
        })
        .collect();
    let schema = if calls.len() == 1 {
        calls.into_iter().next().unwrap_or_default()
    } else {
        json!({"anyOf": calls})
    };
    let schema = with_layout(&schema)?;
    let call = match style {
        ToolCallStyle::Hermes => format!("\"<tool_call>\\n\" %json {schema} \"\\n</tool_call>\""),
        ToolCallStyle::LlamaJson => format!("%json {schema}"),
    };
    Ok(Some(if forced {
        format!("start: {call}")
    } else {
        let text = match style {
            // Any text, and not one holding the call syntax. (A bare `~R` is not the complement
            // of R in llguidance 1.9; an intersection with it is.)
            ToolCallStyle::Hermes => r"/(?s:.*)/ & ~/(?s:.*<tool_call>.*)/",
            ToolCallStyle::LlamaJson => r"/(?s:.*)/ & ~/(?s:\s*\{.*)/",
        };
        format!("start: TEXT | {call}\nTEXT: {text}")
    }))
}

/// A tool call parsed from the output.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCall {
    pub name: String,
    /// Compact JSON text of the arguments object.
    pub arguments: String,
}

/// Splits an output text into the content before any tool call, and the calls, in `style`.
/// Text that does not parse as a call stays content.
pub fn parse_tool_calls(style: ToolCallStyle, text: &str) -> (Option<String>, Vec<ParsedCall>) {
    let call = |v: &Value, args_keys: &[&str]| -> Option<ParsedCall> {
        let name = v.get("name")?.as_str()?.to_string();
        let args = args_keys.iter().find_map(|k| v.get(*k))?;
        args.is_object().then(|| ParsedCall {
            name,
            arguments: args.to_string(),
        })
    };
    let nonempty = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    match style {
        ToolCallStyle::Hermes => {
            let Some(first) = text.find("<tool_call>") else {
                return (nonempty(text), Vec::new());
            };
            let mut calls = Vec::new();
            let mut rest = &text[first..];
            while let Some(open) = rest.find("<tool_call>") {
                let after = &rest[open + "<tool_call>".len()..];
                let Some(close) = after.find("</tool_call>") else {
                    break;
                };
                match serde_json::from_str::<Value>(after[..close].trim())
                    .ok()
                    .and_then(|v| call(&v, &["arguments", "parameters"]))
                {
                    Some(c) => calls.push(c),
                    None => return (nonempty(text), Vec::new()),
                }
                rest = &after[close + "</tool_call>".len()..];
            }
            if calls.is_empty() {
                return (nonempty(text), Vec::new());
            }
            (nonempty(&text[..first]), calls)
        }
        ToolCallStyle::LlamaJson => {
            let body = text.trim().trim_start_matches("<|python_tag|>");
            match serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| call(&v, &["parameters", "arguments"]))
            {
                Some(c) => (None, vec![c]),
                None => (nonempty(text), Vec::new()),
            }
        }
    }
}

/// The id of call `index` of the completion with transcript digest `digest`: derived, so that
/// anyone holding the transcript derives the same ids.
pub fn call_id(digest: &[u8; 32], index: usize) -> String {
    format!(
        "call_{}_{index}",
        &sworn_attest::hexser::encode(digest)[..24]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Vec<Value> {
        vec![
            json!({"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}}}),
        ]
    }

    #[test]
    fn tools_choices_and_grammars() {
        let (tools, canonical) = parse_tools(&weather()).unwrap();
        assert!(canonical.starts_with(r#"[{"type":"function","function":{"name":"get_weather""#));
        assert_eq!(
            parse_tool_choice(Some(&json!("required")), &tools).unwrap(),
            ToolChoice::Required
        );
        assert!(parse_tool_choice(
            Some(&json!({"type": "function", "function": {"name": "nope"}})),
            &tools
        )
        .is_err());
        let g = tool_call_grammar(ToolCallStyle::Hermes, &tools, &ToolChoice::Required)
            .unwrap()
            .unwrap();
        assert!(g.starts_with("start: \"<tool_call>\\n\" %json {"), "{g}");
        assert!(
            tool_call_grammar(ToolCallStyle::Hermes, &tools, &ToolChoice::Auto)
                .unwrap()
                .is_none()
        );
        let bad = vec![json!({"type": "function", "function": {"name": "a b"}})];
        assert!(parse_tools(&bad).is_err());
        assert!(parse_tools(&[weather()[0].clone(), weather()[0].clone()]).is_err());
    }

    /// Whether `grammar` accepts `text` whole (each token allowed in turn, and the end).
    fn accepts(grammar: &str, text: &str) -> bool {
        use std::sync::OnceLock;
        static TOKENIZER: OnceLock<std::sync::Arc<sworn_engine::tokenizer::Tokenizer>> =
            OnceLock::new();
        let tok = TOKENIZER.get_or_init(|| {
            let d = std::env::temp_dir().join(format!("sworn-structured-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            let model = d.join("synthetic.gguf");
            sworn_engine::synthetic::write_model(&model, &Default::default()).unwrap();
            let opts = sworn_engine::EngineOptions::default();
            sworn_engine::Engine::load(&model, &opts).unwrap().tokenizer
        });
        let grammars = sworn_engine::grammar::Grammars::new(tok.clone()).unwrap();
        let mut c = grammars.start(grammar).unwrap();
        for t in tok.encode(text, false).unwrap() {
            if !c.mask().unwrap().allows(t) {
                return false;
            }
            c.consume(t).unwrap();
        }
        let end = tok.eos.or(tok.stop_ids.first().copied()).unwrap();
        c.mask().unwrap().allows(end)
    }

    #[test]
    fn auto_with_a_strict_tool_constrains_the_call_and_allows_text() {
        let mut strict = weather();
        strict[0]["function"]["strict"] = json!(true);
        let (tools, _) = parse_tools(&strict).unwrap();
        assert!(tools[0].strict);
        // Hermes (Qwen): text without the call syntax, or one call whose arguments match.
        let g = tool_call_grammar(ToolCallStyle::Hermes, &tools, &ToolChoice::Auto)
            .unwrap()
            .unwrap();
        assert!(accepts(&g, "It is sunny in Paris."), "{g}");
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
        ));
        // Arguments off the schema, an unknown tool, or a call hidden after text: refused.
        assert!(!accepts(
            &g,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}\n</tool_call>"
        ));
        assert!(!accepts(
            &g,
            "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>"
        ));
        assert!(!accepts(&g, "Let me see. <tool_call>\n{}"));
        // Llama JSON: text not opening with `{`, or one call.
        let g = tool_call_grammar(ToolCallStyle::LlamaJson, &tools, &ToolChoice::Auto)
            .unwrap()
            .unwrap();
        assert!(accepts(&g, "Sunny."), "{g}");
        assert!(accepts(
            &g,
            "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"
        ));
        assert!(!accepts(
            &g,
            "{\"name\": \"get_weather\", \"parameters\": {}}"
        ));
        // A non-strict tool beside a strict one: any object as its arguments.
        let mut two = strict.clone();
        two.push(json!({"type": "function", "function": {"name": "note",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}));
        let (tools, _) = parse_tools(&two).unwrap();
        let g = tool_call_grammar(ToolCallStyle::Hermes, &tools, &ToolChoice::Auto)
            .unwrap()
            .unwrap();
        assert!(accepts(
            &g,
            "<tool_call>\n{\"name\": \"note\", \"arguments\": {\"x\": 1}}\n</tool_call>"
        ));
        // Under required, every tool's arguments match its schema, strict or not.
        let g = tool_call_grammar(ToolCallStyle::Hermes, &tools, &ToolChoice::Required)
            .unwrap()
            .unwrap();
        assert!(!accepts(
            &g,
            "<tool_call>\n{\"name\": \"note\", \"arguments\": {\"text\": 1}}\n</tool_call>"
        ));
        assert!(!accepts(&g, "It is sunny."));
        let bad = json!([{"type": "function", "function": {"name": "f", "strict": "yes"}}]);
        assert!(parse_tools(bad.as_array().unwrap()).is_err());
    }

    #[test]
    fn tool_calls_are_parsed_in_both_styles() {
        let (content, calls) = parse_tool_calls(
            ToolCallStyle::Hermes,
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        );
        assert_eq!(content.as_deref(), Some("Let me check."));
        assert_eq!(
            calls,
            [ParsedCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }]
        );
        let (content, calls) =
            parse_tool_calls(ToolCallStyle::Hermes, "<tool_call>\nnot json\n</tool_call>");
        assert!(calls.is_empty());
        assert!(content.unwrap().contains("not json"));
        let (content, calls) = parse_tool_calls(
            ToolCallStyle::LlamaJson,
            r#"{"name": "get_weather", "parameters": {"city": "Oslo"}}"#,
        );
        assert_eq!(content, None);
        assert_eq!(calls[0].arguments, r#"{"city":"Oslo"}"#);
        let (content, calls) = parse_tool_calls(ToolCallStyle::LlamaJson, "Just text.");
        assert_eq!((content.as_deref(), calls.len()), (Some("Just text."), 0));
    }

    #[test]
    fn response_formats() {
        assert_eq!(
            response_format_grammar(&json!({"type": "text"})).unwrap(),
            None
        );
        let g = response_format_grammar(&json!({"type": "json_object"}))
            .unwrap()
            .unwrap();
        assert!(g.contains("\"type\":\"object\""), "{g}");
        assert!(response_format_grammar(&json!({"type": "json_schema"})).is_err());
        assert!(response_format_grammar(&json!({"type": "yaml"})).is_err());
    }
}
