//! The off-chain players of the trustless dispute game (`docs/dispute.md` §6): each side
//! computes its trace of the disputed transcript's replay with the engine's tracing backend,
//! commits to its root, answers the bisection at every level with its own tree's children,
//! reveals the last leaf, and, as the operator, hands the executor the witness of the word in
//! dispute. A player also ends a game whose deadline the other side missed.
//!
//! [`Side`] is what one party knows (its trace, tree, weights and the transcript's binding
//! data); [`Player`] moves for it on chain. The CLI (`sworn dispute ...`,
//! [`super::commands`]) builds honest sides; tests build cheating ones from a corrupted trace.

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{keccak256, Address, Bytes, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolValue;
use anyhow::{bail, Context, Result};
use sworn_attest::anchor::AnchorProof;
use sworn_attest::trace_tree::{split, TraceTree};
use sworn_attest::Transcript;
use sworn_engine::model::{Config, Model};
use sworn_engine::trace::bind::{bind, Binding};
use sworn_engine::trace::weights::{exec_root, exec_words, pack_slots, Weights};
use sworn_engine::trace::witness::witness;
use sworn_engine::trace::{Trace, LEAF};

use super::bindings::executor::SwornExecutor;
use super::bindings::game::{self, SwornGame};
use super::client::{decode_error, event, lower_hex, Chain};

alloy::sol! {
    // The executor's inputs that travel ABI-encoded in `bytes` (so its ABI does not name
    // them): `bind`'s data (SwornExecutor.Binding) and `execute`'s proven leaves and weight rows
    // (SwornStepBase.Leaf, Weight). Field for field as in the contracts; the games on anvil
    // (tests/dispute.rs) fail if they drift.
    struct ExecModel {
        uint256 arch;
        uint256 nLayer;
        uint256 d;
        uint256 nHead;
        uint256 nKv;
        uint256 hd;
        uint256 ff;
        uint256 vocab;
        uint256 window;
        uint256 eps;
        uint256 ropeBase;
        uint256 localBase;
        bytes32 weights;
    }
    struct ModelPreimage {
        bytes32 file;
        bytes32 tensors;
        uint32 nTensors;
        bytes32 tokenizer;
        bytes32 template;
        ExecModel exec;
    }
    struct BindData {
        ModelPreimage model;
        bytes request;
        uint32[] output;
        bytes outputRest;
        bytes slots;
    }
    struct Leaf {
        uint256 index;
        uint32[32] words;
        bytes32[] proof;
    }
    struct Weight {
        uint256 slot;
        uint32 code;
        uint256 rows;
        uint256 cols;
        uint256 row;
        bytes data;
        bytes32[] rowProof;
        bytes32[] slotProof;
    }
}

/// A game's phase (`SwornGame.Phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Respond,
    Bisect,
    Execute,
    ChallengerWon,
    OperatorWon,
}

impl Phase {
    /// The phase of `SwornGame.Phase` `code` (an error for `None`: no such game).
    pub fn of(code: u8) -> Result<Phase> {
        Ok(match code {
            1 => Phase::Respond,
            2 => Phase::Bisect,
            3 => Phase::Execute,
            4 => Phase::ChallengerWon,
            5 => Phase::OperatorWon,
            _ => bail!("no such game (phase {code})"),
        })
    }

    /// The phase's name, as `sworn dispute status` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Respond => "waiting for the operator's root",
            Phase::Bisect => "bisecting",
            Phase::Execute => "waiting for the execution",
            Phase::ChallengerWon => "challenger won",
            Phase::OperatorWon => "operator won",
        }
    }

    /// Whether the game is over.
    pub fn ended(self) -> bool {
        matches!(self, Phase::ChallengerWon | Phase::OperatorWon)
    }
}

/// The most words a player's trace may hold (4 GiB of them; the tree adds a third).
pub const MAX_TRACE_WORDS: u64 = 1 << 30;

/// What one party knows of a disputed transcript: its trace of the replay (its claim of every
/// value), the trace's tree, the model's weights, and the binding of transcript to trace.
pub struct Side {
    pub transcript: Transcript,
    pub trace: Trace,
    pub tree: TraceTree,
    pub weights: Weights,
    pub binding: Binding,
    /// `bind`'s data (`abi.encode(SwornExecutor.Binding)`).
    pub bind_data: Bytes,
}

impl Side {
    /// The honest side: the model at `model_path` replays `t` with the tracing backend. Refuses
    /// a transcript the game does not cover (before format 4, grammar-constrained, a model with
    /// a matrix role float on some layers only) and a model that is not the one `t` commits to.
    pub fn honest(t: &Transcript, model_path: &Path, threads: usize) -> Result<Side> {
        let model = Model::load(model_path, None)
            .with_context(|| format!("loading {}", model_path.display()))?;
        let weights = Weights::load(model_path, &model.cfg)
            .with_context(|| format!("reading the weights of {}", model_path.display()))?;
        check_coverage(t, &model.cfg, &weights)?;
        // The trace grows with the square of the sequence (attention's scores): its size is
        // known from the layout before anything runs, and refused past the bound.
        let leaves = bind(
            &model.cfg,
            &weights.preimages(),
            &t.request.prompt_tokens,
            &t.output.tokens,
            &t.request.sampling,
        )?
        .leaves;
        if leaves.saturating_mul(LEAF as u64) > MAX_TRACE_WORDS {
            bail!(
                "the trace of this transcript would hold {} words, over the {MAX_TRACE_WORDS}-word \
                 bound (4 GiB): too long a sequence to dispute on this machine",
                leaves.saturating_mul(LEAF as u64)
            );
        }
        let rt = sworn_engine::kernels::Runner::new(sworn_engine::kernels::Isa::detect(), threads)?;
        let trace = sworn_engine::trace::trace(
            &model,
            &rt,
            &t.request.prompt_tokens,
            &t.output.tokens,
            &t.request.sampling,
            None,
        )
        .context("tracing the replay")?;
        Side::with_trace(t, &model.cfg, weights, trace)
    }

    /// The side holding `trace` (an honest one, or a test double's) of `t`.
    pub fn with_trace(
        t: &Transcript,
        cfg: &Config,
        weights: Weights,
        trace: Trace,
    ) -> Result<Side> {
        check_coverage(t, cfg, &weights)?;
        let binding = bind(
            cfg,
            &weights.preimages(),
            &t.request.prompt_tokens,
            &t.output.tokens,
            &t.request.sampling,
        )?;
        if trace.layout.leaves() != binding.leaves
            || trace.words.len() as u64 != binding.leaves * LEAF as u64
        {
            bail!("the trace is not laid out for this transcript");
        }
        let bind_data = Bytes::from(bind_data(t, cfg, &weights).abi_encode());
        Ok(Side {
            transcript: t.clone(),
            tree: TraceTree::new(&trace.words),
            trace,
            weights,
            binding,
            bind_data,
        })
    }

    /// The first output step whose token this side's trace disagrees with the transcript on:
    /// what a challenger disputes. None when the trace gives every token of the transcript.
    pub fn disputed_step(&self) -> Option<usize> {
        let out = &self.transcript.output.tokens;
        (0..out.len()).find(|&n| self.trace.token(n) != out[n])
    }

    /// Leaf `i`'s words.
    fn leaf(&self, i: u64) -> [u32; 32] {
        self.trace.leaf(i).try_into().expect("a leaf is 32 words")
    }

    fn proof(&self, i: u64) -> Vec<B256> {
        self.tree.proof(i).into_iter().map(FixedBytes).collect()
    }

    fn node(&self, lo: u64, hi: u64) -> B256 {
        FixedBytes(self.tree.node(lo, hi))
    }
}

/// Refuses what the game does not cover, and a model that is not the transcript's.
fn check_coverage(t: &Transcript, cfg: &Config, weights: &Weights) -> Result<()> {
    let Some(committed) = t.model.exec_root else {
        bail!(
            "this transcript (format {}) has no execution commitment: its disputes go to the \
             committee (`sworn challenge dispute`)",
            t.version
        );
    };
    if t.request.grammar.is_some() {
        bail!("grammar-constrained completions go to the committee (`sworn challenge dispute`)");
    }
    if exec_root(cfg, weights.root()) != committed {
        bail!(
            "the model is not the one the transcript commits to (its execution commitment differs)"
        );
    }
    Ok(())
}

/// `bind`'s data for `t`: its model commitment's preimage, the request's body, the output's
/// tokens, the rest of the output's body and the weight slots' leaf preimages, from which
/// `bind` recomputes the weights root and reads the float matrices (`docs/dispute.md` §6.1).
fn bind_data(t: &Transcript, cfg: &Config, weights: &Weights) -> BindData {
    let c = &t.model;
    let w = exec_words(cfg);
    let n = |i: usize| U256::from(w[i]);
    let body = t.output.body(t.version);
    let tokens = t.output.tokens.len();
    BindData {
        model: ModelPreimage {
            file: FixedBytes(c.file_blake3),
            tensors: FixedBytes(c.tensors_root),
            nTensors: c.n_tensors,
            tokenizer: FixedBytes(c.tokenizer_blake3),
            template: FixedBytes(c.chat_template_blake3),
            exec: ExecModel {
                arch: n(0),
                nLayer: n(1),
                d: n(2),
                nHead: n(3),
                nKv: n(4),
                hd: n(5),
                ff: n(6),
                vocab: n(7),
                window: n(8),
                eps: n(9),
                ropeBase: n(10),
                localBase: n(11),
                weights: FixedBytes(weights.root()),
            },
        },
        request: Bytes::from(t.request.body(t.version)),
        output: t.output.tokens.clone(),
        outputRest: Bytes::from(body[4 + 4 * tokens..].to_vec()),
        slots: Bytes::from(pack_slots(&weights.preimages())),
    }
}

/// The dispute game of the chain's registry; an error when it has none.
pub async fn game_of(chain: &Chain) -> Result<SwornGame::SwornGameInstance<DynProvider>> {
    let address = chain
        .registry
        .game()
        .call()
        .await
        .map_err(|e| decode_error("reading the registry's game", e))?;
    if address == Address::ZERO {
        bail!(
            "registry {} has no dispute game (deployed without --with-game): only the committee \
             rules on its disputes",
            chain.registry_hex()
        );
    }
    Ok(SwornGame::new(address, chain.provider.clone()))
}

/// The registry's `Claim` for an anchored transcript, in the game's binding.
fn claim(p: &AnchorProof) -> game::SwornRegistry::Claim {
    let c = super::client::claim(p);
    game::SwornRegistry::Claim {
        model: c.model,
        request: c.request,
        output: c.output,
        meta: c.meta,
        batch: c.batch,
        index: c.index,
        batchSize: c.batchSize,
        anchoredAt: c.anchoredAt,
        proof: c.proof,
    }
}

/// Opens a game on the anchored transcript `p` (whose transcript `side` traced) at the first
/// step `side` disagrees with: commits, then opens in a later block with the game's bond.
/// Returns the game's id.
pub async fn open(chain: &Chain, side: &Side, p: &AnchorProof) -> Result<U256> {
    let Some(step) = side.disputed_step() else {
        bail!("the replay gives exactly the transcript's tokens: nothing to dispute");
    };
    let g = game_of(chain).await?;
    chain.check_proof_registry(p)?;
    if p.digest() != side.transcript.digest() {
        bail!("the anchor proof is not of this transcript");
    }
    let operator = super::client::parse_address(&p.operator)?;
    let me = chain.sender("opening a game")?;
    let digest = FixedBytes(p.digest());
    let root = FixedBytes(side.tree.root());
    let salt = super::client::random_salt()?;
    let commitment = keccak256((me, operator, digest, U256::from(step), root, salt).abi_encode());
    let onchain = g
        .commitment(me, operator, digest, U256::from(step), root, salt)
        .call()
        .await
        .map_err(|e| decode_error("computing the game's commitment", e))?;
    if onchain != commitment {
        bail!("the game computes another commitment than sworn: wrong contract?");
    }
    let bond = g
        .bond()
        .call()
        .await
        .map_err(|e| decode_error("reading the game's bond", e))?;
    chain
        .send("committing to the game", g.commit(commitment))
        .await?;
    let element = side.binding.element(step);
    let leaf = element / LEAF as u64;
    let opening = SwornGame::Opening {
        step: U256::from(step),
        root,
        salt,
        leaf: side.leaf(leaf),
        proof: side.proof(leaf),
        bindData: side.bind_data.clone(),
    };
    // A later block than the commitment's: wait for one if the node has not mined it.
    let committed = chain
        .provider
        .get_block_number()
        .await
        .map_err(|e| chain.rpc_error(e))?;
    while chain
        .provider
        .get_block_number()
        .await
        .map_err(|e| chain.rpc_error(e))?
        <= committed
        && !automines(chain).await
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let r = chain
        .send(
            "opening the game",
            g.open(operator, claim(p), opening).value(bond),
        )
        .await?;
    let ev = event::<SwornGame::GameOpened>(&r, g.address())?;
    tracing::info!(
        game = %ev.game, operator = %lower_hex(&operator), step, leaves = %ev.leaves,
        "opened a dispute game: the trace disagrees with the transcript's token {} at step {step}",
        side.transcript.output.tokens[step]
    );
    Ok(ev.game)
}

/// Whether the node mines each transaction in its own block (anvil's default): then the next
/// transaction lands in a later block without waiting.
async fn automines(chain: &Chain) -> bool {
    chain
        .provider
        .raw_request::<_, bool>("anvil_getAutomine".into(), ())
        .await
        .unwrap_or(false)
}

/// How a game ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub challenger_won: bool,
    /// Bisection levels played.
    pub rounds: u32,
}

/// One party's moves in one game.
pub struct Player<'a> {
    pub chain: &'a Chain,
    pub game: SwornGame::SwornGameInstance<DynProvider>,
    pub id: U256,
    pub side: &'a Side,
    /// How long to wait between looks at the game when it waits for the other side.
    pub poll: Duration,
}

impl Player<'_> {
    /// Plays until the game ends: every move of this side, and a timeout once the other side
    /// misses a deadline (or this one did: someone must end the game).
    pub async fn play(&self) -> Result<Outcome> {
        let me = self.chain.sender("playing a game")?;
        loop {
            let g = self.info().await?;
            let phase = Phase::of(g.phase)?;
            if phase.ended() {
                return Ok(Outcome {
                    challenger_won: phase == Phase::ChallengerWon,
                    rounds: g.rounds,
                });
            }
            let operator = if me == g.operator {
                true
            } else if me == g.challenger {
                false
            } else {
                bail!(
                    "the wallet {} is neither party of game {}",
                    lower_hex(&me),
                    self.id
                );
            };
            if self.chain.now().await? > g.deadline {
                let call = self.game.timeout(self.id);
                if let Err(e) = self
                    .chain
                    .send("ending the game after a missed deadline", call)
                    .await
                {
                    // Unless the other side ended it first.
                    if !Phase::of(self.info().await?.phase)?.ended() {
                        return Err(e.into());
                    }
                }
                continue;
            }
            match self.act(&g, phase, operator).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(self.poll).await,
                // The other side moved between the look and the move (both revealing the last
                // leaf at once, both ending a game): look again. Otherwise the error stands.
                Err(e) => {
                    let now = self.info().await?;
                    let moved_on =
                        (now.phase, now.moved, now.lo, now.hi) != (g.phase, g.moved, g.lo, g.hi);
                    if !moved_on {
                        return Err(e);
                    }
                    tracing::debug!(game = %self.id, "the game moved under this move ({e:#}): looking again");
                }
            }
        }
    }

    async fn info(&self) -> Result<SwornGame::Game> {
        self.game
            .gameInfo(self.id)
            .call()
            .await
            .map_err(|e| decode_error("reading the game", e).into())
    }

    /// This side's move in phase `phase`, if it has one; whether it moved.
    async fn act(&self, g: &SwornGame::Game, phase: Phase, operator: bool) -> Result<bool> {
        let s = self.side;
        if g.context.0 != s.binding.context || g.leaves != s.binding.leaves {
            bail!("game {} is not over this side's transcript", self.id);
        }
        match phase {
            Phase::Respond if operator => {
                let leaf = g.element / LEAF as u64;
                let call = self.game.respond(
                    self.id,
                    FixedBytes(s.tree.root()),
                    s.leaf(leaf),
                    s.proof(leaf),
                );
                self.chain
                    .send("answering with the operator's root", call)
                    .await?;
                tracing::info!(game = %self.id, "answered with the trace's root");
            }
            Phase::Bisect => {
                let bit = if operator { 1 } else { 2 };
                if g.moved & bit != 0 {
                    return Ok(false);
                }
                let mine = if operator { g.opNode } else { g.chNode };
                if s.node(g.lo, g.hi) != mine {
                    bail!(
                        "game {}: the node in dispute is not this side's trace's",
                        self.id
                    );
                }
                if g.hi - g.lo >= 2 {
                    let mid = g.lo + split(g.hi - g.lo);
                    let call = self
                        .game
                        .bisect(self.id, s.node(g.lo, mid), s.node(mid, g.hi));
                    self.chain.send("bisecting", call).await?;
                    tracing::debug!(game = %self.id, lo = g.lo, hi = g.hi, "bisected");
                } else {
                    let other = if g.moved != 0 {
                        self.revealed(if operator { g.challenger } else { g.operator })
                            .await?
                    } else {
                        [0; 32] // the first to reveal gives only its own
                    };
                    let call = self.game.revealLeaf(self.id, s.leaf(g.lo), other);
                    self.chain.send("revealing the leaf", call).await?;
                    tracing::info!(game = %self.id, leaf = g.lo, rounds = g.rounds, "revealed the last leaf");
                }
            }
            Phase::Execute if operator => {
                let w = witness(&s.trace, &s.tree, &s.weights, &s.binding.tokens, g.element)?;
                let x = SwornExecutor::new(
                    self.game
                        .executor()
                        .call()
                        .await
                        .map_err(|e| decode_error("reading the executor", e))?,
                    self.chain.provider.clone(),
                );
                let run = x
                    .execution(s.bind_data.clone())
                    .call()
                    .await
                    .map_err(|e| decode_error("reading the execution context", e))?;
                let leaves: Vec<Leaf> = w
                    .leaves
                    .iter()
                    .map(|l| Leaf {
                        index: U256::from(l.index),
                        words: l.words,
                        proof: l.proof.iter().map(|h| FixedBytes(*h)).collect(),
                    })
                    .collect();
                let rows: Vec<Weight> = w
                    .rows
                    .iter()
                    .map(|r| Weight {
                        slot: U256::from(r.slot),
                        code: r.code,
                        rows: U256::from(r.rows),
                        cols: U256::from(r.cols),
                        row: U256::from(r.row),
                        data: Bytes::from(r.data.clone()),
                        rowProof: r.row_proof.iter().map(|h| FixedBytes(*h)).collect(),
                        slotProof: r.slot_proof.iter().map(|h| FixedBytes(*h)).collect(),
                    })
                    .collect();
                let tokens = if w.tokens { run.tokens } else { vec![] };
                let data = (run.x, leaves, rows, tokens).abi_encode_params();
                let r = self
                    .chain
                    .send(
                        "executing the word in dispute",
                        self.game.execute(self.id, Bytes::from(data)),
                    )
                    .await?;
                tracing::info!(game = %self.id, element = g.element, gas = r.gas_used, "executed the word in dispute");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The leaf `party` revealed in this game (its `LeafRevealed` event).
    async fn revealed(&self, party: Address) -> Result<[u32; 32]> {
        let latest = self
            .chain
            .provider
            .get_block_number()
            .await
            .map_err(|e| self.chain.rpc_error(e))?;
        // A reveal is at most one move window old; a week of blocks covers any sane window.
        let logs = self
            .game
            .LeafRevealed_filter()
            .topic1(self.id)
            .from_block(latest.saturating_sub(super::client::LOG_WINDOW))
            .query()
            .await
            .map_err(|e| anyhow::anyhow!("reading the other side's leaf: {e}"))?;
        logs.into_iter()
            .rev()
            .find(|(ev, _)| ev.party == party)
            .map(|(ev, _)| ev.words)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "game {}: the other side's leaf is not in the node's logs",
                    self.id
                )
            })
    }
}
