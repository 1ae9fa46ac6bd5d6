//! The trustless dispute game end to end on a real `anvil` node (`docs/dispute.md` §6): the
//! registry deployed with its game and executor by `sworn registry deploy --with-game`,
//! operators registered by `sworn registry register`, and games played by `sworn dispute` on
//! the real SmolLM2 against test doubles: cheating operators (their computation changed at one
//! word of a chosen operation, so their signed transcripts carry wrong tokens, and they defend
//! their corrupted traces) lose their bond to the challenger; an honest operator beats a lying
//! challenger and wins its bond; a missed deadline loses, on each side. No committee votes.
//!
//! Needs the real model (`SWORN_MODEL`) and anvil (as tests/chain.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use common::anvil::*;
use common::require_model;
use serde_json::{json, Value};
use sworn::chain::dispute::{self, Player, Side};
use sworn::chain::Chain;
use sworn_attest::{OperatorBinding, OperatorKey, Transcript};
use sworn_engine::arch::LayerMat;
use sworn_engine::dispute_vectors::{effective_corruption, greedy, greedy_transcript, Point};
use sworn_engine::kernels::{Isa, Runner};
use sworn_engine::model::Model;
use sworn_engine::sampling::SamplingParams;
use sworn_engine::trace::layout::{Kind, Mat, Norm};
use sworn_engine::trace::record::Corruption;
use sworn_engine::trace::weights::Weights;
use sworn_engine::trace::{trace, Trace};

const MOVE_WINDOW: u64 = 600;
const PROMPT: [u32; 6] = [1, 504, 3158, 282, 4649, 314];
const STEPS: usize = 3;

fn params() -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed: 0,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sworn-dispute-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sworn_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sworn"));
    c.env("SWORN_DATA_DIR", "/nonexistent")
        .env("SWORN_LOG", "info")
        .env_remove("SWORN_WALLET_KEY")
        .env_remove("SWORN_RPC_URL")
        .env_remove("SWORN_REGISTRY")
        .args(args);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs sworn to its end and asserts its exit code; returns its output.
fn expect(code: i32, args: &[&str]) -> String {
    let o = sworn_cmd(args).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "sworn {args:?}:\n{t}");
    t
}

/// A sworn process running in the background (a player waiting on the other side).
fn spawn(args: &[&str]) -> Child {
    sworn_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, code: i32, what: &str) -> String {
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "{what}:\n{t}");
    t
}

/// The chain, the registry and how to reach them as one wallet.
struct World {
    url: String,
    registry: String,
    keys: Vec<String>,
    work: PathBuf,
    model: PathBuf,
}

impl World {
    fn wallet(&self, i: usize) -> String {
        write_wallet(&self.work, &format!("w{i}"), &self.keys[i])
    }

    fn chain_args(&self, i: usize) -> Vec<String> {
        vec![
            "--rpc".into(),
            self.url.clone(),
            "--registry".into(),
            self.registry.clone(),
            "--wallet".into(),
            self.wallet(i),
        ]
    }

    /// `sworn dispute ARGS` as wallet `i`, with the model and a short poll.
    fn dispute_args(&self, i: usize, args: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["dispute"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect();
        a.extend(self.chain_args(i));
        a.extend([
            "--model".into(),
            p(&self.model).into(),
            "--poll".into(),
            "0.2".into(),
        ]);
        a
    }

    fn run(&self, code: i32, i: usize, args: &[&str]) -> String {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(self.chain_args(i));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        expect(code, &refs)
    }

    fn info(&self, i: usize) -> Value {
        let out = self.run(
            0,
            0,
            &["registry", "info", "--operator", &address_of(&self.keys[i])],
        );
        json_of(&out)
    }

    fn game(&self, id: u64) -> Value {
        let id = id.to_string();
        let out = self.run(0, 0, &["dispute", "status", "--game", &id]);
        json_of(&out)
    }

    fn connect(&self, i: usize) -> (tokio::runtime::Runtime, Chain) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let signer = sworn::chain::wallet::parse_key(&self.keys[i]).unwrap();
        let reg: Address = self.registry.parse().unwrap();
        let chain = rt
            .block_on(Chain::connect(&self.url, Some(reg), Some(signer)))
            .unwrap();
        (rt, chain)
    }

    /// Registers wallet `i` as an operator with a fresh Ed25519 key and a 1 ETH bond.
    fn register(&self, i: usize) -> OperatorKey {
        let key = self.work.join(format!("op{i}.key"));
        expect(0, &["keygen", "--out", p(&key)]);
        let data = dir(&format!("op{i}"));
        let mut a = vec![
            "registry",
            "register",
            "--bond",
            "1ether",
            "--key",
            p(&key),
            "--data-dir",
        ];
        a.push(p(&data));
        self.run(0, i, &a);
        OperatorKey::load(&key).unwrap()
    }
}

fn wei(v: &Value) -> U256 {
    v.as_str().unwrap().parse().unwrap()
}

/// What the operators' transcripts are computed with.
struct Engine {
    model: Model,
    rt: Runner,
    weights: Weights,
    commitment: sworn_attest::ModelCommitment,
}

impl Engine {
    fn trace(&self, out: &[u32], c: Option<Corruption>) -> Trace {
        trace(&self.model, &self.rt, &PROMPT, out, &params(), c).unwrap()
    }

    /// Operator `i`'s signed transcript of `out`, anchored alone as its batch `batch`; the
    /// bundle's path.
    fn anchored(
        &self,
        w: &World,
        i: usize,
        key: &OperatorKey,
        out: &[u32],
        batch: u64,
    ) -> (Transcript, String) {
        let operator = address_of(&w.keys[i]);
        let binding = OperatorBinding {
            chain_id: 31337,
            registry: address_bytes(&w.registry),
            address: address_bytes(&operator),
        };
        let mut t = greedy_transcript(&self.commitment, &PROMPT, &params(), out, binding);
        key.sign(&mut t);
        let bundle = raw_bundle(&w.url, &operator, &w.registry, &t, batch, &w.work);
        (t, bundle)
    }
}

/// Waits for game `id` to exist.
fn wait_for_game(w: &World, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let id = id.to_string();
    let args = [
        "dispute",
        "status",
        "--game",
        &id,
        "--rpc",
        &w.url,
        "--registry",
        &w.registry,
    ];
    while !sworn_cmd(&args).output().unwrap().status.success() {
        assert!(Instant::now() < deadline, "game {id} was never opened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The 20 bytes of a `0x` address.
fn address_bytes(a: &str) -> [u8; 20] {
    sworn_attest::hexser::decode(a.trim_start_matches("0x")).unwrap()
}

/// A cheating operator (wallet `i`) at `point`: its transcript, anchored; the honest challenger
/// (wallet 1) opens and plays with `sworn dispute open`, the cheater defends its corrupted trace
/// in process. The cheater is slashed and the challenger paid; the bisection ends at the
/// corrupted word.
fn cheater_loses(w: &World, e: &Engine, i: usize, point: &Point, game_id: u64) {
    let key = w.register(i);
    let honest = greedy(&e.model, &e.rt, &PROMPT, STEPS, &params(), None).unwrap();
    let c = effective_corruption(&e.model, &e.rt, &PROMPT, &params(), point, honest[0]);
    let out = greedy(&e.model, &e.rt, &PROMPT, STEPS, &params(), Some(c)).unwrap();
    assert_ne!(
        out, honest,
        "{}: the corruption changes the output",
        point.name
    );
    let cheat = e.trace(&out, Some(c));
    let (t, bundle) = e.anchored(w, i, &key, &out, 0);
    let side = Side::with_trace(&t, &e.model.cfg, weights_of(w), cheat).unwrap();
    let before = wei(&w.info(1)["operator"]["credits_wei"]);

    let challenger = spawn(&refs(&w.dispute_args(1, &["open", &bundle])));
    wait_for_game(w, game_id);
    let (rt, chain) = w.connect(i);
    let outcome = rt.block_on(async {
        let player = Player {
            game: dispute::game_of(&chain).await.unwrap(),
            chain: &chain,
            id: U256::from(game_id),
            side: &side,
            poll: Duration::from_millis(200),
        };
        player.play().await.unwrap()
    });
    let out = finish(challenger, 0, point.name);
    assert!(outcome.challenger_won, "{}: {out}", point.name);
    assert!(out.contains("the challenger won (this side)"), "{out}");
    let g = w.game(game_id);
    assert_eq!(g["phase"], "challenger won", "{g}");
    let region = e
        .trace(&out_tokens(&t), None)
        .layout
        .region(c.kind, c.layer)
        .unwrap()
        .start;
    assert_eq!(
        g["element"],
        json!(region + c.index),
        "{}: the bisection ends at the corrupted word: {g}",
        point.name
    );
    let info = w.info(i);
    assert_eq!(info["operator"]["slashed"], true, "{info}");
    let after = wei(&w.info(1)["operator"]["credits_wei"]);
    // The challenger's bond back (0.1) and the reward (10% of the 1 ETH bond).
    assert_eq!(
        after - before,
        U256::from(200_000_000_000_000_000u64),
        "{}",
        point.name
    );
    eprintln!(
        "{}: {} rounds; the cheater lost",
        point.name, outcome.rounds
    );
}

fn out_tokens(t: &Transcript) -> Vec<u32> {
    t.output.tokens.clone()
}

fn refs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

fn weights_of(w: &World) -> Weights {
    let m = Model::load(&w.model, None).unwrap();
    Weights::load(&w.model, &m.cfg).unwrap()
}

#[test]
fn dispute_games_on_a_real_chain() {
    let Some(model) = require_model("dispute games end to end") else {
        return;
    };
    let Some(anvil) = anvil_bin() else {
        return;
    };
    let (_anvil, url, keys) = start_anvil(&anvil);
    let work = dir("work");
    let deployer = write_wallet(&work, "deployer", &keys[0]);
    let committee: Vec<String> = (9..12).map(|i| address_of(&keys[i])).collect();
    let window = MOVE_WINDOW.to_string();
    let mut args = vec![
        "registry",
        "deploy",
        "--rpc",
        &url,
        "--wallet",
        &deployer,
        "--threshold",
        "2",
        "--challenge-window",
        "86400",
        "--verdict-window",
        "3600",
        "--unbonding-delay",
        "172800",
        "--with-game",
        "--game-bond",
        "0.1ether",
        "--move-window",
        &window,
    ];
    for v in &committee {
        args.extend(["--verifier", v]);
    }
    let registry = expect(0, &args).lines().next().unwrap().trim().to_string();
    let w = World {
        url,
        registry,
        keys,
        work,
        model,
    };
    let info = w.info(0);
    assert_ne!(
        info["game"],
        json!(format!("0x{}", "0".repeat(40))),
        "{info}"
    );

    let m = Model::load(&w.model, None).unwrap();
    let e = Engine {
        weights: Weights::load(&w.model, &m.cfg).unwrap(),
        commitment: sworn_engine::commit::manifest(&w.model).unwrap().commitment,
        rt: Runner::new(Isa::detect(), 2).unwrap(),
        model: m,
    };
    let _ = &e.weights;
    let d = 576;
    // Cheating operators at three kinds of operation: a Q4_1 matrix product, the Q8_0 head,
    // RMSNorm's output (the same points as contracts/test/SwornDispute.t.sol).
    let points = [
        Point {
            name: "q4_1_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::Down),
            },
            layer: Some(29),
            index: 5 * d,
            xor: 0x1000_0000,
        },
        Point {
            name: "q8_0_head",
            kind: Kind::MatOut { mat: Mat::Head },
            layer: None,
            index: u64::MAX,
            xor: 0x8000_0000,
        },
        Point {
            name: "out_norm",
            kind: Kind::NormOut { norm: Norm::Out },
            layer: None,
            index: 5 * d + 17,
            xor: 0x8000_0000,
        },
    ];
    let mut next_game = 0;
    for (k, point) in points.iter().enumerate() {
        cheater_loses(&w, &e, 3 + k, point, next_game);
        next_game += 1;
    }

    // An honest operator (wallet 2) against a challenger (wallet 1) that lies about the last
    // token's step: the operator defends with `sworn dispute respond` and wins the liar's bond.
    let key = w.register(2);
    let honest = greedy(&e.model, &e.rt, &PROMPT, STEPS, &params(), None).unwrap();
    let (t, bundle) = e.anchored(&w, 2, &key, &honest, 0);
    let lie = {
        let mut tr = e.trace(&honest, None);
        let at = tr.layout.token_element(STEPS - 1) as usize;
        tr.words[at] ^= 1;
        tr
    };
    let liar = Side::with_trace(&t, &e.model.cfg, weights_of(&w), lie).unwrap();
    let op_before = wei(&w.info(2)["operator"]["credits_wei"]);
    let (rt, chain) = w.connect(1);
    let proof = sworn::chain::onchain::load_bundle(&std::fs::read(&bundle).unwrap(), None)
        .unwrap()
        .1
        .unwrap();
    let id = rt.block_on(dispute::open(&chain, &liar, &proof)).unwrap();
    assert_eq!(id, U256::from(next_game));
    let gid = next_game.to_string();
    let operator = spawn(&refs(
        &w.dispute_args(2, &["respond", "--game", &gid, &bundle]),
    ));
    let outcome = rt.block_on(async {
        Player {
            game: dispute::game_of(&chain).await.unwrap(),
            chain: &chain,
            id,
            side: &liar,
            poll: Duration::from_millis(200),
        }
        .play()
        .await
        .unwrap()
    });
    let out = finish(operator, 0, "the honest operator");
    assert!(
        !outcome.challenger_won && out.contains("the operator won (this side)"),
        "{out}"
    );
    let info = w.info(2);
    assert_eq!(info["operator"]["slashed"], false, "{info}");
    assert_eq!(
        wei(&info["operator"]["credits_wei"]) - op_before,
        U256::from(100_000_000_000_000_000u64)
    );
    next_game += 1;

    // A liar that stops playing: the operator bisects once, then ends the game on the
    // deadline and wins again.
    let id = rt.block_on(dispute::open(&chain, &liar, &proof)).unwrap();
    let gid = next_game.to_string();
    let operator = spawn(&refs(
        &w.dispute_args(2, &["respond", "--game", &gid, &bundle]),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !operator_moved(&rt, &chain, id) {
        assert!(Instant::now() < deadline, "the operator never bisected");
        std::thread::sleep(Duration::from_millis(200));
    }
    time_travel(&w.url, MOVE_WINDOW + 1);
    let out = finish(operator, 0, "the operator after the liar's silence");
    assert!(out.contains("the operator won (this side)"), "{out}");
    next_game += 1;

    // An operator that never answers: the challenger opens (`--no-play`), the window passes,
    // and `sworn dispute play` ends the game for the challenger.
    let cheat_key = w.register(6);
    let wrong: Vec<u32> = honest.iter().map(|&t| t ^ 1).collect();
    let (_, bundle) = e.anchored(&w, 6, &cheat_key, &wrong, 0);
    let out = expect(
        0,
        &refs(&w.dispute_args(1, &["open", "--no-play", &bundle])),
    );
    assert!(out.contains(&format!("opened game {next_game}")), "{out}");
    time_travel(&w.url, MOVE_WINDOW + 1);
    let gid = next_game.to_string();
    let out = expect(
        0,
        &refs(&w.dispute_args(1, &["play", "--game", &gid, &bundle])),
    );
    assert!(out.contains("the challenger won (this side)"), "{out}");
    assert_eq!(w.info(6)["operator"]["slashed"], true);
    assert_eq!(w.game(next_game)["phase"], "challenger won");
}

/// Whether the operator has bisected in game `id`'s first level.
fn operator_moved(rt: &tokio::runtime::Runtime, chain: &Chain, id: U256) -> bool {
    rt.block_on(async {
        let g = dispute::game_of(chain)
            .await
            .unwrap()
            .gameInfo(id)
            .call()
            .await
            .unwrap();
        g.phase == 2 && g.moved & 1 != 0
    })
}
