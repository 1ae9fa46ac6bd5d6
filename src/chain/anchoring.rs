//! `sworn anchor`: appends the store's not-yet-anchored transcripts to the operator's on-chain
//! log, a batch at a time, and resolves a batch a crashed run left pending
//! (`docs/anchoring.md` section 9.2).

use alloy::primitives::{Address, FixedBytes};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use sworn_attest::{anchor, PublicKey};

use super::bindings::SwornRegistry;
use super::client::{lower_hex, Chain, ChainError};
use crate::store::anchor_log::{BatchRow, RegistryRef};
use crate::store::{AnchorLease, Store};

/// What anchoring did.
#[derive(Debug, Default)]
pub struct AnchorRun {
    /// Batches anchored by this run (a recovered pending batch included), in order.
    pub anchored: Vec<BatchRow>,
    /// Pending batches from an earlier run that never reached the chain and were released.
    pub released: usize,
}

/// Checks that `operator` may anchor and signs with `key`: registered, active, not exiting, and
/// registered with this Ed25519 key (or its transcripts could never be checked against it).
pub async fn check_operator(
    chain: &Chain,
    operator: Address,
    key: &PublicKey,
) -> Result<(), ChainError> {
    let info = chain
        .registry
        .operatorInfo(operator)
        .call()
        .await
        .map_err(|e| super::client::decode_error("reading the operator record", e))?;
    if info.slashed {
        return Err(ChainError::Other(format!(
            "operator {operator} was slashed and cannot anchor"
        )));
    }
    if !info.active {
        return Err(ChainError::Other(format!(
            "{operator} is not an active operator of registry {} (sworn registry register)",
            chain.registry_hex()
        )));
    }
    if info.exitAt != 0 {
        return Err(ChainError::Other(format!(
            "operator {operator} is exiting and can no longer anchor"
        )));
    }
    if info.ed25519Key.0 != key.to_bytes() {
        return Err(ChainError::Other(format!(
            "operator {operator} is registered with Ed25519 key {}, but this server signs with {}",
            sworn_attest::hexser::encode(&info.ed25519Key.0),
            key.to_hex()
        )));
    }
    // Anchoring under a registration whose key proof fails would only make transcripts that
    // `sworn verify --rpc` refuses.
    super::onchain::check_key_proof(chain, operator, info.registeredBlock, key)
        .await?
        .map_err(ChainError::Other)
}

/// Stops a round whose anchoring lease lapsed (its PostgreSQL session dropped): another replica
/// may hold it now, and two senders with one wallet race each other's nonces.
fn still_held(lease: &AnchorLease, before: &str) -> anyhow::Result<()> {
    if !lease.held() {
        anyhow::bail!("lost the anchoring lease before {before}: another replica may anchor now");
    }
    Ok(())
}

/// Anchors everything not yet anchored with `chain`'s registry, in batches of at most
/// `max_batch`, as the wallet's operator. `key` is the Ed25519 key the store's transcripts are
/// signed with. `lease` is checked before each batch is planned and before it is sent, not
/// only at the start of the round.
pub async fn anchor_store(
    chain: &Chain,
    store: &Store,
    key: &PublicKey,
    max_batch: usize,
    lease: &AnchorLease,
) -> anyhow::Result<AnchorRun> {
    let operator = chain.sender("anchoring")?;
    check_operator(chain, operator, key).await?;
    let reg = RegistryRef {
        chain_id: chain.chain_id,
        registry: chain.registry_hex(),
    };
    let mut run = AnchorRun::default();
    while let Some(p) = store.pending_batch(&reg)? {
        match resolve_pending(chain, store, &reg, operator, &p).await? {
            Some(done) => run.anchored.push(done),
            None => run.released += 1,
        }
    }
    loop {
        still_held(lease, "planning a batch")?;
        let from_block = chain
            .provider
            .get_block_number()
            .await
            .map_err(|source| chain.rpc_error(source))?;
        let Some(p) = store.plan_batch(
            &reg,
            &lower_hex(&operator),
            max_batch.max(1),
            from_block,
            crate::attestation::now_ms(),
            |l| anchor::root(l).expect("a planned batch is never empty"),
        )?
        else {
            break;
        };
        let what = format!("anchoring a batch of {}", p.size);
        if let Err(e) = still_held(lease, "sending a batch") {
            // Nothing was sent: the batch is released for whoever holds the lease now.
            store.drop_pending(p.id)?;
            return Err(e);
        }
        let call = chain.registry.anchor(FixedBytes(p.root), p.size);
        let signed = match chain.sign(&what, call).await {
            Ok(signed) => signed,
            Err(e) => {
                // Refused before it was signed (gas estimation): nothing is on chain.
                store.drop_pending(p.id)?;
                return Err(e.into());
            }
        };
        // The hash is recorded before the transaction leaves this process: whoever resolves
        // this batch after a crash (this process, or a replica that takes the lease) waits for
        // that transaction rather than planning its transcripts again while it may still be
        // mined.
        let tx = format!("{:#x}", signed.tx_hash());
        store.set_batch_tx(p.id, &tx)?;
        let pending = chain.broadcast(signed).await?;
        tracing::info!(size = p.size, %tx, "anchor transaction sent");
        let receipt = match chain.wait(&what, pending, tx).await {
            Ok(r) => r,
            Err(e @ ChainError::TxReverted { .. }) => {
                store.drop_pending(p.id)?;
                return Err(e.into());
            }
            // Not mined in time: left pending, resolved by the next run.
            Err(e) => return Err(e.into()),
        };
        let ev =
            super::client::event::<SwornRegistry::Anchored>(&receipt, chain.registry.address())?;
        store.mark_anchored(p.id, ev.batch, ev.anchoredAt)?;
        tracing::info!(batch = ev.batch, size = p.size, "anchored");
        run.anchored.push(store.batch_row(p.id)?);
    }
    Ok(run)
}

/// Finds out what became of a batch an earlier run planned: anchored (found among the operator's
/// `Anchored` events since it was planned, possibly after waiting for its transaction), or never
/// on chain (released, so that its transcripts are planned again).
async fn resolve_pending(
    chain: &Chain,
    store: &Store,
    reg: &RegistryRef,
    operator: Address,
    p: &BatchRow,
) -> anyhow::Result<Option<BatchRow>> {
    if let Some(ev) = find_anchored(chain, store, reg, operator, p).await? {
        store.mark_anchored(p.id, ev.batch, ev.anchoredAt)?;
        tracing::info!(batch = ev.batch, "a pending batch was anchored after all");
        return Ok(Some(store.batch_row(p.id)?));
    }
    if let Some(tx) = &p.tx_hash {
        let hash: FixedBytes<32> = tx
            .parse()
            .map_err(|_| ChainError::Other(format!("stored transaction hash {tx:?} is corrupt")))?;
        let known = chain
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|source| chain.rpc_error(source))?;
        if known.is_some() {
            // Still in flight (or mined after the search): wait for it and search again.
            let pending = alloy::providers::PendingTransactionBuilder::new(
                chain.provider.root().clone(),
                hash,
            );
            if chain
                .wait("a pending anchor transaction", pending, tx.clone())
                .await
                .is_ok()
            {
                if let Some(ev) = find_anchored(chain, store, reg, operator, p).await? {
                    store.mark_anchored(p.id, ev.batch, ev.anchoredAt)?;
                    return Ok(Some(store.batch_row(p.id)?));
                }
            }
        }
    }
    tracing::warn!(
        size = p.size,
        "a batch planned by an earlier run never reached the chain; its transcripts are released"
    );
    store.drop_pending(p.id)?;
    Ok(None)
}

/// The operator's `Anchored` event for `p` (same root and size) since `p` was planned, whose
/// batch number this store has not recorded yet.
async fn find_anchored(
    chain: &Chain,
    store: &Store,
    reg: &RegistryRef,
    operator: Address,
    p: &BatchRow,
) -> anyhow::Result<Option<SwornRegistry::Anchored>> {
    let filter = Filter::new()
        .address(*chain.registry.address())
        .event_signature(SwornRegistry::Anchored::SIGNATURE_HASH)
        .topic1(operator.into_word())
        .from_block(p.from_block);
    let logs = chain
        .provider
        .get_logs(&filter)
        .await
        .map_err(|source| chain.rpc_error(source))?;
    for log in logs {
        let Ok(ev) = log.log_decode::<SwornRegistry::Anchored>() else {
            continue;
        };
        let ev = ev.inner.data;
        if ev.root.0 == p.root
            && ev.size == p.size
            && !store.batch_recorded(reg, &lower_hex(&operator), ev.batch)?
        {
            return Ok(Some(ev));
        }
    }
    Ok(None)
}
