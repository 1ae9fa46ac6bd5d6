//! The on-chain CLI commands: `sworn anchor`, `sworn proof`, `sworn challenge ...`,
//! `sworn registry ...`, and the chain half of `sworn verify --rpc`. `docs/anchoring.md`
//! section 9.5 walks through them.

mod challenge;
mod dispute;
mod registry;

pub use challenge::{challenge, ChallengeCommand};
pub use dispute::{dispute, DisputeCommand};
pub use registry::{registry, RegistryCommand};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use sworn_attest::anchor::{AnchorProof, AnchoredTranscript};
use sworn_attest::{hexser, PublicKey, Transcript};

use super::anchoring::anchor_store;
use super::client::{lower_hex, parse_address, Chain};
use super::onchain::{check, load_bundle, parse_proof, proof_from_store};
use super::wallet;
use crate::store::anchor_log::RegistryRef;
use crate::store::Store;

/// Where the chain is and who signs.
#[derive(Args, Clone)]
pub struct ChainArgs {
    /// JSON-RPC endpoint of an Ethereum node (http or https).
    #[arg(long, env = "SWORN_RPC_URL")]
    pub rpc: String,
    /// The SwornRegistry contract's address.
    #[arg(long, env = "SWORN_REGISTRY")]
    pub registry: String,
    /// File holding the Ethereum private key that signs transactions (mode 0600)
    /// [default: $SWORN_WALLET_KEY].
    #[arg(long)]
    pub wallet: Option<PathBuf>,
}

impl ChainArgs {
    /// Connects; loads the wallet when `with_wallet` or when one was named.
    pub async fn connect(&self, with_wallet: bool) -> Result<Chain> {
        let registry = parse_address(&self.registry)?;
        let w = if with_wallet || self.wallet.is_some() {
            Some(wallet::load(self.wallet.as_deref())?)
        } else {
            None
        };
        Ok(Chain::connect(&self.rpc, Some(registry), w).await?)
    }
}

#[derive(Args)]
pub struct AnchorArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The server's data directory (its transcript store) [default: DATA_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The server's transcript store, when not DATA_DIR/sworn.db: postgres://USER@HOST:PORT/DB
    /// (what the replicas are given) or sqlite:PATH.
    #[arg(long, env = "SWORN_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// The server's operator key, to check the registry holds it [default: DATA_DIR/operator.key].
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Most transcripts per batch (one transaction each; the gas does not depend on the size).
    #[arg(long, default_value_t = 100_000)]
    pub max_batch: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ProofArgs {
    /// The transcript's request id (x-sworn-transcript-id) or digest.
    pub id: String,
    /// The server's data directory [default: DATA_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The server's transcript store, when not DATA_DIR/sworn.db: postgres://USER@HOST:PORT/DB
    /// or sqlite:PATH.
    #[arg(long, env = "SWORN_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// With which registry, when the transcript is anchored with several.
    #[arg(long, requires = "chain_id")]
    pub registry: Option<String>,
    /// That registry's chain id.
    #[arg(long, requires = "registry")]
    pub chain_id: Option<u64>,
    /// Write the bundle (transcript and proof) here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Paths the binary resolves (data directory, default key).
pub struct Paths {
    pub data_dir: PathBuf,
    pub default_key: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Opens an existing store: `--store`, or the data directory's SQLite file.
fn open_store(spec: Option<&str>, data_dir: &Path) -> Result<Store> {
    let location = crate::store::Location::parse(spec, data_dir)?;
    if let crate::store::Location::Sqlite(path) = &location {
        if !path.exists() {
            bail!(
                "no transcript store at {} (wrong --data-dir or --store?)",
                path.display()
            );
        }
    }
    Store::open_at(&location).with_context(|| format!("opening {}", location.describe()))
}

fn public_key(path: &Path) -> Result<PublicKey> {
    Ok(sworn_attest::OperatorKey::load(path)
        .with_context(|| format!("operator key {}", path.display()))?
        .public())
}

fn write_or_print(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Reads a file the user names, refusing one over `limit` bytes before reading it.
pub fn read_file_limited(p: &Path, limit: u64) -> Result<Vec<u8>> {
    let len = std::fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len();
    if len > limit {
        bail!(
            "{} is {len} bytes, over the {limit}-byte limit",
            p.display()
        );
    }
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Reads a transcript, bundle, proof or verdict file: the transcript limit plus room for a proof.
fn read_limited(p: &Path) -> Result<Vec<u8>> {
    read_file_limited(
        p,
        sworn_attest::Limits::default().max_bytes as u64 + 64 * 1024,
    )
}

/// Reads a file holding a bundle or a bare proof.
fn read_proof(p: &Path) -> Result<AnchorProof> {
    let bytes = read_limited(p)?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{}", p.display()))?;
    parse_proof(text).with_context(|| format!("{}", p.display()))
}

fn read_bundle(p: &Path) -> Result<AnchoredTranscript> {
    let bytes = read_limited(p)?;
    match load_bundle(&bytes, None).with_context(|| format!("{}", p.display()))? {
        (t, Some(a)) => Ok(AnchoredTranscript::new(t, a)?),
        (_, None) => bail!(
            "{} is a bare transcript: give the bundle from `sworn proof` (it carries the anchor proof)",
            p.display()
        ),
    }
}

/// `sworn anchor`.
pub fn anchor(a: AnchorArgs, paths: &Paths) -> Result<i32> {
    let data_dir = a.data_dir.clone().unwrap_or_else(|| paths.data_dir.clone());
    let store = open_store(a.store.as_deref(), &data_dir)?;
    let key = public_key(a.key.as_deref().unwrap_or(&paths.default_key))?;
    let Some(lease) = store.anchoring_lease()? else {
        bail!(
            "another `sworn anchor` (or a server anchoring with --anchor-every) is running on {}",
            store.location().describe()
        );
    };
    runtime()?.block_on(async {
        let chain = a.chain.connect(true).await?;
        let run = anchor_store(&chain, &store, &key, a.max_batch, &lease).await?;
        let reg = RegistryRef {
            chain_id: chain.chain_id,
            registry: chain.registry_hex(),
        };
        let left = store.unanchored_count(&reg, &lower_hex(&chain.sender("anchoring")?))?;
        if a.json {
            let batches: Vec<_> = run
                .anchored
                .iter()
                .map(|b| {
                    serde_json::json!({"batch": b.batch, "size": b.size, "root": hexser::encode(&b.root),
                        "anchored_at": b.anchored_at, "tx": b.tx_hash})
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"anchored": batches, "released": run.released, "unanchored": left})
            );
        } else {
            if run.released > 0 {
                println!(
                    "released {} batch(es) an earlier run planned but never anchored",
                    run.released
                );
            }
            for b in &run.anchored {
                println!(
                    "anchored batch {} of {} transcripts, root {} (tx {})",
                    b.batch.unwrap_or_default(),
                    b.size,
                    hexser::encode(&b.root),
                    b.tx_hash.as_deref().unwrap_or("?")
                );
            }
            if run.anchored.is_empty() {
                println!("nothing to anchor");
            }
        }
        Ok(0)
    })
}

/// `sworn proof ID`.
pub fn proof(a: ProofArgs, paths: &Paths) -> Result<i32> {
    let data_dir = a.data_dir.clone().unwrap_or_else(|| paths.data_dir.clone());
    let store = open_store(a.store.as_deref(), &data_dir)?;
    let reg = match (&a.registry, a.chain_id) {
        (Some(r), Some(c)) => Some(RegistryRef {
            chain_id: c,
            registry: lower_hex(&parse_address(r)?),
        }),
        _ => None,
    };
    let b = proof_from_store(&store, &a.id, true, reg.as_ref())?;
    let text = serde_json::to_string_pretty(&b.to_json())?;
    write_or_print(a.out.as_deref(), &text)?;
    Ok(0)
}

/// The chain half of `sworn verify --rpc`: prints the findings; true when valid.
pub fn verify_onchain(
    chain_args: &ChainArgs,
    t: Transcript,
    p: AnchorProof,
    json: bool,
) -> Result<bool> {
    let b = AnchoredTranscript::new(t, p)?;
    runtime()?.block_on(async {
        let chain = chain_args.connect(false).await?;
        let r = check(&chain, &b).await?;
        if json {
            let mut v = serde_json::to_value(&r)?;
            v["digest"] = hexser::encode(&b.transcript.digest()).into();
            v["registry"] = chain.registry_hex().into();
            v["chain_id"] = chain.chain_id.into();
            println!("{v}");
        } else if r.valid {
            println!(
                "valid: anchored by registered operator {} in batch {} (leaf {}) of registry {} on chain {}, signed with its registered key",
                r.operator, r.batch, r.index, chain.registry_hex(), chain.chain_id
            );
            if r.is_final {
                println!("final: the challenge window closed at {}", r.final_at);
            } else {
                println!(
                    "not final yet: challengeable until {} (chain time)",
                    r.final_at
                );
            }
        } else {
            println!(
                "INVALID: {}",
                r.reason.as_deref().unwrap_or("unknown reason")
            );
        }
        Ok(r.valid)
    })
}
