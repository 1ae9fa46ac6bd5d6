//! `/`: the chat page, compiled into the binary (`chat_page/index.html` and `chat.js`), so a
//! user needs no build step. It streams answers from `/v1/chat/completions` and verifies each
//! answer's attestation in the browser with the verify page's WebAssembly module (`/verify/`,
//! present when the server was given `--verify-dir`; without it the page says the answers are
//! unverified rather than asking the server to vouch for itself).

use axum::http::header;
use axum::response::IntoResponse;

/// The page may load only its own script, the verifier's worker and WebAssembly, and talk only
/// to this server.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
    connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// `/`: the page.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        include_str!("chat_page/index.html"),
    )
}

/// `/chat.js`: its script.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("chat_page/chat.js"),
    )
}
