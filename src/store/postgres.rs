//! The PostgreSQL backend (`--store postgres://…`): one store shared by several `sworn serve`
//! replicas, on `tokio-postgres`.
//!
//! The store's interface is synchronous (the scheduler thread and the handlers call it), so
//! this backend keeps a small runtime of its own that drives its connections; a call sends its
//! query and waits for the answer on the calling thread (`futures_executor::block_on`: the
//! client's futures need no reactor, only the connection task does, and that runs here). Three
//! kinds of connection:
//!
//! - one shared, pipelined connection for single statements (each commits on its own, and
//!   PostgreSQL's default `synchronous_commit = on` makes it durable before the reply);
//! - one for transactions (planning a batch), behind a mutex, since statements of other
//!   callers must not land inside a transaction;
//! - one per anchoring lease, holding the session-level advisory lock [`ANCHORING_KEY`]: the
//!   lock lives exactly as long as that session, so when its replica dies (or its connection
//!   does) PostgreSQL releases it and another replica's next try takes it.
//!
//! A closed connection is replaced on the next call. The schema version is a row of
//! `sworn_schema`; migrations run in one transaction under an advisory transaction lock, so
//! replicas starting together migrate once.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use super::{
    AnchorLease, AnchoredIn, Backend, LeaseHold, NewTranscript, PlanRequest, Planned, RawBatch,
    RootOf, StoreError,
};

/// Schema migrations, in order. Never edit one that has shipped; append a new one. Version 1
/// is SQLite's version 4 ([`super::sqlite::MIGRATIONS`]), with an arrival sequence for
/// oldest-first batches (SQLite has its rowid).
pub const MIGRATIONS: &[&str] = &[
    // v1: transcripts, and the anchoring log (`docs/anchoring.md`).
    "CREATE TABLE transcripts (
        seq         BIGSERIAL NOT NULL UNIQUE, -- arrival order: batches take the oldest first
        id          TEXT PRIMARY KEY,          -- the request id (x-sworn-transcript-id)
        digest      TEXT NOT NULL,             -- lowercase hex of the transcript digest
        created_ms  BIGINT NOT NULL,
        encoded     BYTEA NOT NULL,            -- canonical binary transcript
        binding     TEXT,                      -- chain_id:0xregistry:0xoperator, or NULL
        owner       TEXT                       -- the API key's name, or NULL
    );
    CREATE INDEX transcripts_digest ON transcripts (digest);
    CREATE INDEX transcripts_created ON transcripts (created_ms);
    CREATE INDEX transcripts_binding ON transcripts (binding, seq);
    CREATE TABLE anchor_batches (
        id          BIGSERIAL PRIMARY KEY,
        chain_id    BIGINT NOT NULL,
        registry    TEXT NOT NULL,
        operator    TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'anchored')),
        root        TEXT NOT NULL,
        size        BIGINT NOT NULL,
        from_block  BIGINT NOT NULL,
        tx_hash     TEXT,
        batch       BIGINT,
        anchored_at BIGINT,
        created_ms  BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX anchor_batches_onchain
        ON anchor_batches (chain_id, registry, operator, batch) WHERE batch IS NOT NULL;
    CREATE TABLE anchor_leaves (
        batch_id      BIGINT NOT NULL REFERENCES anchor_batches (id) ON DELETE CASCADE,
        idx           BIGINT NOT NULL,
        transcript_id TEXT NOT NULL REFERENCES transcripts (id),
        digest        TEXT NOT NULL,
        PRIMARY KEY (batch_id, idx)
    );
    CREATE INDEX anchor_leaves_transcript ON anchor_leaves (transcript_id);",
];

/// Advisory lock keys (one 64-bit space per database): "sworn" in ASCII, then a number.
const MIGRATE_KEY: i64 = 0x0073_776f_726e_0001;
/// Held by the anchoring replica for as long as its lease session lives.
pub const ANCHORING_KEY: i64 = 0x0073_776f_726e_0002;
/// Taken inside each batch-planning transaction, so that two planners never interleave.
const PLAN_KEY: i64 = 0x0073_776f_726e_0003;

/// `ANCHORABLE` of the SQLite backend, in PostgreSQL's parameter syntax.
const ANCHORABLE: &str = "t.binding = $3 AND NOT EXISTS (
    SELECT 1 FROM anchor_leaves l JOIN anchor_batches b ON b.id = l.batch_id
    WHERE l.transcript_id = t.id AND b.chain_id = $1 AND b.registry = $2)";

/// The server and database of a URL, for messages: never its password. A URL that does not
/// parse is described as such (the parse error comes with the connection attempt).
pub fn describe(url: &str) -> String {
    match Config::from_str(url) {
        Ok(c) => describe_config(&c),
        Err(_) => "postgres://(malformed URL)".into(),
    }
}

fn describe_config(c: &Config) -> String {
    use tokio_postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("?")
    )
}

/// A PostgreSQL store.
pub struct Postgres {
    /// Drives the connections; `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    config: Config,
    where_: String,
    shared: Mutex<Option<Arc<Client>>>,
    tx: Mutex<Option<Client>>,
}

impl Postgres {
    /// Connects to `url`, and creates or migrates the schema.
    pub fn connect(url: &str) -> Result<Postgres, StoreError> {
        let mut config =
            Config::from_str(url).map_err(|e| StoreError::Config(format!("--store: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A peer that vanished (a dead server, a cut network) fails the calls waiting on it
        // instead of hanging them.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(15));
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("sworn");
        }
        let where_ = describe_config(&config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sworn-postgres")
            .enable_all()
            .build()?;
        let pg = Postgres {
            rt: Some(rt),
            config,
            where_,
            shared: Mutex::new(None),
            tx: Mutex::new(None),
        };
        pg.migrate()?;
        Ok(pg)
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    fn err(&self, error: tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            where_: self.where_.clone(),
            error,
        }
    }

    /// A new connection, its connection task running on this store's runtime.
    fn new_client(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        let (send, recv) = std::sync::mpsc::sync_channel(1);
        self.rt().spawn(async move {
            match config.connect(NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::warn!("transcript store connection closed: {e}");
                        }
                    });
                    let _ = send.send(Ok(client));
                }
                Err(e) => {
                    let _ = send.send(Err(e));
                }
            }
        });
        match recv.recv() {
            Ok(r) => r.map_err(|e| self.err(e)),
            Err(_) => Err(StoreError::Unavailable(
                self.where_.clone(),
                "the store's runtime stopped".into(),
            )),
        }
    }

    /// The shared connection, reconnected if it closed.
    fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut g = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(self.new_client()?);
        *g = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` with the transaction connection (reconnected if it closed).
    fn with_tx_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if g.as_ref().is_none_or(|c| c.is_closed()) {
            *g = Some(self.new_client()?);
        }
        let client = g.as_mut().expect("connected above");
        f(client)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.with_tx_client(|c| {
            let r: Result<(), StoreError> = block_on(async {
                let tx = c.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_KEY])
                    .await?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS sworn_schema (version INTEGER NOT NULL)",
                )
                .await?;
                let row = tx
                    .query_opt("SELECT version FROM sworn_schema", &[])
                    .await?;
                let version = row.map_or(0, |r| r.get::<_, i32>(0));
                if version as usize > MIGRATIONS.len() {
                    return Ok(Err(StoreError::TooNew {
                        path: self.where_.clone(),
                        found: version.into(),
                        known: MIGRATIONS.len(),
                    }));
                }
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                    tx.batch_execute(sql).await?;
                    tracing::info!(version = i + 1, "transcript store migrated");
                }
                tx.execute("DELETE FROM sworn_schema", &[]).await?;
                let v = MIGRATIONS.len().max(version as usize) as i32;
                tx.execute("INSERT INTO sworn_schema (version) VALUES ($1)", &[&v])
                    .await?;
                tx.commit().await?;
                Ok(Ok(()))
            })
            .map_err(|e| self.err(e))?;
            r
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped inside an async context too.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Waits for a client future on the calling thread.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// The `id = $1` condition, or `id = $1 OR digest = $1`.
fn by(by_digest: bool) -> &'static str {
    if by_digest {
        "id = $1 OR digest = $1"
    } else {
        "id = $1"
    }
}

/// A session holding the anchoring advisory lock: the lock goes with the session.
/// Its connection task runs on the store's runtime, so a lease lives no longer than its store.
struct SessionLease {
    client: Client,
}

impl LeaseHold for SessionLease {
    fn held(&self) -> bool {
        // The lock is the session's: held while the session answers. A lease whose session
        // died was released by the server, and another replica may hold it now.
        !self.client.is_closed() && block_on(self.client.simple_query("SELECT 1")).is_ok()
    }
}

impl Backend for Postgres {
    fn put(&self, r: &NewTranscript<'_>) -> Result<(), StoreError> {
        let c = self.client()?;
        block_on(c.execute(
            "INSERT INTO transcripts (id, digest, created_ms, encoded, binding, owner)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &r.id,
                &r.digest,
                &r.created_ms,
                &r.encoded,
                &r.binding,
                &r.owner,
            ],
        ))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn owner(&self, id: &str, by_digest: bool) -> Result<Option<Option<String>>, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_opt(
            &format!(
                "SELECT owner FROM transcripts WHERE {} LIMIT 1",
                by(by_digest)
            ),
            &[&id],
        ))
        .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get::<_, Option<String>>(0)))
    }

    fn encoded(&self, id: &str, by_digest: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_opt(
            &format!(
                "SELECT encoded FROM transcripts WHERE {} LIMIT 1",
                by(by_digest)
            ),
            &[&id],
        ))
        .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    fn count(&self) -> Result<u64, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_one("SELECT COUNT(*) FROM transcripts", &[]))
            .map_err(|e| self.err(e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// A round trip, on a server that takes writes (not a standby in recovery, not a
    /// read-only transaction default).
    fn ready(&self) -> Result<(), StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_one(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
            &[],
        ))
        .map_err(|e| self.err(e))?;
        if row.get::<_, bool>(0) {
            return Err(StoreError::Unavailable(
                self.where_.clone(),
                "the server is read-only".into(),
            ));
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        // Every statement committed durably when it returned; nothing is held back.
        Ok(())
    }

    fn pending_batch_id(&self, chain_id: i64, registry: &str) -> Result<Option<i64>, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_opt(
            "SELECT id FROM anchor_batches WHERE chain_id = $1 AND registry = $2 AND state = 'pending'
             ORDER BY id LIMIT 1",
            &[&chain_id, &registry],
        ))
        .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn plan_batch(
        &self,
        p: &PlanRequest<'_>,
        root_of: &RootOf<'_>,
    ) -> Result<Option<Planned>, StoreError> {
        self.with_tx_client(|c| {
            let r: Result<Option<Planned>, StoreError> = block_on(async {
                let tx = c.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PLAN_KEY])
                    .await?;
                let rows = tx
                    .query(
                        &format!(
                            "SELECT t.id, t.digest FROM transcripts t WHERE {ANCHORABLE}
                             ORDER BY t.seq LIMIT $4"
                        ),
                        &[&p.chain_id, &p.registry, &p.binding, &p.max],
                    )
                    .await?;
                let rows: Vec<(String, String)> =
                    rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                if rows.is_empty() {
                    return Ok(Ok(None));
                }
                let (root, leaves) = match super::planned_leaves(&rows, root_of) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO anchor_batches (chain_id, registry, operator, state, root, size, from_block, created_ms)
                         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7) RETURNING id",
                        &[
                            &p.chain_id,
                            &p.registry,
                            &p.operator,
                            &sworn_attest::hexser::encode(&root),
                            &(rows.len() as i64),
                            &p.from_block,
                            &p.created_ms,
                        ],
                    )
                    .await?
                    .get(0);
                let ins = tx
                    .prepare(
                        "INSERT INTO anchor_leaves (batch_id, idx, transcript_id, digest)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .await?;
                for (i, (tid, d)) in rows.iter().enumerate() {
                    tx.execute(&ins, &[&id, &(i as i64), tid, d]).await?;
                }
                tx.commit().await?;
                Ok(Ok(Some(Planned { id, root, leaves })))
            })
            .map_err(|e| self.err(e))?;
            r
        })
    }

    fn set_batch_tx(&self, id: i64, tx_hash: &str) -> Result<(), StoreError> {
        let c = self.client()?;
        let n = block_on(c.execute(
            "UPDATE anchor_batches SET tx_hash = $2 WHERE id = $1 AND state = 'pending'",
            &[&id, &tx_hash],
        ))
        .map_err(|e| self.err(e))?;
        super::one_row(n as usize, id, "recording its transaction")
    }

    fn mark_anchored(&self, id: i64, batch: i64, anchored_at: i64) -> Result<(), StoreError> {
        let c = self.client()?;
        let n = block_on(c.execute(
            "UPDATE anchor_batches SET state = 'anchored', batch = $2, anchored_at = $3
             WHERE id = $1 AND state = 'pending'",
            &[&id, &batch, &anchored_at],
        ))
        .map_err(|e| self.err(e))?;
        super::one_row(n as usize, id, "marking it anchored")
    }

    fn drop_pending(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client()?;
        block_on(c.execute(
            "DELETE FROM anchor_batches WHERE id = $1 AND state = 'pending'",
            &[&id],
        ))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn anchored_in(&self, id: &str) -> Result<Vec<AnchoredIn>, StoreError> {
        let c = self.client()?;
        let rows = block_on(c.query(
            "SELECT b.id, l.idx, b.chain_id, b.registry FROM anchor_leaves l
             JOIN anchor_batches b ON b.id = l.batch_id
             JOIN transcripts t ON t.id = l.transcript_id
             WHERE (t.id = $1 OR t.digest = $1) AND b.state = 'anchored'
             ORDER BY b.id",
            &[&id],
        ))
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn unanchored_count(
        &self,
        chain_id: i64,
        registry: &str,
        binding: &str,
    ) -> Result<u64, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_one(
            &format!("SELECT COUNT(*) FROM transcripts t WHERE {ANCHORABLE}"),
            &[&chain_id, &registry, &binding],
        ))
        .map_err(|e| self.err(e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn batch_recorded(
        &self,
        chain_id: i64,
        registry: &str,
        operator: &str,
        batch: i64,
    ) -> Result<bool, StoreError> {
        let c = self.client()?;
        let row = block_on(c.query_opt(
            "SELECT 1 FROM anchor_batches
             WHERE chain_id = $1 AND registry = $2 AND operator = $3 AND batch = $4",
            &[&chain_id, &registry, &operator, &batch],
        ))
        .map_err(|e| self.err(e))?;
        Ok(row.is_some())
    }

    fn batch(&self, id: i64) -> Result<RawBatch, StoreError> {
        let c = self.client()?;
        let (row, leaves) = block_on(async {
            let row = c
                .query_opt(
                    "SELECT operator, state, root, size, from_block, tx_hash, batch, anchored_at
                     FROM anchor_batches WHERE id = $1",
                    &[&id],
                )
                .await?;
            let leaves = c
                .query(
                    "SELECT transcript_id, digest FROM anchor_leaves WHERE batch_id = $1 ORDER BY idx",
                    &[&id],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>((row, leaves))
        })
        .map_err(|e| self.err(e))?;
        let row = row.ok_or_else(|| {
            StoreError::Corrupt(format!("anchor batch {id}"), "no such batch".into())
        })?;
        Ok(RawBatch {
            operator: row.get(0),
            state: row.get(1),
            root: row.get(2),
            size: row.get(3),
            from_block: row.get(4),
            tx_hash: row.get(5),
            batch: row.get(6),
            anchored_at: row.get(7),
            leaves: leaves.iter().map(|r| (r.get(0), r.get(1))).collect(),
        })
    }

    fn anchoring_lease(&self) -> Result<Option<AnchorLease>, StoreError> {
        let client = self.new_client()?;
        let got: bool =
            block_on(client.query_one("SELECT pg_try_advisory_lock($1)", &[&ANCHORING_KEY]))
                .map_err(|e| self.err(e))?
                .get(0);
        // Not taken: dropping the client closes its session.
        Ok(got.then(|| AnchorLease::new(SessionLease { client })))
    }

    #[cfg(test)]
    fn insert_bare(&self, id: &str, digest: &str, binding: Option<&str>) -> Result<(), StoreError> {
        let c = self.client()?;
        block_on(c.execute(
            "INSERT INTO transcripts (id, digest, created_ms, encoded, binding) VALUES ($1, $2, 0, '', $3)",
            &[&id, &digest, &binding],
        ))
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Test support: runs `statements` one by one (each its own transaction) on the server and
/// database of `url`, and returns the rows of the last. Panics on failure.
#[doc(hidden)]
pub fn execute_sql(url: &str, statements: &[String]) -> Vec<tokio_postgres::SimpleQueryRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", describe(url)));
        tokio::spawn(conn);
        let mut rows = Vec::new();
        for sql in statements {
            rows = client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                    _ => None,
                })
                .collect();
        }
        rows
    })
}

/// Test support (the store suite, and the replicas test in `tests/chain.rs`): creates database
/// `db` (dropping a leftover of that name) on the server of `base`, a URL whose user may, and
/// returns `base` pointing at it. Panics on failure.
#[doc(hidden)]
pub fn fresh_database(base: &str, db: &str) -> String {
    // Two statements: in one query string they would run as one transaction, which neither may.
    execute_sql(
        base,
        &[
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            format!("CREATE DATABASE {db}"),
        ],
    );
    // The URL's path is its database: replace it (keeping any ?parameters).
    let (head, query) = base
        .split_once('?')
        .map_or((base, None), |(h, q)| (h, Some(q)));
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let host_end = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut url = format!("{}/{db}", &head[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}
