//! `sworn verify` (signature, trusted key, consistency; with `--rpc` the chain too) and
//! `sworn replay` (re-run a transcript and compare bit for bit).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use sworn::chain;
use sworn_attest::{OperatorKey, PublicKey, Transcript};
use sworn_engine::EngineOptions;

use super::{default_key_path, hex, DeviceArg};

#[derive(Args)]
pub struct VerifyArgs {
    /// The transcript (JSON or binary), or a bundle from `sworn proof`.
    file: PathBuf,
    /// Also check on chain, through this JSON-RPC endpoint: the transcript is anchored by an
    /// operator registered with --registry, under the key the registry holds for it, and that
    /// operator was never slashed.
    #[arg(long, requires = "registry")]
    rpc: Option<String>,
    /// The SwornRegistry contract (with --rpc).
    #[arg(long, requires = "rpc")]
    registry: Option<String>,
    /// The inclusion proof, when FILE is a bare transcript.
    #[arg(long, requires = "rpc")]
    proof: Option<PathBuf>,
    /// A trusted operator public key: 64 hex digits, or a file holding them or the public key
    /// JSON document. Repeatable. [default: this machine's operator key]
    #[arg(long)]
    key: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The transcript (JSON or binary).
    file: PathBuf,
    /// The model to replay on [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Kernel threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Where the forward pass runs (cuda: NVIDIA GPU 0; needs a build with --features cuda
    /// and the driver). The output does not depend on it.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses a `--key` value: hex, or a file with hex or the public key document.
pub fn parse_key(s: &str) -> Result<PublicKey> {
    if let Ok(k) = PublicKey::parse(s) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(s)
        .with_context(|| format!("--key {s}: neither a public key nor a readable file"))?;
    Ok(PublicKey::parse(&text)?)
}

pub fn read_transcript(path: &Path) -> Result<Vec<u8>> {
    chain::commands::read_file_limited(path, sworn_attest::Limits::default().max_bytes as u64)
}

pub fn verify(a: VerifyArgs) -> Result<i32> {
    let bytes = read_transcript(&a.file)?;
    let proof = a.proof.as_deref().map(read_transcript).transpose()?;
    let (t, anchor) = match chain::onchain::load_bundle(&bytes, proof.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            print_invalid(a.json, &format!("{e:#}"));
            return Ok(1);
        }
    };
    // With --rpc the registry is the trust root for the operator's key; --key, if given, must
    // hold too.
    let onchain = a.rpc.is_some();
    let keys: Vec<PublicKey> = if !a.key.is_empty() {
        a.key.iter().map(|k| parse_key(k)).collect::<Result<_>>()?
    } else if onchain {
        Vec::new()
    } else {
        let p = default_key_path();
        let k = OperatorKey::load(&p).with_context(|| {
            format!(
                "no --key given and no local operator key at {}",
                p.display()
            )
        })?;
        vec![k.public()]
    };
    if !keys.is_empty() {
        match sworn_verifier::verify(t.clone(), &keys) {
            Ok(v) if !onchain => {
                // Offline, a bundle's inclusion proof is checked against the root it carries;
                // whether that root is on chain needs --rpc, and the output says so.
                let inclusion = anchor.as_ref().map(|p| p.verifies());
                if inclusion == Some(false) {
                    print_invalid(
                        a.json,
                        "the bundle's inclusion proof does not lead to its root",
                    );
                    return Ok(1);
                }
                let anchored = inclusion.map(|_| {
                    "the inclusion proof leads to the bundle's root; whether that root is \
                     anchored on chain was NOT checked (give --rpc and --registry)"
                });
                if a.json {
                    println!(
                        "{}",
                        serde_json::json!({"valid": true, "digest": hex(&v.digest), "key_id": hex(&v.key.id()),
                        "format_version": v.transcript.version, "warnings": v.warnings,
                        "inclusion": anchored,
                        "tokens": v.transcript.output.tokens.len(), "text": v.transcript.output.text})
                    );
                } else {
                    println!(
                        "valid: signed by {} (key id {}), digest {}, {} output tokens, format {}",
                        v.key.to_hex(),
                        hex(&v.key.id()),
                        hex(&v.digest),
                        v.transcript.output.tokens.len(),
                        v.transcript.version
                    );
                    for w in &v.warnings {
                        println!("warning: {w}");
                    }
                    if let Some(s) = anchored {
                        println!("note: {s}");
                    }
                }
                return Ok(0);
            }
            Ok(_) => {}
            Err(e) => {
                print_invalid(a.json, &e.to_string());
                return Ok(1);
            }
        }
    }
    let (Some(rpc), Some(registry)) = (a.rpc, a.registry) else {
        bail!("--rpc and --registry go together")
    };
    let Some(anchor) = anchor else {
        print_invalid(
            a.json,
            "no inclusion proof: give the bundle from `sworn proof`, or --proof",
        );
        return Ok(1);
    };
    let chain_args = chain::commands::ChainArgs {
        rpc,
        registry,
        wallet: None,
    };
    let valid = chain::commands::verify_onchain(&chain_args, t, anchor, a.json)?;
    Ok(if valid { 0 } else { 1 })
}

pub fn print_invalid(json: bool, reason: &str) {
    if json {
        println!("{}", serde_json::json!({"valid": false, "reason": reason}));
    } else {
        println!("INVALID: {reason}");
    }
}

pub fn replay(a: ReplayArgs) -> Result<i32> {
    let bytes = read_transcript(&a.file)?;
    let t: Transcript = match sworn_verifier::parse(&bytes, sworn_attest::Limits::default()) {
        Ok(t) => t,
        Err(e) => {
            println!("INVALID: {e}");
            return Ok(1);
        }
    };
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = EngineOptions {
        threads,
        device: a.device.into(),
        ..Default::default()
    };
    let r = sworn_verifier::replay::replay(&t, &model, &opts)
        .with_context(|| format!("replaying on {}", model.display()))?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"match": r.ok(), "reason": r.reason(), "model_mismatches": r.model_mismatches,
                "prompt_tokens_match": r.prompt_tokens_match, "steps": r.steps, "seconds": r.seconds,
                "first_divergence": r.divergence.as_ref().map(|d| format!("{d:?}"))})
        );
    } else if r.ok() {
        println!(
            "match: {} steps replayed bit for bit in {:.2}s",
            r.steps, r.seconds
        );
    } else {
        println!("MISMATCH: {}", r.reason());
    }
    Ok(if r.ok() { 0 } else { 1 })
}
