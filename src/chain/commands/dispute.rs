//! `sworn dispute ...`: the trustless dispute game's players (`docs/dispute.md` §6). A
//! challenger opens a game on an anchored transcript its replay disagrees with and plays it;
//! the operator answers and plays its side; both run to the game's end, ending it themselves
//! when the other side misses a deadline.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use sworn_attest::hexser;

use super::challenge::ReplayModel;
use super::{read_bundle, runtime, ChainArgs};
use crate::chain::bindings::game::SwornGame;
use crate::chain::client::{format_eth, lower_hex, parse_address};
use crate::chain::dispute::{game_of, open, Outcome, Phase, Player, Side};

#[derive(Subcommand)]
pub enum DisputeCommand {
    /// As a challenger: replay an anchored transcript with the tracing backend, open a game at
    /// the first output token the replay disagrees with (posting the game's bond), and play it
    /// to the end. Exit 0 when the challenger wins, 1 when it loses or nothing is wrong.
    Open(OpenArgs),
    /// As the operator: defend a transcript in a game opened against it, playing to the end
    /// (or, as `play`, resume either side of a game). Exit 0 when this side wins, 1 when it
    /// loses.
    #[command(alias = "play")]
    Respond(RespondArgs),
    /// Show a game, or the games opened against an operator.
    Status(StatusArgs),
    /// As the operator: watch for games opened against this wallet and defend each one with
    /// its transcript (from the node's store, or a folder of bundles), until stopped; with
    /// `--once`, until the games found have ended. Exit 1 if any was lost.
    Watch(WatchArgs),
}

/// The model the players trace on, and how they wait.
#[derive(Args)]
pub struct PlayArgs {
    #[command(flatten)]
    pub replay: ReplayModel,
    /// Seconds between looks at the game while it waits for the other side.
    #[arg(long, default_value_t = 2.0)]
    pub poll: f64,
}

impl PlayArgs {
    fn side(&self, t: &sworn_attest::Transcript) -> Result<Side> {
        Side::honest(t, &self.replay.path(), self.replay.threads())
    }

    fn poll(&self) -> Result<Duration> {
        Duration::try_from_secs_f64(self.poll)
            .map_err(|_| anyhow::anyhow!("--poll {}: not a number of seconds", self.poll))
    }
}

#[derive(Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The anchored transcript (a bundle from `sworn proof`).
    pub bundle: PathBuf,
    #[command(flatten)]
    pub play: PlayArgs,
    /// Open the game and stop (play it later with `sworn dispute play --game ID BUNDLE`).
    #[arg(long)]
    pub no_play: bool,
}

#[derive(Args)]
pub struct RespondArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The game's id.
    #[arg(long)]
    pub game: u64,
    /// The disputed transcript (the operator's bundle from `sworn proof`).
    pub bundle: PathBuf,
    #[command(flatten)]
    pub play: PlayArgs,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The game's id.
    #[arg(long, conflicts_with = "operator")]
    pub game: Option<u64>,
    /// List the games opened against this operator (the last week's blocks).
    #[arg(long)]
    pub operator: Option<String>,
}

#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub play: PlayArgs,
    /// The server's data directory, whose transcript store holds the disputed transcripts
    /// [default: DATA_DIR].
    #[arg(long, conflicts_with = "bundles")]
    pub data_dir: Option<PathBuf>,
    /// The server's transcript store, when not DATA_DIR/sworn.db: postgres://USER@HOST:PORT/DB
    /// or sqlite:PATH.
    #[arg(
        long,
        env = "SWORN_STORE",
        hide_env_values = true,
        conflicts_with = "bundles"
    )]
    pub store: Option<String>,
    /// Take the transcripts from this folder of bundles (`sworn proof` files, `*.json`)
    /// instead of a store.
    #[arg(long)]
    pub bundles: Option<PathBuf>,
    /// Stop once every game found has ended (instead of watching for new ones).
    #[arg(long)]
    pub once: bool,
}

/// `sworn dispute ...`.
pub fn dispute(cmd: DisputeCommand, paths: &super::Paths) -> Result<i32> {
    let rt = runtime()?;
    match cmd {
        DisputeCommand::Open(a) => rt.block_on(open_game(a)),
        DisputeCommand::Respond(a) => rt.block_on(respond(a)),
        DisputeCommand::Status(a) => rt.block_on(status(a)),
        DisputeCommand::Watch(a) => rt.block_on(watch(a, paths)),
    }
}

fn report(id: U256, o: Outcome, challenger: bool) -> i32 {
    let won = o.challenger_won == challenger;
    println!(
        "game {id} ended after {} bisection rounds: the {} won{}",
        o.rounds,
        if o.challenger_won {
            "challenger"
        } else {
            "operator"
        },
        if won {
            " (this side)"
        } else {
            " (the other side)"
        }
    );
    if won {
        0
    } else {
        1
    }
}

async fn open_game(a: OpenArgs) -> Result<i32> {
    let b = read_bundle(&a.bundle)?;
    let side = a.play.side(&b.transcript)?;
    let Some(step) = side.disputed_step() else {
        println!("the replay gives exactly the anchored tokens: nothing to dispute");
        return Ok(1);
    };
    let chain = a.chain.connect(true).await?;
    let id = open(&chain, &side, &b.anchor).await?;
    let game = game_of(&chain).await?;
    println!(
        "opened game {id} against {}: the replay's token at step {step} is {}, the transcript's {}",
        b.anchor.operator,
        side.trace.token(step),
        b.transcript.output.tokens[step]
    );
    if a.no_play {
        return Ok(0);
    }
    let player = Player {
        chain: &chain,
        game,
        id,
        side: &side,
        poll: a.play.poll()?,
    };
    Ok(report(id, player.play().await?, true))
}

async fn respond(a: RespondArgs) -> Result<i32> {
    let b = read_bundle(&a.bundle)?;
    let chain = a.chain.connect(true).await?;
    let game = game_of(&chain).await?;
    let id = U256::from(a.game);
    let g = game
        .gameInfo(id)
        .call()
        .await
        .map_err(|e| crate::chain::client::decode_error("reading the game", e))?;
    if g.phase == 0 {
        bail!("there is no game {id}");
    }
    if g.digest.0 != b.transcript.digest() {
        bail!(
            "game {id} disputes transcript {}, not this bundle's ({})",
            hexser::encode(&g.digest.0),
            hexser::encode(&b.transcript.digest())
        );
    }
    let side = a.play.side(&b.transcript)?;
    let me = chain.sender("playing a game")?;
    if let Some(step) = side.disputed_step().filter(|_| g.operator == me) {
        eprintln!(
            "warning: this model's replay disagrees with the transcript at step {step}: the \
             executor will rule against it"
        );
    }
    let challenger = g.challenger == me;
    let player = Player {
        chain: &chain,
        game,
        id,
        side: &side,
        poll: a.play.poll()?,
    };
    Ok(report(id, player.play().await?, challenger))
}

async fn status(a: StatusArgs) -> Result<i32> {
    let chain = a.chain.connect(false).await?;
    let game = game_of(&chain).await?;
    if let Some(id) = a.game {
        let id = U256::from(id);
        let g = game
            .gameInfo(id)
            .call()
            .await
            .map_err(|e| crate::chain::client::decode_error("reading the game", e))?;
        if g.phase == 0 {
            bail!("there is no game {id}");
        }
        let phase = phase_name(g.phase);
        let v = serde_json::json!({
            "game": id.to_string(),
            "contract": lower_hex(game.address()),
            "phase": phase,
            "operator": lower_hex(&g.operator),
            "challenger": lower_hex(&g.challenger),
            "digest": hexser::encode(&g.digest.0),
            "leaves": g.leaves,
            "rounds": g.rounds,
            "node": [g.lo, g.hi],
            "element": g.element,
            "token": g.token,
            "operator_value": g.opValue,
            "challenger_value": g.chValue,
            "deadline": g.deadline,
            "now": chain.now().await?,
            "bond_wei": game.bond().call().await.map_err(|e| crate::chain::client::decode_error("bond", e))?.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let operator = match &a.operator {
        Some(o) => parse_address(o)?,
        None => bail!("give --game ID or --operator ADDRESS"),
    };
    let logs = games_against(&chain, &game, operator).await?;
    let bond = game
        .bond()
        .call()
        .await
        .map_err(|e| crate::chain::client::decode_error("bond", e))?;
    for (ev, _) in logs {
        let g = game
            .gameInfo(ev.game)
            .call()
            .await
            .map_err(|e| crate::chain::client::decode_error("reading the game", e))?;
        println!(
            "game {}: {} by {} on transcript {} (step {}, bond {}), deadline {}",
            ev.game,
            phase_name(g.phase),
            lower_hex(&ev.challenger),
            hexser::encode(&ev.digest.0),
            ev.step,
            format_eth(bond),
            g.deadline
        );
    }
    Ok(0)
}

/// The `GameOpened` events naming `operator` in the last `LOG_WINDOW` blocks.
async fn games_against(
    chain: &crate::chain::Chain,
    game: &SwornGame::SwornGameInstance<alloy::providers::DynProvider>,
    operator: alloy::primitives::Address,
) -> Result<Vec<(SwornGame::GameOpened, alloy::rpc::types::Log)>> {
    let latest = alloy::providers::Provider::get_block_number(&chain.provider)
        .await
        .map_err(|e| chain.rpc_error(e))?;
    game.GameOpened_filter()
        .topic2(operator)
        .from_block(latest.saturating_sub(crate::chain::client::LOG_WINDOW))
        .query()
        .await
        .map_err(|e| anyhow::anyhow!("reading the game's logs: {e}"))
}

fn phase_name(code: u8) -> &'static str {
    Phase::of(code).map_or("none", Phase::name)
}

/// Where the watcher finds a disputed transcript: the node's store, or a folder of bundles.
enum Transcripts {
    Store(crate::store::Store, crate::store::anchor_log::RegistryRef),
    Bundles(PathBuf),
}

impl Transcripts {
    /// The anchored transcript of `digest`.
    fn find(&self, digest: &[u8; 32]) -> Result<sworn_attest::anchor::AnchoredTranscript> {
        let hex = hexser::encode(digest);
        match self {
            Transcripts::Store(store, reg) => Ok(crate::chain::onchain::proof_from_store(
                store,
                &hex,
                true,
                Some(reg),
            )?),
            Transcripts::Bundles(dir) => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
                for e in entries {
                    let path = e?.path();
                    if path.extension().is_none_or(|x| x != "json") {
                        continue;
                    }
                    // Bundles that do not parse are someone else's files: skipped.
                    match read_bundle(&path) {
                        Ok(b) if b.transcript.digest() == *digest => return Ok(b),
                        _ => continue,
                    }
                }
                bail!("no bundle of transcript {hex} in {}", dir.display())
            }
        }
    }
}

/// `sworn dispute watch`: looks for games against this wallet every `--poll` seconds and plays
/// each it has not seen, concurrently, the tracing on blocking threads.
async fn watch(a: WatchArgs, paths: &super::Paths) -> Result<i32> {
    let chain = std::sync::Arc::new(a.chain.connect(true).await?);
    let me = chain.sender("watching for games")?;
    let game = game_of(&chain).await?;
    let transcripts = match &a.bundles {
        Some(dir) => Transcripts::Bundles(dir.clone()),
        None => {
            let data_dir = a.data_dir.clone().unwrap_or_else(|| paths.data_dir.clone());
            let reg = crate::store::anchor_log::RegistryRef {
                chain_id: chain.chain_id,
                registry: chain.registry_hex(),
            };
            Transcripts::Store(super::open_store(a.store.as_deref(), &data_dir)?, reg)
        }
    };
    let poll = a.play.poll()?;
    let (model, threads) = (a.play.replay.path(), a.play.replay.threads());
    let mut seen = std::collections::BTreeSet::new();
    let mut games = tokio::task::JoinSet::new();
    let mut lost = 0usize;
    tracing::info!(operator = %lower_hex(&me), "watching for dispute games");
    loop {
        let logs = games_against(&chain, &game, me).await?;
        for (ev, _) in logs {
            if !seen.insert(ev.game) {
                continue;
            }
            let g = game
                .gameInfo(ev.game)
                .call()
                .await
                .map_err(|e| crate::chain::client::decode_error("reading the game", e))?;
            if Phase::of(g.phase)?.ended() {
                continue;
            }
            let b = match transcripts.find(&ev.digest.0) {
                Ok(b) => b,
                Err(e) => {
                    // Undefended, this game is lost at its deadline: say so loudly.
                    tracing::error!(game = %ev.game, "cannot defend: {e:#}");
                    eprintln!("game {}: cannot defend it: {e:#}", ev.game);
                    lost += 1;
                    continue;
                }
            };
            let (chain, game, model) = (chain.clone(), game.clone(), model.clone());
            let id = ev.game;
            eprintln!("game {id}: opened against this operator; defending it");
            games.spawn(async move {
                let played = async {
                    let side = tokio::task::spawn_blocking(move || {
                        Side::honest(&b.transcript, &model, threads)
                    })
                    .await??;
                    let player = Player {
                        chain: &chain,
                        game,
                        id,
                        side: &side,
                        poll,
                    };
                    player.play().await
                };
                (id, played.await)
            });
        }
        while let Some(done) = games.try_join_next() {
            match done? {
                (id, Ok(o)) => {
                    if report(id, o, false) != 0 {
                        lost += 1;
                    }
                }
                // A failed player (the node unreachable, say) leaves the game where it was on
                // chain: the next look plays it again, unless this is the last (`--once`).
                (id, Err(e)) => {
                    tracing::error!(game = %id, "the player failed: {e:#}");
                    eprintln!("game {id}: the player failed: {e:#}");
                    if a.once {
                        lost += 1;
                    } else {
                        seen.remove(&id);
                    }
                }
            }
        }
        if a.once && games.is_empty() {
            return Ok(if lost == 0 { 0 } else { 1 });
        }
        tokio::time::sleep(poll).await;
    }
}
