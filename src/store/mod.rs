//! Durable store of signed transcripts and of the anchoring log, on one of two backends:
//!
//! - **SQLite** (the default, `DATA_DIR/sworn.db`, [`sqlite`]): WAL mode with
//!   `synchronous = FULL`, so a transcript is on disk when `put` returns — before the response
//!   that carries it completes. One file that any `sqlite3` shell can inspect, SQL migrations,
//!   and a crash story (WAL + fsync on commit) proven for decades.
//! - **PostgreSQL** (`--store postgres://…`, [`postgres`]): one store shared by several
//!   replicas behind a load balancer. A transcript is committed (synchronously, as PostgreSQL
//!   commits by default) before `put` returns; anchoring runs on the one replica that holds the
//!   anchoring lease, a session-level advisory lock ([`Store::anchoring_lease`]).
//!
//! Both implement [`Backend`]; [`Store`] is what the server, the scheduler and the chain
//! commands use, and is the same whichever backend is below it. The store test suite
//! (`tests.rs`) runs against both.

use std::path::{Path, PathBuf};

use sworn_attest::{Limits, Transcript};

pub mod anchor_log;
pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod tests;

pub use sqlite::MIGRATIONS;

/// The `binding` column's form of an operator binding: `chain_id:0xregistry:0xoperator`, hex
/// lowercase (the form `RegistryRef` and the anchor log use).
pub fn binding_key(b: &sworn_attest::OperatorBinding) -> String {
    use sworn_attest::hexser::encode;
    format!(
        "{}:0x{}:0x{}",
        b.chain_id,
        encode(&b.registry),
        encode(&b.address)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("transcript store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The driver's message and its causes are in this one, so it is not also a `source`:
    /// `{:#}` would print them twice, and a plain `{}` (the logs) would lose the causes.
    #[error("transcript store {where_}: {}", with_causes(.error))]
    Postgres {
        /// The server and database, never the password.
        where_: String,
        error: tokio_postgres::Error,
    },
    #[error("transcript store {0}: {1}")]
    Unavailable(String, String),
    #[error("transcript store {path}: schema version {found} is newer than this sworn ({known})")]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
    #[error("transcript store: stored transcript {0} does not decode: {1}")]
    Corrupt(String, String),
    #[error("transcript store: {0}")]
    Io(#[from] std::io::Error),
    #[error("transcript store: {0}")]
    Config(String),
}

/// `e` and its chain of causes, `: `-separated (the driver's connect error says only "error
/// connecting to server"; why is its cause).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Creates `dir` readable by its owner only (0700), or makes an existing one so: it holds the
/// store (every prompt and output) and the operator key. A directory that is not ours to
/// tighten (another user's, or a shared sticky one such as /tmp) is left as it is, with a
/// warning.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !dir.exists() {
            return create_private_dir(dir);
        }
        let meta = std::fs::metadata(dir)?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            // SAFETY: getuid has no preconditions and cannot fail.
            let ours = meta.uid() == unsafe { libc::getuid() };
            if ours && mode & 0o1000 == 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                tracing::warn!(dir = %dir.display(), "data directory was mode {mode:o}; now 0700");
            } else {
                tracing::warn!(dir = %dir.display(), "data directory is mode {mode:o} and not sworn's to change: others may list it");
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates `dir` and its missing parents with mode 0700 (nothing is changed if it exists).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Where the store lives: `--store`'s value, or the default SQLite file in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL (or libpq key=value string).
    Postgres(String),
}

impl Location {
    /// `spec` is `--store`: absent for `DATA_DIR/sworn.db`, a `postgres://` URL, or
    /// `sqlite:PATH` for another SQLite file.
    pub fn parse(spec: Option<&str>, data_dir: &Path) -> Result<Location, StoreError> {
        match spec {
            None => Ok(Location::Sqlite(data_dir.join("sworn.db"))),
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Ok(Location::Postgres(s.to_string()))
            }
            Some(s) => match s.strip_prefix("sqlite:") {
                Some(p) if !p.is_empty() => Ok(Location::Sqlite(PathBuf::from(p))),
                _ => Err(StoreError::Config(format!(
                    "--store {s:?}: give a postgres://USER@HOST:PORT/DATABASE URL, or sqlite:PATH"
                ))),
            },
        }
    }

    /// For messages: the file, or the server and database without the password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => postgres::describe(url),
        }
    }
}

/// A transcript row as stored.
pub struct NewTranscript<'a> {
    pub id: &'a str,
    /// Lowercase hex of the transcript digest.
    pub digest: String,
    pub created_ms: i64,
    /// The canonical binary encoding.
    pub encoded: Vec<u8>,
    /// [`binding_key`] of the operator the transcript names.
    pub binding: Option<String>,
    /// The API key whose request made it.
    pub owner: Option<&'a str>,
}

/// A batch as stored, before its hex fields are checked ([`anchor_log`]).
pub struct RawBatch {
    pub operator: String,
    pub state: String,
    pub root: String,
    pub size: i64,
    pub from_block: i64,
    pub tx_hash: Option<String>,
    pub batch: Option<i64>,
    pub anchored_at: Option<i64>,
    /// (transcript id, digest hex), in tree order.
    pub leaves: Vec<(String, String)>,
}

/// What planning a batch asks of the backend.
pub struct PlanRequest<'a> {
    pub chain_id: i64,
    /// `0x` and 40 lowercase hex digits.
    pub registry: &'a str,
    pub operator: &'a str,
    /// The `binding` value of the transcripts to take.
    pub binding: &'a str,
    pub max: i64,
    pub from_block: i64,
    pub created_ms: i64,
}

/// A batch's leaves (transcript id, digest), in tree order.
pub type Leaves = Vec<(String, [u8; 32])>;

/// A batch as planned: its local id, its Merkle root, and its leaves (transcript id, digest),
/// oldest first.
pub struct Planned {
    pub id: i64,
    pub root: [u8; 32],
    pub leaves: Leaves,
}

/// Gives a batch's Merkle root from its leaves' digests, in order.
pub type RootOf<'a> = dyn Fn(&[[u8; 32]]) -> [u8; 32] + 'a;

/// Leaves as stored (transcript id, digest hex) with their digests checked.
pub fn decode_leaves(rows: &[(String, String)]) -> Result<Leaves, StoreError> {
    rows.iter()
        .map(|(id, digest)| {
            sworn_attest::hexser::decode::<32>(digest)
                .map(|d| (id.clone(), d))
                .map_err(|e| StoreError::Corrupt(id.clone(), format!("digest: {e}")))
        })
        .collect()
}

/// The leaves a backend selected for a batch, checked, and their root.
fn planned_leaves(
    rows: &[(String, String)],
    root_of: &RootOf<'_>,
) -> Result<([u8; 32], Leaves), StoreError> {
    let leaves = decode_leaves(rows)?;
    let digests: Vec<[u8; 32]> = leaves.iter().map(|(_, d)| *d).collect();
    Ok((root_of(&digests), leaves))
}

/// Where a transcript was anchored: (batch id, leaf index, chain id, registry).
pub type AnchoredIn = (i64, i64, i64, String);

/// An update of one pending anchor batch must touch exactly one row: none means the batch is
/// gone or no longer pending (another replica released or finished it), and passing that over
/// would leave a batch on chain that the store does not know.
pub(crate) fn one_row(n: usize, id: i64, doing: &str) -> Result<(), StoreError> {
    match n {
        1 => Ok(()),
        _ => Err(StoreError::Unavailable(
            format!("anchor batch {id}"),
            format!(
                "{doing}: {n} pending batches matched, not 1 (released or finished elsewhere?)"
            ),
        )),
    }
}

/// What a store backend does. Every method is synchronous: the scheduler thread and the
/// handlers call it (SQLite blocks on its file; PostgreSQL on a round trip through its own
/// runtime), and each write is durable when it returns.
pub trait Backend: Send + Sync {
    /// Inserts a transcript (a duplicate id is an error).
    fn put(&self, row: &NewTranscript<'_>) -> Result<(), StoreError>;
    /// The owner column of the transcript with this id (or, with `by_digest`, digest).
    fn owner(&self, id: &str, by_digest: bool) -> Result<Option<Option<String>>, StoreError>;
    /// The encoded transcript with this id (or, with `by_digest`, digest).
    fn encoded(&self, id: &str, by_digest: bool) -> Result<Option<Vec<u8>>, StoreError>;
    fn count(&self) -> Result<u64, StoreError>;
    /// Whether the store is reachable and takes writes now (`/readyz`).
    fn ready(&self) -> Result<(), StoreError>;
    /// Makes everything written durable in its final place (on shutdown).
    fn checkpoint(&self) -> Result<(), StoreError>;

    /// The oldest pending batch of a registry.
    fn pending_batch_id(&self, chain_id: i64, registry: &str) -> Result<Option<i64>, StoreError>;
    /// In one transaction: takes up to `max` transcripts with `binding` that are in no batch of
    /// the registry, oldest first, and records them as a pending batch whose root `root_of`
    /// gives.
    fn plan_batch(
        &self,
        p: &PlanRequest<'_>,
        root_of: &RootOf<'_>,
    ) -> Result<Option<Planned>, StoreError>;
    fn set_batch_tx(&self, id: i64, tx_hash: &str) -> Result<(), StoreError>;
    fn mark_anchored(&self, id: i64, batch: i64, anchored_at: i64) -> Result<(), StoreError>;
    /// Deletes batch `id` if it is still pending.
    fn drop_pending(&self, id: i64) -> Result<(), StoreError>;
    /// The anchored batches holding the transcript with this id or digest, by batch id.
    fn anchored_in(&self, id: &str) -> Result<Vec<AnchoredIn>, StoreError>;
    /// Transcripts with `binding` in no batch (planned or anchored) of the registry.
    fn unanchored_count(
        &self,
        chain_id: i64,
        registry: &str,
        binding: &str,
    ) -> Result<u64, StoreError>;
    fn batch_recorded(
        &self,
        chain_id: i64,
        registry: &str,
        operator: &str,
        batch: i64,
    ) -> Result<bool, StoreError>;
    fn batch(&self, id: i64) -> Result<RawBatch, StoreError>;

    /// Tries to take the anchoring lease: `None` when another process holds it.
    fn anchoring_lease(&self) -> Result<Option<AnchorLease>, StoreError>;

    /// Inserts a bare transcript row (for tests of the anchoring log: any digest, no body).
    #[cfg(test)]
    fn insert_bare(&self, id: &str, digest: &str, binding: Option<&str>) -> Result<(), StoreError>;
}

/// The right to anchor this store: one holder at a time, across processes and (on
/// PostgreSQL) replicas. Released when dropped, or when its holder dies.
pub struct AnchorLease(Box<dyn LeaseHold>);

/// What holds a lease: a locked file, or a PostgreSQL session holding an advisory lock.
pub trait LeaseHold: Send + Sync {
    /// Whether the lease is still ours (a PostgreSQL session that dropped has lost it).
    fn held(&self) -> bool;
}

impl AnchorLease {
    pub fn new(hold: impl LeaseHold + 'static) -> AnchorLease {
        AnchorLease(Box::new(hold))
    }

    /// Whether the lease is still ours: checked before each anchoring round.
    pub fn held(&self) -> bool {
        self.0.held()
    }
}

/// The transcript store.
pub struct Store {
    backend: Box<dyn Backend>,
    location: Location,
}

impl Store {
    /// Opens (creating if needed) and migrates the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens (creating if needed) and migrates the store at `location`.
    pub fn open_at(location: &Location) -> Result<Store, StoreError> {
        let backend: Box<dyn Backend> = match location {
            Location::Sqlite(p) => Box::new(sqlite::Sqlite::open(p)?),
            Location::Postgres(url) => Box::new(postgres::Postgres::connect(url)?),
        };
        Ok(Store {
            backend,
            location: location.clone(),
        })
    }

    /// Where this store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Stores a transcript durably under `id`; committed when this returns.
    pub fn put(&self, id: &str, t: &Transcript, created_ms: u64) -> Result<(), StoreError> {
        self.put_owned(id, t, created_ms, None)
    }

    /// [`Store::put`], recording the API key (`owner`) whose request made it.
    pub fn put_owned(
        &self,
        id: &str,
        t: &Transcript,
        created_ms: u64,
        owner: Option<&str>,
    ) -> Result<(), StoreError> {
        self.backend.put(&NewTranscript {
            id,
            digest: sworn_attest::hexser::encode(&t.digest()),
            created_ms: created_ms as i64,
            encoded: t.encode(),
            binding: t.meta.operator.as_ref().map(binding_key),
            owner,
        })
    }

    /// The API key that made the transcript stored under `id` (a request id or digest;
    /// `Some(None)`: made without keys).
    pub fn owner(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        self.backend.owner(id, true)
    }

    /// The transcript stored under this request id.
    pub fn get(&self, id: &str) -> Result<Option<Transcript>, StoreError> {
        self.decode(id, self.backend.encoded(id, false)?)
    }

    /// The transcript stored under this request id, or with this digest (hex): for the
    /// operator's own tools, and the HTTP API only with `--attestations-by-digest`.
    pub fn get_by_id_or_digest(&self, id: &str) -> Result<Option<Transcript>, StoreError> {
        self.decode(id, self.backend.encoded(id, true)?)
    }

    fn decode(&self, id: &str, bytes: Option<Vec<u8>>) -> Result<Option<Transcript>, StoreError> {
        bytes
            .map(|b| {
                Transcript::decode(&b, Limits::default())
                    .map_err(|e| StoreError::Corrupt(id.into(), e.to_string()))
            })
            .transpose()
    }

    /// Number of stored transcripts.
    /// Reachable and writable now: what `/readyz` asks.
    pub fn ready(&self) -> Result<(), StoreError> {
        self.backend.ready()
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.backend.count()
    }

    /// Makes everything written durable in its final place (SQLite: flushes the WAL into the
    /// database file), on shutdown.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.backend.checkpoint()
    }

    /// Tries to take the anchoring lease (`None`: another process or replica holds it). SQLite
    /// locks `anchor.lock` beside the database file; PostgreSQL takes a session-level advisory
    /// lock on a connection of its own, which the server releases when the holder exits or dies.
    pub fn anchoring_lease(&self) -> Result<Option<AnchorLease>, StoreError> {
        self.backend.anchoring_lease()
    }
}
