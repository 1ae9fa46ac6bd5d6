//! On-chain anchoring and challenges end to end, on a real `anvil` node on loopback: deploy the
//! registry from the committed artifact, register operators, serve completions, anchor them,
//! prove inclusion (CLI and HTTP), verify against the chain, slash an equivocating operator, and
//! run wrong-result disputes to their verdicts (operator right, operator wrong, nobody ruling in
//! time), with the refusals in between: double slashing, a final batch, too few verdicts.
//!
//! Needs the real model (`SWORN_MODEL`) and anvil (`SWORN_ANVIL`, else the copy that
//! `scripts/contracts.sh` installs under `contracts/node_modules`); CI sets
//! `SWORN_REQUIRE_ANVIL=1`, so there a missing anvil fails instead of skipping.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::anvil::*;
use common::require_model;
use serde_json::{json, Value};
use sworn::store::Store;
use sworn_attest::{OperatorKey, Transcript};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sworn-chain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sworn(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sworn"))
        .env("SWORN_DATA_DIR", data_dir)
        .env_remove("SWORN_WALLET_KEY")
        .env_remove("SWORN_RPC_URL")
        .env_remove("SWORN_REGISTRY")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs sworn and asserts its exit code; returns stdout and stderr together.
fn expect(code: i32, data_dir: &Path, args: &[&str]) -> String {
    let o = sworn(data_dir, args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "sworn {args:?}:\n{t}");
    t
}

struct Server {
    _p: Proc,
    base: String,
}

fn serve(model: &Path, data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sworn"))
        .args(["serve", "--model", model.to_str().unwrap()])
        .args(extra)
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--key", data_dir.join("operator.key").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        _p: Proc { child },
        base,
    }
}

fn http(method: &str, url: &str, body: Option<&Value>) -> (u16, String, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = match body {
        Some(b) => agent.post(url).send_json(b).unwrap(),
        None => {
            assert_eq!(method, "GET");
            agent.get(url).call().unwrap()
        }
    };
    let id = r
        .headers()
        .get("x-sworn-transcript-id")
        .map(|v| v.to_str().unwrap().to_string());
    let mut s = String::new();
    r.body_mut().as_reader().read_to_string(&mut s).unwrap();
    (r.status().as_u16(), s, id)
}

fn complete(base: &str, prompt: &str, seed: u64) -> String {
    let body = json!({"prompt": prompt, "max_tokens": 6, "seed": seed});
    let (status, text, id) = http("POST", &format!("{base}/v1/completions"), Some(&body));
    assert_eq!(status, 200, "{text}");
    id.unwrap()
}

/// The operator's cheat: the same request, another output, signed with its key.
fn forge_output(t: &Transcript, key: &OperatorKey) -> Transcript {
    let mut f = t.clone();
    let last = f.output.tokens.len() - 1;
    f.output.tokens[last] = if f.output.tokens[last] == 42 { 43 } else { 42 };
    f.output.text.push('!');
    key.sign(&mut f);
    f
}

/// The transcript inside a bundle document.
fn bundle_transcript(bundle: &Value) -> Transcript {
    Transcript::from_json(&bundle["transcript"].to_string(), Default::default()).unwrap()
}

/// The 20 bytes of a `0x` address.
fn address_bytes(a: &str) -> [u8; 20] {
    sworn_attest::hexser::decode(a.trim_start_matches("0x")).unwrap()
}

/// A deployed registry and how to reach it.
struct Reg {
    url: String,
    registry: String,
}

impl Reg {
    /// Runs sworn in `data_dir` with `args` and this chain, signing with `wallet`; asserts the
    /// exit code and returns the output.
    fn run(&self, code: i32, data_dir: &Path, args: &[&str], wallet: &str) -> String {
        let mut a = args.to_vec();
        a.extend([
            "--rpc",
            &self.url,
            "--registry",
            &self.registry,
            "--wallet",
            wallet,
        ]);
        expect(code, data_dir, &a)
    }

    /// `sworn verify FILE --rpc --registry` (no wallet).
    fn verify(&self, code: i32, file: &str) -> String {
        let a = [
            "verify",
            file,
            "--rpc",
            &self.url,
            "--registry",
            &self.registry,
        ];
        expect(code, Path::new("/nonexistent"), &a)
    }

    /// The registry's record of `operator`.
    fn info(&self, operator: &str, wallet: &str) -> Value {
        let out = self.run(
            0,
            Path::new("/nonexistent"),
            &["registry", "info", "--operator", operator],
            wallet,
        );
        json_of(&out)["operator"].clone()
    }
}

/// Deploys a registry with accounts 4, 5 and 6 as the committee (two must agree) and one-hour
/// windows.
fn deploy(url: &str, keys: &[String], deployer_wallet: &str) -> Reg {
    let vaddrs: Vec<String> = (4..7).map(|i| address_of(&keys[i])).collect();
    let mut args = vec![
        "registry",
        "deploy",
        "--rpc",
        url,
        "--wallet",
        deployer_wallet,
        "--threshold",
        "2",
        "--challenge-window",
        "3600",
        "--verdict-window",
        "3600",
        "--unbonding-delay",
        "7200",
    ];
    for v in &vaddrs {
        args.extend(["--verifier", v]);
    }
    let registry = expect(0, Path::new("/nonexistent"), &args)
        .trim()
        .to_string();
    assert!(
        registry.starts_with("0x") && registry.len() == 42,
        "{registry}"
    );
    Reg {
        url: url.to_string(),
        registry,
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn anchor_prove_verify_slash_and_dispute_on_a_real_chain() {
    let Some(model) = require_model("chain end-to-end") else {
        return;
    };
    let Some(anvil) = anvil_bin() else {
        return;
    };
    let model = p(&model).to_string();
    let (_anvil, url, keys) = start_anvil(&anvil);
    let work = dir("work");
    let wallet = |i: usize, name: &str| write_wallet(&work, name, &keys[i]);
    let (deployer, op_a, op_b, chal) = (
        wallet(0, "deployer"),
        wallet(1, "op-a"),
        wallet(2, "op-b"),
        wallet(3, "challenger"),
    );
    let verifiers: Vec<String> = (4..7).map(|i| wallet(i, &format!("verifier{i}"))).collect();
    let (addr_a, addr_b, addr_c) = (
        address_of(&keys[1]),
        address_of(&keys[2]),
        address_of(&keys[3]),
    );

    let reg = deploy(&url, &keys, &deployer);

    // Operator A: key, registration with a 2 ETH bond, a server with three completions.
    let dir_a = dir("op-a");
    let key_a = dir_a.join("operator.key");
    expect(0, &dir_a, &["keygen", "--out", p(&key_a)]);
    let register_a = [
        "registry",
        "register",
        "--bond",
        "2ether",
        "--key",
        p(&key_a),
    ];
    let out = reg.run(0, &dir_a, &register_a, &op_a);
    assert!(out.contains("registered operator"), "{out}");
    // A second registration of the same address is refused with the contract's error.
    let out = reg.run(2, &dir_a, &register_a, &op_a);
    assert!(out.contains("AlreadyRegistered"), "{out}");

    let srv = serve(Path::new(&model), &dir_a, &[]);
    let ids: Vec<String> = [
        "The capital of France is",
        "One, two, three,",
        "Water boils at",
    ]
    .iter()
    .enumerate()
    .map(|(i, prompt)| complete(&srv.base, prompt, i as u64))
    .collect();
    let proof_url = |id: &str| format!("{}/v1/attestations/{id}/proof", srv.base);

    // Nothing is provable before anchoring.
    let out = expect(2, &dir_a, &["proof", &ids[0]]);
    assert!(out.contains("not anchored yet"), "{out}");
    let (status, body, _) = http("GET", &proof_url(&ids[0]), None);
    assert_eq!(status, 404, "{body}");

    // Anchor: one batch of three; a second run finds nothing new.
    let v = json_of(&reg.run(0, &dir_a, &["anchor", "--json"], &op_a));
    assert_eq!(v["anchored"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        (&v["anchored"][0]["size"], &v["anchored"][0]["batch"]),
        (&json!(3), &json!(0))
    );
    assert_eq!(v["unanchored"], 0);
    let out = reg.run(0, &dir_a, &["anchor"], &op_a);
    assert!(out.contains("nothing to anchor"), "{out}");
    // One anchoring run per store at a time.
    let lock = std::fs::File::create(dir_a.join("anchor.lock")).unwrap();
    lock.lock().unwrap();
    let out = reg.run(2, &dir_a, &["anchor"], &op_a);
    assert!(out.contains("another `sworn anchor`"), "{out}");
    drop(lock);

    // Proofs: the CLI's bundle and the server's are the same document.
    let b1 = work.join("a-0.json");
    expect(0, &dir_a, &["proof", &ids[0], "--out", p(&b1)]);
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&b1).unwrap()).unwrap();
    let (status, body, _) = http("GET", &proof_url(&ids[0]), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), bundle);
    assert_eq!(bundle["anchor"]["operator"], addr_a.as_str());
    assert_eq!(bundle["anchor"]["batch_size"], 3);

    // Verify against the chain: valid, not final yet. Tampered or misdirected proofs are not.
    let out = reg.verify(0, p(&b1));
    assert!(
        out.contains("valid: anchored by registered operator"),
        "{out}"
    );
    assert!(out.contains("not final yet"), "{out}");
    let tp = work.join("tampered.json");
    let write_variant = |field: &str, value: Value| {
        let mut t = bundle.clone();
        t["anchor"][field] = value;
        std::fs::write(&tp, t.to_string()).unwrap();
    };
    write_variant("index", json!(1));
    let out = reg.verify(1, p(&tp));
    assert!(out.contains("INVALID: the inclusion proof"), "{out}");
    write_variant("operator", json!(addr_b));
    let out = reg.verify(1, p(&tp));
    assert!(out.contains("not a registered operator"), "{out}");
    write_variant("anchored_at", json!(12345));
    let out = reg.verify(1, p(&tp));
    assert!(out.contains("another root, size or time"), "{out}");
    // A bare transcript has no proof to check, unless it is given separately.
    let bare = work.join("bare.json");
    std::fs::write(&bare, bundle["transcript"].to_string()).unwrap();
    let out = reg.verify(1, p(&bare));
    assert!(out.contains("no inclusion proof"), "{out}");
    let a = [
        "verify",
        p(&bare),
        "--rpc",
        &url,
        "--registry",
        &reg.registry,
        "--proof",
        p(&b1),
    ];
    expect(0, &dir_a, &a);
    drop(srv);

    // One key, one operator: another address cannot register A's key, so no sybil with a
    // smaller bond can anchor A's transcripts under it.
    let out = reg.run(
        2,
        &work,
        &[
            "registry",
            "register",
            "--bond",
            "1ether",
            "--key",
            p(&key_a),
        ],
        &op_b,
    );
    assert!(out.contains("KeyTaken"), "{out}");
    // A squatter registers a key it does not hold (its proof cannot be valid), and anchors
    // transcripts signed with that key. Whoever they name, `verify --rpc` refuses them.
    let squatter = address_of(&keys[7]);
    let victim = OperatorKey::from_seed(&[0x51; 32]);
    send_register(
        &url,
        &squatter,
        &reg.registry,
        victim.public().to_bytes(),
        [0xee; 64],
    );
    let mut named_a = bundle_transcript(&bundle);
    victim.sign(&mut named_a); // the victim's transcript, naming operator A
    let f = raw_bundle(&url, &squatter, &reg.registry, &named_a, 0, &work);
    let out = reg.verify(1, &f);
    assert!(
        out.contains(&format!("names operator {addr_a}")) && out.contains(&squatter),
        "{out}"
    );
    let mut named_squatter = named_a.clone();
    named_squatter.meta.operator.as_mut().unwrap().address = address_bytes(&squatter);
    victim.sign(&mut named_squatter);
    let f = raw_bundle(&url, &squatter, &reg.registry, &named_squatter, 1, &work);
    let out = reg.verify(1, &f);
    assert!(out.contains("never proved that it holds"), "{out}");
    // A transcript that names no operator is refused too.
    let mut unnamed = named_a.clone();
    unnamed.meta.operator = None;
    victim.sign(&mut unnamed);
    let f = raw_bundle(&url, &squatter, &reg.registry, &unnamed, 2, &work);
    let out = reg.verify(1, &f);
    assert!(out.contains("names no operator"), "{out}");

    // Equivocation: A anchors a second, different output for the first request.
    let store_a = Store::open(&dir_a.join("sworn.db")).unwrap();
    let t0 = store_a.get(&ids[0]).unwrap().unwrap();
    let forged = forge_output(&t0, &OperatorKey::load(&key_a).unwrap());
    store_a.put("forged-a", &forged, 0).unwrap();
    drop(store_a);
    let v = json_of(&reg.run(0, &dir_a, &["anchor", "--json"], &op_a));
    assert_eq!(v["anchored"][0]["batch"], 1, "{v}");
    let b2 = work.join("a-forged.json");
    expect(0, &dir_a, &["proof", "forged-a", "--out", p(&b2)]);
    let (b1s, b2s) = (p(&b1), p(&b2));
    // Two proofs of the same transcript are no equivocation (refused before sending).
    let out = reg.run(2, &work, &["challenge", "equivocation", b1s, b1s], &chal);
    assert!(out.contains("same output"), "{out}");
    // Committed, then revealed in a later block; the reporter gets its 10% share of the bond.
    let out = reg.run(0, &work, &["challenge", "equivocation", b1s, b2s], &chal);
    assert!(
        out.contains("slashed operator") && out.contains("(bond 2 ETH): 0.2 ETH credited"),
        "{out}"
    );
    // Not twice.
    let out = reg.run(2, &work, &["challenge", "equivocation", b1s, b2s], &chal);
    assert!(out.contains("Slashed"), "{out}");
    let a = reg.info(&addr_a, &chal);
    assert_eq!((&a["slashed"], &a["bond_wei"]), (&json!(true), &json!("0")));
    assert_eq!(
        reg.info(&addr_c, &chal)["credits_wei"],
        "200000000000000000"
    );
    let out = reg.run(0, &work, &["registry", "withdraw"], &chal);
    assert!(out.contains("withdrew 0.2 ETH"), "{out}");
    assert_eq!(reg.info(&addr_c, &chal)["credits_wei"], "0");
    // A slashed operator's transcripts no longer verify, and it cannot anchor.
    let out = reg.verify(1, b1s);
    assert!(out.contains("was slashed"), "{out}");
    let out = reg.run(2, &dir_a, &["anchor"], &op_a);
    assert!(out.contains("slashed"), "{out}");

    // Operator B: an honest transcript, anchored.
    let dir_b = dir("op-b");
    let key_b = dir_b.join("operator.key");
    expect(0, &dir_b, &["keygen", "--out", p(&key_b)]);
    reg.run(
        0,
        &dir_b,
        &["registry", "register", "--bond", "1ether"],
        &op_b,
    );
    let honest_file = work.join("b-honest.json");
    let gen = [
        "generate",
        "--model",
        &model,
        "--prompt",
        "Hello",
        "--max-tokens",
        "6",
    ];
    expect(0, &dir_b, &[&gen[..], &["--out", p(&honest_file)]].concat());
    let honest = Transcript::from_json(
        &std::fs::read_to_string(&honest_file).unwrap(),
        Default::default(),
    )
    .unwrap();
    let store_b = Store::open(&dir_b.join("sworn.db")).unwrap();
    store_b.put("b-honest", &honest, 0).unwrap();
    // A second honest transcript (another seed), anchored in the same batch.
    let honest2_file = work.join("b-honest2.json");
    let gen2 = [&gen[..], &["--out", p(&honest2_file), "--seed", "5"]].concat();
    expect(0, &dir_b, &gen2);
    let honest2 = Transcript::from_json(
        &std::fs::read_to_string(&honest2_file).unwrap(),
        Default::default(),
    )
    .unwrap();
    store_b.put("b-honest2", &honest2, 0).unwrap();
    reg.run(0, &dir_b, &["anchor"], &op_b);
    let bh = work.join("b-honest.bundle.json");
    expect(0, &dir_b, &["proof", "b-honest", "--out", p(&bh)]);
    let bhs = p(&bh);
    let bh2 = work.join("b-honest2.bundle.json");
    expect(0, &dir_b, &["proof", "b-honest2", "--out", p(&bh2)]);

    // Disputing an honest transcript: the challenger's own replay says there is nothing to
    // dispute, and a challenger who insists loses the bond to the operator.
    let out = reg.run(
        1,
        &work,
        &["challenge", "dispute", bhs, "--model", &model],
        &chal,
    );
    assert!(out.contains("nothing to dispute"), "{out}");
    let wrong_claim = "ab".repeat(32);
    let insist = [
        "challenge",
        "dispute",
        bhs,
        "--claimed-output",
        &wrong_claim,
    ];
    let out = reg.run(0, &work, &insist, &chal);
    assert!(out.contains("opened dispute 0"), "{out}");
    let verdict = |d: &str, v: usize, bundle: &str| -> String {
        let f = work.join(format!("verdict-{d}-{v}.json"));
        let a = [
            "challenge",
            "verdict",
            bundle,
            "--dispute",
            d,
            "--model",
            &model,
            "--out",
            p(&f),
        ];
        reg.run(0, &work, &a, &verifiers[v]);
        p(&f).to_string()
    };
    let v0 = verdict("0", 0, bhs);
    // Someone outside the committee cannot sign one.
    let a = [
        "challenge",
        "verdict",
        bhs,
        "--dispute",
        "0",
        "--model",
        &model,
    ];
    let out = reg.run(2, &work, &a, &chal);
    assert!(
        out.contains("not in the registry's verifier committee"),
        "{out}"
    );
    // One verdict is not enough, nor the same one twice.
    for files in [vec![v0.as_str()], vec![v0.as_str(), v0.as_str()]] {
        let a = [&["challenge", "resolve", "--dispute", "0"][..], &files].concat();
        let out = reg.run(2, &work, &a, &chal);
        assert!(out.contains("NotEnoughSignatures"), "{out}");
    }
    let v1 = verdict("0", 1, bhs);
    let out = reg.run(
        0,
        &work,
        &["challenge", "resolve", "--dispute", "0", &v0, &v1],
        &chal,
    );
    assert!(out.contains("the operator won"), "{out}");
    let b = reg.info(&addr_b, &chal);
    // The operator is compensated with the dispute bond less the fee, which paid the verifiers.
    assert_eq!(
        (&b["credits_wei"], &b["active"]),
        (&json!("90000000000000000"), &json!(true))
    );
    // A resolved dispute cannot be expired, and a transcript ruled honest cannot be disputed
    // again.
    let out = reg.run(2, &work, &["challenge", "expire", "--dispute", "0"], &chal);
    assert!(out.contains("NotOpen"), "{out}");
    let out = reg.run(2, &work, &insist, &chal);
    assert!(out.contains("ClaimSettled"), "{out}");

    // A dispute nobody rules on expires only after its deadline; by then the batch is final.
    let insist2 = [
        "challenge",
        "dispute",
        p(&bh2),
        "--claimed-output",
        &wrong_claim,
    ];
    let out = reg.run(0, &work, &insist2, &chal);
    assert!(out.contains("opened dispute 1"), "{out}");
    // One open dispute per transcript.
    let out = reg.run(2, &work, &insist2, &chal);
    assert!(out.contains("AlreadyDisputed"), "{out}");
    let out = reg.run(2, &work, &["challenge", "expire", "--dispute", "1"], &chal);
    assert!(out.contains("NotPastDeadline"), "{out}");
    time_travel(&url, 3700);
    let out = reg.run(0, &work, &["challenge", "expire", "--dispute", "1"], &chal);
    assert!(out.contains("expired"), "{out}");
    let out = reg.run(2, &work, &insist2, &chal);
    assert!(out.contains("BatchFinal"), "{out}");
    let out = reg.verify(0, bhs);
    assert!(out.contains("final: the challenge window closed"), "{out}");

    // A wrong result, anchored: it verifies offline and on chain (signed and anchored), and only
    // a replay shows it is wrong. The challenger's replay finds it, the committee agrees, and
    // the operator is slashed.
    let wrong = forge_output(&honest, &OperatorKey::load(&key_b).unwrap());
    store_b.put("b-wrong", &wrong, 0).unwrap();
    reg.run(0, &dir_b, &["anchor"], &op_b);
    let bw = work.join("b-wrong.bundle.json");
    expect(0, &dir_b, &["proof", "b-wrong", "--out", p(&bw)]);
    let bws = p(&bw);
    reg.verify(0, bws);
    let out = reg.run(
        0,
        &work,
        &["challenge", "dispute", bws, "--model", &model],
        &chal,
    );
    assert!(out.contains("opened dispute 2"), "{out}");
    let show = json_of(&reg.run(0, &work, &["challenge", "show", "--dispute", "2"], &chal));
    assert_eq!(
        (&show["state"], &show["operator"]),
        (&json!("open"), &json!(addr_b))
    );
    let (w0, w2) = (verdict("2", 0, bws), verdict("2", 2, bws));
    // The verdicts sign the honest output's commitment.
    let w0v = json_of(&std::fs::read_to_string(&w0).unwrap());
    let honest_output = sworn_attest::hexser::encode(&honest.commitments().output);
    assert_eq!(w0v["replayed_output"], honest_output.as_str());
    // Given in any order: resolve sorts the signers as the contract wants.
    let out = reg.run(
        0,
        &work,
        &["challenge", "resolve", "--dispute", "2", &w2, &w0],
        &chal,
    );
    assert!(out.contains("the challenger won"), "{out}");
    assert_eq!(reg.info(&addr_b, &chal)["slashed"], true);
    // The challenger: 10% of B's 1 ETH bond and its dispute bond back less the fee, plus the
    // expired dispute's bond less the fee.
    assert_eq!(
        reg.info(&addr_c, &chal)["credits_wei"],
        "280000000000000000"
    );
}

/// `sworn anchor` after a crash: a batch whose transaction was mined but never recorded is found
/// from the chain's `Anchored` events, a batch that was planned but never sent (or signed and
/// recorded but never broadcast) is released and anchored afresh, a batch whose transaction
/// waits in the mempool is waited for, and every transcript ends up provable.
#[test]
fn a_crashed_anchoring_run_is_recovered_from_the_chain() {
    use sworn::store::anchor_log::RegistryRef;
    use sworn_attest::anchor;

    let Some(anvil) = anvil_bin() else {
        return;
    };
    let (_anvil, url, keys) = start_anvil(&anvil);
    let work = dir("recover");
    let reg = deploy(&url, &keys, &write_wallet(&work, "deployer", &keys[0]));
    let op_wallet = write_wallet(&work, "op", &keys[1]);
    let op = address_of(&keys[1]);
    // The golden vectors' key (its secret is public: tests/transcripts.rs), so that the vectors,
    // re-signed naming this operator, are this operator's transcripts.
    let key = OperatorKey::from_seed(&[7; 32]);
    key.save(&work.join("operator.key")).unwrap();
    let chain_id = rpc_u64(&url, "eth_chainId");
    let binding = sworn_attest::OperatorBinding {
        chain_id,
        registry: address_bytes(&reg.registry),
        address: address_bytes(&op),
    };
    reg.run(
        0,
        &work,
        &["registry", "register", "--bond", "1ether"],
        &op_wallet,
    );
    let store = Store::open(&work.join("sworn.db")).unwrap();
    let names = ["greedy-chat", "greedy-text", "sampled-chat", "sampled-text"];
    for name in names {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/vectors/{name}.json"));
        let mut t =
            Transcript::from_json(&std::fs::read_to_string(path).unwrap(), Default::default())
                .unwrap();
        t.meta.operator = Some(binding);
        key.sign(&mut t);
        store.put(name, &t, 0).unwrap();
    }
    let head = rpc_u64(&url, "eth_blockNumber");
    let r = RegistryRef {
        chain_id,
        registry: reg.registry.clone(),
    };
    let root = |l: &[[u8; 32]]| anchor::root(l).unwrap();

    // Crash after sending: a batch of two planned, its transaction mined, never recorded.
    let sent = store
        .plan_batch(&r, &op, 2, head, 0, root)
        .unwrap()
        .unwrap();
    send_anchor(&url, &op, &reg.registry, &sent.root, 2);
    // Crash before sending: the next two planned, never sent.
    store
        .plan_batch(&r, &op, 2, head, 0, root)
        .unwrap()
        .unwrap();
    drop(store);

    let v = json_of(&reg.run(0, &work, &["anchor", "--json"], &op_wallet));
    assert_eq!(v["released"], 1, "{v}");
    let batches = v["anchored"].as_array().unwrap();
    assert_eq!(batches.len(), 2, "{v}");
    assert_eq!(
        (&batches[0]["batch"], &batches[0]["size"]),
        (&json!(0), &json!(2)),
        "recovered"
    );
    assert_eq!(
        batches[0]["root"],
        sworn_attest::hexser::encode(&sent.root).as_str()
    );
    assert_eq!(
        (&batches[1]["batch"], &batches[1]["size"]),
        (&json!(1), &json!(2)),
        "re-planned"
    );
    assert_eq!(v["unanchored"], 0);
    for name in names {
        let b = work.join(format!("{name}.bundle.json"));
        expect(0, &work, &["proof", name, "--out", p(&b)]);
        let out = reg.verify(0, p(&b));
        assert!(out.contains("valid: anchored"), "{name}: {out}");
    }

    // Crash while the transaction waits in the mempool: the next run waits for it to be mined
    // and then records the batch.
    let store = Store::open(&work.join("sworn.db")).unwrap();
    for name in &names[..2] {
        let t = store.get(name).unwrap().unwrap();
        store.put(&format!("{name}-again"), &t, 0).unwrap();
    }
    rpc(&url, "evm_setAutomine", json!([false]));
    let head = rpc_u64(&url, "eth_blockNumber");
    let waiting = store
        .plan_batch(&r, &op, 2, head, 0, root)
        .unwrap()
        .unwrap();
    let tx = send_anchor(&url, &op, &reg.registry, &waiting.root, 2);
    store
        .set_batch_tx(waiting.id, tx.as_str().unwrap())
        .unwrap();
    drop(store);
    let child = Command::new(env!("CARGO_BIN_EXE_sworn"))
        .env("SWORN_DATA_DIR", &work)
        .args([
            "anchor",
            "--json",
            "--rpc",
            &url,
            "--registry",
            &reg.registry,
        ])
        .args(["--wallet", &op_wallet])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    rpc(&url, "evm_mine", json!([]));
    rpc(&url, "evm_setAutomine", json!([true]));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_of(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(v["released"], 0, "{v}");
    assert_eq!(v["anchored"][0]["batch"], 2, "{v}");
    assert_eq!(v["anchored"][0]["tx"], tx, "{v}");
    assert_eq!(v["unanchored"], 0, "{v}");
    expect(0, &work, &["proof", "greedy-chat-again"]);

    // Crash after the signed transaction's hash was recorded (anchoring records it before
    // broadcasting), before it was broadcast: the chain never saw it, so the batch is released
    // and its transcripts anchored afresh, once.
    let store = Store::open(&work.join("sworn.db")).unwrap();
    for name in &names[2..] {
        let t = store.get(name).unwrap().unwrap();
        store.put(&format!("{name}-third"), &t, 0).unwrap();
    }
    let head = rpc_u64(&url, "eth_blockNumber");
    let unsent = store
        .plan_batch(&r, &op, 2, head, 0, root)
        .unwrap()
        .unwrap();
    store
        .set_batch_tx(unsent.id, &format!("0x{}", "ab".repeat(32)))
        .unwrap();
    drop(store);
    let v = json_of(&reg.run(0, &work, &["anchor", "--json"], &op_wallet));
    assert_eq!(v["released"], 1, "{v}");
    assert_eq!(v["anchored"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["anchored"][0]["batch"], 3, "{v}");
    assert_eq!(v["anchored"][0]["size"], 2, "{v}");
    assert_eq!(v["unanchored"], 0, "{v}");
    let anchored_tx = v["anchored"][0]["tx"].as_str().unwrap();
    assert_ne!(anchored_tx, format!("0x{}", "ab".repeat(32)));
    let b = work.join("third.bundle.json");
    expect(0, &work, &["proof", "sampled-chat-third", "--out", p(&b)]);
    assert!(reg.verify(0, p(&b)).contains("valid: anchored"));
}

/// `sworn serve --anchor-every`: the server anchors its own transcripts, refuses to start for a
/// wallet that is not a registered operator with its key, and keeps manual runs out meanwhile.
#[test]
fn the_server_anchors_its_transcripts_itself() {
    let Some(model) = require_model("chain end-to-end (server anchoring)") else {
        return;
    };
    let Some(anvil) = anvil_bin() else {
        return;
    };
    let (_anvil, url, keys) = start_anvil(&anvil);
    let work = dir("auto");
    let reg = deploy(&url, &keys, &write_wallet(&work, "deployer", &keys[0]));
    let op_wallet = write_wallet(&work, "op", &keys[1]);
    let key = work.join("operator.key");
    expect(0, &work, &["keygen", "--out", p(&key)]);
    let auto = [
        "--anchor-every",
        "1",
        "--rpc",
        &url,
        "--registry",
        &reg.registry,
        "--wallet",
        &op_wallet,
    ];
    // Not registered yet: the server does not start.
    let o = Command::new(env!("CARGO_BIN_EXE_sworn"))
        .args(["serve", "--model", p(&model), "--listen", "127.0.0.1:0"])
        .args(["--data-dir", p(&work), "--key", p(&key)])
        .args(auto)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is not an active operator"),
        "{}",
        text(&o)
    );

    reg.run(
        0,
        &work,
        &["registry", "register", "--bond", "1ether"],
        &op_wallet,
    );
    let srv = serve(&model, &work, &auto);
    // The server names its registration, and shows it.
    let (status, body, _) = http("GET", &format!("{}/v1/operator", srv.base), None);
    assert_eq!(status, 200, "{body}");
    let op_doc = json_of(&body)["operator"].clone();
    assert_eq!(
        (&op_doc["address"], &op_doc["registry"]),
        (&json!(address_of(&keys[1])), &json!(reg.registry)),
        "{body}"
    );
    let ids: Vec<String> = (0..2)
        .map(|i| complete(&srv.base, "Tell me a fact:", i))
        .collect();
    // While the server anchors, a manual run is refused.
    let out = reg.run(2, &work, &["anchor"], &op_wallet);
    assert!(out.contains("is running"), "{out}");
    for id in &ids {
        let bundle = wait_for_proof(&srv.base, id, Instant::now() + Duration::from_secs(60));
        let f = work.join(format!("{id}.bundle.json"));
        std::fs::write(&f, bundle).unwrap();
        let out = reg.verify(0, p(&f));
        assert!(out.contains("valid: anchored"), "{out}");
    }
}

/// Waits until the server at `base` serves transcript `id`'s anchor proof (404 until it is
/// anchored); returns the bundle.
fn wait_for_proof(base: &str, id: &str, deadline: Instant) -> String {
    loop {
        let (status, body, _) = http("GET", &format!("{base}/v1/attestations/{id}/proof"), None);
        if status == 200 {
            return body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "{id} not anchored in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The server's Prometheus text.
fn metrics(base: &str) -> String {
    let (status, body, _) = http("GET", &format!("{base}/metrics"), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of metric `name` (a counter or gauge) on the server at `base`.
fn metric(base: &str, name: &str) -> u64 {
    let m = metrics(base);
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

/// Waits until metric `name` of the server at `base` is at least `n`.
fn wait_for_metric(base: &str, name: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while metric(base, name) < n {
        assert!(
            Instant::now() < deadline,
            "{base}: {name} < {n} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A completion from `base`: its request id and the attestation it carried, or `None` when the
/// server could not be reached or did not answer (it was killed).
fn try_complete(base: &str, prompt: &str, seed: u64) -> Option<(String, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let body = json!({"prompt": prompt, "max_tokens": 4, "seed": seed});
    let mut r = agent
        .post(&format!("{base}/v1/completions"))
        .send_json(&body)
        .ok()?;
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-sworn-transcript-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let v: Value = r.body_mut().read_json().ok()?;
    assert_eq!(status, 200, "{v}");
    Some((id.expect("a transcript id"), v["sworn_attestation"].clone()))
}

/// Replicas on one PostgreSQL store (docs/deploy.md): clients spread over two `sworn serve`
/// processes sharing `--store postgres://…`; exactly one anchors; it is SIGKILLed under load;
/// the other takes over anchoring on the chain, and every attestation any client received is
/// served, unchanged, by the survivor, and anchored.
#[test]
fn replicas_on_postgres_hand_over_anchoring_when_the_anchoring_one_dies() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(model) = require_model("replicas on PostgreSQL") else {
        return;
    };
    let Some(anvil) = anvil_bin() else {
        return;
    };
    let Some(pg) = common::require_postgres("replicas on PostgreSQL") else {
        return;
    };
    let store = sworn::store::postgres::fresh_database(
        &pg,
        &format!("sworn_replicas_{}", std::process::id()),
    );
    let (_anvil, url, keys) = start_anvil(&anvil);
    let (dir_a, dir_b) = (dir("replica-a"), dir("replica-b"));
    let reg = deploy(&url, &keys, &write_wallet(&dir_a, "deployer", &keys[0]));
    let op_wallet = write_wallet(&dir_a, "op", &keys[1]);
    // One operator: both replicas sign with its key and anchor with its wallet.
    let key = dir_a.join("operator.key");
    expect(0, &dir_a, &["keygen", "--out", p(&key)]);
    std::fs::copy(&key, dir_b.join("operator.key")).unwrap();
    reg.run(
        0,
        &dir_a,
        &["registry", "register", "--bond", "1ether"],
        &op_wallet,
    );
    let auto = [
        "--store",
        &store,
        "--anchor-every",
        "1",
        "--rpc",
        &url,
        "--registry",
        &reg.registry,
        "--wallet",
        &op_wallet,
    ];
    let mut a = serve(&model, &dir_a, &auto);
    wait_for_metric(&a.base, "sworn_anchoring", 1, Duration::from_secs(30));
    let b = serve(&model, &dir_b, &auto);
    // B stands by: A holds the lease.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metric(&b.base, "sworn_anchoring"), 0);

    // Clients spread over both replicas, until told to stop.
    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let (stop, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let clients: Vec<_> = (0..16u64)
        .map(|c| {
            let bases = [a.base.clone(), b.base.clone()];
            let (received, stop, failed) = (received.clone(), stop.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let base = &bases[((c + i) % 2) as usize];
                    match try_complete(base, "Name a colour:", c * 1000 + i) {
                        Some(r) => received.lock().unwrap().push(r),
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let wait_received = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while received.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} completions in 120 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Under load, once A has anchored something: kill A (SIGKILL: no shutdown of any kind).
    wait_received(8);
    wait_for_metric(
        &a.base,
        "sworn_anchored_batches_total",
        1,
        Duration::from_secs(30),
    );
    a._p.child.kill().unwrap();
    a._p.child.wait().unwrap();
    let at_kill = received.lock().unwrap().len();
    // The survivor takes over anchoring, and goes on serving.
    wait_for_metric(&b.base, "sworn_anchoring", 1, Duration::from_secs(30));
    wait_received(at_kill + 6);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "requests to the killed replica failed"
    );
    let received = received.lock().unwrap().clone();
    // Every attestation a client received is served, byte for byte the same, by the survivor,
    // whichever replica made it; and each gets anchored, those made after A died by B.
    let mut proved = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (id, att) in &received {
        let (status, body, _) = http("GET", &format!("{}/v1/attestations/{id}", b.base), None);
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(&json_of(&body), att, "{id} is served as it was received");
        proved.push((id.clone(), wait_for_proof(&b.base, id, deadline)));
    }
    let anchored_by_b = metric(&b.base, "sworn_anchored_batches_total");
    assert!(anchored_by_b >= 1, "B anchored nothing");
    // The first and the last received verify against the chain.
    for (id, bundle) in [&proved[0], &proved[proved.len() - 1]] {
        let f = dir_b.join(format!("{id}.bundle.json"));
        std::fs::write(&f, bundle).unwrap();
        let out = reg.verify(0, p(&f));
        assert!(out.contains("valid: anchored"), "{out}");
    }
    // The operator's tools take the same store: a manual run is refused while B holds the
    // lease, and `sworn proof` rebuilds a bundle from PostgreSQL.
    let out = reg.run(2, &dir_b, &["anchor", "--store", &store], &op_wallet);
    assert!(out.contains("is running"), "{out}");
    let f = dir_b.join("from-cli.bundle.json");
    let last = &received[received.len() - 1].0;
    expect(
        0,
        &dir_b,
        &["proof", last, "--store", &store, "--out", p(&f)],
    );
    let out = reg.verify(0, p(&f));
    assert!(out.contains("valid: anchored"), "{out}");
    eprintln!(
        "replicas: {} attestations received ({at_kill} before the kill), {} requests failed with A, all served by B and anchored ({anchored_by_b} batches by B)",
        received.len(),
        failed.load(Ordering::Relaxed)
    );
}
