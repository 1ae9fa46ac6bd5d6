//! The on-chain CLI commands: `sworn anchor`, `sworn proof`, `sworn challenge ...`,
//! `sworn registry ...`, and the chain half of `sworn verify --rpc`. `docs/anchoring.md`
//! section 9.5 walks through them.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, Bytes, FixedBytes, U256};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sworn_attest::anchor::{AnchorProof, AnchoredTranscript};
use sworn_attest::{hexser, PublicKey, Transcript};

use super::anchoring::anchor_store;
use super::bindings::SwornRegistry;
use super::client::{
    claim, decode_error, event, format_eth, lower_hex, parse_address, parse_amount, Chain,
};
use super::onchain::{check, load_bundle, proof_from_store};
use super::verdict::SignedVerdict;
use super::wallet;
use crate::server::anchor_log::RegistryRef;
use crate::server::store::Store;

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

#[derive(Subcommand)]
pub enum ChallengeCommand {
    /// Slash an operator that anchored two different outputs for the same input. Takes two
    /// bundles from `sworn proof` (or proof files).
    Equivocation(EquivocationArgs),
    /// Dispute an anchored transcript's output, posting the dispute bond. With --model, the
    /// transcript is replayed first and the correct output computed.
    Dispute(DisputeArgs),
    /// As a committee verifier: replay a disputed transcript and sign the verdict.
    Verdict(VerdictArgs),
    /// Submit the committee's verdicts on a dispute.
    Resolve(ResolveArgs),
    /// Close a dispute nobody ruled on in time (the challenger's bond is returned).
    Expire(DisputeIdArgs),
    /// Show a dispute.
    Show(DisputeIdArgs),
}

#[derive(Args)]
pub struct EquivocationArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    pub first: PathBuf,
    pub second: PathBuf,
}

#[derive(Args)]
pub struct DisputeArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The anchored transcript (a bundle from `sworn proof`).
    pub bundle: PathBuf,
    /// The output commitment you say is right (64 hex digits); without it, the model is replayed.
    #[arg(long)]
    pub claimed_output: Option<String>,
    #[command(flatten)]
    pub replay: ReplayModel,
}

/// The model a dispute or verdict replays on.
#[derive(Args)]
pub struct ReplayModel {
    /// The model to replay on [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Kernel threads for the replay [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct VerdictArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The dispute's id.
    #[arg(long)]
    pub dispute: u64,
    /// The disputed transcript (a bundle, or the transcript file).
    pub bundle: PathBuf,
    #[command(flatten)]
    pub replay: ReplayModel,
    /// Write the signed verdict here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The dispute's id.
    #[arg(long)]
    pub dispute: u64,
    /// Signed verdict files (`sworn challenge verdict --out`).
    #[arg(required = true)]
    pub verdicts: Vec<PathBuf>,
}

#[derive(Args)]
pub struct DisputeIdArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The dispute's id.
    #[arg(long)]
    pub dispute: u64,
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Deploy a SwornRegistry (from the committed artifact); prints its address.
    Deploy(DeployArgs),
    /// Register the wallet as an operator with its Ed25519 transcript key and a bond.
    Register(RegisterArgs),
    /// Show the registry's parameters and an operator's record.
    Info(InfoArgs),
    /// Add to the wallet's bond.
    AddBond(AmountArgs),
    /// Start leaving: no more anchoring; the bond is released after the unbonding delay.
    Exit(WalletArgs),
    /// Finish leaving: credit the bond for `withdraw`.
    WithdrawBond(WalletArgs),
    /// Send the wallet everything credited to it (bonds, rewards).
    Withdraw(WalletArgs),
}

#[derive(Args)]
pub struct DeployArgs {
    /// JSON-RPC endpoint.
    #[arg(long, env = "SWORN_RPC_URL")]
    pub rpc: String,
    /// File holding the deployer's private key [default: $SWORN_WALLET_KEY].
    #[arg(long)]
    pub wallet: Option<PathBuf>,
    /// A committee verifier's address (repeat for each).
    #[arg(long = "verifier", required = true)]
    pub verifiers: Vec<String>,
    /// Matching verdicts needed (more than half of the verifiers).
    #[arg(long)]
    pub threshold: u64,
    /// Smallest operator bond.
    #[arg(long, default_value = "1ether")]
    pub min_bond: String,
    /// Exact bond of a wrong-result dispute.
    #[arg(long, default_value = "0.1ether")]
    pub dispute_bond: String,
    /// Seconds a batch can be challenged after anchoring.
    #[arg(long, default_value_t = 86_400)]
    pub challenge_window: u64,
    /// Seconds the committee has for a verdict.
    #[arg(long, default_value_t = 86_400)]
    pub verdict_window: u64,
    /// Seconds from an exit request to the bond's release (at least the two windows).
    #[arg(long, default_value_t = 3 * 86_400)]
    pub unbonding_delay: u64,
}

#[derive(Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The bond, e.g. 1.5ether.
    #[arg(long)]
    pub bond: String,
    /// The operator's Ed25519 key, whose public half is registered [default: DATA_DIR/operator.key].
    #[arg(long)]
    pub key: Option<PathBuf>,
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The operator to show [default: the wallet's address].
    #[arg(long)]
    pub operator: Option<String>,
}

#[derive(Args)]
pub struct AmountArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// How much, e.g. 0.5ether.
    pub amount: String,
}

#[derive(Args)]
pub struct WalletArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
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

fn open_store(data_dir: &Path) -> Result<Store> {
    let path = data_dir.join("sworn.db");
    if !path.exists() {
        bail!(
            "no transcript store at {} (wrong --data-dir?)",
            path.display()
        );
    }
    Ok(Store::open(&path)?)
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

fn read_limited(p: &Path) -> Result<Vec<u8>> {
    let limit = sworn_attest::Limits::default().max_bytes as u64 + 64 * 1024;
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

/// Reads a file holding a bundle or a bare proof.
fn read_proof(p: &Path) -> Result<AnchorProof> {
    let bytes = read_limited(p)?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{}", p.display()))?;
    if let Some(b) = AnchoredTranscript::parse(text, sworn_attest::Limits::default())
        .with_context(|| format!("{}", p.display()))?
    {
        return Ok(b.anchor);
    }
    serde_json::from_str(text).with_context(|| format!("{}: not a bundle or proof", p.display()))
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

fn check_same_registry(chain: &Chain, p: &AnchorProof) -> Result<()> {
    if p.chain_id != chain.chain_id || !p.registry.eq_ignore_ascii_case(&chain.registry_hex()) {
        bail!(
            "the proof is for registry {} on chain {}, not {} on chain {}",
            p.registry,
            p.chain_id,
            chain.registry_hex(),
            chain.chain_id
        );
    }
    Ok(())
}

/// `sworn anchor`.
pub fn anchor(a: AnchorArgs, paths: &Paths) -> Result<i32> {
    let data_dir = a.data_dir.clone().unwrap_or_else(|| paths.data_dir.clone());
    let store = open_store(&data_dir)?;
    let key = public_key(a.key.as_deref().unwrap_or(&paths.default_key))?;
    let _lock = super::anchoring::lock_anchoring(&data_dir)?;
    runtime()?.block_on(async {
        let chain = a.chain.connect(true).await?;
        let run = anchor_store(&chain, &store, &key, a.max_batch).await?;
        let reg = RegistryRef {
            chain_id: chain.chain_id,
            registry: chain.registry_hex(),
        };
        let left = store.unanchored_count(&reg)?;
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
    let store = open_store(&data_dir)?;
    let reg = match (&a.registry, a.chain_id) {
        (Some(r), Some(c)) => Some(RegistryRef {
            chain_id: c,
            registry: lower_hex(&parse_address(r)?),
        }),
        _ => None,
    };
    let b = proof_from_store(&store, &a.id, reg.as_ref())?;
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

/// `sworn challenge ...`.
pub fn challenge(cmd: ChallengeCommand) -> Result<i32> {
    let rt = runtime()?;
    match cmd {
        ChallengeCommand::Equivocation(a) => rt.block_on(equivocation(a)),
        ChallengeCommand::Dispute(a) => rt.block_on(dispute(a)),
        ChallengeCommand::Verdict(a) => rt.block_on(verdict(a)),
        ChallengeCommand::Resolve(a) => rt.block_on(resolve(a)),
        ChallengeCommand::Expire(a) => rt.block_on(expire(a)),
        ChallengeCommand::Show(a) => rt.block_on(show(a)),
    }
}

async fn equivocation(a: EquivocationArgs) -> Result<i32> {
    let (p, q) = (read_proof(&a.first)?, read_proof(&a.second)?);
    if !p.operator.eq_ignore_ascii_case(&q.operator) {
        bail!(
            "the two transcripts were anchored by different operators ({} and {})",
            p.operator,
            q.operator
        );
    }
    let (c, d) = (&p.commitments, &q.commitments);
    if c.model != d.model || c.request != d.request {
        bail!("not an equivocation: the model or request commitments differ (different inputs)");
    }
    if c.output == d.output {
        bail!("not an equivocation: both transcripts have the same output");
    }
    for (x, f) in [(&p, &a.first), (&q, &a.second)] {
        if !x.verifies() {
            bail!(
                "{}: the inclusion proof does not give its root",
                f.display()
            );
        }
    }
    let chain = a.chain.connect(true).await?;
    check_same_registry(&chain, &p)?;
    check_same_registry(&chain, &q)?;
    let operator = parse_address(&p.operator)?;
    let receipt = chain
        .send(
            "challenging the equivocation",
            chain
                .registry
                .challengeEquivocation(operator, claim(&p), claim(&q)),
        )
        .await?;
    let ev = event::<SwornRegistry::OperatorSlashed>(&receipt, chain.registry.address())?;
    println!(
        "slashed operator {}: {} credited to {} (collect it with `sworn registry withdraw`)",
        lower_hex(&ev.operator),
        format_eth(ev.amount),
        lower_hex(&ev.beneficiary)
    );
    Ok(0)
}

/// Loads the engine, replays `t` and regenerates its completion: whether the anchored output is
/// the one the model gives for the request (what a dispute is decided on), and that output's
/// commitment.
fn honest_output(t: &Transcript, r: &ReplayModel) -> Result<(bool, [u8; 32])> {
    let model = r
        .model
        .clone()
        .unwrap_or_else(sworn_engine::default_model_path);
    let threads = r
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = sworn_engine::EngineOptions {
        threads,
        ..Default::default()
    };
    let m = sworn_engine::commit::manifest(&model)
        .with_context(|| format!("hashing {}", model.display()))?;
    let engine = sworn_engine::Engine::load(&model, &opts)
        .with_context(|| format!("loading {}", model.display()))?;
    let report = sworn_verifier::replay::replay_with(t, &engine, m.clone())?;
    if !report.model_mismatches.is_empty() {
        bail!(
            "{} is not the model the transcript commits to ({})",
            model.display(),
            report.reason()
        );
    }
    let out = sworn_verifier::replay::regenerate(t, &engine, &m)?;
    let commitment = out.commitment();
    let right = commitment == t.output.commitment();
    // A transcript the teacher-forced replay accepts must regenerate to the same output.
    if report.ok() && !right {
        bail!("replay accepts the transcript but regeneration differs (an engine bug)");
    }
    if !report.ok() {
        eprintln!("replay: {}", report.reason());
    }
    Ok((right, commitment))
}

async fn dispute(a: DisputeArgs) -> Result<i32> {
    let b = read_bundle(&a.bundle)?;
    let claimed: [u8; 32] = match &a.claimed_output {
        Some(h) => hexser::decode::<32>(h.trim_start_matches("0x"))
            .map_err(|e| anyhow::anyhow!("--claimed-output: {e}"))?,
        None => {
            let (ok, honest) = honest_output(&b.transcript, &a.replay)?;
            if ok {
                println!("the model gives exactly the anchored output: nothing to dispute");
                return Ok(1);
            }
            honest
        }
    };
    let chain = a.chain.connect(true).await?;
    check_same_registry(&chain, &b.anchor)?;
    let operator = parse_address(&b.anchor.operator)?;
    let bond = chain
        .registry
        .disputeBond()
        .call()
        .await
        .map_err(|e| decode_error("reading the dispute bond", e))?;
    let receipt = chain
        .send(
            "opening the dispute",
            chain
                .registry
                .openDispute(operator, claim(&b.anchor), FixedBytes(claimed))
                .value(bond),
        )
        .await?;
    let ev = event::<SwornRegistry::DisputeOpened>(&receipt, chain.registry.address())?;
    println!(
        "opened dispute {} against {} (bond {}): claimed output {}, verdicts due by {}",
        ev.dispute,
        lower_hex(&operator),
        format_eth(bond),
        hexser::encode(&claimed),
        ev.deadline
    );
    Ok(0)
}

async fn verdict(a: VerdictArgs) -> Result<i32> {
    let bytes = read_limited(&a.bundle)?;
    let (t, _) = load_bundle(&bytes, None)?;
    let chain = a.chain.connect(true).await?;
    let me = chain.sender("signing a verdict")?;
    let d = dispute_info(&chain, a.dispute).await?;
    if d.state != 1 {
        bail!("dispute {} is not open (state {})", a.dispute, d.state);
    }
    if d.digest.0 != t.digest() {
        bail!(
            "dispute {} is about transcript {}, not this one ({})",
            a.dispute,
            hexser::encode(&d.digest.0),
            hexser::encode(&t.digest())
        );
    }
    let is_verifier = chain
        .registry
        .isVerifier(me)
        .call()
        .await
        .map_err(|e| decode_error("reading the committee", e))?;
    if !is_verifier {
        bail!(
            "{} is not in the registry's verifier committee",
            lower_hex(&me)
        );
    }
    let (ok, honest) = honest_output(&t, &a.replay)?;
    let w = wallet::load(a.chain.wallet.as_deref())?;
    let v = SignedVerdict::sign(
        &w,
        chain.chain_id,
        *chain.registry.address(),
        a.dispute,
        d.digest.0,
        honest,
    )?;
    // Our hash must be the contract's: a mismatch would make the verdict useless.
    let onchain = chain
        .registry
        .verdictHash(U256::from(a.dispute), d.digest, FixedBytes(honest))
        .call()
        .await
        .map_err(|e| decode_error("reading the verdict hash", e))?;
    let mine = super::verdict::signing_hash(
        chain.chain_id,
        *chain.registry.address(),
        a.dispute,
        d.digest.0,
        honest,
    );
    if onchain.0 != mine {
        bail!("the registry's verdict hash differs from this client's (wrong contract?)");
    }
    eprintln!(
        "verdict on dispute {}: the transcript is {}",
        a.dispute,
        if ok {
            "right (the model gives exactly its output)"
        } else {
            "wrong"
        }
    );
    write_or_print(a.out.as_deref(), &serde_json::to_string_pretty(&v)?)?;
    Ok(0)
}

async fn resolve(a: ResolveArgs) -> Result<i32> {
    let mut verdicts = Vec::new();
    for f in &a.verdicts {
        let text = String::from_utf8(read_limited(f)?)?;
        let v: SignedVerdict =
            serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?;
        let who = v.recover().with_context(|| format!("{}", f.display()))?;
        verdicts.push((who, v));
    }
    let first = verdicts[0].1.clone();
    for (_, v) in &verdicts {
        if v.dispute != a.dispute {
            bail!("a verdict is for dispute {}, not {}", v.dispute, a.dispute);
        }
        if v.replayed_output != first.replayed_output
            || v.digest != first.digest
            || v.chain_id != first.chain_id
            || v.registry != first.registry
        {
            bail!("the verdicts do not agree: resolve with matching verdicts only");
        }
    }
    // The contract wants each signer once, in ascending address order.
    verdicts.sort_by_key(|(who, _)| *who);
    verdicts.dedup_by_key(|(who, _)| *who);
    let chain = a.chain.connect(true).await?;
    if first.chain_id != chain.chain_id
        || !first.registry.eq_ignore_ascii_case(&chain.registry_hex())
    {
        bail!("the verdicts are for another chain or registry");
    }
    let sigs: Vec<Bytes> = verdicts
        .iter()
        .map(|(_, v)| Bytes::copy_from_slice(&v.signature))
        .collect();
    let receipt = chain
        .send(
            "resolving the dispute",
            chain.registry.resolveDispute(
                U256::from(a.dispute),
                FixedBytes(first.replayed_output),
                sigs,
            ),
        )
        .await?;
    let ev = event::<SwornRegistry::DisputeResolved>(&receipt, chain.registry.address())?;
    let who = if ev.state == 2 {
        "the challenger won: the operator is slashed"
    } else {
        "the operator won: the challenger's bond goes to it"
    };
    println!("dispute {} resolved: {who}", a.dispute);
    Ok(0)
}

async fn expire(a: DisputeIdArgs) -> Result<i32> {
    let chain = a.chain.connect(true).await?;
    chain
        .send(
            "expiring the dispute",
            chain.registry.expireDispute(U256::from(a.dispute)),
        )
        .await?;
    println!(
        "dispute {} expired: the challenger's bond is credited back",
        a.dispute
    );
    Ok(0)
}

async fn dispute_info(chain: &Chain, id: u64) -> Result<SwornRegistry::Dispute> {
    Ok(chain
        .registry
        .disputeInfo(U256::from(id))
        .call()
        .await
        .map_err(|e| decode_error("reading the dispute", e))?)
}

async fn show(a: DisputeIdArgs) -> Result<i32> {
    let chain = a.chain.connect(false).await?;
    let d = dispute_info(&chain, a.dispute).await?;
    let state = ["none", "open", "challenger-won", "operator-won", "expired"]
        .get(d.state as usize)
        .copied()
        .unwrap_or("unknown");
    println!(
        "{}",
        serde_json::json!({
            "dispute": a.dispute, "state": state, "challenger": lower_hex(&d.challenger),
            "operator": lower_hex(&d.operator), "bond_wei": d.bond.to_string(),
            "deadline": d.deadline, "digest": hexser::encode(&d.digest.0),
            "output": hexser::encode(&d.output.0),
        })
    );
    Ok(0)
}

/// `sworn registry ...`.
pub fn registry(cmd: RegistryCommand, paths: &Paths) -> Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            RegistryCommand::Deploy(a) => deploy(a).await,
            RegistryCommand::Register(a) => {
                let key = public_key(a.key.as_deref().unwrap_or(&paths.default_key))?;
                let bond = parse_amount(&a.bond)?;
                let chain = a.chain.connect(true).await?;
                chain
                    .send(
                        "registering",
                        chain
                            .registry
                            .register(FixedBytes(key.to_bytes()))
                            .value(bond),
                    )
                    .await?;
                println!(
                    "registered operator {} with Ed25519 key {} and a bond of {}",
                    lower_hex(&chain.sender("registering")?),
                    key.to_hex(),
                    format_eth(bond)
                );
                Ok(0)
            }
            RegistryCommand::Info(a) => info(a).await,
            RegistryCommand::AddBond(a) => {
                let amount = parse_amount(&a.amount)?;
                let chain = a.chain.connect(true).await?;
                chain
                    .send("adding bond", chain.registry.addBond().value(amount))
                    .await?;
                println!("added {} to the bond", format_eth(amount));
                Ok(0)
            }
            RegistryCommand::Exit(a) => {
                let chain = a.chain.connect(true).await?;
                let r = chain
                    .send("requesting exit", chain.registry.requestExit())
                    .await?;
                let ev = event::<SwornRegistry::ExitRequested>(&r, chain.registry.address())?;
                println!(
                    "exit requested: the bond can be withdrawn from {}",
                    ev.exitAt
                );
                Ok(0)
            }
            RegistryCommand::WithdrawBond(a) => {
                let chain = a.chain.connect(true).await?;
                chain
                    .send("withdrawing the bond", chain.registry.withdrawBond())
                    .await?;
                println!("bond credited: collect it with `sworn registry withdraw`");
                Ok(0)
            }
            RegistryCommand::Withdraw(a) => {
                let chain = a.chain.connect(true).await?;
                let r = chain.send("withdrawing", chain.registry.withdraw()).await?;
                let ev = event::<SwornRegistry::Withdrawn>(&r, chain.registry.address())?;
                println!("withdrew {}", format_eth(ev.amount));
                Ok(0)
            }
        }
    })
}

async fn deploy(a: DeployArgs) -> Result<i32> {
    let w = wallet::load(a.wallet.as_deref())?;
    let chain = Chain::connect(&a.rpc, None, Some(w)).await?;
    let verifiers = a
        .verifiers
        .iter()
        .map(|v| parse_address(v))
        .collect::<Result<Vec<Address>, _>>()?;
    let min_bond = parse_amount(&a.min_bond)?;
    let dispute_bond = parse_amount(&a.dispute_bond)?;
    let builder = SwornRegistry::deploy_builder(
        chain.provider.clone(),
        min_bond,
        dispute_bond,
        a.challenge_window,
        a.verdict_window,
        a.unbonding_delay,
        verifiers,
        U256::from(a.threshold),
    );
    let address = builder
        .deploy()
        .await
        .map_err(|e| decode_error("deploying the registry", e))?;
    println!("{}", lower_hex(&address));
    Ok(0)
}

async fn info(a: InfoArgs) -> Result<i32> {
    let chain = a.chain.connect(false).await?;
    let operator = match &a.operator {
        Some(o) => parse_address(o)?,
        None => chain.sender("showing the wallet's record (or give --operator)")?,
    };
    let r = &chain.registry;
    let err = |what: &'static str| move |e| decode_error(what, e);
    let op = r
        .operatorInfo(operator)
        .call()
        .await
        .map_err(err("operatorInfo"))?;
    let credits = r.credits(operator).call().await.map_err(err("credits"))?;
    let v = serde_json::json!({
        "chain_id": chain.chain_id,
        "registry": chain.registry_hex(),
        "min_bond_wei": r.minBond().call().await.map_err(err("minBond"))?.to_string(),
        "dispute_bond_wei": r.disputeBond().call().await.map_err(err("disputeBond"))?.to_string(),
        "challenge_window": r.challengeWindow().call().await.map_err(err("challengeWindow"))?,
        "verdict_window": r.verdictWindow().call().await.map_err(err("verdictWindow"))?,
        "unbonding_delay": r.unbondingDelay().call().await.map_err(err("unbondingDelay"))?,
        "threshold": r.threshold().call().await.map_err(err("threshold"))?.to_string(),
        "verifiers": r.verifierCount().call().await.map_err(err("verifierCount"))?.to_string(),
        "disputes": r.disputeCount().call().await.map_err(err("disputeCount"))?.to_string(),
        "operator": {
            "address": lower_hex(&operator),
            "bond_wei": op.bond.to_string(),
            "active": op.active,
            "slashed": op.slashed,
            "exit_at": op.exitAt,
            "open_disputes": op.openDisputes,
            "ed25519_key": hexser::encode(&op.ed25519Key.0),
            "batches": op.batches,
            "log_size": op.logSize,
            "last_anchor_at": op.lastAnchorAt,
            "credits_wei": credits.to_string(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
