//! `sworn registry ...`: deployment, registration, bonds, withdrawals, and the registry's state.

use std::path::PathBuf;

use alloy::primitives::{Address, Bytes, FixedBytes, U256};
use alloy::providers::Provider;
use anyhow::Result;
use clap::{Args, Subcommand};
use sworn_attest::{hexser, OperatorKey};

use super::{runtime, ChainArgs, Paths};
use crate::chain::bindings::SwornRegistry;
use crate::chain::client::{
    decode_error, event, format_eth, lower_hex, parse_address, parse_amount, Chain,
};
use crate::chain::wallet;

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
    /// The part of the dispute bond that pays the verifiers who rule (burned if nobody does).
    #[arg(long, default_value = "0.01ether")]
    pub dispute_fee: String,
    /// Share of a slashed bond paid as rewards, in basis points (1 to 5000); the rest is burned.
    #[arg(long, default_value_t = 1000)]
    pub reporter_share_bps: u64,
    /// Seconds a batch can be challenged after anchoring.
    #[arg(long, default_value_t = 86_400)]
    pub challenge_window: u64,
    /// Seconds the committee has for a verdict.
    #[arg(long, default_value_t = 86_400)]
    pub verdict_window: u64,
    /// Seconds from an exit request to the bond's release (at least the two windows).
    #[arg(long, default_value_t = 3 * 86_400)]
    pub unbonding_delay: u64,
    /// The trustless dispute game (`SwornGame`, docs/dispute.md), deployed first for this
    /// registry's address; without it the registry has the committee only.
    #[arg(long, conflicts_with = "with_game")]
    pub game: Option<String>,
    /// Deploy the trustless dispute game too: its executor (four contracts), then the game
    /// for this registry's address, then the registry naming it (docs/dispute.md section 6).
    #[arg(long)]
    pub with_game: bool,
    /// With --with-game: the exact bond a challenger posts to open a game.
    #[arg(long, default_value = "0.1ether", requires = "with_game")]
    pub game_bond: String,
    /// With --with-game: seconds each move of a game may take (a party that misses one loses).
    #[arg(long, default_value_t = 3600, requires = "with_game")]
    pub move_window: u64,
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
    /// Where to record the registration for `sworn serve` and `sworn generate` (the server's
    /// --data-dir) [default: DATA_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
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

/// `sworn registry ...`.
pub fn registry(cmd: RegistryCommand, paths: &Paths) -> Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            RegistryCommand::Deploy(a) => deploy(a).await,
            RegistryCommand::Register(a) => register(a, paths).await,
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

/// Registers the wallet with the operator key's public half and a proof that the key holder
/// chose this wallet (the key's signature over chain, registry and address), then records the
/// registration in DATA_DIR so that transcripts signed from now on name it.
async fn register(a: RegisterArgs, paths: &Paths) -> Result<i32> {
    let key_path = a.key.as_deref().unwrap_or(&paths.default_key);
    let key = OperatorKey::load(key_path)?;
    let public = key.public();
    let bond = parse_amount(&a.bond)?;
    let chain = a.chain.connect(true).await?;
    let operator = chain.sender("registering")?;
    let binding = chain.binding(operator);
    let proof = key.sign_binding(&binding);
    chain
        .send(
            "registering",
            chain
                .registry
                .register(FixedBytes(public.to_bytes()), Bytes::from(proof.to_vec()))
                .value(bond),
        )
        .await?;
    let data_dir = a.data_dir.as_deref().unwrap_or(&paths.data_dir);
    crate::attestation::save_binding(data_dir, &binding, &public)?;
    println!(
        "registered operator {} with Ed25519 key {} and a bond of {}; transcripts signed with \
         this key now name it ({})",
        lower_hex(&operator),
        public.to_hex(),
        format_eth(bond),
        crate::attestation::binding_path(data_dir).display()
    );
    Ok(0)
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
    let dispute_fee = parse_amount(&a.dispute_fee)?;
    let game = match (&a.game, a.with_game) {
        (Some(g), _) => parse_address(g)?,
        (None, true) => deploy_game(&chain, &a).await?,
        (None, false) => Address::ZERO,
    };
    let builder = SwornRegistry::deploy_builder(
        chain.provider.clone(),
        min_bond,
        dispute_bond,
        dispute_fee,
        U256::from(a.reporter_share_bps),
        a.challenge_window,
        a.verdict_window,
        a.unbonding_delay,
        verifiers,
        U256::from(a.threshold),
        game,
    );
    let address = builder
        .deploy()
        .await
        .map_err(|e| decode_error("deploying the registry", e))?;
    println!("{}", lower_hex(&address));
    Ok(0)
}

/// Deploys the executor's contracts and a `SwornGame` for the registry the deployer's next
/// transaction will create (the game names its registry, and the registry checks the game
/// names it back); returns the game's address.
async fn deploy_game(chain: &Chain, a: &DeployArgs) -> Result<Address> {
    use crate::chain::bindings::{
        attention_steps, executor, game, sample_steps, table_steps, weight_steps,
    };
    let p = chain.provider.clone();
    let err = |what: &'static str| move |e| decode_error(what, e);
    let attention = attention_steps::SwornAttentionSteps::deploy(p.clone())
        .await
        .map_err(err("deploying the executor's attention steps"))?;
    let weights = weight_steps::SwornWeightSteps::deploy(p.clone())
        .await
        .map_err(err("deploying the executor's weight steps"))?;
    let tables = table_steps::SwornTableSteps::deploy(p.clone())
        .await
        .map_err(err("deploying the executor's table steps"))?;
    let samples = sample_steps::SwornSampleSteps::deploy(p.clone())
        .await
        .map_err(err("deploying the executor's sampled steps"))?;
    let exec = executor::SwornExecutor::deploy(
        p.clone(),
        *attention.address(),
        *weights.address(),
        *tables.address(),
        *samples.address(),
    )
    .await
    .map_err(err("deploying the executor"))?;
    let deployer = chain.sender("deploying")?;
    let nonce = p
        .get_transaction_count(deployer)
        .await
        .map_err(|e| chain.rpc_error(e))?;
    // The game's creation takes `nonce`; the registry's, the next.
    let registry = deployer.create(nonce + 1);
    let g = game::SwornGame::deploy(
        p,
        registry,
        *exec.address(),
        parse_amount(&a.game_bond)?,
        a.move_window,
    )
    .await
    .map_err(err("deploying the dispute game"))?;
    eprintln!(
        "deployed the dispute game {} (executor {}) for registry {}",
        lower_hex(g.address()),
        lower_hex(exec.address()),
        lower_hex(&registry)
    );
    Ok(*g.address())
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
        "dispute_fee_wei": r.disputeFee().call().await.map_err(err("disputeFee"))?.to_string(),
        "reporter_share_bps": r.reporterShareBps().call().await.map_err(err("reporterShareBps"))?.to_string(),
        "burned_wei": r.burned().call().await.map_err(err("burned"))?.to_string(),
        "challenge_window": r.challengeWindow().call().await.map_err(err("challengeWindow"))?,
        "verdict_window": r.verdictWindow().call().await.map_err(err("verdictWindow"))?,
        "unbonding_delay": r.unbondingDelay().call().await.map_err(err("unbondingDelay"))?,
        "threshold": r.threshold().call().await.map_err(err("threshold"))?.to_string(),
        "verifiers": r.verifierCount().call().await.map_err(err("verifierCount"))?.to_string(),
        "disputes": r.disputeCount().call().await.map_err(err("disputeCount"))?.to_string(),
        "game": lower_hex(&r.game().call().await.map_err(err("game"))?),
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
            "epoch_start": op.epochStart,
            "registered_block": op.registeredBlock,
            "credits_wei": credits.to_string(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
