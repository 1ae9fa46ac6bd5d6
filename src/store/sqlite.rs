//! The embedded SQLite backend (the default): `DATA_DIR/sworn.db` in WAL mode with
//! `synchronous = FULL`. The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]`
//! moves a database from version `i` to `i + 1`. The anchoring lease is an exclusive lock on
//! `anchor.lock` beside the database file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    one_row, AnchorLease, AnchoredIn, Backend, LeaseHold, NewTranscript, PlanRequest, Planned,
    RawBatch, RootOf, StoreError,
};

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

/// SQL condition: transcript `t` has the binding given as parameter `?3` and is in no batch
/// (planned or anchored) of the registry given as parameters `?1` (chain id) and `?2`
/// (address). A transcript that names no operator, or another one, is never anchored:
/// `sworn verify --rpc` would refuse it.
const ANCHORABLE: &str = "t.binding = ?3 AND NOT EXISTS (
    SELECT 1 FROM anchor_leaves l JOIN anchor_batches b ON b.id = l.batch_id
    WHERE l.transcript_id = t.id AND b.chain_id = ?1 AND b.registry = ?2)";

/// A SQLite store: one connection, serialized by a mutex.
pub struct Sqlite {
    conn: Mutex<Connection>,
    /// `anchor.lock` beside the database.
    lock_path: PathBuf,
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        private_files(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&conn, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(Sqlite {
            conn: Mutex::new(conn),
            lock_path: dir.join("anchor.lock"),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `id = ?1` condition, or `id = ?1 OR digest = ?1`.
fn by(by_digest: bool) -> &'static str {
    if by_digest {
        "id = ?1 OR digest = ?1"
    } else {
        "id = ?1"
    }
}

/// A locked `anchor.lock`: held until dropped (the kernel releases it if the process dies).
struct FileLease(#[allow(dead_code)] std::fs::File);

impl LeaseHold for FileLease {
    fn held(&self) -> bool {
        true
    }
}

impl Backend for Sqlite {
    fn put(&self, r: &NewTranscript<'_>) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO transcripts (id, digest, created_ms, encoded, binding, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.id, r.digest, r.created_ms, r.encoded, r.binding, r.owner],
        )?;
        Ok(())
    }

    fn owner(&self, id: &str, by_digest: bool) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT owner FROM transcripts WHERE {} LIMIT 1",
                    by(by_digest)
                ),
                params![id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    fn encoded(&self, id: &str, by_digest: bool) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT encoded FROM transcripts WHERE {} LIMIT 1",
                    by(by_digest)
                ),
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM transcripts", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Takes the write lock and lets it go: the file is there and writable.
    fn ready(&self) -> Result<(), StoreError> {
        self.conn().execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    fn pending_batch_id(&self, chain_id: i64, registry: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM anchor_batches WHERE chain_id = ?1 AND registry = ?2 AND state = 'pending'
                 ORDER BY id LIMIT 1",
                params![chain_id, registry],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn plan_batch(
        &self,
        p: &PlanRequest<'_>,
        root_of: &RootOf<'_>,
    ) -> Result<Option<Planned>, StoreError> {
        let mut conn = self.conn();
        // Immediate: no other writer of the file sees half a batch, or plans the same leaves.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(String, String)> = {
            let mut q = tx.prepare(&format!(
                "SELECT t.id, t.digest FROM transcripts t WHERE {ANCHORABLE}
                 ORDER BY t.rowid LIMIT ?4"
            ))?;
            let it = q.query_map(params![p.chain_id, p.registry, p.binding, p.max], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            it.collect::<Result<_, _>>()?
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let (root, leaves) = super::planned_leaves(&rows, root_of)?;
        tx.execute(
            "INSERT INTO anchor_batches (chain_id, registry, operator, state, root, size, from_block, created_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7)",
            params![
                p.chain_id,
                p.registry,
                p.operator,
                sworn_attest::hexser::encode(&root),
                rows.len() as i64,
                p.from_block,
                p.created_ms
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut ins = tx.prepare(
                "INSERT INTO anchor_leaves (batch_id, idx, transcript_id, digest) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, (tid, d)) in rows.iter().enumerate() {
                ins.execute(params![id, i as i64, tid, d])?;
            }
        }
        tx.commit()?;
        Ok(Some(Planned { id, root, leaves }))
    }

    fn set_batch_tx(&self, id: i64, tx_hash: &str) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE anchor_batches SET tx_hash = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id, tx_hash],
        )?;
        one_row(n, id, "recording its transaction")
    }

    fn mark_anchored(&self, id: i64, batch: i64, anchored_at: i64) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE anchor_batches SET state = 'anchored', batch = ?2, anchored_at = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, batch, anchored_at],
        )?;
        one_row(n, id, "marking it anchored")
    }

    fn drop_pending(&self, id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM anchor_batches WHERE id = ?1 AND state = 'pending'",
            params![id],
        )?;
        Ok(())
    }

    fn anchored_in(&self, id: &str) -> Result<Vec<AnchoredIn>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT b.id, l.idx, b.chain_id, b.registry FROM anchor_leaves l
             JOIN anchor_batches b ON b.id = l.batch_id
             JOIN transcripts t ON t.id = l.transcript_id
             WHERE (t.id = ?1 OR t.digest = ?1) AND b.state = 'anchored'
             ORDER BY b.id",
        )?;
        let it = q.query_map(params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(it.collect::<Result<_, _>>()?)
    }

    fn unanchored_count(
        &self,
        chain_id: i64,
        registry: &str,
        binding: &str,
    ) -> Result<u64, StoreError> {
        Ok(self.conn().query_row(
            &format!("SELECT COUNT(*) FROM transcripts t WHERE {ANCHORABLE}"),
            params![chain_id, registry, binding],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    fn batch_recorded(
        &self,
        chain_id: i64,
        registry: &str,
        operator: &str,
        batch: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM anchor_batches
                 WHERE chain_id = ?1 AND registry = ?2 AND operator = ?3 AND batch = ?4",
                params![chain_id, registry, operator, batch],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn batch(&self, id: i64) -> Result<RawBatch, StoreError> {
        let conn = self.conn();
        let mut b = conn.query_row(
            "SELECT operator, state, root, size, from_block, tx_hash, batch, anchored_at
             FROM anchor_batches WHERE id = ?1",
            params![id],
            |r| {
                Ok(RawBatch {
                    operator: r.get(0)?,
                    state: r.get(1)?,
                    root: r.get(2)?,
                    size: r.get(3)?,
                    from_block: r.get(4)?,
                    tx_hash: r.get(5)?,
                    batch: r.get(6)?,
                    anchored_at: r.get(7)?,
                    leaves: Vec::new(),
                })
            },
        )?;
        let mut q = conn.prepare(
            "SELECT transcript_id, digest FROM anchor_leaves WHERE batch_id = ?1 ORDER BY idx",
        )?;
        b.leaves = q
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(b)
    }

    fn anchoring_lease(&self) -> Result<Option<AnchorLease>, StoreError> {
        let file = std::fs::File::create(&self.lock_path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(AnchorLease::new(FileLease(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    #[cfg(test)]
    fn insert_bare(&self, id: &str, digest: &str, binding: Option<&str>) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO transcripts (id, digest, created_ms, encoded, binding) VALUES (?1, ?2, 0, x'', ?3)",
            params![id, digest, binding],
        )?;
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

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sworn-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("sworn.db")
    }

    #[test]
    fn migrates_fresh_and_refuses_newer_schemas() {
        let p = tmp("migrate");
        let s = Sqlite::open(&p).unwrap();
        assert_eq!(s.count().unwrap(), 0);
        let v: i64 = s
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        drop(s);
        // Reopening applies nothing twice.
        Sqlite::open(&p).unwrap();
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Sqlite::open(&p),
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
        let s = Sqlite::open(&p).unwrap();
        let x: i64 = s
            .conn()
            .query_row("SELECT x FROM unrelated", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 7);
        assert_eq!(s.count().unwrap(), 0);
    }
}
