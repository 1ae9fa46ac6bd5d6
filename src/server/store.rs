//! Durable store of signed transcripts: SQLite in WAL mode with `synchronous = FULL`, so a
//! transcript is on disk when `put` returns — before the response that carries it completes.
//!
//! Why SQLite rather than redb: one file that any `sqlite3` shell can inspect, a schema that
//! evolves by SQL migrations (the anchoring issue will add columns), and a crash story
//! (WAL + fsync on commit) proven for decades. The schema version lives in `PRAGMA user_version`;
//! `MIGRATIONS[i]` moves a database from version `i` to `i + 1`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use sworn_attest::{Limits, Transcript};

/// Schema migrations, in order. Never edit one that has shipped; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // v1: transcripts by request id (and digest), in the canonical binary encoding.
    "CREATE TABLE transcripts (
        id          TEXT PRIMARY KEY,          -- the request id (x-sworn-transcript-id)
        digest      TEXT NOT NULL,             -- lowercase hex of the transcript digest
        created_ms  INTEGER NOT NULL,
        encoded     BLOB NOT NULL              -- canonical binary transcript
    );
    CREATE INDEX transcripts_digest ON transcripts (digest);
    CREATE INDEX transcripts_created ON transcripts (created_ms);",
    // v2: the anchoring log (`docs/anchoring.md`). A batch is planned (state 'pending', leaves
    // fixed) before its transaction is sent, and marked 'anchored' with the on-chain batch
    // number and time from the `Anchored` event; a pending batch found at start-up is resolved
    // against the chain before anything new is planned.
    "CREATE TABLE anchor_batches (
        id          INTEGER PRIMARY KEY,       -- local id
        chain_id    INTEGER NOT NULL,
        registry    TEXT NOT NULL,             -- 0x and 40 lowercase hex digits
        operator    TEXT NOT NULL,             -- the operator's Ethereum address, same form
        state       TEXT NOT NULL CHECK (state IN ('pending', 'anchored')),
        root        TEXT NOT NULL,             -- lowercase hex of the batch's Merkle root
        size        INTEGER NOT NULL,
        from_block  INTEGER NOT NULL,          -- chain head when planned: logs are searched from it
        tx_hash     TEXT,                      -- once sent
        batch       INTEGER,                   -- on-chain batch number, once anchored
        anchored_at INTEGER,                   -- block timestamp, once anchored
        created_ms  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX anchor_batches_onchain
        ON anchor_batches (chain_id, registry, operator, batch) WHERE batch IS NOT NULL;
    CREATE TABLE anchor_leaves (
        batch_id      INTEGER NOT NULL REFERENCES anchor_batches (id) ON DELETE CASCADE,
        idx           INTEGER NOT NULL,
        transcript_id TEXT NOT NULL REFERENCES transcripts (id),
        digest        TEXT NOT NULL,
        PRIMARY KEY (batch_id, idx)
    );
    CREATE INDEX anchor_leaves_transcript ON anchor_leaves (transcript_id);",
    // v3: the operator binding each transcript names (`chain_id:0xregistry:0xoperator`, or NULL
    // when it names none): a transcript is anchored only by the operator, in the registry, that
    // it names (`docs/anchoring.md` 1.1).
    "ALTER TABLE transcripts ADD COLUMN binding TEXT;
    CREATE INDEX transcripts_binding ON transcripts (binding);",
    // v4: the API key whose request made each transcript (its name in `--api-keys`; NULL when
    // the server ran without keys): only that key reads it back over HTTP.
    "ALTER TABLE transcripts ADD COLUMN owner TEXT;",
];

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

/// Makes the database file and its WAL and shared-memory files readable by the owner only.
fn private_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // Created 0600 before SQLite opens it (SQLite gives -wal and -shm the same mode).
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The transcript store.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        private_files(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&conn, path)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a transcript durably under `id`; on disk when this returns.
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
        let digest = sworn_attest::hexser::encode(&t.digest());
        let binding = t.meta.operator.as_ref().map(binding_key);
        self.conn().execute(
            "INSERT INTO transcripts (id, digest, created_ms, encoded, binding, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, digest, created_ms as i64, t.encode(), binding, owner],
        )?;
        Ok(())
    }

    /// The API key that made the transcript stored under `id` (`Some(None)`: made without keys).
    pub fn owner(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT owner FROM transcripts WHERE id = ?1 OR digest = ?1 LIMIT 1",
                params![id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    /// The transcript stored under this request id.
    pub fn get(&self, id: &str) -> Result<Option<Transcript>, StoreError> {
        self.get_where("id = ?1", id)
    }

    /// The transcript stored under this request id, or with this digest (hex): for the
    /// operator's own tools, and the HTTP API only with `--attestations-by-digest`.
    pub fn get_by_id_or_digest(&self, id: &str) -> Result<Option<Transcript>, StoreError> {
        self.get_where("id = ?1 OR digest = ?1", id)
    }

    fn get_where(&self, cond: &str, id: &str) -> Result<Option<Transcript>, StoreError> {
        let row: Option<Vec<u8>> = self
            .conn()
            .query_row(
                &format!("SELECT encoded FROM transcripts WHERE {cond} LIMIT 1"),
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        row.map(|b| {
            Transcript::decode(&b, Limits::default())
                .map_err(|e| StoreError::Corrupt(id.into(), e.to_string()))
        })
        .transpose()
    }

    /// Number of stored transcripts.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM transcripts", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Flushes the WAL into the main database file (on shutdown).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }
}

/// Applies the migrations a database lacks, each in its own transaction.
pub fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "transcript store migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sworn-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("sworn.db")
    }

    #[test]
    fn migrates_fresh_and_refuses_newer_schemas() {
        let p = tmp("migrate");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.count().unwrap(), 0);
        let v: i64 = s
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        drop(s);
        // Reopening applies nothing twice.
        Store::open(&p).unwrap();
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&p),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_version_zero_database_with_data_elsewhere_is_migrated_in_place() {
        let p = tmp("v0");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (7);")
            .unwrap();
        drop(c);
        let s = Store::open(&p).unwrap();
        let x: i64 = s
            .conn()
            .query_row("SELECT x FROM unrelated", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 7);
        assert_eq!(s.count().unwrap(), 0);
    }
}
