//! A real `anvil` node on loopback for the chain tests (tests/chain.rs, tests/dispute.rs): the
//! binary, starting it, raw JSON-RPC, and raw anchoring around sworn.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sworn_attest::Transcript;

pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn anvil_bin() -> Option<PathBuf> {
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
/// It mines a block for each transaction it receives.
pub fn start_anvil(bin: &Path) -> (Proc, String, Vec<String>) {
    start_anvil_with(bin, &[])
}

/// Starts anvil that mines a block for each transaction and, besides, a block every second
/// holding whatever its pool still has ready. Anvil's one-block-per-transaction miner now and
/// then leaves a ready transaction unmined for good (foundry-rs/foundry#10122); tests whose
/// players send many transactions from several processes at once hit it, and the interval
/// sweeps such a transaction up within a second. Block times then follow the wall clock too,
/// which the dispute tests' windows (minutes) allow for.
pub fn start_anvil_mixed(bin: &Path) -> (Proc, String, Vec<String>) {
    start_anvil_with(bin, &["--block-time", "1", "--mixed-mining"])
}

fn start_anvil_with(bin: &Path, extra: &[&str]) -> (Proc, String, Vec<String>) {
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", "0", "--accounts", "24"])
        .args(extra)
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

pub fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut r = ureq::post(url).send_json(&body).unwrap();
    let v: Value = r.body_mut().read_json().unwrap();
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

/// A quantity the node answers in hex (`eth_chainId`, `eth_blockNumber`).
pub fn rpc_u64(url: &str, method: &str) -> u64 {
    let v = rpc(url, method, json!([]));
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Sends `anchor(root, size)` from `from` (an account anvil holds unlocked), around sworn: what a
/// run that crashed after sending leaves on chain. Returns the transaction hash.
pub fn send_anchor(url: &str, from: &str, registry: &str, root: &[u8; 32], size: u64) -> Value {
    use alloy::sol_types::SolCall;
    let data = sworn::chain::SwornRegistry::anchorCall {
        root: alloy::primitives::FixedBytes(*root),
        size,
    }
    .abi_encode();
    let data = format!("0x{}", sworn_attest::hexser::encode(&data));
    rpc(
        url,
        "eth_sendTransaction",
        json!([{"from": from, "to": registry, "data": data}]),
    )
}

/// Registers `from` with `key` and `proof` by a raw transaction (the CLI always sends a valid
/// proof: this is what a squatter who does not hold the key can send).
pub fn send_register(url: &str, from: &str, registry: &str, key: [u8; 32], proof: [u8; 64]) {
    use alloy::sol_types::SolCall;
    let data = sworn::chain::SwornRegistry::registerCall {
        ed25519Key: alloy::primitives::FixedBytes(key),
        keyProof: proof.to_vec().into(),
    }
    .abi_encode();
    let data = format!("0x{}", sworn_attest::hexser::encode(&data));
    let tx = rpc(
        url,
        "eth_sendTransaction",
        json!([{"from": from, "to": registry, "data": data, "value": "0xde0b6b3a7640000"}]),
    );
    let receipt = receipt_of(url, &tx);
    assert_eq!(receipt["status"], "0x1", "raw registration: {receipt}");
}

/// The receipt of `tx`, once mined (anvil mines each transaction, but may answer first).
pub fn receipt_of(url: &str, tx: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = rpc(url, "eth_getTransactionReceipt", json!([tx]));
        if !r.is_null() {
            return r;
        }
        assert!(Instant::now() < deadline, "{tx} not mined");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Anchors `t` alone as the next batch of `from` (batch number `batch`) by a raw transaction,
/// and returns its bundle as a file in `dir`.
pub fn raw_bundle(
    url: &str,
    from: &str,
    reg: &str,
    t: &Transcript,
    batch: u64,
    dir: &Path,
) -> String {
    use sworn_attest::anchor::{self, AnchorProof, AnchoredTranscript};
    let root = anchor::root(&[t.digest()]).unwrap();
    let tx = send_anchor(url, from, reg, &root, 1);
    let receipt = receipt_of(url, &tx);
    assert_eq!(receipt["status"], "0x1", "raw anchor: {receipt}");
    let block = rpc(
        url,
        "eth_getBlockByNumber",
        json!([receipt["blockNumber"], false]),
    );
    let ts = block["timestamp"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let p = AnchorProof {
        chain_id: rpc_u64(url, "eth_chainId"),
        registry: reg.to_lowercase(),
        operator: from.to_lowercase(),
        batch,
        index: 0,
        batch_size: 1,
        anchored_at: u64::from_str_radix(ts, 16).unwrap(),
        root,
        commitments: t.commitments().into(),
        proof: vec![],
    };
    let b = AnchoredTranscript::new(t.clone(), p).unwrap();
    let f = dir.join(format!(
        "raw-{}.json",
        sworn_attest::hexser::encode(&t.digest())
    ));
    std::fs::write(&f, b.to_json().to_string()).unwrap();
    f.to_str().unwrap().to_string()
}

/// Moves the chain's clock forward and mines a block.
pub fn time_travel(url: &str, secs: u64) {
    rpc(url, "evm_increaseTime", json!([secs]));
    rpc(url, "evm_mine", json!([]));
}

pub fn write_wallet(d: &Path, name: &str, key: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = d.join(format!("{name}.wallet"));
    std::fs::write(&p, key).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.to_str().unwrap().to_string()
}

pub fn address_of(key: &str) -> String {
    format!(
        "{:#x}",
        sworn::chain::wallet::parse_key(key).unwrap().address()
    )
}

/// The first JSON document in `s` (sworn's stdout; log lines on stderr may follow).
pub fn json_of(s: &str) -> Value {
    serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON in: {s}"))
}
