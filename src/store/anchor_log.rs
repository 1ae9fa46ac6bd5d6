//! The anchoring side of the transcript store: which transcripts went into which on-chain batch
//! of which registry, so that `sworn anchor` anchors each transcript once and `sworn proof`
//! (and `GET /v1/attestations/{id}/proof`) can rebuild its inclusion proof.
//!
//! Crash safety: a batch is *planned* first (a 'pending' row and its leaves, in one
//! transaction, so that nothing else writing the store sees half a batch; anchoring also holds
//! the store's anchoring lease, so one process at a time plans and resolves batches), then its
//! transaction is sent and its hash recorded, then it is marked 'anchored' from the receipt. A
//! pending batch left by a crash (or by a replica that died holding the lease) is resolved
//! against the chain by the caller before anything new is planned (`docs/anchoring.md`
//! section 9.2).

use sworn_attest::hexser;

use super::{decode_leaves, Planned, RawBatch, Store, StoreError};

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
    pub fn binding_key(&self, operator: &str) -> String {
        format!("{}:{}:{}", self.chain_id, self.registry, operator)
    }
}

impl Store {
    /// The pending batch of `reg`, if a previous run left one.
    pub fn pending_batch(&self, reg: &RegistryRef) -> Result<Option<BatchRow>, StoreError> {
        self.backend()
            .pending_batch_id(reg.chain_id as i64, &reg.registry)?
            .map(|id| self.batch_row(id))
            .transpose()
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
        root_of: impl Fn(&[[u8; 32]]) -> [u8; 32],
    ) -> Result<Option<BatchRow>, StoreError> {
        let req = super::PlanRequest {
            chain_id: reg.chain_id as i64,
            registry: &reg.registry,
            operator,
            binding: &reg.binding_key(operator),
            max: max as i64,
            from_block: from_block as i64,
            created_ms: created_ms as i64,
        };
        let Some(Planned { id, root, leaves }) = self.backend().plan_batch(&req, &root_of)? else {
            return Ok(None);
        };
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
        self.backend().set_batch_tx(id, tx_hash)
    }

    /// Marks planned batch `id` anchored as on-chain batch `batch` at `anchored_at`.
    pub fn mark_anchored(&self, id: i64, batch: u64, anchored_at: u64) -> Result<(), StoreError> {
        self.backend()
            .mark_anchored(id, batch as i64, anchored_at as i64)
    }

    /// Forgets planned batch `id` (its transaction never made it on chain): its transcripts
    /// become unanchored again. An anchored batch is never dropped.
    pub fn drop_pending(&self, id: i64) -> Result<(), StoreError> {
        self.backend().drop_pending(id)
    }

    /// The anchored batches holding transcript `id` (a request id or digest), one per registry.
    pub fn anchored_batches_of(
        &self,
        id: &str,
    ) -> Result<Vec<(RegistryRef, BatchRow, u64)>, StoreError> {
        self.backend()
            .anchored_in(id)?
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
        self.backend().unanchored_count(
            reg.chain_id as i64,
            &reg.registry,
            &reg.binding_key(operator),
        )
    }

    /// Whether on-chain batch `batch` of `operator` in `reg` is recorded here already.
    pub fn batch_recorded(
        &self,
        reg: &RegistryRef,
        operator: &str,
        batch: u64,
    ) -> Result<bool, StoreError> {
        self.backend()
            .batch_recorded(reg.chain_id as i64, &reg.registry, operator, batch as i64)
    }

    /// Batch `id` with its leaves.
    pub fn batch_row(&self, id: i64) -> Result<BatchRow, StoreError> {
        let RawBatch {
            operator,
            state,
            root,
            size,
            from_block,
            tx_hash,
            batch,
            anchored_at,
            leaves,
        } = self.backend().batch(id)?;
        let corrupt = |what: String| StoreError::Corrupt(format!("anchor batch {id}"), what);
        let leaves = decode_leaves(&leaves)?;
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
