//! Proofs out of the store (`sworn proof`), and checking a transcript against the chain
//! (`sworn verify --rpc`): anchored by a registered operator, under the key the registry holds
//! for it, in a batch whose stored word the proof reproduces.

use alloy::primitives::{Address, FixedBytes};
use sworn_attest::anchor::{self, AnchorProof, AnchoredTranscript};
use sworn_attest::{hexser, PublicKey, Transcript};

use super::bindings::SwornRegistry;
use super::client::{batch_word, claim, decode_error, parse_address, Chain, ChainError};
use crate::store::anchor_log::RegistryRef;
use crate::store::Store;

/// Why a proof cannot be had from the store.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("no transcript {0} in the store")]
    Unknown(String),
    #[error("transcript {0} is not anchored yet (run `sworn anchor`)")]
    NotAnchored(String),
    #[error(
        "transcript {id} is anchored with several registries ({list}): say which with --registry"
    )]
    Ambiguous { id: String, list: String },
    #[error("transcript {0} is not anchored with that registry")]
    NotWithThatRegistry(String),
    #[error("the stored batch does not reproduce its root: the store is corrupt ({0})")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The anchored transcript `id` (a request id, or with `by_digest` also a digest) with its
/// inclusion proof, rebuilt from the store's record of its batch. `registry` picks one when it
/// is anchored with several.
pub fn proof_from_store(
    store: &Store,
    id: &str,
    by_digest: bool,
    registry: Option<&RegistryRef>,
) -> Result<AnchoredTranscript, ProofError> {
    let t = if by_digest {
        store.get_by_id_or_digest(id)?
    } else {
        store.get(id)?
    };
    let t = t.ok_or_else(|| ProofError::Unknown(id.into()))?;
    let mut found = store.anchored_batches_of(id)?;
    if found.is_empty() {
        return Err(ProofError::NotAnchored(id.into()));
    }
    // A crash can leave a transcript in two batches of one registry (docs/anchoring.md §9.2):
    // either proves it; the first is kept.
    let mut seen = Vec::new();
    found.retain(|(reg, _, _)| {
        let first = !seen.contains(reg);
        seen.push(reg.clone());
        first
    });
    if let Some(r) = registry {
        found.retain(|(reg, _, _)| reg == r);
        if found.is_empty() {
            return Err(ProofError::NotWithThatRegistry(id.into()));
        }
    }
    if found.len() > 1 {
        let list = found
            .iter()
            .map(|(r, _, _)| format!("{} on chain {}", r.registry, r.chain_id))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ProofError::Ambiguous {
            id: id.into(),
            list,
        });
    }
    let (reg, batch, index) = found.remove(0);
    let digests: Vec<[u8; 32]> = batch.leaves.iter().map(|(_, d)| *d).collect();
    let corrupt = |why: &str| ProofError::Corrupt(format!("batch {:?}: {why}", batch.batch));
    if anchor::root(&digests) != Some(batch.root) {
        return Err(corrupt("root"));
    }
    let proof =
        anchor::inclusion_proof(&digests, index as usize).ok_or_else(|| corrupt("index"))?;
    let p = AnchorProof {
        chain_id: reg.chain_id,
        registry: reg.registry,
        operator: batch.operator.clone(),
        batch: batch.batch.ok_or_else(|| corrupt("no batch number"))?,
        index,
        batch_size: batch.size,
        anchored_at: batch.anchored_at.ok_or_else(|| corrupt("no time"))?,
        root: batch.root,
        commitments: t.commitments().into(),
        proof,
    };
    if !p.verifies() {
        return Err(corrupt("the transcript's digest is not the stored leaf"));
    }
    AnchoredTranscript::new(t, p).map_err(|e| ProofError::Corrupt(e.to_string()))
}

/// What the chain says about an anchored transcript.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OnchainReport {
    /// Everything holds: registered operator, its key signed it, the anchored batch proves it,
    /// and the operator was never slashed.
    pub valid: bool,
    /// Why not, when not valid.
    pub reason: Option<String>,
    pub operator: String,
    pub batch: u64,
    pub index: u64,
    /// The operator record: active (not exited, not slashed), slashed.
    pub operator_active: bool,
    pub operator_slashed: bool,
    /// When the batch leaves the challenge window, and whether it has (chain time).
    pub final_at: u64,
    pub is_final: bool,
}

/// Checks `b` against `chain`'s registry. Errors are for failures to ask (RPC, a proof for
/// another chain); a transcript that fails a check gets `valid: false` and a reason.
pub async fn check(chain: &Chain, b: &AnchoredTranscript) -> Result<OnchainReport, ChainError> {
    let p = &b.anchor;
    chain.check_proof_registry(p)?;
    let operator: Address = parse_address(&p.operator)?;
    let info = chain
        .registry
        .operatorInfo(operator)
        .call()
        .await
        .map_err(|e| decode_error("reading the operator record", e))?;
    let window = chain
        .registry
        .challengeWindow()
        .call()
        .await
        .map_err(|e| decode_error("reading the challenge window", e))?;
    let now = chain.now().await?;
    let final_at = p.anchored_at.saturating_add(window);
    let mut report = OnchainReport {
        valid: false,
        reason: None,
        operator: p.operator.clone(),
        batch: p.batch,
        index: p.index,
        operator_active: info.active,
        operator_slashed: info.slashed,
        final_at,
        is_final: now >= final_at,
    };
    let fail = |mut r: OnchainReport, why: String| {
        r.reason = Some(why);
        Ok(r)
    };
    if info.ed25519Key == FixedBytes::ZERO {
        return fail(
            report,
            format!("{} is not a registered operator", p.operator),
        );
    }
    // The registry is the trust root for the key: the transcript must be signed by the key it
    // holds for this operator.
    let key = match PublicKey::from_bytes(&info.ed25519Key.0) {
        Ok(k) => k,
        Err(e) => return fail(report, format!("the registered key is not usable: {e}")),
    };
    if let Err(e) = sworn_verifier::verify(b.transcript.clone(), &[key]) {
        return fail(
            report,
            format!("not signed by the operator's registered key: {e}"),
        );
    }
    // The transcript names the operator that answers for it; anchoring by any other address
    // (a sybil registered with the same key elsewhere, another registry) proves nothing.
    let expected = chain.binding(operator);
    match &b.transcript.meta.operator {
        None => {
            return fail(
                report,
                "the transcript names no operator (meta.operator): it cannot be held against \
                 any registration"
                    .into(),
            )
        }
        Some(named) if *named != expected => {
            return fail(
                report,
                format!(
                    "the transcript names operator 0x{} of registry 0x{} on chain {}, but it was \
                     anchored by {} in registry {} on chain {}",
                    hexser::encode(&named.address),
                    hexser::encode(&named.registry),
                    named.chain_id,
                    p.operator,
                    chain.registry_hex(),
                    chain.chain_id
                ),
            )
        }
        Some(_) => {}
    }
    if let Err(why) = check_key_proof(chain, operator, info.registeredBlock, &key).await? {
        return fail(report, why);
    }
    if !p.verifies() {
        return fail(report, "the inclusion proof does not give its root".into());
    }
    let stored = chain
        .registry
        .batchCommitment(operator, p.batch)
        .call()
        .await
        .map_err(|e| decode_error("reading the batch", e))?;
    if stored == FixedBytes::ZERO {
        return fail(
            report,
            format!("operator has no batch {} on chain", p.batch),
        );
    }
    if stored.0 != batch_word(&p.root, p.batch_size, p.anchored_at) {
        return fail(
            report,
            format!(
                "batch {} on chain holds another root, size or time than the proof says",
                p.batch
            ),
        );
    }
    // The contract's own check must agree with ours; a disagreement is a bug on one side.
    let onchain = chain
        .registry
        .isAnchored(operator, claim(p))
        .call()
        .await
        .map_err(|e| decode_error("asking the registry", e))?;
    if !onchain {
        return Err(ChainError::Other(
            "the registry's isAnchored disagrees with this client's proof check (a bug)".into(),
        ));
    }
    if info.slashed {
        return fail(
            report,
            format!(
                "operator {} was slashed: its transcripts are not to be trusted",
                p.operator
            ),
        );
    }
    report.valid = true;
    Ok(report)
}

/// Checks the key-possession proof of `operator`'s current registration: the Ed25519 signature,
/// by the registered `key`, over the binding (chain, registry, operator), carried by the
/// `OperatorRegistered` event at block `registered_block` (`docs/anchoring.md` 1.1). The EVM
/// cannot check it, so every client does. `Ok(Err(why))` when the proof is missing or wrong.
pub async fn check_key_proof(
    chain: &Chain,
    operator: Address,
    registered_block: u64,
    key: &PublicKey,
) -> Result<Result<(), String>, ChainError> {
    use alloy::providers::Provider;
    use alloy::rpc::types::Filter;
    use alloy::sol_types::SolEvent;
    let filter = Filter::new()
        .address(*chain.registry.address())
        .event_signature(SwornRegistry::OperatorRegistered::SIGNATURE_HASH)
        .topic1(operator.into_word())
        .from_block(registered_block)
        .to_block(registered_block);
    let logs = chain
        .provider
        .get_logs(&filter)
        .await
        .map_err(|source| chain.rpc_error(source))?;
    let registration = logs
        .iter()
        .filter_map(|l| l.log_decode::<SwornRegistry::OperatorRegistered>().ok())
        .map(|l| l.inner.data)
        .rfind(|ev| ev.ed25519Key.0 == key.to_bytes());
    let Some(ev) = registration else {
        return Ok(Err(format!(
            "no registration event of operator {operator:#x} with its key at block {registered_block}"
        )));
    };
    let Ok(proof) = <[u8; 64]>::try_from(ev.keyProof.as_ref()) else {
        return Ok(Err(
            "the registration's key-possession proof is not 64 bytes".into(),
        ));
    };
    Ok(key
        .verify_binding(&chain.binding(operator), &proof)
        .map_err(|_| {
            format!(
                "operator {operator:#x} never proved that it holds Ed25519 key {}: its \
                 registration's key-possession proof does not verify (someone else's key?)",
                key.to_hex()
            )
        }))
}

/// Reads a transcript file that may be a bundle, with its proof from `proof` when it is not.
pub fn load_bundle(
    bytes: &[u8],
    proof: Option<&[u8]>,
) -> anyhow::Result<(Transcript, Option<AnchorProof>)> {
    let limits = sworn_attest::Limits::default();
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Some(b) = AnchoredTranscript::parse(text, limits)? {
            if proof.is_some() {
                anyhow::bail!("the file is a bundle with its own proof; do not give --proof");
            }
            return Ok((b.transcript, Some(b.anchor)));
        }
    }
    let t = sworn_verifier::parse(bytes, limits)?;
    let p = proof
        .map(|pb| parse_proof(std::str::from_utf8(pb)?))
        .transpose()
        .map_err(|e| e.context("the proof file"))?;
    Ok((t, p))
}

/// A proof document, or the proof inside a bundle.
pub fn parse_proof(text: &str) -> anyhow::Result<AnchorProof> {
    Ok(
        match AnchoredTranscript::parse(text, sworn_attest::Limits::default())? {
            Some(b) => b.anchor,
            None => sworn_attest::strict_json::from_str::<AnchorProof>(text)
                .map_err(|e| anyhow::anyhow!("not a bundle or proof: {e}"))?,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden() -> Transcript {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/greedy-text.json"
        );
        Transcript::from_json(
            &std::fs::read_to_string(p).unwrap(),
            sworn_attest::Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn proofs_come_from_the_first_anchored_batch_of_the_right_registry() {
        let d = std::env::temp_dir().join(format!("sworn-onchain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let db = d.join("sworn.db");
        let s = Store::open(&db).unwrap();
        // A transcript naming operator 0xcd… of registry 0xaa… (re-signed: only proofs matter here).
        let mut t = golden();
        t.meta.operator = Some(sworn_attest::OperatorBinding {
            chain_id: 31337,
            registry: [0xaa; 20],
            address: [0xcd; 20],
        });
        sworn_attest::OperatorKey::from_seed(&[7; 32]).sign(&mut t);
        let reg = RegistryRef {
            chain_id: 31337,
            registry: format!("0x{}", "aa".repeat(20)),
        };
        s.put("t1", &t, 0).unwrap();
        assert!(matches!(
            proof_from_store(&s, "nope", false, None),
            Err(ProofError::Unknown(_))
        ));
        assert!(matches!(
            proof_from_store(&s, "t1", false, None),
            Err(ProofError::NotAnchored(_))
        ));
        let op = format!("0x{}", "cd".repeat(20));
        let a = s
            .plan_batch(&reg, &op, 10, 0, 0, |l| anchor::root(l).unwrap())
            .unwrap()
            .unwrap();
        // Planned is not anchored.
        assert!(matches!(
            proof_from_store(&s, "t1", false, None),
            Err(ProofError::NotAnchored(_))
        ));
        s.mark_anchored(a.id, 0, 100).unwrap();
        // The same transcript in a second anchored batch of the same registry, as a crash between
        // sending and recording can leave it.
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute(
            "INSERT INTO anchor_batches (chain_id, registry, operator, state, root, size, from_block,
                 batch, anchored_at, created_ms) VALUES (?1, ?2, ?3, 'anchored', ?4, 1, 0, 1, 200, 0)",
            rusqlite::params![31337, reg.registry, op, hexser::encode(&a.root)],
        )
        .unwrap();
        raw.execute(
            "INSERT INTO anchor_leaves VALUES (?1, 0, 't1', ?2)",
            rusqlite::params![raw.last_insert_rowid(), hexser::encode(&t.digest())],
        )
        .unwrap();
        let b = proof_from_store(&s, "t1", false, None).unwrap();
        assert_eq!((b.anchor.batch, b.anchor.anchored_at), (0, 100));
        assert!(b.anchor.verifies());
        assert_eq!(b.anchor.operator, op);
        let elsewhere = RegistryRef {
            chain_id: 1,
            registry: reg.registry.clone(),
        };
        assert!(matches!(
            proof_from_store(&s, "t1", false, Some(&elsewhere)),
            Err(ProofError::NotWithThatRegistry(_))
        ));
        assert!(proof_from_store(&s, "t1", false, Some(&reg)).is_ok());
    }
}
