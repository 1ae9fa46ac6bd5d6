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
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::require_model;
use serde_json::{json, Value};
use sworn::server::store::Store;
use sworn_attest::{OperatorKey, Transcript};

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn anvil_bin() -> Option<PathBuf> {
    let p = std::env::var_os("SWORN_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
        });
    if p.exists() {
        return Some(p);
    }
    if std::env::var("SWORN_REQUIRE_ANVIL").as_deref() == Ok("1") {
        panic!(
            "SWORN_REQUIRE_ANVIL=1 but there is no anvil at {}",
            p.display()
        );
    }
    eprintln!(
        "!!! SKIPPED chain end-to-end: no anvil (run scripts/contracts.sh, or set SWORN_ANVIL) !!!"
    );
    None
}

/// Starts anvil on a free loopback port; returns it, its URL and its funded accounts' keys.
fn start_anvil(bin: &Path) -> (Proc, String, Vec<String>) {
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", "0", "--accounts", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut keys, mut in_keys) = (Vec::new(), false);
    let url = loop {
        assert!(Instant::now() < deadline, "anvil did not start");
        let line = lines.next().expect("anvil exited").unwrap();
        if line.starts_with("Private Keys") {
            in_keys = true;
        } else if in_keys && line.starts_with('(') {
            keys.push(line.split_whitespace().nth(1).unwrap().to_string());
        } else if in_keys && line.trim().is_empty() && !keys.is_empty() {
            in_keys = false;
        }
        if let Some(at) = line.strip_prefix("Listening on ") {
            break format!("http://{}", at.trim());
        }
    };
    std::thread::spawn(move || for _ in lines {});
    assert!(keys.len() >= 7, "anvil printed {} keys", keys.len());
    (Proc { child }, url, keys)
}

fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut r = ureq::post(url).send_json(&body).unwrap();
    let v: Value = r.body_mut().read_json().unwrap();
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

/// Moves the chain's clock forward and mines a block.
fn time_travel(url: &str, secs: u64) {
    rpc(url, "evm_increaseTime", json!([secs]));
    rpc(url, "evm_mine", json!([]));
}

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

fn write_wallet(d: &Path, name: &str, key: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = d.join(format!("{name}.wallet"));
    std::fs::write(&p, key).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.to_str().unwrap().to_string()
}

fn address_of(key: &str) -> String {
    format!(
        "{:#x}",
        sworn::chain::wallet::parse_key(key).unwrap().address()
    )
}

struct Server {
    _p: Proc,
    base: String,
}

fn serve(model: &Path, data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sworn"))
        .args(["serve", "--model", model.to_str().unwrap()])
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

fn json_of(s: &str) -> Value {
    serde_json::from_str(s.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn anchor_prove_verify_slash_and_dispute_on_a_real_chain() {
    let Some(model) = require_model("chain end-to-end") else {
        return;
    };
    let Some(anvil) = anvil_bin() else {
        return;
    };
    let model_s = model.to_str().unwrap();
    let (_anvil, url, keys) = start_anvil(&anvil);
    let work = dir("work");
    let wallet = |i: usize, name: &str| write_wallet(&work, name, &keys[i]);
    let (deployer, op_a, op_b, challenger) = (
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

    // Deploy: three verifiers, two must agree; one-hour windows.
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
        "3600",
        "--verdict-window",
        "3600",
        "--unbonding-delay",
        "7200",
    ];
    let vaddrs: Vec<String> = (4..7).map(|i| address_of(&keys[i])).collect();
    for v in &vaddrs {
        args.extend(["--verifier", v]);
    }
    let registry = expect(0, &work, &args).trim().to_string();
    assert!(
        registry.starts_with("0x") && registry.len() == 42,
        "{registry}"
    );
    let chain = |w: &str| -> Vec<String> {
        ["--rpc", &url, "--registry", &registry, "--wallet", w]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let run = |code: i32, d: &Path, head: &[&str], w: &str, tail: &[&str]| -> String {
        let c = chain(w);
        let mut a: Vec<&str> = head.to_vec();
        a.extend(c.iter().map(String::as_str));
        a.extend(tail);
        expect(code, d, &a)
    };

    // Operator A: key, registration with a 2 ETH bond, a server with three completions.
    let dir_a = dir("op-a");
    let key_a = dir_a.join("operator.key");
    expect(0, &dir_a, &["keygen", "--out", key_a.to_str().unwrap()]);
    let out = run(
        0,
        &dir_a,
        &["registry", "register"],
        &op_a,
        &["--bond", "2ether", "--key", key_a.to_str().unwrap()],
    );
    assert!(out.contains("registered operator"), "{out}");
    // A second registration of the same address is refused with the contract's error.
    let out = run(
        2,
        &dir_a,
        &["registry", "register"],
        &op_a,
        &["--bond", "2ether", "--key", key_a.to_str().unwrap()],
    );
    assert!(out.contains("AlreadyRegistered"), "{out}");

    let srv = serve(&model, &dir_a);
    let ids: Vec<String> = [
        "The capital of France is",
        "One, two, three,",
        "Water boils at",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| complete(&srv.base, p, i as u64))
    .collect();

    // Nothing is provable before anchoring.
    let out = expect(2, &dir_a, &["proof", &ids[0]]);
    assert!(out.contains("not anchored yet"), "{out}");
    let (status, body, _) = http(
        "GET",
        &format!("{}/v1/attestations/{}/proof", srv.base, ids[0]),
        None,
    );
    assert_eq!(status, 404, "{body}");

    // Anchor: one batch of three; a second run finds nothing new.
    let out = run(0, &dir_a, &["anchor"], &op_a, &["--json"]);
    let v = json_of(&out);
    assert_eq!(v["anchored"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["anchored"][0]["size"], 3);
    assert_eq!(v["anchored"][0]["batch"], 0);
    assert_eq!(v["unanchored"], 0);
    let out = run(0, &dir_a, &["anchor"], &op_a, &[]);
    assert!(out.contains("nothing to anchor"), "{out}");

    // Proofs: the CLI's bundle and the server's are the same document.
    let b1 = work.join("a-0.json");
    expect(
        0,
        &dir_a,
        &["proof", &ids[0], "--out", b1.to_str().unwrap()],
    );
    let cli_bundle: Value = serde_json::from_str(&std::fs::read_to_string(&b1).unwrap()).unwrap();
    let (status, body, _) = http(
        "GET",
        &format!("{}/v1/attestations/{}/proof", srv.base, ids[0]),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), cli_bundle);
    assert_eq!(cli_bundle["anchor"]["operator"], addr_a.as_str());
    assert_eq!(cli_bundle["anchor"]["batch_size"], 3);

    // Verify against the chain: valid, not final yet. Tampered or misdirected proofs are not.
    let b1s = b1.to_str().unwrap();
    let out = expect(
        0,
        &dir_a,
        &["verify", b1s, "--rpc", &url, "--registry", &registry],
    );
    assert!(
        out.contains("valid: anchored by registered operator") && out.contains("not final yet"),
        "{out}"
    );
    let mut tampered = cli_bundle.clone();
    tampered["anchor"]["index"] = json!(1);
    let tp = work.join("tampered.json");
    std::fs::write(&tp, tampered.to_string()).unwrap();
    let out = expect(
        1,
        &dir_a,
        &[
            "verify",
            tp.to_str().unwrap(),
            "--rpc",
            &url,
            "--registry",
            &registry,
        ],
    );
    assert!(out.contains("INVALID: the inclusion proof"), "{out}");
    let mut elsewhere = cli_bundle.clone();
    elsewhere["anchor"]["operator"] = json!(addr_b);
    std::fs::write(&tp, elsewhere.to_string()).unwrap();
    let out = expect(
        1,
        &dir_a,
        &[
            "verify",
            tp.to_str().unwrap(),
            "--rpc",
            &url,
            "--registry",
            &registry,
        ],
    );
    assert!(out.contains("not a registered operator"), "{out}");
    // A bare transcript has no proof to check.
    let bare = work.join("bare.json");
    std::fs::write(&bare, cli_bundle["transcript"].to_string()).unwrap();
    let out = expect(
        1,
        &dir_a,
        &[
            "verify",
            bare.to_str().unwrap(),
            "--rpc",
            &url,
            "--registry",
            &registry,
        ],
    );
    assert!(out.contains("no inclusion proof"), "{out}");
    // ... unless it is given separately.
    expect(
        0,
        &dir_a,
        &[
            "verify",
            bare.to_str().unwrap(),
            "--rpc",
            &url,
            "--registry",
            &registry,
            "--proof",
            b1s,
        ],
    );
    drop(srv);

    // Equivocation: A anchors a second, different output for the first request.
    let store_a = Store::open(&dir_a.join("sworn.db")).unwrap();
    let t0 = store_a.get(&ids[0]).unwrap().unwrap();
    let key_a_op = OperatorKey::load(&key_a).unwrap();
    let forged = forge_output(&t0, &key_a_op);
    store_a.put("forged-a", &forged, 0).unwrap();
    drop(store_a);
    let out = run(0, &dir_a, &["anchor"], &op_a, &["--json"]);
    assert_eq!(json_of(&out)["anchored"][0]["batch"], 1, "{out}");
    let b2 = work.join("a-forged.json");
    expect(
        0,
        &dir_a,
        &["proof", "forged-a", "--out", b2.to_str().unwrap()],
    );
    let b2s = b2.to_str().unwrap();
    // Two proofs of the same transcript are no equivocation (refused before sending).
    let out = run(
        2,
        &work,
        &["challenge", "equivocation", b1s, b1s],
        &challenger,
        &[],
    );
    assert!(out.contains("same output"), "{out}");
    let out = run(
        0,
        &work,
        &["challenge", "equivocation", b1s, b2s],
        &challenger,
        &[],
    );
    assert!(
        out.contains("slashed operator") && out.contains("2 ETH"),
        "{out}"
    );
    // Not twice.
    let out = run(
        2,
        &work,
        &["challenge", "equivocation", b1s, b2s],
        &challenger,
        &[],
    );
    assert!(out.contains("Slashed"), "{out}");
    let info = json_of(
        &run(
            0,
            &work,
            &["registry", "info"],
            &challenger,
            &["--operator", &addr_a],
        )
        .replace('\n', ""),
    );
    assert_eq!(info["operator"]["slashed"], true);
    assert_eq!(info["operator"]["bond_wei"], "0");
    let info_c = json_of(&run(0, &work, &["registry", "info"], &challenger, &[]).replace('\n', ""));
    assert_eq!(info_c["operator"]["credits_wei"], "2000000000000000000");
    let out = run(0, &work, &["registry", "withdraw"], &challenger, &[]);
    assert!(out.contains("withdrew 2 ETH"), "{out}");
    // A slashed operator's transcripts no longer verify, and it cannot anchor.
    let out = expect(
        1,
        &dir_a,
        &["verify", b1s, "--rpc", &url, "--registry", &registry],
    );
    assert!(out.contains("was slashed"), "{out}");
    let out = run(2, &dir_a, &["anchor"], &op_a, &[]);
    assert!(out.contains("slashed"), "{out}");

    // Operator B: an honest transcript, anchored.
    let dir_b = dir("op-b");
    let key_b = dir_b.join("operator.key");
    expect(0, &dir_b, &["keygen", "--out", key_b.to_str().unwrap()]);
    run(
        0,
        &dir_b,
        &["registry", "register"],
        &op_b,
        &["--bond", "1ether", "--key", key_b.to_str().unwrap()],
    );
    let honest_file = work.join("b-honest.json");
    expect(
        0,
        &dir_b,
        &[
            "generate",
            "--model",
            model_s,
            "--prompt",
            "Hello",
            "--max-tokens",
            "6",
            "--key",
            key_b.to_str().unwrap(),
            "--out",
            honest_file.to_str().unwrap(),
        ],
    );
    let honest = Transcript::from_json(
        &std::fs::read_to_string(&honest_file).unwrap(),
        Default::default(),
    )
    .unwrap();
    let store_b = Store::open(&dir_b.join("sworn.db")).unwrap();
    store_b.put("b-honest", &honest, 0).unwrap();
    run(
        0,
        &dir_b,
        &["anchor"],
        &op_b,
        &["--key", key_b.to_str().unwrap()],
    );
    let bh = work.join("b-honest.bundle.json");
    expect(
        0,
        &dir_b,
        &["proof", "b-honest", "--out", bh.to_str().unwrap()],
    );
    let bhs = bh.to_str().unwrap();

    // Disputing an honest transcript: the replay says there is nothing to dispute...
    let out = run(
        1,
        &work,
        &["challenge", "dispute", bhs],
        &challenger,
        &["--model", model_s],
    );
    assert!(out.contains("nothing to dispute"), "{out}");
    // ... and a challenger who insists loses the bond to the operator.
    let wrong_claim = "ab".repeat(32);
    let out = run(
        0,
        &work,
        &["challenge", "dispute", bhs],
        &challenger,
        &["--claimed-output", &wrong_claim],
    );
    assert!(out.contains("opened dispute 0"), "{out}");
    let verdict = |d: &str, v: usize, bundle: &str| -> PathBuf {
        let f = work.join(format!("verdict-{d}-{v}.json"));
        run(
            0,
            &work,
            &["challenge", "verdict", bundle],
            &verifiers[v],
            &[
                "--dispute",
                d,
                "--model",
                model_s,
                "--out",
                f.to_str().unwrap(),
            ],
        );
        f
    };
    let v0 = verdict("0", 0, bhs);
    // Someone outside the committee cannot sign one.
    let out = run(
        2,
        &work,
        &["challenge", "verdict", bhs],
        &challenger,
        &["--dispute", "0", "--model", model_s],
    );
    assert!(
        out.contains("not in the registry's verifier committee"),
        "{out}"
    );
    // One verdict is not enough.
    let out = run(
        2,
        &work,
        &["challenge", "resolve", v0.to_str().unwrap()],
        &challenger,
        &["--dispute", "0"],
    );
    assert!(out.contains("NotEnoughSignatures"), "{out}");
    // The same verdict twice is still one signer.
    let out = run(
        2,
        &work,
        &[
            "challenge",
            "resolve",
            v0.to_str().unwrap(),
            v0.to_str().unwrap(),
        ],
        &challenger,
        &["--dispute", "0"],
    );
    assert!(out.contains("NotEnoughSignatures"), "{out}");
    let v1 = verdict("0", 1, bhs);
    let out = run(
        0,
        &work,
        &[
            "challenge",
            "resolve",
            v0.to_str().unwrap(),
            v1.to_str().unwrap(),
        ],
        &challenger,
        &["--dispute", "0"],
    );
    assert!(out.contains("the operator won"), "{out}");
    let info = json_of(
        &run(
            0,
            &work,
            &["registry", "info"],
            &challenger,
            &["--operator", &addr_b],
        )
        .replace('\n', ""),
    );
    assert_eq!(info["operator"]["credits_wei"], "100000000000000000");
    assert_eq!(info["operator"]["active"], true);
    // A resolved dispute cannot be resolved or expired again.
    let out = run(
        2,
        &work,
        &["challenge", "expire"],
        &challenger,
        &["--dispute", "0"],
    );
    assert!(out.contains("NotOpen"), "{out}");

    // A dispute nobody rules on expires after its deadline; by then the batch is final.
    let out = run(
        0,
        &work,
        &["challenge", "dispute", bhs],
        &challenger,
        &["--claimed-output", &wrong_claim],
    );
    assert!(out.contains("opened dispute 1"), "{out}");
    let out = run(
        2,
        &work,
        &["challenge", "expire"],
        &challenger,
        &["--dispute", "1"],
    );
    assert!(out.contains("NotPastDeadline"), "{out}");
    time_travel(&url, 3700);
    let out = run(
        0,
        &work,
        &["challenge", "expire"],
        &challenger,
        &["--dispute", "1"],
    );
    assert!(out.contains("expired"), "{out}");
    let out = run(
        2,
        &work,
        &["challenge", "dispute", bhs],
        &challenger,
        &["--claimed-output", &wrong_claim],
    );
    assert!(out.contains("BatchFinal"), "{out}");
    let out = expect(
        0,
        &dir_b,
        &["verify", bhs, "--rpc", &url, "--registry", &registry],
    );
    assert!(out.contains("final: the challenge window closed"), "{out}");

    // A wrong result, anchored: the challenger's replay finds it, the committee agrees, and the
    // operator is slashed.
    let wrong = forge_output(
        &Transcript::from_json(
            &std::fs::read_to_string(&honest_file).unwrap(),
            Default::default(),
        )
        .unwrap(),
        &OperatorKey::load(&key_b).unwrap(),
    );
    store_b.put("b-wrong", &wrong, 0).unwrap();
    run(
        0,
        &dir_b,
        &["anchor"],
        &op_b,
        &["--key", key_b.to_str().unwrap()],
    );
    let bw = work.join("b-wrong.bundle.json");
    expect(
        0,
        &dir_b,
        &["proof", "b-wrong", "--out", bw.to_str().unwrap()],
    );
    let bws = bw.to_str().unwrap();
    // It verifies offline and on chain (signed and anchored): only a replay shows it is wrong.
    expect(
        0,
        &dir_b,
        &["verify", bws, "--rpc", &url, "--registry", &registry],
    );
    let out = run(
        0,
        &work,
        &["challenge", "dispute", bws],
        &challenger,
        &["--model", model_s],
    );
    assert!(out.contains("opened dispute 2"), "{out}");
    let show = json_of(&run(
        0,
        &work,
        &["challenge", "show"],
        &challenger,
        &["--dispute", "2"],
    ));
    assert_eq!(show["state"], "open");
    assert_eq!(show["operator"], addr_b.as_str());
    let w0 = verdict("2", 0, bws);
    let w2 = verdict("2", 2, bws);
    // The verdicts sign the honest output, which is the honest transcript's.
    let w0v: Value = serde_json::from_str(&std::fs::read_to_string(&w0).unwrap()).unwrap();
    assert_eq!(
        w0v["replayed_output"],
        sworn_attest::hexser::encode(&honest.output.commitment()).as_str()
    );
    let out = run(
        0,
        &work,
        &[
            "challenge",
            "resolve",
            w2.to_str().unwrap(),
            w0.to_str().unwrap(),
        ],
        &challenger,
        &["--dispute", "2"],
    );
    assert!(out.contains("the challenger won"), "{out}");
    let info = json_of(
        &run(
            0,
            &work,
            &["registry", "info"],
            &challenger,
            &["--operator", &addr_b],
        )
        .replace('\n', ""),
    );
    assert_eq!(info["operator"]["slashed"], true);
    let info_c = json_of(
        &run(
            0,
            &work,
            &["registry", "info"],
            &challenger,
            &["--operator", &addr_c],
        )
        .replace('\n', ""),
    );
    // Bond 1 ETH + the dispute bond back; the expired dispute's bond was credited back before.
    assert_eq!(info_c["operator"]["credits_wei"], "1200000000000000000");
    let _ = addr_c;
}
