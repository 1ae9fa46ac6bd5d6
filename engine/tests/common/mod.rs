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
        "!!! SKIPPED {test}: real model not found at {} (run scripts/fetch-model.sh) !!!",
        path.display()
    );
    None
}
