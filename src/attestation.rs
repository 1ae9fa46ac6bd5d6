//! Turning an engine completion into a signed transcript.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sworn_attest::hexser;

use sworn_attest::{Meta, OperatorBinding, OperatorKey, PublicKey, Transcript, FORMAT_VERSION};
use sworn_engine::commit::ModelManifest;
use sworn_engine::{Completion, Engine, Request};

/// Builds and signs the transcript of `c`, the completion of `req` by `engine` on the model
/// described by `manifest`, naming `binding` (the operator's registration) when there is one.
pub fn sign_completion(
    engine: &Engine,
    manifest: &ModelManifest,
    req: &Request,
    c: &Completion,
    key: &OperatorKey,
    binding: Option<&OperatorBinding>,
) -> Transcript {
    let mut t = Transcript {
        version: FORMAT_VERSION,
        model: manifest.commitment.clone(),
        request: req.to_record(c.prompt_tokens.clone()),
        output: c.to_record(),
        meta: Meta {
            engine: "sworn".into(),
            engine_version: env!("CARGO_PKG_VERSION").into(),
            backend: engine.backend_name(),
            operator_key_id: [0; 32],
            timestamp_ms: now_ms(),
            operator: binding.copied(),
        },
        signature: [0; 64],
    };
    key.sign(&mut t);
    t
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The file in DATA_DIR where `sworn registry register` records the operator's registration, so
/// that `sworn serve` and `sworn generate` name it in every transcript they sign.
pub const BINDING_FILE: &str = "operator-binding.json";

/// The registration file: the binding, and the Ed25519 key it was registered with.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    binding: OperatorBinding,
    #[serde(with = "hexser")]
    ed25519_key: [u8; 32],
}

pub fn binding_path(data_dir: &Path) -> PathBuf {
    data_dir.join(BINDING_FILE)
}

/// Records that `key` is registered as `binding`.
pub fn save_binding(data_dir: &Path, binding: &OperatorBinding, key: &PublicKey) -> Result<()> {
    crate::store::create_private_dir(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = binding_path(data_dir);
    let doc = BindingFile {
        binding: *binding,
        ed25519_key: key.to_bytes(),
    };
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// The binding recorded in `data_dir` for `key`: `None` when there is no registration file, an
/// error when the file is unreadable or records another key (signing with one key while naming
/// a registration of another would make every transcript unverifiable on chain).
pub fn load_binding(data_dir: &Path, key: &PublicKey) -> Result<Option<OperatorBinding>> {
    let path = binding_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let doc: BindingFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if doc.ed25519_key != key.to_bytes() {
        bail!(
            "{} records a registration of Ed25519 key {}, but the signing key is {}; \
             register this key (sworn registry register) or remove the file",
            path.display(),
            hexser::encode(&doc.ed25519_key),
            key.to_hex()
        );
    }
    Ok(Some(doc.binding))
}
