//! Who may ask, and how much at once: API keys, per-key concurrency and token budgets, request
//! bodies bounded in size and time, places in the queue, and the hand-over to the scheduler.

use crate::server::auth::Caller;
use crate::server::scheduler::{Job, Update};
use crate::server::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sworn_engine::Request;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::StreamExt;

use super::request::tokenize;
use super::ApiError;

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
    if crate::server::auth::group_of(path).is_some_and(|g| state.public.iter().any(|p| p == g)) {
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

pub(super) fn unauthorized(message: &str) -> Response {
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
pub(super) fn admit(
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
pub(super) const DRAIN_LIMIT: u64 = 16 << 20;

pub(super) const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and drops `body` until it ends or `time` runs out, keeping nothing: returns the bytes
/// read and whether the body ended.
pub(super) async fn drain(body: axum::body::Body, time: Duration) -> (u64, bool) {
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
pub(super) struct QueueSlot {
    pub(super) shared: Arc<crate::server::scheduler::Shared>,
    pub(super) handed_over: bool,
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

/// Takes a place in the queue for a checked request, then tokenizes it (on a blocking thread,
/// at most one per core at once).
pub(super) async fn prepare(state: &Arc<AppState>, req: Request) -> Result<Prepared, ApiError> {
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

/// A request checked and ready for the scheduler.
pub(super) struct Prepared {
    pub(super) req: Request,
    pub(super) tokens: Vec<u32>,
    pub(super) constraint: Option<sworn_engine::grammar::Constraint>,
    pub(super) slot: QueueSlot,
}

/// Hands a request, with its place in the queue, to the scheduler.
pub(super) fn enqueue(
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
