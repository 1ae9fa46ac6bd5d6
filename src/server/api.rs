//! The OpenAI-compatible HTTP API. Requests and responses follow OpenAI's shapes, so existing
//! clients work unchanged; each response adds the signed transcript under `sworn_attestation`
//! (which those clients ignore) and its id in the `x-sworn-transcript-id` header.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sworn_engine::{Message, Prompt, Request, SamplingParams};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::StreamExt;

use super::auth::Caller;
use super::scheduler::{Job, Update};
use super::{structured, AppState};
use crate::attestation::now_ms;

/// Header carrying the transcript id of a completion.
pub const TRANSCRIPT_HEADER: &str = "x-sworn-transcript-id";

/// An OpenAI-shaped error response.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 503: the server cannot take or finish the request now (shutting down, store down); the
    /// client may retry, here later or on another replica.
    fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            code,
            message,
        )
    }
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            code: Some(code),
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}});
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

/// `stop`: a string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Fields shared by both endpoints (OpenAI's, plus sworn's `top_k`, `min_p`, `repeat_penalty`,
/// `repeat_last_n`). Unknown fields are ignored, as OpenAI clients send many.
#[derive(Deserialize)]
struct Common {
    model: Option<String>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    repeat_last_n: Option<u32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    stream: Option<bool>,
    n: Option<u32>,
    /// Chat: `true`/`false`; completions: the number of top logprobs (0 to 5 in OpenAI's API,
    /// up to 20 here).
    logprobs: Option<Value>,
    /// Chat: top logprobs per token (0 to 20), with `logprobs: true`.
    top_logprobs: Option<u32>,
    response_format: Option<Value>,
}

#[derive(Deserialize)]
struct CompletionBody {
    prompt: Value,
    /// sworn's opt-in: special-token spellings in the prompt become control tokens
    /// (otherwise they are plain text). Recorded in the transcript as a `raw_text` prompt.
    #[serde(default)]
    sworn_raw_prompt: bool,
    #[serde(flatten)]
    common: Common,
}

/// A message's content: a string, `null` (an assistant message that only calls tools), or a list
/// of text parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<InToolCall>,
    tool_call_id: Option<String>,
}

/// A tool call the client sends back in an assistant message.
#[derive(Deserialize)]
struct InToolCall {
    id: String,
    function: InFunction,
}

#[derive(Deserialize)]
struct InFunction {
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<ChatMessage>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    #[serde(flatten)]
    common: Common,
}

/// The chat roles a request may use. OpenAI's `developer` role is its newer name for `system`,
/// and is recorded (and rendered) as `system`, as OpenAI treats it.
const CHAT_ROLES: &[&str] = &["system", "user", "assistant", "tool"];

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
struct Shaping {
    /// Top logprobs per step, when logprobs are asked for.
    logprobs: Option<u8>,
    grammar: Option<String>,
    /// Canonical JSON of the offered tools.
    tools: Option<String>,
    /// Parse tool calls out of the output, in this convention.
    parse_calls: Option<sworn_engine::chat::ToolCallStyle>,
}

/// The logprobs a request asks for, and its `response_format` grammar.
fn shaping(c: &Common, chat: bool) -> Result<Shaping, ApiError> {
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

/// Requires an API key on every endpoint `--public` does not open, when the server has keys;
/// the caller goes to the handlers as a request extension. No key or an unknown one is 401.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(keys) = &state.keys else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if super::auth::group_of(path).is_some_and(|g| state.public.iter().any(|p| p == g)) {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let caller = match bearer {
        Some(k) if !k.is_empty() => keys.caller(k),
        _ => {
            return unauthorized("this endpoint needs an API key: Authorization: Bearer KEY");
        }
    };
    match caller {
        Some(c) => {
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        None => unauthorized("the API key is not valid"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "invalid_api_key",
        message,
    )
    .into_response();
    r.headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    r
}

/// The caller's place among its key's running requests, and its token budget: 429 past
/// either.
fn admit(
    caller: Option<&Arc<Caller>>,
) -> Result<Option<(Arc<Caller>, tokio::sync::OwnedSemaphorePermit)>, ApiError> {
    let Some(c) = caller else { return Ok(None) };
    let limited = |msg: String, after: u64| {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            msg,
        );
        e.retry_after = Some(after);
        e
    };
    if let Err(wait) = c.admit() {
        return Err(limited(
            format!(
                "key {:?}: tokens per minute used up; retry in {wait} s",
                c.name
            ),
            wait,
        ));
    }
    let permit = c.running.clone().try_acquire_owned().map_err(|_| {
        limited(
            format!(
                "key {:?}: {} requests are already running (its limit); retry later",
                c.name, c.max_concurrent
            ),
            1,
        )
    })?;
    Ok(Some((c.clone(), permit)))
}

/// Reads the whole request body before the handler runs, within `timeout` from the first byte
/// asked for to the last, and at most `max` bytes: a client that trickles its body gets 408
/// instead of holding a connection and a task for as long as it likes. A declared
/// `Content-Length` over the limit gets 413 at once, before any of the body is read.
/// The most of an oversized body that is read (and discarded) before its 413, and for how long.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and drops `body` until it ends or `time` runs out, keeping nothing: returns the bytes
/// read and whether the body ended.
async fn drain(body: axum::body::Body, time: Duration) -> (u64, bool) {
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    let deadline = tokio::time::Instant::now() + time;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => n += chunk.len() as u64,
            Ok(None) => return (n, true),
            Ok(Some(Err(_))) | Err(_) => return (n, false),
        }
        if n > DRAIN_LIMIT {
            return (n, false);
        }
    }
}

pub async fn read_body_in_time(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    max: usize,
    timeout: Duration,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > max as u64) {
        // Clients that write the whole body before reading (Python's http.client) would see a
        // broken pipe, not the 413, if the connection closed under their upload: read and
        // discard a bounded amount first, then answer and close.
        let (drained, all) = if n <= DRAIN_LIMIT {
            drain(req.into_body(), timeout.min(DRAIN_TIME)).await
        } else {
            (0, false)
        };
        tracing::debug!(declared = n, drained, all, "oversized body refused");
        let mut r = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_rejected",
            format!("request body: {n} bytes declared, the limit is {max}"),
        )
        .into_response();
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
        return r;
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "body_rejected",
                format!("request body: {e} (the limit is {max} bytes)"),
            )
            .into_response()
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            )
            .into_response()
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// A place in the queue (`--max-queue`), taken before any work is done for a request and
/// given back when the request is refused; handed to the scheduler with the job, which gives
/// it back when the job ends.
struct QueueSlot {
    shared: Arc<super::scheduler::Shared>,
    handed_over: bool,
}

impl QueueSlot {
    fn take(state: &AppState) -> Result<QueueSlot, ApiError> {
        let shared = state.shared.clone();
        let n = shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = QueueSlot {
            shared,
            handed_over: false,
        };
        if n >= state.limits.max_queue {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "queue_full",
                format!("{n} requests are already queued or running; retry later"),
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        Ok(slot)
    }
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        if !self.handed_over {
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Bytes of prompt text a request carries (roles, contents and tool calls of chat messages).
fn prompt_bytes(p: &Prompt) -> usize {
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
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError {
        status: e.status(),
        kind: "invalid_request_error",
        code: Some("body_rejected"),
        message: format!("request body: {}", e.body_text()),
        retry_after: None,
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad(format!("request body is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| ApiError::bad(format!("invalid request: {e}")))
}

/// What checking a request needs of the server: the model's name, the limits, the engine
/// (its chat template and tokenizer). Borrowed from [`AppState`], or built by the fuzzer.
pub struct Rules<'a> {
    pub model_id: &'a str,
    pub limits: &'a super::Limits,
    pub engine: &'a sworn_engine::Engine,
}

impl AppState {
    fn rules(&self) -> Rules<'_> {
        Rules {
            model_id: &self.model_id,
            limits: &self.limits,
            engine: &self.shared.engine,
        }
    }
}

/// A request body parsed and checked against every limit that needs no tokenizing.
struct Checked {
    req: Request,
    shape: Shaping,
    stream: bool,
}

/// Parses and checks a `/v1/completions` body.
fn check_completion(rules: &Rules, body: &[u8]) -> Result<Checked, ApiError> {
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
fn check_chat(rules: &Rules, body: &[u8]) -> Result<Checked, ApiError> {
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
fn check_common(
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
fn tokenize(
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

/// Takes a place in the queue for a checked request, then tokenizes it (on a blocking thread,
/// at most one per core at once).
async fn prepare(state: &Arc<AppState>, req: Request) -> Result<Prepared, ApiError> {
    let slot = QueueSlot::take(state)?;
    let internal = |e: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "tokenizer",
            e,
        )
    };
    let permit = state
        .tokenizers
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| internal(e.to_string()))?;
    // Never on the async threads nor the scheduler's.
    let (st, r) = (state.clone(), req);
    let (req, (tokens, constraint)) = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let out = tokenize(&st.rules(), &r);
        out.map(|t| (r, t))
    })
    .await
    .map_err(|e| internal(e.to_string()))??;
    Ok(Prepared {
        req,
        tokens,
        constraint,
        slot,
    })
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

/// A request checked and ready for the scheduler.
struct Prepared {
    req: Request,
    tokens: Vec<u32>,
    constraint: Option<sworn_engine::grammar::Constraint>,
    slot: QueueSlot,
}

/// Hands a request, with its place in the queue, to the scheduler.
fn enqueue(
    state: &AppState,
    p: Prepared,
    id: String,
    caller: Option<Arc<Caller>>,
) -> Result<UnboundedReceiver<Update>, ApiError> {
    let (tx, rx) = unbounded_channel();
    let mut slot = p.slot;
    let job = Job {
        id,
        req: p.req,
        prompt_tokens: p.tokens,
        constraint: p.constraint,
        updates: tx,
        enqueued: Instant::now(),
        caller,
    };
    if state.jobs.send(job).is_err() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "the server is shutting down",
        ));
    }
    slot.handed_over = true; // the scheduler gives it back when the job ends
    Ok(rx)
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let res = async {
        let caller = admit(caller.as_deref())?;
        let c = check_completion(&state.rules(), &body_bytes(body)?)?;
        let p = prepare(&state, c.req).await?;
        respond(&state, p, &c.shape, c.stream, false, caller).await
    };
    counted(&state, res.await)
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let res = async {
        let caller = admit(caller.as_deref())?;
        let c = check_chat(&state.rules(), &body_bytes(body)?)?;
        let p = prepare(&state, c.req).await?;
        respond(&state, p, &c.shape, c.stream, true, caller).await
    };
    counted(&state, res.await)
}

/// Offers `tools` to the model: rendered by its template, its calls parsed from the output, and
/// forced by a grammar when `tool_choice` is `required` or names a function.
fn tool_shaping(
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

/// Counts a completion request (and its refusal) and renders the result.
fn counted(state: &AppState, res: Result<Response, ApiError>) -> Response {
    state.shared.metrics.requests.inc();
    res.unwrap_or_else(|e| {
        state.shared.metrics.rejected.inc();
        e.into_response()
    })
}

/// A fresh request id (also the transcript's id in the store).
fn request_id(chat: bool) -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    format!(
        "{}-{}",
        if chat { "chatcmpl" } else { "cmpl" },
        sworn_attest::hexser::encode(&b)
    )
}

fn finish_reason(t: &sworn_attest::Transcript) -> &'static str {
    match t.output.finish_reason {
        sworn_attest::FinishReason::Stop => "stop",
        sworn_attest::FinishReason::Length => "length",
    }
}

async fn respond(
    state: &Arc<AppState>,
    p: Prepared,
    shape: &Shaping,
    stream: bool,
    chat: bool,
    caller: Option<(Arc<Caller>, tokio::sync::OwnedSemaphorePermit)>,
) -> Result<Response, ApiError> {
    let id = request_id(chat);
    let n_prompt = p.tokens.len();
    // The key's place among its running requests is held until the response is delivered (a
    // stream's, until it ends or its client goes away).
    let (caller, permit) = caller.unzip();
    let mut rx = enqueue(state, p, id.clone(), caller)?;
    let created = now_ms() / 1000;
    let model = state.model_id.clone();
    let mut headers = HeaderMap::new();
    headers.insert(
        TRANSCRIPT_HEADER,
        HeaderValue::from_str(&id).expect("hex id"),
    );
    let engine = state.shared.engine.clone();
    let answer = Answer {
        chat,
        parse_calls: shape.parse_calls,
        logprobs: shape.logprobs.is_some(),
    };
    if !stream {
        let deadline = state.limits.request_timeout;
        let done = tokio::time::timeout(deadline, async {
            while let Some(u) = rx.recv().await {
                match u {
                    Update::Token { .. } => {}
                    Update::Done(t) => return Ok(t),
                    Update::Rejected(e) => return Err(ApiError::bad(e)),
                    Update::Failed(e) => {
                        return Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "generation_failed",
                            e,
                        ))
                    }
                    Update::ShuttingDown(e) => {
                        return Err(ApiError::unavailable("shutting_down", e))
                    }
                    Update::StoreFailed(e) => {
                        return Err(ApiError::unavailable("store_unavailable", e))
                    }
                }
            }
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "scheduler_gone",
                "the scheduler stopped",
            ))
        })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "timeout",
                format!("no result within {deadline:?}"),
            )
        })??;
        let t = done;
        drop(permit);
        let n_out = t.output.tokens.len();
        let body = json!({
            "id": id, "object": if chat { "chat.completion" } else { "text_completion" },
            "created": created, "model": model, "choices": [answer.choice(&engine, &t, false)],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out},
            "sworn_attestation": t.to_json(),
        });
        return Ok((headers, Json(body)).into_response());
    }
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    // The whole stream shares one deadline. When it passes, a timeout event goes out and the
    // stream ends: its receiver is dropped, and the scheduler cancels the request at its next
    // pass, as for a client that went away.
    let deadline = tokio::time::Instant::now() + state.limits.request_timeout;
    let updates = futures_util::stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(u)) => Some((Ok(u), Some(rx))),
            Ok(None) => None,
            Err(elapsed) => Some((Err(elapsed), None)),
        }
    });
    let mut first = chat;
    let mut offset = 0usize;
    let events = updates.filter_map(move |u| -> Option<Result<SseEvent, Infallible>> {
        let _held = &permit;
        let event = |choice: Value, extra: Option<(Value, Value)>| {
            let mut v = json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
            if let Some((usage, att)) = extra {
                v["usage"] = usage;
                v["sworn_attestation"] = att;
            }
            Some(Ok(SseEvent::default().data(v.to_string())))
        };
        match u {
            Ok(Update::Token { token, text, logprobs }) => {
                // With tools offered, the answer may turn out to be a call: it is sent whole
                // at the end, as content or as tool_calls.
                if answer.parse_calls.is_some() {
                    return None;
                }
                let lp = match (&logprobs, chat) {
                    (Some(s), true) => super::logprobs::chat_delta(&engine.tokenizer, token, s),
                    (Some(s), false) => super::logprobs::completion(
                        &engine.tokenizer,
                        &[token],
                        std::slice::from_ref(s),
                        offset,
                    ),
                    (None, _) => Value::Null,
                };
                offset += text.len();
                let mut c = if chat {
                    let delta = if first {
                        json!({"role": "assistant", "content": text})
                    } else {
                        json!({"content": text})
                    };
                    first = false;
                    json!({"index": 0, "delta": delta, "finish_reason": null})
                } else {
                    json!({"index": 0, "text": text, "finish_reason": null})
                };
                c["logprobs"] = lp;
                event(c, None)
            }
            Ok(Update::Done(t)) => {
                let n_out = t.output.tokens.len();
                let usage = json!({"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out});
                event(answer.choice(&engine, &t, true), Some((usage, t.to_json())))
            }
            Ok(
                Update::Failed(e)
                | Update::Rejected(e)
                | Update::StoreFailed(e)
                | Update::ShuttingDown(e),
            ) => {
                Some(Ok(error_event(&e)))
            }
            Err(_) => Some(Ok(error_event("timed out: the request was cancelled"))),
        }
    });
    let done = tokio_stream::once(Ok(SseEvent::default().data("[DONE]")));
    let sse =
        Sse::new(events.chain(done)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    Ok((headers, sse).into_response())
}

/// How a finished completion is shown to the client.
#[derive(Clone, Copy)]
struct Answer {
    chat: bool,
    /// Tool calls are parsed out of the output in this convention.
    parse_calls: Option<sworn_engine::chat::ToolCallStyle>,
    logprobs: bool,
}

impl Answer {
    /// The OpenAI choice of transcript `t`: a whole message (or text), or, as the last event of a
    /// stream (`last`), the final delta: empty, unless the answer was held back for tool calls.
    fn choice(
        &self,
        engine: &sworn_engine::Engine,
        t: &sworn_attest::Transcript,
        last: bool,
    ) -> Value {
        let out = &t.output;
        let tok = &engine.tokenizer;
        let held_back = self.parse_calls.is_some();
        let mut finish = json!(finish_reason(t));
        let mut c = json!({"index": 0});
        if self.chat {
            let mut msg = json!({"role": "assistant", "content": out.text});
            if let Some(style) = self.parse_calls {
                let (content, calls) = structured::parse_tool_calls(style, &out.text);
                msg["content"] = json!(content);
                if !calls.is_empty() {
                    let digest = t.digest();
                    let calls: Vec<Value> = calls
                        .iter()
                        .enumerate()
                        .map(|(i, k)| {
                            let mut v = json!({"id": structured::call_id(&digest, i), "type": "function",
                                "function": {"name": k.name, "arguments": k.arguments}});
                            if last {
                                v["index"] = json!(i);
                            }
                            v
                        })
                        .collect();
                    msg["tool_calls"] = json!(calls);
                    finish = json!("tool_calls");
                }
            } else if last {
                msg = json!({}); // the content went out token by token
            }
            c[if last { "delta" } else { "message" }] = msg;
        } else {
            c["text"] = json!(if last { "" } else { out.text.as_str() });
        }
        c["logprobs"] = match (self.logprobs, self.chat) {
            // A stream sent each token's logprobs with it, unless the answer was held back.
            (true, _) if last && !held_back => Value::Null,
            (true, true) => super::logprobs::chat(tok, &out.tokens, &out.logprobs),
            (true, false) => super::logprobs::completion(tok, &out.tokens, &out.logprobs, 0),
            (false, _) => Value::Null,
        };
        c["finish_reason"] = finish;
        c
    }
}

/// An SSE `error` event.
fn error_event(message: &str) -> SseEvent {
    SseEvent::default()
        .event("error")
        .data(json!({"error": {"message": message, "type": "server_error"}}).to_string())
}

/// With API keys, a transcript is read only by the key whose request made it: to any other key
/// it does not exist (404, as for an unknown id, so that ids cannot be probed).
fn readable_by(state: &AppState, id: &str, caller: Option<&Arc<Caller>>) -> Result<bool, ApiError> {
    if state.keys.is_none() {
        return Ok(true);
    }
    let owner = state.shared.store.owner(id).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "store",
            e.to_string(),
        )
    })?;
    Ok(match (owner, caller) {
        (Some(Some(o)), Some(c)) => c.owns(&o),
        _ => false,
    })
}

fn not_found(id: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        format!("no transcript {id}"),
    )
    .into_response()
}

pub async fn attestation(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    Path(id): Path<String>,
) -> Response {
    if id.len() > 128 || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return ApiError::bad("malformed transcript id").into_response();
    }
    match readable_by(&state, &id, caller.as_deref()) {
        Ok(true) => {}
        Ok(false) => return not_found(&id),
        Err(e) => return e.into_response(),
    }
    let store = &state.shared.store;
    let found = if state.attestations_by_digest {
        store.get_by_id_or_digest(&id)
    } else {
        store.get(&id)
    };
    match found {
        Ok(Some(t)) => Json(t.to_json()).into_response(),
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("no transcript {id}"),
        )
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "store",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `GET /v1/attestations/{id}/proof`: the transcript with its inclusion proof in the operator's
/// on-chain log (the bundle `sworn verify --rpc` checks), once `sworn anchor` has anchored it.
pub async fn attestation_proof(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    Path(id): Path<String>,
) -> Response {
    use crate::chain::onchain::{proof_from_store, ProofError};
    if id.len() > 128 || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return ApiError::bad("malformed transcript id").into_response();
    }
    match readable_by(&state, &id, caller.as_deref()) {
        Ok(true) => {}
        Ok(false) => return not_found(&id),
        Err(e) => return e.into_response(),
    }
    let by_digest = state.attestations_by_digest;
    let res = tokio::task::spawn_blocking(move || {
        proof_from_store(&state.shared.store, &id, by_digest, None)
    })
    .await;
    match res {
        Ok(Ok(b)) => Json(b.to_json()).into_response(),
        Ok(Err(e @ (ProofError::Unknown(_) | ProofError::NotAnchored(_)))) => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            e.to_string(),
        )
        .into_response(),
        Ok(Err(e @ ProofError::Ambiguous { .. })) => ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "ambiguous",
            e.to_string(),
        )
        .into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "store",
            e.to_string(),
        )
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            e.to_string(),
        )
        .into_response(),
    }
}

pub async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": state.model_id, "object": "model", "created": 0, "owned_by": "sworn"}]}),
    )
}

pub async fn operator(State(state): State<Arc<AppState>>) -> Json<Value> {
    let s = &state.shared;
    let c = &s.manifest.commitment;
    let hex = sworn_attest::hexser::encode;
    Json(json!({
        "public_key": s.key.public().to_hex(), "key_id": hex(&s.key.public().id()),
        "model": {"id": state.model_id, "file_blake3": hex(&c.file_blake3), "tensors_root": hex(&c.tensors_root),
            "n_tensors": c.n_tensors, "tokenizer_blake3": hex(&c.tokenizer_blake3),
            "chat_template_blake3": hex(&c.chat_template_blake3), "commitment": hex(&c.commitment())},
        "spec_version": sworn_engine::canon::SPEC_VERSION, "format_version": sworn_attest::FORMAT_VERSION,
        "engine_version": env!("CARGO_PKG_VERSION"),
        "operator": s.binding.map(|b| json!({"chain_id": b.chain_id,
            "registry": format!("0x{}", hex(&b.registry)), "address": format!("0x{}", hex(&b.address))})),
    }))
}

/// Liveness: the process answers. Says nothing about the store (see [`readyz`]), so that an
/// orchestrator does not restart a healthy server because its database is down.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the model is loaded and the key present (both hold once the server listens),
/// and the store is reachable and writable now. 503 with the reason otherwise, so a load
/// balancer sends no completions that could not be stored.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let shared = state.shared.clone();
    let why = match tokio::task::spawn_blocking(move || shared.store.ready()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"ready": false, "store": why})),
    )
        .into_response()
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let s = &state.shared;
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(s.in_flight.load(Ordering::Relaxed)),
    )
}
