//! Helpers shared by the root package's integration tests.
#![allow(dead_code)]

pub mod anvil;

use std::path::PathBuf;

/// The real model from `$SWORN_MODEL` (scripts/test.sh sets it), if it exists.
pub fn model() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("SWORN_MODEL")?);
    p.exists().then_some(p)
}

/// Gemma 3 270M from `$SWORN_GEMMA`, if it exists.
pub fn gemma() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("SWORN_GEMMA")?);
    p.exists().then_some(p)
}

/// The real model, or a loud skip; a failure when `SWORN_REQUIRE_MODEL=1` (as in CI).
pub fn require_model(test: &str) -> Option<PathBuf> {
    match model() {
        Some(p) => Some(p),
        None if std::env::var("SWORN_REQUIRE_MODEL").as_deref() == Ok("1") => {
            panic!("{test}: SWORN_REQUIRE_MODEL=1 but SWORN_MODEL is not set to an existing file")
        }
        None => {
            eprintln!("!!! SKIPPED {test}: set SWORN_MODEL (scripts/test.sh does) !!!");
            None
        }
    }
}

/// Gemma 3 270M from `$SWORN_GEMMA` (scripts/test.sh sets it), or a loud skip; a failure when
/// `SWORN_REQUIRE_MODEL=1`.
pub fn require_gemma(test: &str) -> Option<PathBuf> {
    let p = std::env::var_os("SWORN_GEMMA").map(PathBuf::from);
    match p.filter(|p| p.exists()) {
        Some(p) => Some(p),
        None if std::env::var("SWORN_REQUIRE_MODEL").as_deref() == Ok("1") => {
            panic!("{test}: SWORN_REQUIRE_MODEL=1 but SWORN_GEMMA is not set to an existing file")
        }
        None => {
            eprintln!("!!! SKIPPED {test}: set SWORN_GEMMA (scripts/test.sh does) !!!");
            None
        }
    }
}

/// The PostgreSQL server from `$SWORN_TEST_POSTGRES` (scripts/test.sh starts one), or a loud
/// skip; a failure when `SWORN_REQUIRE_POSTGRES` is set (as in CI).
pub fn require_postgres(test: &str) -> Option<String> {
    match std::env::var("SWORN_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("SWORN_REQUIRE_POSTGRES").is_some() => {
            panic!("{test}: SWORN_REQUIRE_POSTGRES is set but SWORN_TEST_POSTGRES is not")
        }
        Err(_) => {
            eprintln!("!!! SKIPPED {test}: set SWORN_TEST_POSTGRES (scripts/test.sh does) !!!");
            None
        }
    }
}
