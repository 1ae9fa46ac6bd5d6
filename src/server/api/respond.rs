//! A queued completion's answer: one JSON response, or server-sent events as tokens arrive,
//! ending with the signed transcript (or an error event naming why it ended).

use crate::attestation::now_ms;
use crate::server::auth::Caller;
use crate::server::scheduler::Update;
use crate::server::{structured, AppState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

use super::admission::{enqueue, Prepared};
use super::request::Shaping;
use super::{request_id, ApiError, TRANSCRIPT_HEADER};

pub(super) fn finish_reason(t: &sworn_attest::Transcript) -> &'static str {
    match t.output.finish_reason {
        sworn_attest::FinishReason::Stop => "stop",
        sworn_attest::FinishReason::Length => "length",
    }
}

pub(super) async fn respond(
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
                    (Some(s), true) => crate::server::logprobs::chat_delta(&engine.tokenizer, token, s),
                    (Some(s), false) => crate::server::logprobs::completion(
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
pub(super) struct Answer {
    pub(super) chat: bool,
    /// Tool calls are parsed out of the output in this convention.
    pub(super) parse_calls: Option<sworn_engine::chat::ToolCallStyle>,
    pub(super) logprobs: bool,
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
            (true, true) => crate::server::logprobs::chat(tok, &out.tokens, &out.logprobs),
            (true, false) => {
                crate::server::logprobs::completion(tok, &out.tokens, &out.logprobs, 0)
            }
            (false, _) => Value::Null,
        };
        c["finish_reason"] = finish;
        c
    }
}

/// An SSE `error` event.
pub(super) fn error_event(message: &str) -> SseEvent {
    SseEvent::default()
        .event("error")
        .data(json!({"error": {"message": message, "type": "server_error"}}).to_string())
}
