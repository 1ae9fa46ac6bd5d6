//! `sworn challenge ...`: equivocation, wrong-result disputes, committee verdicts.

use std::path::PathBuf;

use alloy::primitives::{keccak256, Address, Bytes, FixedBytes, B256, U256};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sworn_attest::{hexser, Transcript};

use super::{read_bundle, read_limited, read_proof, runtime, write_or_print, ChainArgs};
use crate::chain::bindings::SwornRegistry;
use crate::chain::client::{
    claim, decode_error, event, format_eth, lower_hex, parse_address, random_salt, Chain,
};
use crate::chain::onchain::load_bundle;
use crate::chain::verdict::SignedVerdict;

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

impl ReplayModel {
    /// The model file: `--model`, or the cached default.
    pub fn path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(sworn_engine::default_model_path)
    }

    /// The kernel threads: `--threads`, or every core.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
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
    chain.check_proof_registry(&p)?;
    chain.check_proof_registry(&q)?;
    let operator = parse_address(&p.operator)?;
    let reporter = chain.sender("reporting the equivocation")?;
    // Commit, then reveal in a later block: the commitment names this wallet and hides the
    // report behind a random salt, so a copy of either transaction pays its copier nothing.
    let salt = random_salt()?;
    let (da, db) = (FixedBytes(p.digest()), FixedBytes(q.digest()));
    let commitment = commitment_of(reporter, operator, da, db, salt);
    let onchain = chain
        .registry
        .equivocationCommitment(reporter, operator, da, db, salt)
        .call()
        .await
        .map_err(|e| decode_error("computing the report's commitment", e))?;
    if onchain != commitment {
        bail!("the registry computes another report commitment than sworn: wrong contract?");
    }
    chain
        .send(
            "committing to the equivocation report",
            chain.registry.commitEquivocation(commitment),
        )
        .await?;
    let receipt = chain
        .send(
            "revealing the equivocation report",
            chain
                .registry
                .challengeEquivocation(operator, claim(&p), claim(&q), salt),
        )
        .await?;
    let ev = event::<SwornRegistry::OperatorSlashed>(&receipt, chain.registry.address())?;
    let reward = receipt
        .logs()
        .iter()
        .filter(|l| l.address() == *chain.registry.address())
        .filter_map(|l| l.log_decode::<SwornRegistry::Credited>().ok())
        .find(|l| l.inner.data.account == reporter)
        .map(|l| l.inner.data.amount);
    match reward {
        Some(r) => println!(
            "slashed operator {} (bond {}): {} credited to {} (collect it with `sworn registry withdraw`)",
            lower_hex(&ev.operator),
            format_eth(ev.amount),
            format_eth(r),
            lower_hex(&reporter)
        ),
        None => println!(
            "slashed operator {} (bond {}): disputes against it were open, so the reward waits \
             for them; it is credited to {} if none of them is won",
            lower_hex(&ev.operator),
            format_eth(ev.amount),
            lower_hex(&reporter)
        ),
    }
    Ok(0)
}

/// `keccak256(abi.encode(sender, operator, a, b, salt))`: the contract's
/// `equivocationCommitment` (a, b: the two digests) and `disputeCommitment` (a: the digest, b:
/// the claimed output), computed here so a wrong contract is noticed before anything is sent.
fn commitment_of(sender: Address, operator: Address, a: B256, b: B256, salt: B256) -> B256 {
    use alloy::sol_types::SolValue;
    keccak256((sender, operator, a, b, salt).abi_encode())
}

/// Loads the engine, replays `t` and regenerates its completion: whether the anchored output is
/// the one the model gives for the request (what a dispute is decided on), and that output's
/// commitment.
fn honest_output(t: &Transcript, r: &ReplayModel) -> Result<(bool, [u8; 32])> {
    let model = r.path();
    let opts = sworn_engine::EngineOptions {
        threads: r.threads(),
        ..Default::default()
    };
    let (engine, m) = sworn_engine::Engine::load_with_manifest(&model, &opts)
        .with_context(|| format!("loading and hashing {}", model.display()))?;
    let report = sworn_verifier::replay::replay_with(t, &engine, m.clone())?;
    if !report.model_mismatches.is_empty() {
        bail!(
            "{} is not the model the transcript commits to ({})",
            model.display(),
            report.reason()
        );
    }
    let out = sworn_verifier::replay::regenerate(t, &engine, &m)?;
    // In the transcript's own format: the contract compares with the anchored output commitment.
    let commitment = out.commitment(t.version);
    let right = commitment == t.commitments().output;
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
    chain.check_proof_registry(&b.anchor)?;
    let operator = parse_address(&b.anchor.operator)?;
    let bond = chain
        .registry
        .disputeBond()
        .call()
        .await
        .map_err(|e| decode_error("reading the dispute bond", e))?;
    // Commit, then open in a later block: the commitment names this wallet and hides which
    // transcript is disputed, so a copy of either transaction cannot take this dispute's place.
    let challenger = chain.sender("opening the dispute")?;
    let salt = random_salt()?;
    let (digest, claimed) = (FixedBytes(b.anchor.digest()), FixedBytes(claimed));
    let commitment = commitment_of(challenger, operator, digest, claimed, salt);
    let onchain = chain
        .registry
        .disputeCommitment(challenger, operator, digest, claimed, salt)
        .call()
        .await
        .map_err(|e| decode_error("computing the dispute's commitment", e))?;
    if onchain != commitment {
        bail!("the registry computes another dispute commitment than sworn: wrong contract?");
    }
    chain
        .send(
            "committing to the dispute",
            chain.registry.commitDispute(commitment),
        )
        .await?;
    let receipt = chain
        .send(
            "opening the dispute",
            chain
                .registry
                .openDispute(operator, claim(&b.anchor), claimed, salt)
                .value(bond),
        )
        .await?;
    let ev = event::<SwornRegistry::DisputeOpened>(&receipt, chain.registry.address())?;
    println!(
        "opened dispute {} against {} (bond {}): claimed output {}, verdicts due by {}",
        ev.dispute,
        lower_hex(&operator),
        format_eth(bond),
        hexser::encode(&claimed.0),
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
    let v = SignedVerdict::sign(
        chain.signer("signing a verdict")?,
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
    let mine = crate::chain::verdict::signing_hash(
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
        let v: SignedVerdict = sworn_attest::strict_json::from_str(&text)
            .with_context(|| format!("{}", f.display()))?;
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
    if !chain.is_registry(first.chain_id, &first.registry) {
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
