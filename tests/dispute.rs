//! The trustless dispute game end to end on a real `anvil` node (`docs/dispute.md` §6): the
//! registry deployed with its game and executor by `sworn registry deploy --with-game`,
//! operators registered by `sworn registry register`, and games played by `sworn dispute` on
//! the real SmolLM2 and Gemma 3 against test doubles: cheating operators (their computation changed at one
//! word of a chosen operation, so their signed transcripts carry wrong tokens, and they defend
//! their corrupted traces) lose their bond to the challenger; an honest operator beats a lying
//! challenger and wins its bond; a missed deadline loses, on each side. No committee votes.
//!
//! Needs the real models (`SWORN_MODEL`, `SWORN_GEMMA`) and anvil (as tests/chain.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use common::anvil::*;
use common::{require_gemma, require_model};
use serde_json::{json, Value};
use sworn::chain::dispute::{self, Player, Side};
use sworn::chain::Chain;
use sworn_attest::{OperatorBinding, OperatorKey, Transcript};
use sworn_engine::arch::LayerMat;
use sworn_engine::dispute_vectors::{completion, effective_corruption, transcript_of, Point};
use sworn_engine::kernels::{Isa, Runner};
use sworn_engine::model::Model;
use sworn_engine::sampling::SamplingParams;
use sworn_engine::trace::layout::{Kind, Mat, Norm};
use sworn_engine::trace::record::Corruption;
use sworn_engine::trace::weights::Weights;
use sworn_engine::trace::{trace, Trace};

const MOVE_WINDOW: u64 = 600;
const STEPS: usize = 3;

/// Greedy decoding.
fn params() -> SamplingParams {
    SamplingParams::default()
}

/// Sampled decoding with every filter of the draw: temperature, top-p, min-p, the penalty.
fn sampled_params() -> SamplingParams {
    SamplingParams {
        temperature: 0.9,
        top_p: 0.95,
        min_p: 0.02,
        repeat_penalty: 1.1,
        repeat_last_n: 16,
        seed: 0x5EED_0042,
        ..params()
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
/// Its output goes to a file, not a pipe: a pipe nobody reads while the test plays the other
/// side would stop the player once full.
fn spawn(args: &[&str]) -> (Child, PathBuf) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!(
        "sworn-dispute-{}-player-{n}.log",
        std::process::id()
    ));
    let f = std::fs::File::create(&log).unwrap();
    let child = sworn_cmd(args)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    (child, log)
}

fn finish((mut child, log): (Child, PathBuf), code: i32, what: &str) -> String {
    let status = child.wait().unwrap();
    let t = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert_eq!(status.code(), Some(code), "{what}:\n{t}");
    t
}

/// The chain, the registry and how to reach them as one wallet.
struct World {
    url: String,
    registry: String,
    keys: Vec<String>,
    work: PathBuf,
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
    fn dispute_args(&self, i: usize, model: &Path, args: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["dispute"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect();
        a.extend(self.chain_args(i));
        a.extend([
            "--model".into(),
            p(model).into(),
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
        connect(&self.url, &self.registry, &self.keys[i])
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
    path: PathBuf,
    prompt: Vec<u32>,
    params: SamplingParams,
    model: Model,
    rt: Runner,
    commitment: sworn_attest::ModelCommitment,
}

impl Engine {
    fn new(path: &Path, prompt: &[u32]) -> Engine {
        Engine::sampling(path, prompt, params())
    }

    fn sampling(path: &Path, prompt: &[u32], params: SamplingParams) -> Engine {
        Engine {
            path: path.to_path_buf(),
            prompt: prompt.to_vec(),
            params,
            model: Model::load(path, None).unwrap(),
            rt: Runner::new(Isa::detect(), 2).unwrap(),
            commitment: sworn_engine::commit::manifest(path).unwrap().commitment,
        }
    }

    fn trace(&self, out: &[u32], c: Option<Corruption>) -> Trace {
        trace(&self.model, &self.rt, &self.prompt, out, &self.params, c).unwrap()
    }

    /// The completion (greedy or sampled, as `params` says) of an operator whose computation
    /// `c` changes.
    fn complete(&self, c: Option<Corruption>) -> Vec<u32> {
        completion(&self.model, &self.rt, &self.prompt, STEPS, &self.params, c).unwrap()
    }

    fn weights(&self) -> Weights {
        Weights::load(&self.path, &self.model.cfg).unwrap()
    }

    /// The side holding `trace` of `t`.
    fn side(&self, t: &Transcript, trace: Trace) -> Side {
        Side::with_trace(t, &self.model.cfg, self.weights(), trace).unwrap()
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
        let mut t = transcript_of(&self.commitment, &self.prompt, &self.params, out, binding);
        key.sign(&mut t);
        let bundle = raw_bundle(&w.url, &operator, &w.registry, &t, batch, &w.work);
        (t, bundle)
    }
}

/// A runtime and a connection to the registry at `url`, signing with `key`.
fn connect(url: &str, registry: &str, key: &str) -> (tokio::runtime::Runtime, Chain) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let signer = sworn::chain::wallet::parse_key(key).unwrap();
    let reg: Address = registry.parse().unwrap();
    let chain = rt
        .block_on(Chain::connect(url, Some(reg), Some(signer)))
        .unwrap();
    (rt, chain)
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
    let honest = e.complete(None);
    let c = corruption(e, point, &honest);
    let out = e.complete(Some(c));
    assert_ne!(
        out, honest,
        "{}: the corruption changes the output",
        point.name
    );
    let cheat = e.trace(&out, Some(c));
    let (t, bundle) = e.anchored(w, i, &key, &out, 0);
    let cheat_layout = cheat.layout.clone();
    let side = e.side(&t, cheat);
    let before = wei(&w.info(1)["operator"]["credits_wei"]);

    let challenger = spawn(&refs(&w.dispute_args(1, &e.path, &["open", &bundle])));
    wait_for_game(w, game_id);
    // The cheater plays in a thread; the challenger's exit (and output, should it fail) first.
    let (url, registry, key) = (w.url.clone(), w.registry.clone(), w.keys[i].clone());
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (rt, chain) = connect(&url, &registry, &key);
        rt.block_on(async {
            let player = Player {
                game: dispute::game_of(&chain).await.unwrap(),
                chain: &chain,
                id: U256::from(game_id),
                side: &side,
                poll: Duration::from_millis(200),
            };
            done.send(player.play().await.unwrap()).unwrap()
        })
    });
    let text = finish(challenger, 0, point.name);
    let outcome = outcome
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!(
                "{}: the cheater's player did not end ({e}): {text}",
                point.name
            )
        });
    assert!(outcome.challenger_won, "{}: {text}", point.name);
    assert!(text.contains("the challenger won (this side)"), "{text}");
    let g = w.game(game_id);
    assert_eq!(g["phase"], "challenger won", "{g}");
    let start = cheat_layout.region(c.kind, c.layer).unwrap().start;
    assert_eq!(
        g["element"],
        json!(start + c.index),
        "{}: the bisection ends at the corrupted word: {g}",
        point.name
    );
    assert_eq!(w.info(i)["operator"]["slashed"], true, "{}", point.name);
    let after = wei(&w.info(1)["operator"]["credits_wei"]);
    // The challenger's bond back (0.1) and the reward (10% of the 1 ETH bond).
    assert_eq!(
        after - before,
        U256::from(200_000_000_000_000_000u64),
        "{}",
        point.name
    );
    eprintln!(
        "{}: corrupted word {} of {:?}; {} rounds; the cheater lost",
        point.name, c.index, c.kind, outcome.rounds
    );
}

/// An honest operator (wallet `op`, transcript `t` anchored in `bundle`) against a challenger
/// (wallet 1) whose trace `lie` claims another result: the operator defends with `sworn
/// dispute respond` and wins the liar's bond with no committee. Returns the word the game
/// ended at.
fn liar_loses(
    w: &World,
    e: &Engine,
    op: usize,
    t: &Transcript,
    bundle: &str,
    lie: Trace,
    game: u64,
) -> u64 {
    let liar = e.side(t, lie);
    let op_before = wei(&w.info(op)["operator"]["credits_wei"]);
    let (rt, chain) = w.connect(1);
    let proof = sworn::chain::onchain::load_bundle(&std::fs::read(bundle).unwrap(), None)
        .unwrap()
        .1
        .unwrap();
    let id = rt.block_on(dispute::open(&chain, &liar, &proof)).unwrap();
    assert_eq!(id, U256::from(game));
    let gid = game.to_string();
    let operator = spawn(&refs(&w.dispute_args(
        op,
        &e.path,
        &["respond", "--game", &gid, bundle],
    )));
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
    let info = w.info(op);
    assert_eq!(info["operator"]["slashed"], false, "{info}");
    assert_eq!(
        wei(&info["operator"]["credits_wei"]) - op_before,
        U256::from(100_000_000_000_000_000u64),
        "the liar's bond"
    );
    let g = w.game(game);
    eprintln!(
        "a liar lost game {game} in {} rounds at word {}",
        outcome.rounds, g["element"]
    );
    g["element"].as_u64().unwrap()
}

/// The corruption of `point`: the first word from its index whose change changes the first
/// token (`effective_corruption`), or, when none of those does, the word itself, whose change
/// shows in a later token only (the cheater's transcript is then wrong at a later step, which
/// the challenger disputes).
fn corruption(e: &Engine, point: &Point, honest: &[u32]) -> Corruption {
    let c = effective_corruption(&e.model, &e.rt, &e.prompt, &e.params, point, honest[0]);
    if e.complete(Some(c)) != honest {
        return c;
    }
    Corruption {
        kind: point.kind,
        layer: point.layer,
        index: point.index,
        xor: point.xor,
    }
}

/// A challenger's lie: another last output token than the trace's.
fn lie_about_last_token(tr: &mut Trace) {
    let at = tr.layout.token_element(STEPS - 1);
    tr.words[at as usize] ^= 1;
}

fn refs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// Starts anvil and deploys a registry with its game (`sworn registry deploy --with-game`).
fn world(name: &str) -> Option<(Proc, World)> {
    let anvil = anvil_bin()?;
    let (node, url, keys) = start_anvil_mixed(&anvil);
    let work = dir(name);
    let deployer = write_wallet(&work, "deployer", &keys[0]);
    let committee: Vec<String> = (21..24).map(|i| address_of(&keys[i])).collect();
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
    let out = expect(0, &args);
    assert!(out.contains("deployed the dispute game"), "{out}");
    let registry = out.lines().next().unwrap().trim().to_string();
    let w = World {
        url,
        registry,
        keys,
        work,
    };
    let info = w.info(0);
    assert_ne!(
        info["game"],
        json!(format!("0x{}", "0".repeat(40))),
        "{info}"
    );
    Some((node, w))
}

/// Cheaters at nine points of SmolLM2 (three kinds of product, two of RMSNorm, SiLU's gate,
/// attention's exp, a rotated query, the greedy token) lose; an honest operator beats lying
/// challengers (about a token, about a RoPE table word) and a liar that stops playing (as
/// `sworn dispute watch`); an operator that never answers loses.
#[test]
fn smollm2_dispute_games_on_a_real_chain() {
    let Some(model) = require_model("SmolLM2 dispute games") else {
        return;
    };
    let Some((_node, w)) = world("smollm2") else {
        return;
    };
    let e = Engine::new(&model, &[1, 504, 3158, 282, 4649, 314]);
    let (d, ff) = (576, 1536);
    // Points at the prompt's last position (5), which the first output token is sampled from
    // (the first five as in contracts/test/SwornDispute.t.sol).
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
            name: "norm_output",
            kind: Kind::NormOut { norm: Norm::Out },
            layer: None,
            index: 5 * d + 17,
            xor: 0x8000_0000,
        },
        Point {
            name: "norm_scale",
            kind: Kind::NormScale { norm: Norm::Out },
            layer: None,
            index: 5,
            xor: 0x1000_0000,
        },
        Point {
            name: "value_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::V),
            },
            layer: Some(29),
            index: 5 * 192,
            xor: 0x1000_0000,
        },
        Point {
            name: "silu_gate",
            kind: Kind::Gated,
            layer: Some(29),
            index: 5 * ff,
            xor: 0x1000_0000,
        },
        // Position 5's exponentials in the last layer (`15 * 9` before them).
        Point {
            name: "exp",
            kind: Kind::Exps,
            layer: Some(29),
            index: 15 * 9,
            xor: 0x4000_0000,
        },
        // A rotated query (RoPE; layer 10, head 6, element 49 at position 5, its sign flipped):
        // the first token stays, a later one changes.
        Point {
            name: "rope_query",
            kind: Kind::Rope { k: false },
            layer: Some(10),
            index: 5 * d + 6 * 64 + 49,
            xor: 0x8000_0000,
        },
        Point {
            name: "greedy_token",
            kind: Kind::Argmax,
            layer: None,
            index: (192 - 1) * 2 + 1,
            xor: 1,
        },
    ];
    let mut game = 0;
    for (k, point) in points.iter().enumerate() {
        cheater_loses(&w, &e, 3 + k, point, game);
        game += 1;
    }

    // An honest operator (wallet 2) against a challenger (wallet 1) that lies about the last
    // step's token: the operator defends with `sworn dispute respond` and wins the liar's bond.
    let key = w.register(2);
    let honest = e.complete(None);
    let (t, bundle) = e.anchored(&w, 2, &key, &honest, 0);
    let lie = {
        let mut tr = e.trace(&honest, None);
        lie_about_last_token(&mut tr);
        tr
    };
    liar_loses(&w, &e, 2, &t, &bundle, lie, game);
    game += 1;
    // A liar about a word of the RoPE table (position 5, pair 7's sine; SmolLM2 has no
    // frequency factors, so the operator proves their absence): the game ends at that word,
    // which the operator executes in binary64 on chain.
    let mut lie = e.trace(&honest, None);
    let table = lie
        .layout
        .region(Kind::RopeTable { table: 0 }, None)
        .unwrap();
    let word = table.start + (5 * e.model.cfg.head_dim as u64 / 2 + 7) * 2 + 1;
    lie.words[word as usize] ^= 0x0000_0100;
    lie_about_last_token(&mut lie);
    let ended = liar_loses(&w, &e, 2, &t, &bundle, lie, game);
    assert_eq!(ended, word, "the game ends at the table's word");
    game += 1;
    let (rt, chain) = w.connect(1);
    let proof = sworn::chain::onchain::load_bundle(&std::fs::read(&bundle).unwrap(), None)
        .unwrap()
        .1
        .unwrap();
    let mut lie = e.trace(&honest, None);
    lie_about_last_token(&mut lie);
    let liar = e.side(&t, lie);

    // A liar that stops playing, against an operator that watches for games
    // (`sworn dispute watch --once`, its transcripts a folder of bundles; it passes over the
    // ended games against it): the operator answers and bisects once, then ends the game on
    // the deadline and wins again.
    let id = rt.block_on(dispute::open(&chain, &liar, &proof)).unwrap();
    let bundles = w.work.to_str().unwrap().to_string();
    let operator = spawn(&refs(&w.dispute_args(
        2,
        &e.path,
        &["watch", "--once", "--bundles", &bundles],
    )));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !operator_moved(&rt, &chain, id) {
        assert!(Instant::now() < deadline, "the operator never bisected");
        std::thread::sleep(Duration::from_millis(200));
    }
    time_travel(&w.url, MOVE_WINDOW + 1);
    let out = finish(operator, 0, "the operator after the liar's silence");
    assert!(
        out.contains(&format!("game {game} ended"))
            && out.contains("the operator won (this side)")
            && out.matches("defending it").count() == 1,
        "{out}"
    );
    game += 1;

    // An operator that never answers: the challenger opens (`--no-play`), the window passes,
    // and `sworn dispute play` ends the game for the challenger.
    let silent = 3 + points.len();
    let cheat_key = w.register(silent);
    let wrong: Vec<u32> = honest.iter().map(|&t| t ^ 1).collect();
    let (_, bundle) = e.anchored(&w, silent, &cheat_key, &wrong, 0);
    let out = expect(
        0,
        &refs(&w.dispute_args(1, &e.path, &["open", "--no-play", &bundle])),
    );
    assert!(out.contains(&format!("opened game {game}")), "{out}");
    time_travel(&w.url, MOVE_WINDOW + 1);
    let gid = game.to_string();
    let out = expect(
        0,
        &refs(&w.dispute_args(1, &e.path, &["play", "--game", &gid, &bundle])),
    );
    assert!(out.contains("the challenger won (this side)"), "{out}");
    assert_eq!(w.info(silent)["operator"]["slashed"], true);
    assert_eq!(w.game(game)["phase"], "challenger won");

    // What the game does not take is refused before anything is sent, with the reason: a
    // grammar-constrained completion (the committee's), and a model the transcript does not
    // commit to.
    let binding = OperatorBinding {
        chain_id: 31337,
        registry: address_bytes(&w.registry),
        address: address_bytes(&address_of(&w.keys[2])),
    };
    let mut t = transcript_of(&e.commitment, &e.prompt, &params(), &honest, binding);
    t.request.grammar = Some(r#"start: "yes" | "no""#.into());
    key.sign(&mut t);
    let bundle = raw_bundle(&w.url, &address_of(&w.keys[2]), &w.registry, &t, 1, &w.work);
    let out = expect(2, &refs(&w.dispute_args(1, &e.path, &["open", &bundle])));
    assert!(
        out.contains("grammar-constrained completions go to the committee"),
        "{out}"
    );
    let (_, bundle) = e.anchored(&w, 2, &key, &honest, 2);
    if let Some(gemma) = common::gemma() {
        let out = expect(2, &refs(&w.dispute_args(1, &gemma, &["open", &bundle])));
        assert!(
            out.contains("not the one the transcript commits to"),
            "{out}"
        );
    }
    let out = expect(1, &refs(&w.dispute_args(1, &e.path, &["open", &bundle])));
    assert!(out.contains("nothing to dispute"), "{out}");
    game += 1;

    // Sampled completions (temperature 0.9, top-p 0.95, min-p 0.02, the penalty): cheaters at
    // the sampled token, top-p's running sum, the merge sort's last level and the draw lose;
    // an honest operator beats a liar about a word of the sort, executing the merge step.
    let s = Engine::sampling(&model, &e.prompt, sampled_params());
    let points = [
        Point {
            name: "sampled_token",
            kind: Kind::Sampled,
            layer: None,
            index: 0,
            xor: 1,
        },
        Point {
            name: "top_p_running_sum",
            kind: Kind::Cumsum,
            layer: None,
            index: 0,
            xor: 0x0080_0000,
        },
        Point {
            name: "merge_sort",
            kind: Kind::Merge { level: 16 },
            layer: None,
            index: 0,
            xor: 1,
        },
        Point {
            name: "draw",
            kind: Kind::Draw,
            layer: None,
            index: 0,
            xor: 1,
        },
    ];
    for (k, point) in points.iter().enumerate() {
        cheater_loses(&w, &s, 13 + k, point, game);
        game += 1;
    }
    let honest = s.complete(None);
    let (t, bundle) = s.anchored(&w, 2, &key, &honest, 3);
    let mut lie = s.trace(&honest, None);
    let sorted = lie.layout.region(Kind::Merge { level: 16 }, None).unwrap();
    let word = sorted.start + 2; // the second candidate's id
    lie.words[word as usize] ^= 1;
    lie_about_last_token(&mut lie);
    let ended = liar_loses(&w, &s, 2, &t, &bundle, lie, game);
    assert_eq!(ended, word, "the game ends at the sort's word");
}

/// Cheaters at six points of Gemma 3 (Q4_K, Q5_0, Q6_K and Q8_0 products, attention's exp, the
/// Q8_0 embedding row) lose, and so does a liar about a word of the local RoPE table.
#[test]
fn gemma3_dispute_games_on_a_real_chain() {
    let Some(model) = require_gemma("Gemma 3 dispute games") else {
        return;
    };
    let Some((_node, w)) = world("gemma3") else {
        return;
    };
    let e = Engine::new(&model, &[2, 818, 5279, 529, 7001, 563]);
    let (d, ff, heads) = (640, 2048, 4);
    let points = [
        Point {
            name: "q4_k_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::O),
            },
            layer: Some(0),
            index: 5 * d,
            xor: 0x1000_0000,
        },
        Point {
            name: "q5_0_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::Up),
            },
            layer: Some(3),
            index: 5 * ff,
            xor: 0x1000_0000,
        },
        // Position 5's first exponential in the last layer: `15 * heads` exponentials before it.
        Point {
            name: "exp",
            kind: Kind::Exps,
            layer: Some(17),
            index: 15 * heads,
            xor: 0x1000_0000,
        },
        // A Q6_K product: layer 17's down projection, element 90 at position 5 (times 16).
        Point {
            name: "q6_k_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::Down),
            },
            layer: Some(17),
            index: 5 * d + 90,
            xor: 0x0200_0000,
        },
        Point {
            name: "embedding_row",
            kind: Kind::Embed,
            layer: None,
            index: 5 * d,
            xor: 0x1000_0000,
        },
        Point {
            name: "value_product",
            kind: Kind::MatOut {
                mat: Mat::Layer(LayerMat::V),
            },
            layer: Some(17),
            index: 5 * 256,
            xor: 0x1000_0000,
        },
    ];
    for (k, point) in points.iter().enumerate() {
        cheater_loses(&w, &e, 3 + k, point, k as u64);
    }

    // A liar about a word of the local RoPE table (the sliding-window layers', base 10,000:
    // position 4, pair 100's cosine): the honest operator executes it on chain and wins.
    let op = 3 + points.len();
    let key = w.register(op);
    let honest = e.complete(None);
    let (t, bundle) = e.anchored(&w, op, &key, &honest, 0);
    let mut lie = e.trace(&honest, None);
    let table = lie
        .layout
        .region(Kind::RopeTable { table: 1 }, None)
        .unwrap();
    let word = table.start + (4 * e.model.cfg.head_dim as u64 / 2 + 100) * 2;
    lie.words[word as usize] ^= 0x0000_0100;
    lie_about_last_token(&mut lie);
    let ended = liar_loses(&w, &e, op, &t, &bundle, lie, points.len() as u64);
    assert_eq!(ended, word, "the game ends at the local table's word");
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
