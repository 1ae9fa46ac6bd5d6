//! `/verify`: the verify page (`scripts/build-web.sh` builds it), served from the folder given
//! by `sworn serve --verify-dir`. Only the page's own files are served, by name, so no request
//! can reach anything else in (or outside) that folder.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;

/// The page's files and their content types.
const FILES: [(&str, &str); 5] = [
    ("index.html", "text/html; charset=utf-8"),
    ("verify.js", "text/javascript"),
    ("worker.js", "text/javascript"),
    ("sworn_web.js", "text/javascript"),
    ("sworn_web_bg.wasm", "application/wasm"),
];

/// The verify page's Content-Security-Policy: the chat page's (it shares its origin, where the
/// chat page keeps an API key in `sessionStorage`), except that it may fetch attestations from
/// any server the user names in its "server" field. Scripts, workers and WebAssembly still come
/// from this server only, and no other site may frame it.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
    connect-src 'self' http: https:; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// `/verify` itself: the page's relative links need the trailing slash.
pub async fn redirect() -> Redirect {
    Redirect::permanent("/verify/")
}

/// `/verify/`: the page.
pub async fn index(State(state): State<Arc<AppState>>) -> Response {
    serve(state.verify_dir.as_ref(), "index.html").await
}

/// `/verify/{file}`: one of the page's files.
pub async fn file(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    serve(state.verify_dir.as_ref(), &name).await
}

async fn serve(dir: Option<&PathBuf>, name: &str) -> Response {
    let Some(dir) = dir else {
        return (
            StatusCode::NOT_FOUND,
            "the verify page is not installed here: build it with scripts/build-web.sh and \
             start `sworn serve --verify-dir DIR`\n",
        )
            .into_response();
    };
    let Some(&(name, kind)) = FILES.iter().find(|(n, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CONTENT_SECURITY_POLICY, CSP),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(file = %dir.join(name).display(), "verify page: {e}");
            (
                StatusCode::NOT_FOUND,
                format!("{name}: not in the verify folder\n"),
            )
                .into_response()
        }
    }
}
