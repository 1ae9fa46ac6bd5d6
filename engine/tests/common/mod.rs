//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The real model (SmolLM2-135M-Instruct Q4_1): `$SWORN_MODEL`, or where
/// `scripts/fetch-model.sh` caches it. Missing, it skips loudly, or fails when
/// `SWORN_REQUIRE_MODEL=1` (as CI sets it, having fetched the model).
pub fn real_model(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("SWORN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(sworn_engine::default_model_path);
    present(test, path, "scripts/fetch-model.sh")
}

/// `path` if it exists; else a loud skip, or a failure when `SWORN_REQUIRE_MODEL=1`.
fn present(test: &str, path: PathBuf, fetch: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("SWORN_REQUIRE_MODEL").as_deref() == Ok("1") {
        panic!(
            "{test}: SWORN_REQUIRE_MODEL=1 but the model is not at {}",
            path.display()
        );
    }
    eprintln!(
        "!!! SKIPPED {test}: model not found at {} (run {fetch}) !!!",
        path.display()
    );
    None
}

/// The second real model (Gemma 3 270M instruct, Q4_K_M): `$SWORN_GEMMA`, or where
/// `scripts/fetch-model.sh gemma3` caches it; skips loudly, or fails under `SWORN_REQUIRE_MODEL=1`.
pub fn gemma_model(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("SWORN_GEMMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            sworn_engine::default_model_path().with_file_name("gemma-3-270m-it-Q4_K_M.gguf")
        });
    present(test, path, "scripts/fetch-model.sh gemma3")
}
