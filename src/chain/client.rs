//! A connection to a chain and one `SwornRegistry` on it: provider, optional signing wallet,
//! transaction sending that names the contract's custom error when a call reverts, and the
//! small pure helpers (batch word, claims, amounts) that must agree with the contract.

use std::time::Duration;

use alloy::consensus::TxEnvelope;
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{keccak256, Address, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use sworn_attest::anchor::AnchorProof;

use super::bindings::SwornRegistry::{self, SwornRegistryErrors, SwornRegistryInstance};

/// How long to wait for a sent transaction to be mined.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("RPC URL {0:?} is not a valid http(s) URL")]
    BadUrl(String),
    #[error("RPC {url}: {source}")]
    Rpc {
        url: String,
        #[source]
        source: Box<alloy::transports::TransportError>,
    },
    #[error("no contract at {address} on chain {chain_id}: wrong --registry or --rpc?")]
    NoContract { address: Address, chain_id: u64 },
    #[error("{what}: the registry refused it: {reason}")]
    Reverted { what: String, reason: String },
    #[error("{what}: {source}")]
    Call {
        what: String,
        #[source]
        source: Box<alloy::contract::Error>,
    },
    #[error("{what}: waiting for the receipt of {tx}: {reason}")]
    Receipt {
        what: String,
        tx: String,
        reason: String,
    },
    #[error("{what}: transaction {tx} reverted")]
    TxReverted { what: String, tx: String },
    #[error("{0} needs a wallet: give --wallet FILE or set $SWORN_WALLET_KEY")]
    NoWallet(String),
    #[error("{0}")]
    Other(String),
}

/// A chain and the registry on it.
pub struct Chain {
    pub url: String,
    pub provider: DynProvider,
    pub registry: SwornRegistryInstance<DynProvider>,
    pub chain_id: u64,
    /// The wallet that signs transactions, when one was given.
    pub signer: Option<PrivateKeySigner>,
}

impl Chain {
    /// Connects to `url`, with `wallet` signing transactions if given. With `registry`, checks
    /// that a contract is deployed there.
    pub async fn connect(
        url: &str,
        registry: Option<Address>,
        wallet: Option<PrivateKeySigner>,
    ) -> Result<Chain, ChainError> {
        let parsed: alloy::transports::http::reqwest::Url =
            url.parse().map_err(|_| ChainError::BadUrl(url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ChainError::BadUrl(url.into()));
        }
        let provider = match &wallet {
            Some(w) => ProviderBuilder::new()
                .wallet(EthereumWallet::from(w.clone()))
                .connect_http(parsed)
                .erased(),
            None => ProviderBuilder::new().connect_http(parsed).erased(),
        };
        let rpc = |source| ChainError::Rpc {
            url: url.into(),
            source: Box::new(source),
        };
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        let address = registry.unwrap_or(Address::ZERO);
        if registry.is_some() {
            let code = provider.get_code_at(address).await.map_err(rpc)?;
            if code.is_empty() {
                return Err(ChainError::NoContract { address, chain_id });
            }
        }
        Ok(Chain {
            url: url.into(),
            registry: SwornRegistry::new(address, provider.clone()),
            provider,
            chain_id,
            signer: wallet,
        })
    }

    /// An RPC failure talking to this chain.
    pub fn rpc_error(&self, source: alloy::transports::TransportError) -> ChainError {
        ChainError::Rpc {
            url: self.url.clone(),
            source: Box::new(source),
        }
    }

    /// The wallet's address, or an error naming `what` needed it.
    pub fn sender(&self, what: &str) -> Result<Address, ChainError> {
        Ok(self.signer(what)?.address())
    }

    /// The wallet, or an error naming `what` needed it.
    pub fn signer(&self, what: &str) -> Result<&PrivateKeySigner, ChainError> {
        self.signer
            .as_ref()
            .ok_or_else(|| ChainError::NoWallet(what.into()))
    }

    /// Whether `chain_id` and `registry` (any case) name this chain's registry.
    pub fn is_registry(&self, chain_id: u64, registry: &str) -> bool {
        chain_id == self.chain_id && registry.eq_ignore_ascii_case(&self.registry_hex())
    }

    /// Refuses a proof made for another chain or registry.
    pub fn check_proof_registry(&self, p: &AnchorProof) -> Result<(), ChainError> {
        if self.is_registry(p.chain_id, &p.registry) {
            return Ok(());
        }
        Err(ChainError::Other(format!(
            "the proof is for registry {} on chain {}, not {} on chain {}",
            p.registry,
            p.chain_id,
            self.registry_hex(),
            self.chain_id
        )))
    }

    /// The registry's address in the form proofs carry it (`0x`, lowercase).
    pub fn registry_hex(&self) -> String {
        lower_hex(self.registry.address())
    }

    /// What a transcript of `operator` in this registry names (`docs/anchoring.md` 1.1).
    pub fn binding(&self, operator: Address) -> sworn_attest::OperatorBinding {
        sworn_attest::OperatorBinding {
            chain_id: self.chain_id,
            registry: self.registry.address().0 .0,
            address: operator.0 .0,
        }
    }

    /// The latest block's timestamp (the chain's "now", which deadlines are measured in).
    pub async fn now(&self) -> Result<u64, ChainError> {
        let b = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|source| self.rpc_error(source))?
            .ok_or_else(|| ChainError::Other("the node has no latest block".into()))?;
        Ok(b.header.timestamp)
    }

    /// Sends `call` as a transaction and waits for its receipt. A call the registry refuses
    /// (seen when the node estimates its gas) is reported by the contract's error name and
    /// arguments, e.g. `BatchFinal { batch: 0, finalAt: ... }`.
    ///
    /// The nonce is the sender's count of *mined* transactions: `send` waits for each receipt,
    /// so none of the sender's own transactions is pending when it sends the next. Counting a
    /// node's pending ones instead would build on any transaction the node holds but never
    /// mines, and leave a gap that stalls every later one (seen on anvil under load: a player's
    /// move queued forever behind a nonce that never came). When the node does hold one of the
    /// sender's transactions unmined, the fees are doubled, so that this one replaces it. One
    /// wallet must not be used by two senders at once.
    pub async fn send<D: CallDecoder>(
        &self,
        what: &str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt, ChainError> {
        let from = self.sender(what)?;
        let count = |pending: bool| {
            let c = self.provider.get_transaction_count(from);
            async move {
                if pending {
                    c.pending().await
                } else {
                    c.latest().await
                }
            }
        };
        let mined = count(false)
            .await
            .map_err(|source| self.rpc_error(source))?;
        let held = count(true).await.map_err(|source| self.rpc_error(source))?;
        let mut fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|source| self.rpc_error(source))?;
        if held > mined {
            tracing::warn!(
                nonce = mined,
                held,
                "the node holds transactions of this wallet it has not mined: replacing them"
            );
            fees.max_fee_per_gas *= 2;
            fees.max_priority_fee_per_gas *= 2;
        }
        let pending = call
            .from(from)
            .nonce(mined)
            .max_fee_per_gas(fees.max_fee_per_gas)
            .max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .send()
            .await
            .map_err(|e| decode_error(what, e))?;
        let tx = format!("{:#x}", pending.tx_hash());
        self.wait(what, pending, tx).await
    }

    /// Signs `call` as the wallet's transaction, filled as the provider fills what it sends
    /// (gas estimated, nonce counting pending transactions, EIP-1559 fees, chain id), without
    /// sending it: its hash is known before anyone else sees the transaction, so a caller can
    /// record it first (anchoring's crash safety, `docs/anchoring.md` section 9.2). A call the
    /// registry refuses fails here, at gas estimation, decoded as [`Chain::send`] decodes it.
    pub async fn sign<D: CallDecoder>(
        &self,
        what: &str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TxEnvelope, ChainError> {
        let signer = self.signer(what)?;
        let from = signer.address();
        let call = call.from(from);
        let gas = call
            .estimate_gas()
            .await
            .map_err(|e| decode_error(what, e))?;
        let nonce = self
            .provider
            .get_transaction_count(from)
            .pending()
            .await
            .map_err(|source| self.rpc_error(source))?;
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|source| self.rpc_error(source))?;
        call.into_transaction_request()
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .build(&EthereumWallet::from(signer.clone()))
            .await
            .map_err(|e| ChainError::Other(format!("signing the transaction for {what}: {e}")))
    }

    /// Sends a transaction [`Chain::sign`] made.
    pub async fn broadcast(
        &self,
        tx: TxEnvelope,
    ) -> Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>, ChainError>
    {
        self.provider
            .send_tx_envelope(tx)
            .await
            .map_err(|source| self.rpc_error(source))
    }

    /// Waits for a pending transaction's receipt and checks it succeeded. Polls
    /// `eth_getTransactionReceipt` itself (every 100 ms, backing off to 2 s): alloy's block
    /// heartbeat can miss the block of a transaction a fast node (anvil) mined before the watch
    /// began, and then waits out the whole timeout (alloy-rs/alloy#3916, #4181).
    pub async fn wait(
        &self,
        what: &str,
        pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        tx: String,
    ) -> Result<TransactionReceipt, ChainError> {
        let hash = *pending.tx_hash();
        let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
        let mut pause = Duration::from_millis(100);
        let receipt = loop {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(|source| self.rpc_error(source))?
            {
                break r;
            }
            if tokio::time::Instant::now() >= deadline {
                let why = self.why_unmined(hash).await;
                return Err(ChainError::Receipt {
                    what: what.into(),
                    tx,
                    reason: format!("not mined within {} s{why}", RECEIPT_TIMEOUT.as_secs()),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        };
        if !receipt.status() {
            return Err(ChainError::TxReverted {
                what: what.into(),
                tx,
            });
        }
        Ok(receipt)
    }

    /// What the node says of a transaction it has not mined: its nonce against its sender's
    /// next one (a gap keeps it queued for good) and its fee cap against the latest base fee;
    /// empty when the node cannot say.
    async fn why_unmined(&self, hash: alloy::primitives::B256) -> String {
        use alloy::consensus::Transaction as _;
        let Ok(Some(tx)) = self.provider.get_transaction_by_hash(hash).await else {
            return ": the node no longer knows the transaction (dropped or replaced)".into();
        };
        let from = tx.inner.signer();
        let mined = self
            .provider
            .get_transaction_count(from)
            .latest()
            .await
            .ok();
        let base = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .ok()
            .flatten()
            .and_then(|b| b.header.base_fee_per_gas);
        format!(
            " (its nonce {}, the sender's next mined nonce {}; its fee cap {} wei, the latest \
             base fee {} wei)",
            tx.nonce(),
            mined.map_or("unknown".into(), |n| n.to_string()),
            tx.max_fee_per_gas(),
            base.map_or("unknown".into(), |b| b.to_string()),
        )
    }
}

/// The event `E` that the contract at `from` emitted in a transaction (the first one). Logs of
/// other contracts are ignored: a payee's `receive` could emit look-alikes.
pub fn event<E: alloy::sol_types::SolEvent>(
    r: &TransactionReceipt,
    from: &Address,
) -> Result<E, ChainError> {
    let found = r
        .logs()
        .iter()
        .filter(|l| l.address() == *from)
        .find_map(|l| l.log_decode::<E>().ok());
    found.map(|l| l.inner.data).ok_or_else(|| {
        ChainError::Other(format!(
            "no {} event in the receipt of {:#x}",
            E::SIGNATURE,
            r.transaction_hash
        ))
    })
}

/// Turns a failed contract call into an error that names the registry's or the dispute
/// game's custom error (e.g. `WrongPhase { game: 3, phase: 2 }`).
pub fn decode_error(what: &str, e: alloy::contract::Error) -> ChainError {
    if let Some(err) = e.as_decoded_interface_error::<SwornRegistryErrors>() {
        return ChainError::Reverted {
            what: what.into(),
            reason: describe(&err),
        };
    }
    if let Some(err) =
        e.as_decoded_interface_error::<crate::chain::bindings::game::SwornGame::SwornGameErrors>()
    {
        return ChainError::Reverted {
            what: what.into(),
            reason: describe(&err),
        };
    }
    if e.as_revert_data().is_some() {
        return ChainError::Reverted {
            what: what.into(),
            reason: e.to_string(),
        };
    }
    ChainError::Call {
        what: what.into(),
        source: Box::new(e),
    }
}

/// `Name { field: value, ... }` of a contract's error.
fn describe(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    // The Debug form is `Variant(Variant { .. })`: keep the inner part.
    match s.find('(') {
        Some(i) if s.ends_with(')') => s[i + 1..s.len() - 1].to_string(),
        _ => s,
    }
}

/// A fresh random 32-byte salt for a commit-reveal (a commitment that names its sender and hides
/// what it commits to until the reveal).
pub fn random_salt() -> Result<alloy::primitives::B256, ChainError> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)
        .map_err(|e| ChainError::Other(format!("no randomness for the salt: {e}")))?;
    Ok(alloy::primitives::FixedBytes(salt))
}

/// How far back (in blocks) a look for a contract's events goes: about a week of 12-second
/// blocks, past any challenge or move window sworn deploys with, and within what public RPC
/// nodes answer for `eth_getLogs`.
pub const LOG_WINDOW: u64 = 50_400;

/// `0x` and 40 lowercase hex digits.
pub fn lower_hex(a: &Address) -> String {
    format!("{a:#x}")
}

/// Parses an address (`0x` and 40 hex digits, any case).
pub fn parse_address(s: &str) -> Result<Address, ChainError> {
    let t = s.trim();
    if t.len() != 42 || !t.starts_with("0x") {
        return Err(ChainError::Other(format!(
            "{s:?} is not an address (0x and 40 hex digits)"
        )));
    }
    t.parse()
        .map_err(|_| ChainError::Other(format!("{s:?} is not an address")))
}

/// The word the registry stores per batch: `keccak256(root || uint64 size || uint64 anchoredAt)`
/// (`SwornRegistry.batchWord`).
pub fn batch_word(root: &[u8; 32], size: u64, anchored_at: u64) -> [u8; 32] {
    let mut b = [0u8; 48];
    b[..32].copy_from_slice(root);
    b[32..40].copy_from_slice(&size.to_be_bytes());
    b[40..].copy_from_slice(&anchored_at.to_be_bytes());
    keccak256(b).0
}

/// The registry's `Claim` for an anchored transcript.
pub fn claim(p: &AnchorProof) -> SwornRegistry::Claim {
    let c = &p.commitments;
    SwornRegistry::Claim {
        model: FixedBytes(c.model),
        request: FixedBytes(c.request),
        output: FixedBytes(c.output),
        meta: FixedBytes(c.meta),
        batch: p.batch,
        index: p.index,
        batchSize: p.batch_size,
        anchoredAt: p.anchored_at,
        proof: p.proof.iter().map(|h| FixedBytes(*h)).collect(),
    }
}

/// Parses an amount of ether: a number of wei (`1000`), or a decimal with a unit (`1.5ether`,
/// `20gwei`, `3wei`; white space allowed before the unit).
pub fn parse_amount(s: &str) -> Result<U256, ChainError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || {
        ChainError::Other(format!(
            "{s:?} is not an amount (e.g. 1000, 20gwei, 1.5ether)"
        ))
    };
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let (unit, decimals) = match unit {
        "" | "wei" => ("wei", 0),
        "gwei" => ("gwei", 9),
        "eth" | "ether" => ("ether", 18),
        _ => return Err(bad()),
    };
    // Digits with at most `decimals` of them after one point: nothing is silently rounded.
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > decimals {
        return Err(bad());
    }
    if num.contains('.') && frac.is_empty() {
        return Err(bad());
    }
    let v = alloy::primitives::utils::parse_units(num, unit).map_err(|_| bad())?;
    Ok(v.get_absolute())
}

/// Formats wei as ether for people (`1.5 ETH`).
pub fn format_eth(wei: U256) -> String {
    let s = alloy::primitives::utils::format_ether(wei);
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s} ETH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_with_units_and_refuse_garbage() {
        assert_eq!(parse_amount("1000").unwrap(), U256::from(1000u64));
        assert_eq!(parse_amount("3wei").unwrap(), U256::from(3u64));
        assert_eq!(
            parse_amount("20 gwei").unwrap(),
            U256::from(20_000_000_000u64)
        );
        assert_eq!(
            parse_amount("1.5ether").unwrap(),
            U256::from(1_500_000_000_000_000_000u64)
        );
        assert_eq!(
            parse_amount("2ETH").unwrap(),
            parse_amount("2ether").unwrap()
        );
        for bad in [
            "",
            "ether",
            "-1",
            "1.5",
            "1btc",
            "1e18",
            "0x10",
            "1.gwei",
            ".5ether",
            "1.0000000001gwei",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ether_is_shown_without_trailing_zeros() {
        assert_eq!(format_eth(parse_amount("2ether").unwrap()), "2 ETH");
        assert_eq!(format_eth(parse_amount("0.1ether").unwrap()), "0.1 ETH");
        assert_eq!(format_eth(U256::from(1u64)), "0.000000000000000001 ETH");
        assert_eq!(format_eth(U256::ZERO), "0 ETH");
    }

    #[test]
    fn batch_word_is_packed_big_endian() {
        let root = [7u8; 32];
        let mut packed = root.to_vec();
        packed.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        packed.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        assert_eq!(batch_word(&root, 5, 1_700_000_000), keccak256(&packed).0);
    }

    #[test]
    fn addresses_parse_strictly() {
        let a = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert_eq!(
            lower_hex(&parse_address(a).unwrap()),
            a.to_ascii_lowercase()
        );
        assert!(parse_address(&a[2..]).is_err());
        assert!(parse_address(&a[..41]).is_err());
        assert!(parse_address("0xzz9fd6e51aad88f6f4ce6ab8827279cfffb92266").is_err());
    }
}
