//! The OpenAI-compatible HTTP API. Requests and responses follow OpenAI's shapes, so existing
//! clients work unchanged; each response adds the signed transcript under `sworn_attestation`
//! (which those clients ignore) and its id in the `x-sworn-transcript-id` header.
//!
//! Layout: the handlers and the error shape here; `request` (OpenAI's request shapes and every
//! check before queueing), `admission` (keys, budgets, bodies, the queue), `respond` (JSON or
//! server-sent events, ending with the transcript).

mod admission;
mod request;
mod respond;

pub use admission::{authenticate, read_body_in_time};
pub use request::{check_request, Rules};

use crate::server::auth::Caller;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use admission::{admit, prepare};
use request::{body_bytes, check_chat, check_completion};
use respond::respond;

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

/// The caller of a handler, when the server has API keys.
type CallerExt = Option<axum::Extension<Arc<Caller>>>;

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<Arc<AppState>>,
    caller: CallerExt,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, caller, body, false).await
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    caller: CallerExt,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, caller, body, true).await
}

/// Both endpoints: admit the caller, check the body, queue it, answer.
async fn complete(
    state: Arc<AppState>,
    caller: CallerExt,
    body: Result<Bytes, BytesRejection>,
    chat: bool,
) -> Response {
    let res = async {
        let caller = admit(caller.as_deref())?;
        let body = body_bytes(body)?;
        let c = if chat {
            check_chat(&state.rules(), &body)?
        } else {
            check_completion(&state.rules(), &body)?
        };
        let p = prepare(&state, c.req).await?;
        respond(&state, p, &c.shape, c.stream, chat, caller).await
    };
    counted(&state, res.await)
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

/// The answer refusing a malformed transcript id, or one the caller may not read (as not
/// found: whether someone else's transcript exists is not the caller's business); `None` to go on.
fn refusal(state: &AppState, id: &str, caller: Option<&Arc<Caller>>) -> Option<Response> {
    if id.len() > 128 || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return Some(ApiError::bad("malformed transcript id").into_response());
    }
    match readable_by(state, id, caller) {
        Ok(true) => None,
        Ok(false) => Some(not_found(id)),
        Err(e) => Some(e.into_response()),
    }
}

pub async fn attestation(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = refusal(&state, &id, caller.as_deref()) {
        return refused;
    }
    let store = &state.shared.store;
    let found = if state.attestations_by_digest {
        store.get_by_id_or_digest(&id)
    } else {
        store.get(&id)
    };
    match found {
        Ok(Some(t)) => Json(t.to_json()).into_response(),
        Ok(None) => not_found(&id),
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
    if let Some(refused) = refusal(&state, &id, caller.as_deref()) {
        return refused;
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
            "chat_template_blake3": hex(&c.chat_template_blake3), "exec_root": c.exec_root.as_ref().map(|e| hex(e)),
            "commitment": hex(&c.commitment())},
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
