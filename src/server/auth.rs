//! API keys (`--api-keys FILE`): `Authorization: Bearer KEY` on every endpoint that is not
//! public, per-key limits on requests running at once and on tokens per minute (429 with
//! `Retry-After` past either), and attestations readable only by the key whose request made
//! them.
//!
//! The file holds each key's SHA-256, never the key: `sworn api-key add` draws a key (256 random
//! bits, so a plain hash is as strong as a password hash would be), prints it once and appends
//! its hash. A leaked file gives no key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One key as the file records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Who holds it (logs, metrics, and the owner of its attestations).
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// Requests of this key queued or running at once; more get 429.
    pub max_concurrent: usize,
    /// Prompt plus completion tokens per minute; past it, 429 until the bucket refills.
    pub tokens_per_minute: u64,
}

/// A key's live state.
pub struct Caller {
    pub name: String,
    /// Who owns the transcripts this key's requests make: `key:` and 32 hex digits derived from
    /// the key's hash, so it is stable for the key and never shared with another key, whatever
    /// the names say (a name can be reused after its key is revoked).
    pub owner: String,
    /// One permit per request queued or running, held until it ends.
    pub running: Arc<tokio::sync::Semaphore>,
    pub max_concurrent: usize,
    tokens_per_minute: u64,
    bucket: Mutex<Bucket>,
}

/// A token bucket: `level` tokens, refilling at `tokens_per_minute / 60` per second up to one
/// minute's worth. A request may start while the level is positive; its tokens are charged when
/// it ends (they are known only then), so the level may go negative and the key waits it out.
struct Bucket {
    level: f64,
    at: Instant,
}

impl Caller {
    fn refill(&self, b: &mut Bucket, now: Instant) {
        let rate = self.tokens_per_minute as f64 / 60.0;
        let cap = self.tokens_per_minute as f64;
        b.level = (b.level + rate * now.duration_since(b.at).as_secs_f64()).min(cap);
        b.at = now;
    }

    /// `Err(seconds)` to wait when the key's token budget is spent.
    pub fn admit(&self) -> Result<(), u64> {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut b, Instant::now());
        if b.level > 0.0 {
            return Ok(());
        }
        let rate = (self.tokens_per_minute as f64 / 60.0).max(1e-9);
        Err(((1.0 - b.level) / rate).ceil().clamp(1.0, 3600.0) as u64)
    }

    /// Charges a finished request's tokens.
    pub fn charge(&self, tokens: u64) {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut b, Instant::now());
        b.level -= tokens as f64;
    }
}

/// The keys a server accepts, by their hash.
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
}

fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The owner id of the key whose SHA-256 is `hash`: `key:` and the first 16 bytes of
/// `SHA-256("sworn.api-key-owner.v1\0" || hash)` in hex. Derived, not the hash itself, so the
/// transcript store holds nothing that also appears in the key file.
pub fn owner_id(hash: &[u8; 32]) -> String {
    let d = Sha256::new()
        .chain_update(b"sworn.api-key-owner.v1\0")
        .chain_update(hash)
        .finalize();
    format!("key:{}", sworn_attest::hexser::encode(&d[..16]))
}

/// Whether a stored owner is a key's: `owner_id` for rows written since owners became key
/// ids; a row written before holds the key's name (see [`Caller::owns`]).
fn is_owner_id(owner: &str) -> bool {
    owner.starts_with("key:")
}

impl Caller {
    /// Whether this key may read a transcript whose owner column is `owner`: its own id; or,
    /// for rows written before owners were key ids, its name (names are unique in a key file;
    /// docs/server.md says what that leaves for rows made before the upgrade).
    pub fn owns(&self, owner: &str) -> bool {
        if is_owner_id(owner) {
            owner == self.owner
        } else {
            owner == self.name
        }
    }
}

impl ApiKeys {
    /// Reads a key file (a JSON array of [`KeyEntry`]); it must not be readable by others.
    pub fn load(path: &Path) -> Result<ApiKeys> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .with_context(|| format!("reading {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {:o}): chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let entries: Vec<KeyEntry> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        ApiKeys::from_entries(entries).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_entries(entries: Vec<KeyEntry>) -> Result<ApiKeys> {
        let mut by_hash = HashMap::new();
        let mut names = std::collections::BTreeSet::new();
        for e in entries {
            if !names.insert(e.name.clone()) {
                bail!(
                    "the name {:?} is given to two keys: names must be unique (they are shown \
                     in logs and metrics, and older attestations are owned by name)",
                    e.name
                );
            }
            let Ok(h) = sworn_attest::hexser::decode::<32>(&e.sha256) else {
                bail!("key {:?}: sha256 must be 64 hex digits", e.name);
            };
            if e.name.is_empty() || e.max_concurrent == 0 || e.tokens_per_minute == 0 {
                bail!(
                    "key {:?}: needs a name, max_concurrent >= 1 and tokens_per_minute >= 1",
                    e.name
                );
            }
            let caller = Arc::new(Caller {
                running: Arc::new(tokio::sync::Semaphore::new(e.max_concurrent)),
                max_concurrent: e.max_concurrent,
                tokens_per_minute: e.tokens_per_minute,
                bucket: Mutex::new(Bucket {
                    level: e.tokens_per_minute as f64,
                    at: Instant::now(),
                }),
                name: e.name.clone(),
                owner: owner_id(&h),
            });
            if by_hash.insert(h, caller).is_some() {
                bail!("key {:?} is listed twice", e.name);
            }
        }
        if by_hash.is_empty() {
            bail!("no keys: add one with `sworn api-key add`");
        }
        Ok(ApiKeys { by_hash })
    }

    /// The caller a bearer key belongs to.
    pub fn caller(&self, key: &str) -> Option<Arc<Caller>> {
        self.by_hash.get(&sha256(key)).cloned()
    }
}

/// Draws a new key and appends its entry to `path` (created 0600 if absent); returns the key.
pub fn add_key(
    path: &Path,
    name: &str,
    max_concurrent: usize,
    tokens_per_minute: u64,
) -> Result<String> {
    let mut entries: Vec<KeyEntry> = match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("parsing {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if entries.iter().any(|e| e.name == name) {
        bail!("{} already has a key named {name:?}", path.display());
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("drawing a key: {e}"))?;
    let key = format!("sk-sworn-{}", sworn_attest::hexser::encode(&raw));
    entries.push(KeyEntry {
        name: name.into(),
        sha256: sworn_attest::hexser::encode(&sha256(&key)),
        max_concurrent,
        tokens_per_minute,
    });
    ApiKeys::from_entries(entries.clone())?;
    let text = serde_json::to_string_pretty(&entries)? + "\n";
    write_private(path, &text)?;
    Ok(key)
}

/// Writes `text` to `path` readable by its owner only (through a temporary file and a rename).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Endpoint groups that `--public` may open to callers without a key.
pub const PUBLIC_GROUPS: &[&str] = &["healthz", "operator", "metrics", "models", "verify", "chat"];
/// Open by default when keys are required: liveness, the operator's public key, the verify and
/// chat pages (static files: the chat page's requests still need a key).
pub const DEFAULT_PUBLIC: &[&str] = &["healthz", "operator", "verify", "chat"];

/// The group a path belongs to, if it is one `--public` can open.
pub fn group_of(path: &str) -> Option<&'static str> {
    match path {
        "/healthz" | "/readyz" => Some("healthz"),
        "/v1/operator" => Some("operator"),
        "/metrics" => Some("metrics"),
        "/v1/models" => Some("models"),
        p if p == "/verify" || p.starts_with("/verify/") => Some("verify"),
        "/" | "/chat.js" => Some("chat"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, key: &str, tpm: u64) -> KeyEntry {
        KeyEntry {
            name: name.into(),
            sha256: sworn_attest::hexser::encode(&sha256(key)),
            max_concurrent: 2,
            tokens_per_minute: tpm,
        }
    }

    #[test]
    fn keys_are_found_by_hash_and_budgets_refill() {
        let keys =
            ApiKeys::from_entries(vec![entry("a", "ka", 600), entry("b", "kb", 60)]).unwrap();
        assert_eq!(keys.caller("ka").unwrap().name, "a");
        assert!(keys.caller("kc").is_none());
        let b = keys.caller("kb").unwrap();
        assert!(b.admit().is_ok());
        b.charge(120); // one minute's worth, twice over
        let wait = b.admit().unwrap_err();
        assert!((60..=62).contains(&wait), "{wait}");
        assert!(ApiKeys::from_entries(vec![entry("a", "k", 1), entry("b", "k", 1)]).is_err());
        assert!(ApiKeys::from_entries(vec![]).is_err());
    }

    /// Ownership follows the key, not its name: a hand-edited file with one name twice is
    /// refused, and a name reused for a new key (after the old one was revoked) does not read
    /// what the old key's requests made. Rows written before owners were key ids are owned by
    /// name. (Before, the owner was the name: two entries named alike read each other's.)
    #[test]
    fn transcripts_are_owned_by_the_key_not_its_name() {
        let e = ApiKeys::from_entries(vec![entry("a", "k1", 1), entry("a", "k2", 1)])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("two keys"), "{e}");
        let old = ApiKeys::from_entries(vec![entry("alice", "old-key", 1)]).unwrap();
        let new = ApiKeys::from_entries(vec![entry("alice", "new-key", 1)]).unwrap();
        let (old, new) = (
            old.caller("old-key").unwrap(),
            new.caller("new-key").unwrap(),
        );
        assert_ne!(old.owner, new.owner);
        assert!(old.owner.starts_with("key:") && old.owner.len() == 4 + 32);
        assert!(old.owns(&old.owner));
        assert!(
            !new.owns(&old.owner),
            "a reused name reads the old key's transcripts"
        );
        assert!(new.owns("alice"), "a row from before owner ids, by name");
        assert!(!new.owns("bob"));
        // The owner id is not the key's hash (the store holds nothing from the key file).
        assert!(!old
            .owner
            .contains(&sworn_attest::hexser::encode(&sha256("old-key"))[..32]));
    }

    #[test]
    fn added_keys_are_stored_hashed_and_private() {
        let dir = std::env::temp_dir().join(format!("sworn-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.json");
        let _ = std::fs::remove_file(&path);
        let k = add_key(&path, "alice", 4, 10_000).unwrap();
        assert!(k.starts_with("sk-sworn-"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&k), "the key itself is never written");
        let keys = ApiKeys::load(&path).unwrap();
        assert_eq!(keys.caller(&k).unwrap().name, "alice");
        assert!(add_key(&path, "alice", 1, 1).is_err(), "names are unique");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = ApiKeys::load(&path).err().unwrap().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }
}
