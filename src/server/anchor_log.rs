//! The anchoring side of the transcript store: which transcripts went into which on-chain batch
//! of which registry, so that `sworn anchor` anchors each transcript once and `sworn proof`
//! (and `GET /v1/attestations/{id}/proof`) can rebuild its inclusion proof.
//!
//! Crash safety: a batch is *planned* first (a 'pending' row and its leaves, in one immediate
//! transaction, so that nothing else writing the store sees half a batch; `sworn anchor` also
//! holds a lock file, so one run at a time plans and resolves batches), then its
//! transaction is sent and its hash recorded, then it is marked 'anchored' from the receipt. A
//! pending batch left by a crash is resolved against the chain by the caller before anything new
//! is planned (`docs/anchoring.md` section 9.2).

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sworn_attest::hexser;

use super::store::{Store, StoreError};

/// SQL condition: transcript `t` names the operator binding given as parameter `?3` (see
/// `store::binding_key`) and is in no batch (planned or anchored) of the registry given as
/// parameters `?1` (chain id) and `?2` (address). A transcript that names no operator, or
/// another one, is never anchored: `sworn verify --rpc` would refuse it.
const ANCHORABLE: &str = "t.binding = ?3 AND NOT EXISTS (
    SELECT 1 FROM anchor_leaves l JOIN anchor_batches b ON b.id = l.batch_id
    WHERE l.transcript_id = t.id AND b.chain_id = ?1 AND b.registry = ?2)";

/// A registry on a chain: the log is kept per registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    pub chain_id: u64,
    /// `0x` and 40 lowercase hex digits.
    pub registry: String,
}

/// A planned or anchored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub id: i64,
    pub operator: String,
    pub pending: bool,
    pub root: [u8; 32],
    pub size: u64,
    pub from_block: u64,
    pub tx_hash: Option<String>,
    /// On-chain batch number and time, once anchored.
    pub batch: Option<u64>,
    pub anchored_at: Option<u64>,
    /// The leaves (transcript digests) in tree order, with their transcript ids.
    pub leaves: Vec<(String, [u8; 32])>,
}

impl RegistryRef {
    /// The `binding` column value of transcripts that name `operator` in this registry.
    fn binding_key(&self, operator: &str) -> String {
        format!("{}:{}:{}", self.chain_id, self.registry, operator)
    }
}

impl Store {
    /// The pending batch of `reg`, if a previous run left one.
    pub fn pending_batch(&self, reg: &RegistryRef) -> Result<Option<BatchRow>, StoreError> {
        let id: Option<i64> = self
            .conn()
            .query_row(
                "SELECT id FROM anchor_batches WHERE chain_id = ?1 AND registry = ?2 AND state = 'pending'
                 ORDER BY id LIMIT 1",
                params![reg.chain_id as i64, reg.registry],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| self.batch_row(id)).transpose()
    }

    /// Plans a batch of up to `max` transcripts that name `operator` in `reg` and are not yet
    /// anchored there, oldest first, with `root_of` giving the Merkle root of their digests.
    /// `None` when there is nothing to anchor.
    pub fn plan_batch(
        &self,
        reg: &RegistryRef,
        operator: &str,
        max: usize,
        from_block: u64,
        created_ms: u64,
        root_of: impl FnOnce(&[[u8; 32]]) -> [u8; 32],
    ) -> Result<Option<BatchRow>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(String, String)> = {
            let mut q = tx.prepare(&format!(
                "SELECT t.id, t.digest FROM transcripts t WHERE {ANCHORABLE}
                 ORDER BY t.rowid LIMIT ?4"
            ))?;
            let it = q.query_map(
                params![
                    reg.chain_id as i64,
                    reg.registry,
                    reg.binding_key(operator),
                    max as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            it.collect::<Result<_, _>>()?
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let mut leaves = Vec::with_capacity(rows.len());
        for (id, digest) in rows {
            let d = hexser::decode::<32>(&digest)
                .map_err(|e| StoreError::Corrupt(id.clone(), format!("digest: {e}")))?;
            leaves.push((id, d));
        }
        let digests: Vec<[u8; 32]> = leaves.iter().map(|(_, d)| *d).collect();
        let root = root_of(&digests);
        tx.execute(
            "INSERT INTO anchor_batches (chain_id, registry, operator, state, root, size, from_block, created_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7)",
            params![
                reg.chain_id as i64,
                reg.registry,
                operator,
                hexser::encode(&root),
                leaves.len() as i64,
                from_block as i64,
                created_ms as i64
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut ins = tx.prepare(
                "INSERT INTO anchor_leaves (batch_id, idx, transcript_id, digest) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, (tid, d)) in leaves.iter().enumerate() {
                ins.execute(params![id, i as i64, tid, hexser::encode(d)])?;
            }
        }
        tx.commit()?;
        Ok(Some(BatchRow {
            id,
            operator: operator.to_string(),
            pending: true,
            root,
            size: leaves.len() as u64,
            from_block,
            tx_hash: None,
            batch: None,
            anchored_at: None,
            leaves,
        }))
    }

    /// Records the hash of the transaction that anchors planned batch `id`.
    pub fn set_batch_tx(&self, id: i64, tx_hash: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE anchor_batches SET tx_hash = ?2 WHERE id = ?1",
            params![id, tx_hash],
        )?;
        Ok(())
    }

    /// Marks planned batch `id` anchored as on-chain batch `batch` at `anchored_at`.
    pub fn mark_anchored(&self, id: i64, batch: u64, anchored_at: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE anchor_batches SET state = 'anchored', batch = ?2, anchored_at = ?3 WHERE id = ?1",
            params![id, batch as i64, anchored_at as i64],
        )?;
        Ok(())
    }

    /// Forgets planned batch `id` (its transaction never made it on chain): its transcripts
    /// become unanchored again.
    pub fn drop_pending(&self, id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM anchor_batches WHERE id = ?1 AND state = 'pending'",
            params![id],
        )?;
        Ok(())
    }

    /// The anchored batches holding transcript `id` (a request id or digest), one per registry.
    pub fn anchored_batches_of(
        &self,
        id: &str,
    ) -> Result<Vec<(RegistryRef, BatchRow, u64)>, StoreError> {
        let found: Vec<(i64, i64, i64, String)> = {
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
            it.collect::<Result<_, _>>()?
        };
        found
            .into_iter()
            .map(|(bid, idx, chain_id, registry)| {
                Ok((
                    RegistryRef {
                        chain_id: chain_id as u64,
                        registry,
                    },
                    self.batch_row(bid)?,
                    idx as u64,
                ))
            })
            .collect()
    }

    /// Transcripts that name `operator` in `reg` and are not yet in any batch (planned or
    /// anchored) there.
    pub fn unanchored_count(&self, reg: &RegistryRef, operator: &str) -> Result<u64, StoreError> {
        Ok(self.conn().query_row(
            &format!("SELECT COUNT(*) FROM transcripts t WHERE {ANCHORABLE}"),
            params![reg.chain_id as i64, reg.registry, reg.binding_key(operator)],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Whether on-chain batch `batch` of `operator` in `reg` is recorded here already.
    pub fn batch_recorded(
        &self,
        reg: &RegistryRef,
        operator: &str,
        batch: u64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM anchor_batches
                 WHERE chain_id = ?1 AND registry = ?2 AND operator = ?3 AND batch = ?4",
                params![reg.chain_id as i64, reg.registry, operator, batch as i64],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Batch `id` with its leaves.
    pub fn batch_row(&self, id: i64) -> Result<BatchRow, StoreError> {
        let conn = self.conn();
        let corrupt = |what: String| StoreError::Corrupt(format!("anchor batch {id}"), what);
        type Row = (
            String,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<i64>,
            Option<i64>,
        );
        let (operator, state, root, size, from_block, tx_hash, batch, anchored_at): Row = conn
            .query_row(
                "SELECT operator, state, root, size, from_block, tx_hash, batch, anchored_at
                 FROM anchor_batches WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )?;
        let mut q = conn.prepare(
            "SELECT transcript_id, digest FROM anchor_leaves WHERE batch_id = ?1 ORDER BY idx",
        )?;
        let leaves = q
            .query_map(params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(tid, d)| {
                hexser::decode::<32>(&d)
                    .map(|d| (tid, d))
                    .map_err(|e| corrupt(format!("leaf digest: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if leaves.len() as i64 != size {
            return Err(corrupt(format!(
                "{} leaves stored for a batch of {size}",
                leaves.len()
            )));
        }
        Ok(BatchRow {
            id,
            operator,
            pending: state == "pending",
            root: hexser::decode::<32>(&root).map_err(|e| corrupt(format!("root: {e}")))?,
            size: size as u64,
            from_block: from_block as u64,
            tx_hash,
            batch: batch.map(|b| b as u64),
            anchored_at: anchored_at.map(|a| a as u64),
            leaves,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sworn_attest::anchor;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("sworn-anchorlog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Store::open(&d.join("sworn.db")).unwrap()
    }

    /// A transcript row naming `binding` (a `binding_key`), or none.
    fn add(s: &Store, id: &str, digest: [u8; 32], binding: Option<String>) {
        s.conn()
            .execute(
                "INSERT INTO transcripts (id, digest, created_ms, encoded, binding) VALUES (?1, ?2, 0, x'', ?3)",
                params![id, hexser::encode(&digest), binding],
            )
            .unwrap();
    }

    fn root(l: &[[u8; 32]]) -> [u8; 32] {
        anchor::root(l).unwrap()
    }

    #[test]
    fn batches_take_each_transcript_once_per_registry() {
        let s = store("once");
        let a = RegistryRef {
            chain_id: 1,
            registry: format!("0x{}", "aa".repeat(20)),
        };
        let b = RegistryRef {
            chain_id: 1,
            registry: format!("0x{}", "bb".repeat(20)),
        };
        for i in 0..5u8 {
            add(&s, &format!("t{i}"), [i; 32], Some(a.binding_key("0xop")));
        }
        // Transcripts naming another registry, another operator, or none are not taken.
        add(&s, "tb", [7; 32], Some(b.binding_key("0xop")));
        add(&s, "tc", [8; 32], Some(a.binding_key("0xother")));
        add(&s, "tn", [9; 32], None);
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
}
