//! The store test suite, run against both backends: SQLite always, PostgreSQL on the server
//! that `SWORN_TEST_POSTGRES` names (a URL whose user may create databases; each test makes
//! its own). `scripts/test.sh` starts such a server and sets `SWORN_REQUIRE_POSTGRES=1`, under
//! which a missing server fails the PostgreSQL half instead of skipping it.

use super::anchor_log::RegistryRef;
use super::*;
use sworn_attest::{anchor, hexser};

/// Each suite test, once per backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(&super::sqlite_store(stringify!($name))); })*
        }
        mod on_postgres {
            $(#[test] fn $name() {
                if let Some(loc) = super::postgres_location(stringify!($name)) {
                    super::$name(&Store::open_at(&loc).unwrap());
                }
            })*
            use super::Store;
        }
    };
}

suite!(
    stores_and_finds_transcripts,
    batches_take_each_transcript_once_per_registry,
    one_anchoring_lease_at_a_time,
    reopening_migrates_nothing_twice,
    serves_every_format_it_holds,
    updates_of_a_batch_that_is_not_pending_are_errors,
);

fn sqlite_store(name: &str) -> Store {
    let d = std::env::temp_dir().join(format!("sworn-store-suite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Store::open(&d.join("sworn.db")).unwrap()
}

/// A fresh database on the test server, or `None` (loudly) when there is none and none is
/// required.
pub(crate) fn postgres_location(name: &str) -> Option<Location> {
    let Ok(base) = std::env::var("SWORN_TEST_POSTGRES") else {
        if std::env::var_os("SWORN_REQUIRE_POSTGRES").is_some() {
            panic!("SWORN_REQUIRE_POSTGRES is set but SWORN_TEST_POSTGRES names no server");
        }
        eprintln!("!!! SKIPPED on PostgreSQL: set SWORN_TEST_POSTGRES=postgres://USER@HOST:PORT/DB (scripts/test.sh does) !!!");
        return None;
    };
    let db = format!("sworn_test_{}_{name}", std::process::id());
    Some(Location::Postgres(postgres::fresh_database(&base, &db)))
}

/// A transcript row naming `binding` (a `binding_key`), or none.
fn add(s: &Store, id: &str, digest: [u8; 32], binding: Option<String>) {
    s.backend()
        .insert_bare(id, &hexser::encode(&digest), binding.as_deref())
        .unwrap();
}

fn root(l: &[[u8; 32]]) -> [u8; 32] {
    anchor::root(l).unwrap()
}

fn golden() -> Transcript {
    vector("greedy-text.json")
}

/// Recording a transaction for, or marking anchored, a batch that is gone (another replica
/// released it) or already anchored touches no row: an error, never a silent success that
/// would leave a batch on chain that the store does not know. (Before, 0-row updates passed.)
fn updates_of_a_batch_that_is_not_pending_are_errors(s: &Store) {
    let a = RegistryRef {
        chain_id: 1,
        registry: format!("0x{}", "aa".repeat(20)),
    };
    for i in 0..2u8 {
        add(s, &format!("t{i}"), [i; 32], Some(a.binding_key("0xop")));
    }
    let p = s.plan_batch(&a, "0xop", 1, 10, 0, root).unwrap().unwrap();
    s.drop_pending(p.id).unwrap();
    let e = s.set_batch_tx(p.id, "0x12").unwrap_err().to_string();
    assert!(e.contains("not 1"), "{e}");
    assert!(s.mark_anchored(p.id, 0, 1).is_err());
    let q = s.plan_batch(&a, "0xop", 1, 10, 0, root).unwrap().unwrap();
    s.set_batch_tx(q.id, "0x34").unwrap();
    s.mark_anchored(q.id, 0, 1).unwrap();
    assert!(s.mark_anchored(q.id, 1, 2).is_err(), "anchored twice");
    assert!(
        s.set_batch_tx(q.id, "0x56").is_err(),
        "a second transaction"
    );
}

/// A golden vector, by its path under tests/vectors.
fn vector(name: &str) -> Transcript {
    let p = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    Transcript::from_json(&std::fs::read_to_string(p).unwrap(), Limits::default()).unwrap()
}

/// Receipts are forever: rows of every transcript format sworn has issued are served, by id
/// and by digest, byte for byte.
fn serves_every_format_it_holds(s: &Store) {
    let held = [
        vector("format1/greedy-chat.json"),
        vector("format2/sampled-text.json"),
        vector("format3/greedy-chat.json"),
        vector("greedy-text.json"),
    ];
    assert_eq!(
        held.iter().map(|t| t.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    for (i, t) in held.iter().enumerate() {
        s.put(&format!("cmpl-v{}", t.version), t, i as u64).unwrap();
    }
    for t in &held {
        let got = s.get(&format!("cmpl-v{}", t.version)).unwrap().unwrap();
        assert_eq!(got.encode(), t.encode(), "format {}", t.version);
        let by_digest = s
            .get_by_id_or_digest(&hexser::encode(&t.digest()))
            .unwrap()
            .unwrap();
        assert_eq!(by_digest.encode(), t.encode(), "format {}", t.version);
    }
}

fn stores_and_finds_transcripts(s: &Store) {
    let t = golden();
    let digest = hexser::encode(&t.digest());
    assert_eq!(s.count().unwrap(), 0);
    assert!(s.get("cmpl-1").unwrap().is_none());
    s.put("cmpl-1", &t, 1).unwrap();
    s.put_owned("cmpl-2", &t, 2, Some("alice")).unwrap();
    assert_eq!(s.count().unwrap(), 2);
    assert_eq!(s.get("cmpl-1").unwrap().unwrap().digest(), t.digest());
    // By digest only where asked.
    assert!(s.get(&digest).unwrap().is_none());
    assert_eq!(
        s.get_by_id_or_digest(&digest).unwrap().unwrap().digest(),
        t.digest()
    );
    assert_eq!(s.owner("cmpl-1").unwrap(), Some(None));
    assert_eq!(s.owner("cmpl-2").unwrap(), Some(Some("alice".into())));
    assert_eq!(s.owner("cmpl-3").unwrap(), None);
    // An id is stored once: a second put under it fails and changes nothing.
    assert!(s.put_owned("cmpl-2", &t, 3, Some("mallory")).is_err());
    assert_eq!(s.owner("cmpl-2").unwrap(), Some(Some("alice".into())));
    assert_eq!(s.count().unwrap(), 2);
    // A stored row that does not decode is reported as corrupt, not served.
    add(s, "cmpl-bad", [1; 32], None);
    assert!(matches!(s.get("cmpl-bad"), Err(StoreError::Corrupt(..))));
    s.checkpoint().unwrap();
}

fn batches_take_each_transcript_once_per_registry(s: &Store) {
    let a = RegistryRef {
        chain_id: 1,
        registry: format!("0x{}", "aa".repeat(20)),
    };
    let b = RegistryRef {
        chain_id: 1,
        registry: format!("0x{}", "bb".repeat(20)),
    };
    for i in 0..5u8 {
        add(s, &format!("t{i}"), [i; 32], Some(a.binding_key("0xop")));
    }
    // Transcripts naming another registry, another operator, or none are not taken.
    add(s, "tb", [7; 32], Some(b.binding_key("0xop")));
    add(s, "tc", [8; 32], Some(a.binding_key("0xother")));
    add(s, "tn", [9; 32], None);
    let p = s.plan_batch(&a, "0xop", 3, 10, 0, root).unwrap().unwrap();
    assert!(p.pending);
    assert_eq!(p.size, 3);
    assert_eq!(p.leaves[0], ("t0".to_string(), [0; 32]));
    assert_eq!(p.root, root(&[[0; 32], [1; 32], [2; 32]]));
    assert_eq!(s.pending_batch(&a).unwrap().unwrap(), p);
    // The planned ones are taken: the next plan gets the rest, another registry gets all.
    let q = s.plan_batch(&a, "0xop", 10, 10, 0, root).unwrap().unwrap();
    assert_eq!(q.size, 2);
    assert_eq!(s.unanchored_count(&a, "0xop").unwrap(), 0);
    assert_eq!(s.unanchored_count(&a, "0xother").unwrap(), 1);
    assert_eq!(s.unanchored_count(&b, "0xop").unwrap(), 1);
    assert!(s.plan_batch(&a, "0xop", 10, 10, 0, root).unwrap().is_none());
    // Nothing is provable before it is anchored.
    assert!(s.anchored_batches_of("t1").unwrap().is_empty());
    s.set_batch_tx(p.id, "0x1234").unwrap();
    s.mark_anchored(p.id, 0, 1_700_000_000).unwrap();
    let found = s.anchored_batches_of("t1").unwrap();
    assert_eq!(found.len(), 1);
    let (r, row, idx) = &found[0];
    assert_eq!(r, &a);
    assert_eq!(*idx, 1);
    assert_eq!(row.batch, Some(0));
    assert_eq!(row.anchored_at, Some(1_700_000_000));
    assert_eq!(row.tx_hash.as_deref(), Some("0x1234"));
    // Found by digest too.
    assert_eq!(
        s.anchored_batches_of(&hexser::encode(&[1; 32]))
            .unwrap()
            .len(),
        1
    );
    // A dropped plan frees its transcripts.
    s.drop_pending(q.id).unwrap();
    assert_eq!(s.unanchored_count(&a, "0xop").unwrap(), 2);
    // An anchored batch cannot be dropped.
    s.drop_pending(p.id).unwrap();
    assert_eq!(s.anchored_batches_of("t1").unwrap().len(), 1);
}

fn one_anchoring_lease_at_a_time(s: &Store) {
    let first = s.anchoring_lease().unwrap().expect("a free lease is taken");
    assert!(first.held());
    assert!(
        s.anchoring_lease().unwrap().is_none(),
        "a held lease is not taken twice"
    );
    drop(first);
    let second = s
        .anchoring_lease()
        .unwrap()
        .expect("a released lease is taken again");
    assert!(second.held());
}

fn reopening_migrates_nothing_twice(s: &Store) {
    let t = golden();
    s.put("cmpl-1", &t, 1).unwrap();
    // Replicas open the same store concurrently: each sees the same, migrated once.
    let loc = s.location().clone();
    let opened: Vec<Store> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..3)
            .map(|_| sc.spawn(|| Store::open_at(&loc).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &opened {
        assert_eq!(o.count().unwrap(), 1);
        assert!(o.get("cmpl-1").unwrap().is_some());
    }
}

/// PostgreSQL: when the anchoring replica's session dies, the server releases its lease and
/// another replica takes it; the dead holder sees that it no longer holds it.
#[test]
fn a_dead_holders_postgres_lease_passes_to_another_replica() {
    let Some(loc) = postgres_location("lease_takeover") else {
        return;
    };
    let a = Store::open_at(&loc).unwrap();
    let b = Store::open_at(&loc).unwrap();
    let lease = a.anchoring_lease().unwrap().unwrap();
    assert!(b.anchoring_lease().unwrap().is_none());
    // Kill the holder's session from outside, as a crash or a cut network would end it.
    let Location::Postgres(url) = &loc else {
        unreachable!()
    };
    let killed = postgres::execute_sql(
        url,
        &[format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND objsubid = 1 AND classid = {} AND objid = {}",
            postgres::ANCHORING_KEY >> 32,
            postgres::ANCHORING_KEY & 0xffff_ffff
        )],
    );
    assert_eq!(killed.len(), 1, "one session holds the lease");
    // The termination is asynchronous: wait for the server to release the lock.
    let mut taken = None;
    for _ in 0..100 {
        if let Some(l) = b.anchoring_lease().unwrap() {
            taken = Some(l);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let taken = taken.expect("the other replica takes the released lease");
    assert!(taken.held());
    assert!(
        !lease.held(),
        "the dead session's holder knows it lost the lease"
    );
}

/// A store that cannot be reached is a clear error naming the server, never its password.
#[test]
fn postgres_errors_name_the_server_but_not_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://sworn:hunter2@127.0.0.1:1/transcripts";
    let loc = Location::parse(Some(url), Path::new("/nonexistent")).unwrap();
    assert_eq!(loc.describe(), "postgres://sworn@127.0.0.1:1/transcripts");
    let e = Store::open_at(&loc)
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(
        e.contains("postgres://sworn@127.0.0.1:1/transcripts"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    // Other --store values.
    assert_eq!(
        Location::parse(None, Path::new("/d")).unwrap(),
        Location::Sqlite(PathBuf::from("/d/sworn.db"))
    );
    assert_eq!(
        Location::parse(Some("sqlite:/x/y.db"), Path::new("/d")).unwrap(),
        Location::Sqlite(PathBuf::from("/x/y.db"))
    );
    for bad in ["mysql://x", "sqlite:", "/x/y.db"] {
        assert!(
            Location::parse(Some(bad), Path::new("/d")).is_err(),
            "{bad}"
        );
    }
}

/// A URL that requires TLS is refused, not sent in the clear (the backend has no TLS).
#[test]
fn a_postgres_url_requiring_tls_is_refused() {
    let Some(Location::Postgres(url)) = postgres_location("tls_required") else {
        return;
    };
    let e = Store::open_at(&Location::Postgres(format!("{url}?sslmode=require")))
        .err()
        .expect("sslmode=require cannot be met")
        .to_string();
    assert!(e.to_lowercase().contains("tls"), "{e}");
}

/// PostgreSQL: a schema newer than this binary is refused, not written to.
#[test]
fn a_newer_postgres_schema_is_refused() {
    let Some(loc) = postgres_location("too_new") else {
        return;
    };
    drop(Store::open_at(&loc).unwrap());
    let Location::Postgres(url) = &loc else {
        unreachable!()
    };
    postgres::execute_sql(url, &["UPDATE sworn_schema SET version = 99".into()]);
    assert!(matches!(
        Store::open_at(&loc),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

/// The two schemas are two migration histories that shipped (neither can be rewritten), so
/// their agreement is checked instead: after migrating, both stores have the same tables,
/// columns and indexes, but for the differences listed here with their reasons. A migration
/// added to one backend and not the other fails this test.
#[test]
fn both_backends_have_the_same_schema() {
    let Some(loc) = postgres_location("same_schema") else {
        return;
    };
    drop(Store::open_at(&loc).unwrap());
    let Location::Postgres(url) = &loc else {
        unreachable!()
    };
    let pg_rows = |sql: &str| -> std::collections::BTreeSet<String> {
        postgres::execute_sql(url, &[sql.to_string()])
            .iter()
            .map(|r| r.get(0).unwrap_or_default().to_string())
            .collect()
    };
    let mut pg = pg_rows(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> 'sworn_schema'",
    );
    pg.extend(pg_rows(
        "SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
    ));

    let dir = std::env::temp_dir().join(format!("sworn-same-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    drop(Store::open(&dir.join("sworn.db")).unwrap());
    let conn = rusqlite::Connection::open(dir.join("sworn.db")).unwrap();
    let query = |sql: &str| -> Vec<String> {
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let mut lite = std::collections::BTreeSet::new();
    for table in query("SELECT name FROM sqlite_master WHERE type = 'table'") {
        for col in query(&format!("SELECT name FROM pragma_table_info('{table}')")) {
            lite.insert(format!("{table}.{col}"));
        }
    }
    for index in query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    ) {
        lite.insert(format!("index {index}"));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // PostgreSQL only: an arrival sequence for oldest-first batches (SQLite has its rowid).
    let expected_pg_only = ["transcripts.seq"];
    let pg_only: Vec<&String> = pg
        .difference(&lite)
        .filter(|c| !expected_pg_only.contains(&c.as_str()))
        .collect();
    let lite_only: Vec<&String> = lite.difference(&pg).collect();
    assert!(
        pg_only.is_empty() && lite_only.is_empty(),
        "schemas differ: only on PostgreSQL {pg_only:?}, only on SQLite {lite_only:?}"
    );
    assert!(lite.contains("transcripts.owner") && pg.contains("anchor_leaves.digest"));
}
