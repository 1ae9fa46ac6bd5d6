//! What a completion request is and the checks it meets before it is queued: OpenAI's request
//! shapes, their validation against the server's limits, tools and `response_format`, and
//! tokenizing. Synchronous and free of the server's state ([`Rules`]), so the fuzz target runs
//! it exactly as the handlers do.

use crate::server::{structured, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sworn_engine::{Message, Prompt, Request, SamplingParams};

use super::ApiError;

/// `stop`: a string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Fields shared by both endpoints (OpenAI's, plus sworn's `top_k`, `min_p`, `repeat_penalty`,
/// `repeat_last_n`). Unknown fields are ignored, as OpenAI clients send many.
#[derive(Deserialize)]
pub(super) struct Common {
    pub(super) model: Option<String>,
    pub(super) max_tokens: Option<u32>,
    pub(super) max_completion_tokens: Option<u32>,
    pub(super) temperature: Option<f32>,
    pub(super) top_p: Option<f32>,
    pub(super) top_k: Option<u32>,
    pub(super) min_p: Option<f32>,
    pub(super) repeat_penalty: Option<f32>,
    pub(super) repeat_last_n: Option<u32>,
    pub(super) seed: Option<u64>,
    pub(super) stop: Option<Stop>,
    pub(super) stream: Option<bool>,
    pub(super) n: Option<u32>,
    /// Chat: `true`/`false`; completions: the number of top logprobs (0 to 5 in OpenAI's API,
    /// up to 20 here).
    pub(super) logprobs: Option<Value>,
    /// Chat: top logprobs per token (0 to 20), with `logprobs: true`.
    pub(super) top_logprobs: Option<u32>,
    pub(super) response_format: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct CompletionBody {
    pub(super) prompt: Value,
    /// sworn's opt-in: special-token spellings in the prompt become control tokens
    /// (otherwise they are plain text). Recorded in the transcript as a `raw_text` prompt.
    #[serde(default)]
    pub(super) sworn_raw_prompt: bool,
    #[serde(flatten)]
    pub(super) common: Common,
}

/// A message's content: a string, `null` (an assistant message that only calls tools), or a list
/// of text parts.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
pub(super) struct ContentPart {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    pub(super) role: String,
    #[serde(default)]
    pub(super) content: Option<Content>,
    #[serde(default)]
    pub(super) tool_calls: Vec<InToolCall>,
    pub(super) tool_call_id: Option<String>,
}

/// A tool call the client sends back in an assistant message.
#[derive(Deserialize)]
pub(super) struct InToolCall {
    pub(super) id: String,
    pub(super) function: InFunction,
}

#[derive(Deserialize)]
pub(super) struct InFunction {
    pub(super) name: String,
    pub(super) arguments: String,
}

#[derive(Deserialize)]
pub(super) struct ChatBody {
    pub(super) messages: Vec<ChatMessage>,
    pub(super) tools: Option<Vec<Value>>,
    pub(super) tool_choice: Option<Value>,
    #[serde(flatten)]
    pub(super) common: Common,
}

/// The chat roles a request may use. OpenAI's `developer` role is its newer name for `system`,
/// and is recorded (and rendered) as `system`, as OpenAI treats it.
pub(super) const CHAT_ROLES: &[&str] = &["system", "user", "assistant", "tool"];

impl ChatMessage {
    /// The role as it is recorded: one of [`CHAT_ROLES`] (`developer` becomes `system`);
    /// anything else is refused, not rendered as a turn of an unknown speaker.
    fn role(&self) -> Result<&str, ApiError> {
        match self.role.as_str() {
            "developer" => Ok("system"),
            r if CHAT_ROLES.contains(&r) => Ok(r),
            r => Err(ApiError::bad(format!(
                "unknown message role {:?} (expected system, developer, user, assistant or tool)",
                r.chars().take(64).collect::<String>()
            ))),
        }
    }

    fn to_message(&self) -> Result<Message, ApiError> {
        let role = self.role()?;
        let content = match &self.content {
            None if self.role == "assistant" && !self.tool_calls.is_empty() => String::new(),
            None => {
                return Err(ApiError::bad(format!(
                    "a {:?} message needs content (only an assistant message with tool_calls may have none)",
                    self.role
                )))
            }
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut t = String::new();
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(x)) => t.push_str(x),
                        (k, _) => {
                            return Err(ApiError::bad(format!(
                                "content parts of type {k:?} are not supported (text only)"
                            )))
                        }
                    }
                }
                t
            }
        };
        let mut m = Message::new(role, &content);
        m.tool_calls = self
            .tool_calls
            .iter()
            .map(|c| sworn_attest::ToolCall {
                id: c.id.clone(),
                name: c.function.name.clone(),
                arguments: c.function.arguments.clone(),
            })
            .collect();
        m.tool_call_id = self.tool_call_id.clone();
        Ok(m)
    }
}

/// What shapes a request's tokens beyond sampling, and how its answer is presented.
#[derive(Default)]
pub(super) struct Shaping {
    /// Top logprobs per step, when logprobs are asked for.
    pub(super) logprobs: Option<u8>,
    pub(super) grammar: Option<String>,
    /// Canonical JSON of the offered tools.
    pub(super) tools: Option<String>,
    /// Parse tool calls out of the output, in this convention.
    pub(super) parse_calls: Option<sworn_engine::chat::ToolCallStyle>,
}

/// The logprobs a request asks for, and its `response_format` grammar.
pub(super) fn shaping(c: &Common, chat: bool) -> Result<Shaping, ApiError> {
    let max = sworn_attest::MAX_TOP_LOGPROBS as u32;
    let logprobs = match (&c.logprobs, chat) {
        (None | Some(Value::Null) | Some(Value::Bool(false)), _) => {
            if c.top_logprobs.is_some_and(|n| n > 0) {
                return Err(ApiError::bad("top_logprobs needs logprobs: true"));
            }
            None
        }
        (Some(Value::Bool(true)), true) => Some(c.top_logprobs.unwrap_or(0)),
        (Some(Value::Number(n)), false) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::bad("logprobs must be an integer from 0 to 20"))?,
        ),
        (Some(_), true) => return Err(ApiError::bad("logprobs must be true or false")),
        (Some(_), false) => return Err(ApiError::bad("logprobs must be an integer from 0 to 20")),
    };
    if let Some(n) = logprobs.filter(|&n| n > max) {
        return Err(ApiError::bad(format!(
            "{n} top logprobs asked for; at most {max}"
        )));
    }
    let grammar = match &c.response_format {
        None | Some(Value::Null) => None,
        Some(rf) => structured::response_format_grammar(rf).map_err(ApiError::bad)?,
    };
    Ok(Shaping {
        logprobs: logprobs.map(|n| n as u8),
        grammar,
        ..Default::default()
    })
}

/// Bytes of prompt text a request carries (roles, contents and tool calls of chat messages).
pub(super) fn prompt_bytes(p: &Prompt) -> usize {
    match p {
        Prompt::Text(t) | Prompt::RawText(t) => t.len(),
        Prompt::Chat(msgs) => msgs
            .iter()
            .map(|m| {
                let calls: usize = m
                    .tool_calls
                    .iter()
                    .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                    .sum();
                m.role.len()
                    + m.content.len()
                    + calls
                    + m.tool_call_id.as_ref().map_or(0, String::len)
            })
            .sum(),
    }
}

/// Parses a JSON body, mapping every failure to a clear 4xx.
/// The request body's bytes, or the error the body limit or a slow client caused.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError {
        status: e.status(),
        kind: "invalid_request_error",
        code: Some("body_rejected"),
        message: format!("request body: {}", e.body_text()),
        retry_after: None,
    })
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad(format!("request body is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| ApiError::bad(format!("invalid request: {e}")))
}

/// What checking a request needs of the server: the model's name, the limits, the engine
/// (its chat template and tokenizer). Borrowed from [`AppState`], or built by the fuzzer.
pub struct Rules<'a> {
    pub model_id: &'a str,
    pub limits: &'a crate::server::Limits,
    pub engine: &'a sworn_engine::Engine,
}

impl AppState {
    pub(super) fn rules(&self) -> Rules<'_> {
        Rules {
            model_id: &self.model_id,
            limits: &self.limits,
            engine: &self.shared.engine,
        }
    }
}

/// A request body parsed and checked against every limit that needs no tokenizing.
pub(super) struct Checked {
    pub(super) req: Request,
    pub(super) shape: Shaping,
    pub(super) stream: bool,
}

/// Parses and checks a `/v1/completions` body.
pub(super) fn check_completion(rules: &Rules, body: &[u8]) -> Result<Checked, ApiError> {
    let b: CompletionBody = parse_json(body)?;
    let prompt = match &b.prompt {
        Value::String(s) => s.clone(),
        Value::Array(v) if v.len() == 1 && v[0].is_string() => {
            v[0].as_str().unwrap_or_default().to_string()
        }
        _ => return Err(ApiError::bad("prompt must be a string")),
    };
    let prompt = if b.sworn_raw_prompt {
        Prompt::RawText(prompt)
    } else {
        Prompt::Text(prompt)
    };
    let shape = shaping(&b.common, false)?;
    let req = check_common(rules, prompt, &b.common, false, &shape)?;
    let stream = b.common.stream.unwrap_or(false);
    Ok(Checked { req, shape, stream })
}

/// Parses and checks a `/v1/chat/completions` body.
pub(super) fn check_chat(rules: &Rules, body: &[u8]) -> Result<Checked, ApiError> {
    let b: ChatBody = parse_json(body)?;
    if b.messages.is_empty() {
        return Err(ApiError::bad("messages must not be empty"));
    }
    let msgs = b
        .messages
        .iter()
        .map(ChatMessage::to_message)
        .collect::<Result<Vec<_>, _>>()?;
    let mut shape = shaping(&b.common, true)?;
    if let Some(tools) = &b.tools {
        tool_shaping(rules.engine, tools, b.tool_choice.as_ref(), &mut shape)?;
    } else if b.tool_choice.is_some() {
        return Err(ApiError::bad("tool_choice needs tools"));
    }
    let req = check_common(rules, Prompt::Chat(msgs), &b.common, true, &shape)?;
    let stream = b.common.stream.unwrap_or(false);
    Ok(Checked { req, shape, stream })
}

/// Builds the engine request and checks it against the limits that need no tokenizing.
pub(super) fn check_common(
    rules: &Rules,
    prompt: Prompt,
    c: &Common,
    chat: bool,
    shape: &Shaping,
) -> Result<Request, ApiError> {
    if let Some(m) = &c.model {
        if *m != rules.model_id {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!(
                    "model {m:?} is not served here (this server serves {:?})",
                    rules.model_id
                ),
            ));
        }
    }
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad("only n = 1 is supported"));
    }
    let default_max = if chat { 256 } else { 16 };
    let max_tokens = c
        .max_completion_tokens
        .or(c.max_tokens)
        .unwrap_or(default_max);
    if max_tokens == 0 || max_tokens > rules.limits.max_output_tokens {
        return Err(ApiError::bad(format!(
            "max_tokens must be between 1 and {}",
            rules.limits.max_output_tokens
        )));
    }
    let seed = match c.seed {
        Some(s) => s,
        None => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "rng",
                    e.to_string(),
                )
            })?;
            u64::from_le_bytes(b)
        }
    };
    let d = SamplingParams::default();
    let params = SamplingParams {
        temperature: c.temperature.unwrap_or(1.0),
        top_k: c.top_k.unwrap_or(0),
        top_p: c.top_p.unwrap_or(1.0),
        min_p: c.min_p.unwrap_or(0.0),
        repeat_penalty: c.repeat_penalty.unwrap_or(d.repeat_penalty),
        repeat_last_n: c.repeat_last_n.unwrap_or(d.repeat_last_n),
        seed,
    };
    params
        .validate()
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let stop = match &c.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::bad(
            "stop takes at most 4 non-empty strings of at most 256 bytes",
        ));
    }
    let bytes = prompt_bytes(&prompt)
        + shape.tools.as_ref().map_or(0, String::len)
        + shape.grammar.as_ref().map_or(0, String::len);
    if bytes > rules.limits.max_prompt_bytes {
        return Err(ApiError::bad(format!(
            "the prompt is {bytes} bytes; this server accepts at most {}",
            rules.limits.max_prompt_bytes
        )));
    }
    Ok(Request {
        prompt,
        params,
        max_tokens,
        stop,
        logprobs: shape.logprobs,
        grammar: shape.grammar.clone(),
        tools: shape.tools.clone(),
    })
}

/// Tokenizes a checked request's prompt and compiles its grammar, then checks the token
/// limits. Scales with what the client sent (bounded in bytes before): callers run it on a
/// blocking thread.
pub(super) fn tokenize(
    rules: &Rules,
    req: &Request,
) -> Result<(Vec<u32>, Option<sworn_engine::grammar::Constraint>), ApiError> {
    let engine = rules.engine;
    let tokens = engine
        .request_prompt_tokens(req)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let constraint = match &req.grammar {
        Some(g) => Some(
            engine
                .constraint(g)
                .map_err(|e| ApiError::bad(e.to_string()))?,
        ),
        None => None,
    };
    if tokens.len() > rules.limits.max_prompt_tokens {
        return Err(ApiError::bad(format!(
            "the prompt is {} tokens; this server accepts at most {}",
            tokens.len(),
            rules.limits.max_prompt_tokens
        )));
    }
    let ctx = engine.model.max_context;
    if tokens.len() + req.max_tokens as usize > ctx {
        return Err(ApiError::bad(format!(
            "prompt ({} tokens) plus max_tokens ({}) exceeds the context of {ctx}",
            tokens.len(),
            req.max_tokens
        )));
    }
    Ok((tokens, constraint))
}

/// Runs every check a completion request meets before it is queued (body, limits, tokenizing,
/// grammar, token limits) on `body`, as the handler does (`chat` picks the endpoint): the
/// API's fuzz target. Refusals are `Err` with the message a client would get.
pub fn check_request(rules: &Rules, chat: bool, body: &[u8]) -> Result<usize, String> {
    let checked = if chat {
        check_chat(rules, body)
    } else {
        check_completion(rules, body)
    }
    .map_err(|e| e.message)?;
    let (tokens, _) = tokenize(rules, &checked.req).map_err(|e| e.message)?;
    Ok(tokens.len())
}

/// Offers `tools` to the model: rendered by its template, its calls parsed from the output, and
/// forced by a grammar when `tool_choice` is `required` or names a function.
pub(super) fn tool_shaping(
    engine: &sworn_engine::Engine,
    tools: &[Value],
    choice: Option<&Value>,
    shape: &mut Shaping,
) -> Result<(), ApiError> {
    let template = engine.chat_template.as_ref();
    let style =
        match template.map(|t| (t.supports_tools(), t.tool_call_style())) {
            Some((true, Some(style))) => style,
            Some((true, None)) => return Err(ApiError::bad(
                "this model's chat template renders tools, but in a tool-call convention sworn \
                 does not know (it knows Hermes <tool_call> tags and Llama 3 JSON)",
            )),
            _ => {
                return Err(ApiError::bad(
                    "this model's chat template does not render tools",
                ))
            }
        };
    let (parsed, canonical) = structured::parse_tools(tools).map_err(ApiError::bad)?;
    let choice = structured::parse_tool_choice(choice, &parsed).map_err(ApiError::bad)?;
    if let Some(g) =
        structured::tool_call_grammar(style, &parsed, &choice).map_err(ApiError::bad)?
    {
        if shape.grammar.is_some() {
            return Err(ApiError::bad(
                "response_format cannot be combined with a forced tool_choice, or with a \
                 strict tool under tool_choice auto",
            ));
        }
        shape.grammar = Some(g);
    }
    shape.tools = Some(canonical);
    if choice != structured::ToolChoice::None {
        shape.parse_calls = Some(style);
    }
    Ok(())
}
