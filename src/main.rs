//! `sworn`: deterministic LLM completions.

use sworn::attestation;
use sworn::chain;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sworn_attest::{OperatorKey, PublicKey, Transcript};
use sworn_engine::{
    DeviceKind, Engine, EngineOptions, Isa, Message, Prompt, Request, SamplingParams,
};

#[derive(Parser)]
#[command(
    name = "sworn",
    version,
    about = "LLM completions under oath: deterministic inference, bit for bit"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a completion.
    Generate(GenerateArgs),
    /// Serve an OpenAI-compatible HTTP API in which every completion is attested.
    Serve(ServeArgs),
    /// Measure prefill and decode throughput (tokens/s), as llama-bench does.
    Bench(BenchArgs),
    /// Perplexity of a model on a text file, computed as llama.cpp's llama-perplexity does.
    Perplexity(PerplexityArgs),
    /// Check the GPU against the CPU engine, bit for bit, and time both (scripts/gpu-check.sh).
    /// Exit 0 when every step's logits are equal, 1 otherwise.
    GpuCheck(GpuCheckArgs),
    /// Write the first layers of a GGUF model as a smaller GGUF (real weights that travel).
    ModelSlice(ModelSliceArgs),
    /// Create an operator signing key (Ed25519, file mode 0600).
    Keygen(KeygenArgs),
    /// Manage the API keys `sworn serve --api-keys FILE` accepts.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Verify a transcript: offline (signature, trusted key, consistency), or with --rpc also on
    /// chain (anchored by a registered, unslashed operator). Exit 0 valid, 1 invalid.
    Verify(VerifyArgs),
    /// Re-run a transcript on a local model and compare bit for bit. Exit 0 match, 1 mismatch.
    Replay(ReplayArgs),
    /// Print a model's commitments and per-tensor hashes (publish them: with the list, a
    /// verifier can name a swapped tensor).
    Manifest(ManifestArgs),
    /// Anchor the server's not-yet-anchored transcripts on chain (one transaction per batch).
    Anchor(chain::commands::AnchorArgs),
    /// Print a transcript with its inclusion proof (a bundle `sworn verify --rpc` checks).
    Proof(chain::commands::ProofArgs),
    /// Challenge an operator on chain: equivocation, wrong-result disputes and their verdicts.
    #[command(subcommand)]
    Challenge(chain::commands::ChallengeCommand),
    /// Deploy the registry, register as an operator, manage the bond, withdraw.
    #[command(subcommand)]
    Registry(chain::commands::RegistryCommand),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Draw a new key, print it (once: only its SHA-256 is stored) and add it to FILE.
    Add(ApiKeyAddArgs),
}

#[derive(Args)]
struct ApiKeyAddArgs {
    /// The key file (JSON, mode 0600; created if absent).
    #[arg(long)]
    file: PathBuf,
    /// Who holds the key: names its attestations' owner, in logs and errors.
    #[arg(long)]
    name: String,
    /// Requests of this key queued or running at once.
    #[arg(long, default_value_t = 4)]
    max_concurrent: usize,
    /// Prompt plus completion tokens per minute.
    #[arg(long, default_value_t = 60_000)]
    tokens_per_minute: u64,
}

fn api_key(c: ApiKeyCommand) -> Result<i32> {
    match c {
        ApiKeyCommand::Add(a) => {
            let key = sworn::server::auth::add_key(
                &a.file,
                &a.name,
                a.max_concurrent.max(1),
                a.tokens_per_minute.max(1),
            )?;
            println!("{key}");
            eprintln!(
                "added key {:?} to {} (only its SHA-256 is stored: keep the key now)",
                a.name,
                a.file.display()
            );
            Ok(0)
        }
    }
}

#[derive(Args)]
struct PerplexityArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// The text to score (UTF-8).
    #[arg(long)]
    file: PathBuf,
    /// Tokens per chunk (llama.cpp's -c); the second half of each chunk is scored.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks [default: all].
    #[arg(long)]
    chunks: Option<usize>,
    /// Kernel threads [default: all cores]. The result does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the evaluated tokens and the most likely token at every scored position to
    /// this file (JSON), for comparison with another implementation.
    #[arg(long)]
    top1: Option<PathBuf>,
}

#[derive(Args)]
struct ManifestArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print JSON, with every tensor's hash.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Operator signing key [default: DATA_DIR/operator.key, created on first start].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The data directory: operator key, registration, and the default store [default: DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The transcript store [default: DATA_DIR/sworn.db]: postgres://USER@HOST:PORT/DATABASE
    /// for one store shared by several replicas (docs/deploy.md), or sqlite:PATH. Prefer the
    /// environment variable for a URL holding a password (the command line is visible to ps).
    #[arg(long, env = "SWORN_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Kernel threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Where the forward pass runs (cuda: NVIDIA GPU 0; needs a build with --features cuda
    /// and the driver). The output does not depend on it.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Requests queued or running at once; beyond it clients get 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Longest prompt accepted, in tokens.
    #[arg(long, default_value_t = 4096)]
    max_prompt_tokens: usize,
    /// Largest max_tokens accepted.
    #[arg(long, default_value_t = 2048)]
    max_output_tokens: u32,
    /// Longest prompt accepted, in bytes of text (checked before tokenizing).
    #[arg(long, default_value_t = 128 * 1024)]
    max_prompt_bytes: usize,
    /// Seconds a request may take (streaming included); past it the request is cancelled.
    #[arg(long, default_value_t = 300)]
    request_timeout: u64,
    /// Seconds a connection has to send a request's headers.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request's body has to arrive whole (408 otherwise).
    #[arg(long, default_value_t = 30)]
    body_timeout: u64,
    /// Connections open at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds running completions may take to finish after SIGTERM or Ctrl-C; past it they
    /// end with an error naming the shutdown and are not acknowledged. A second signal exits
    /// at once. (Kubernetes kills 30 s after SIGTERM.)
    #[arg(long, default_value_t = 25)]
    shutdown_grace: u64,
    /// Also serve /v1/attestations/{digest} (by default only by the unguessable request id:
    /// digests become public when a transcript is disputed on chain).
    #[arg(long)]
    attestations_by_digest: bool,
    /// Require `Authorization: Bearer KEY` with a key from this file (`sworn api-key add`).
    /// Without it the server serves loopback only.
    #[arg(long)]
    api_keys: Option<PathBuf>,
    /// With --api-keys, the endpoint groups open without a key, comma-separated, from
    /// healthz, operator, metrics, models, verify, chat ("" for none).
    #[arg(long, default_value = "healthz,operator,verify,chat")]
    public: String,
    /// Serve the verify page (a folder built by scripts/build-web.sh) at /verify/.
    #[arg(long, env = "SWORN_VERIFY_DIR")]
    verify_dir: Option<PathBuf>,
    /// Prompt tokens fed per forward pass per request (prefill interleaved with decoding).
    #[arg(long, default_value_t = 64)]
    prefill_chunk: usize,
    /// Anchor new transcripts on chain every this many seconds (as `sworn anchor` does; needs
    /// --rpc, --registry and a wallet).
    #[arg(long, requires_all = ["rpc", "registry"])]
    anchor_every: Option<u64>,
    /// With --anchor-every: the chain's JSON-RPC endpoint.
    #[arg(long, requires = "anchor_every")]
    rpc: Option<String>,
    /// With --anchor-every: the SwornRegistry contract.
    #[arg(long, requires = "anchor_every")]
    registry: Option<String>,
    /// With --anchor-every: file holding the operator's Ethereum key (mode 0600)
    /// [default: $SWORN_WALLET_KEY].
    #[arg(long, requires = "anchor_every")]
    wallet: Option<PathBuf>,
}

#[derive(Args)]
struct KeygenArgs {
    /// Where to write the key [default: DATA_DIR/operator.key]; the public key goes beside it
    /// as KEY.pub.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
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
struct ReplayArgs {
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

#[derive(Args)]
struct BenchArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prompt tokens processed in one prefill.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens decoded one at a time after the prefill.
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    /// Kernel threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Repetitions; the best is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Kernel implementation.
    #[arg(long, value_enum, default_value_t = Kernels::Auto)]
    kernels: Kernels,
    /// Where the forward pass runs (cuda: NVIDIA GPU 0; needs a build with --features cuda
    /// and the driver). The output does not depend on it.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Instead: time a signed completion of --gen-tokens tokens, its offline verification and
    /// its replay, and report replay time as a fraction of generation time.
    #[arg(long)]
    attest: bool,
}

#[derive(Args)]
struct GpuCheckArgs {
    /// Real models to check, besides the synthetic ones the check writes (every tensor type,
    /// Llama and Gemma 3).
    #[arg(long)]
    model: Vec<PathBuf>,
    /// The device under test.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cuda)]
    device: DeviceArg,
    /// CPU threads for the reference [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Prompt tokens of the prefill check and benchmark.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens per generation, and of the decode benchmarks.
    #[arg(long, default_value_t = 32)]
    gen_tokens: usize,
    /// Sequences decoded together in the batched speed row.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Only the models given with --model.
    #[arg(long)]
    no_synthetic: bool,
}

#[derive(Args)]
struct ModelSliceArgs {
    /// The GGUF model to slice.
    #[arg(long)]
    model: PathBuf,
    /// Layers to keep (the first ones).
    #[arg(long)]
    layers: usize,
    /// The smaller GGUF to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    /// The CPU kernels.
    Cpu,
    /// sworn's CUDA kernels on NVIDIA GPU 0.
    Cuda,
    /// sworn's CUDA kernels executed on this CPU by the test shim: a GPU's arithmetic without
    /// a GPU, to check a kernel change. Very slow.
    CudaHostShim,
}

impl From<DeviceArg> for DeviceKind {
    fn from(d: DeviceArg) -> DeviceKind {
        match d {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
            DeviceArg::CudaHostShim => DeviceKind::CudaHostShim,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Kernels {
    /// The fastest implementation this CPU supports.
    Auto,
    /// The scalar reference (slow; same bits).
    Scalar,
    /// The portable row-group kernels (any CPU; same bits).
    Portable,
    /// aarch64 NEON without the dotprod extension (to compare with `auto` on a CPU that has it).
    Neon,
}

#[derive(Args)]
struct GenerateArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct from scripts/fetch-model.sh]
    #[arg(long)]
    model: Option<PathBuf>,
    /// The prompt text (or the user message with --chat).
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// Parse special-token spellings in the prompt (e.g. `<|im_start|>`) as control tokens;
    /// without it they are plain text.
    #[arg(long, conflicts_with = "chat")]
    raw_special: bool,
    /// A system message (with --chat).
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Seed of the sampling PRNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    /// Nucleus sampling mass (1: off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Minimum probability relative to the most likely token (0: off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Tokens the repetition penalty looks back over.
    #[arg(long, default_value_t = 64)]
    repeat_last_n: u32,
    /// Stop when the output contains this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Kernel threads [default: all cores]. The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Kernel implementation. The output does not depend on it.
    #[arg(long, value_enum, default_value_t = Kernels::Auto)]
    kernels: Kernels,
    /// Where the forward pass runs (cuda: NVIDIA GPU 0; needs a build with --features cuda
    /// and the driver). The output does not depend on it.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Print JSON: text, token ids and a BLAKE3 of every step's logits.
    #[arg(long)]
    json: bool,
    /// Write the signed transcript here (JSON; binary if the name ends in .bin).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Operator key to sign with [default: DATA_DIR/operator.key, created if missing].
    #[arg(long)]
    key: Option<PathBuf>,
}

/// sworn's data directory: `$SWORN_DATA_DIR`, else `$XDG_DATA_HOME/sworn`, else
/// `~/.local/share/sworn`.
fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SWORN_DATA_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
        })
        .join("sworn")
}

fn chain_paths() -> chain::commands::Paths {
    chain::commands::Paths {
        data_dir: data_dir(),
        default_key: default_key_path(),
    }
}

fn default_key_path() -> PathBuf {
    data_dir().join("operator.key")
}

/// Writes a new key and its public document; returns the key.
fn write_new_key(path: &Path) -> Result<OperatorKey> {
    if let Some(dir) = path.parent() {
        sworn::store::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = OperatorKey::generate()?;
    key.save(path)?;
    let pub_path = public_doc_path(path);
    std::fs::write(
        &pub_path,
        serde_json::to_string_pretty(&key.public().doc())? + "\n",
    )
    .with_context(|| format!("writing {}", pub_path.display()))?;
    Ok(key)
}

fn public_doc_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub.json");
    PathBuf::from(s)
}

fn keygen(a: KeygenArgs) -> Result<i32> {
    let path = a.out.unwrap_or_else(default_key_path);
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a key",
            path.display()
        );
    }
    let key = write_new_key(&path)?;
    println!("key:        {}", path.display());
    println!("public key: {}", key.public().to_hex());
    println!("key id:     {}", hex(&key.public().id()));
    println!("public doc: {}", public_doc_path(&path).display());
    Ok(0)
}

/// Loads the signing key: `path` if given, else `default` (created on first use).
fn signing_key(path: Option<PathBuf>, default: &Path) -> Result<OperatorKey> {
    match path {
        Some(p) => Ok(OperatorKey::load(&p)?),
        None => {
            let p = default.to_path_buf();
            if p.exists() {
                Ok(OperatorKey::load(&p)?)
            } else {
                eprintln!("creating operator key {}", p.display());
                write_new_key(&p)
            }
        }
    }
}

/// Parses a `--key` value: hex, or a file with hex or the public key document.
fn parse_key(s: &str) -> Result<PublicKey> {
    if let Ok(k) = PublicKey::parse(s) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(s)
        .with_context(|| format!("--key {s}: neither a public key nor a readable file"))?;
    Ok(PublicKey::parse(&text)?)
}

fn read_transcript(path: &Path) -> Result<Vec<u8>> {
    chain::commands::read_file_limited(path, sworn_attest::Limits::default().max_bytes as u64)
}

fn verify(a: VerifyArgs) -> Result<i32> {
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

fn print_invalid(json: bool, reason: &str) {
    if json {
        println!("{}", serde_json::json!({"valid": false, "reason": reason}));
    } else {
        println!("INVALID: {reason}");
    }
}

fn replay(a: ReplayArgs) -> Result<i32> {
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

fn manifest(a: ManifestArgs) -> Result<i32> {
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    let t = Instant::now();
    let m = sworn_engine::commit::manifest(&model)
        .with_context(|| format!("hashing {}", model.display()))?;
    let secs = t.elapsed().as_secs_f64();
    let c = &m.commitment;
    if a.json {
        let tensors: Vec<_> = m
            .tensors
            .iter()
            .map(|(n, h)| serde_json::json!({"name": n, "blake3": hex(h)}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file_blake3": hex(&c.file_blake3), "tensors_root": hex(&c.tensors_root),
                "n_tensors": c.n_tensors, "tokenizer_blake3": hex(&c.tokenizer_blake3),
                "chat_template_blake3": hex(&c.chat_template_blake3),
                "model_commitment": hex(&c.commitment()), "tensors": tensors, "seconds": secs,
            }))?
        );
    } else {
        println!("model            {}", model.display());
        println!("file BLAKE3      {}", hex(&c.file_blake3));
        println!(
            "tensors root     {} ({} tensors)",
            hex(&c.tensors_root),
            c.n_tensors
        );
        println!("tokenizer        {}", hex(&c.tokenizer_blake3));
        println!("chat template    {}", hex(&c.chat_template_blake3));
        println!("commitment       {}", hex(&c.commitment()));
        eprintln!("[hashed in {secs:.3}s]");
    }
    Ok(0)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn generate(a: GenerateArgs) -> Result<i32> {
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    if !model.exists() {
        bail!(
            "model {} not found (run scripts/fetch-model.sh, or pass --model PATH)",
            model.display()
        );
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = EngineOptions {
        threads,
        isa: match a.kernels {
            Kernels::Auto => None,
            Kernels::Scalar => Some(Isa::Scalar),
            Kernels::Portable => Some(Isa::Portable),
            Kernels::Neon => Some(Isa::Neon),
        },
        max_context: None,
        device: a.device.into(),
    };
    let t0 = Instant::now();
    let engine =
        Engine::load(&model, &opts).with_context(|| format!("loading {}", model.display()))?;
    let load_s = t0.elapsed().as_secs_f64();
    let prompt = if a.chat {
        let mut msgs = Vec::new();
        if let Some(s) = &a.system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", &a.prompt));
        Prompt::Chat(msgs)
    } else if a.raw_special {
        Prompt::RawText(a.prompt.clone())
    } else {
        Prompt::Text(a.prompt.clone())
    };
    let req = Request {
        prompt,
        params: SamplingParams {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            min_p: a.min_p,
            repeat_penalty: a.repeat_penalty,
            repeat_last_n: a.repeat_last_n,
            seed: a.seed,
        },
        max_tokens: a.max_tokens,
        stop: a.stop,
        ..Default::default()
    };
    // Load the key and hash the model before generating, so that a bad key fails fast.
    let signer = match &a.out {
        Some(_) => {
            let key = signing_key(a.key.clone(), &default_key_path())?;
            let binding = attestation::load_binding(&data_dir(), &key.public())?;
            Some((key, binding, sworn_engine::commit::manifest(&model)?))
        }
        None => None,
    };
    let t1 = Instant::now();
    let c = engine.generate(&req)?;
    let gen_s = t1.elapsed().as_secs_f64();
    if let (Some(out), Some((key, binding, manifest))) = (&a.out, &signer) {
        let t = attestation::sign_completion(&engine, manifest, &req, &c, key, binding.as_ref());
        let bytes = if out.extension().is_some_and(|e| e == "bin") {
            t.encode()
        } else {
            (serde_json::to_string_pretty(&t.to_json())? + "\n").into_bytes()
        };
        std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "signed transcript {} (digest {})",
            out.display(),
            hex(&t.digest())
        );
    }
    if a.json {
        let out = serde_json::json!({
            "model": model.display().to_string(),
            "kernels": engine.runner.isa.name(),
            "backend": engine.backend_name(),
            "threads": threads,
            "spec_version": sworn_engine::canon::SPEC_VERSION,
            "prompt_tokens": c.prompt_tokens,
            "tokens": c.tokens,
            "text": c.text,
            "finish_reason": c.finish_reason,
            "logits_blake3": c.logits_hashes.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            "seconds": { "load": load_s, "generate": gen_s },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", c.text);
        eprintln!(
            "[{} prompt + {} generated tokens in {:.2}s, {:?}, on {}]",
            c.prompt_tokens.len(),
            c.tokens.len(),
            gen_s,
            c.finish_reason,
            engine.backend_name(),
        );
    }
    Ok(0)
}

fn perplexity(a: PerplexityArgs) -> Result<i32> {
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {} (UTF-8 text)", a.file.display()))?;
    let opts = EngineOptions {
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        ..Default::default()
    };
    let engine =
        Engine::load(&model, &opts).with_context(|| format!("loading {}", model.display()))?;
    let json = a.json;
    let t = Instant::now();
    let r = sworn_engine::perplexity::perplexity(&engine, &text, a.ctx, a.chunks, |c, ppl| {
        if !json {
            eprint!("[{c}]{ppl:.4},");
        }
    })?;
    if let Some(p) = &a.top1 {
        let doc = serde_json::json!({"ctx": r.ctx, "tokens": r.tokens, "top1": r.top1});
        std::fs::write(p, doc.to_string()).with_context(|| format!("writing {}", p.display()))?;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"model": model.display().to_string(), "ctx": r.ctx,
                "chunks": r.chunks, "scored_tokens": r.scored, "ppl": r.ppl, "ppl_err": r.err,
                "running": r.running, "seconds": t.elapsed().as_secs_f64()})
        );
    } else {
        eprintln!();
        println!(
            "Final estimate: PPL = {:.4} +/- {:.5} ({} chunks of {} tokens, {} scored)",
            r.ppl, r.err, r.chunks, r.ctx, r.scored
        );
    }
    Ok(0)
}

fn gpu_check(a: GpuCheckArgs) -> Result<i32> {
    let ok = sworn::gpu_check::run(&sworn::gpu_check::Options {
        models: a.model,
        device: a.device.into(),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        prompt_tokens: a.prompt_tokens,
        gen_tokens: a.gen_tokens,
        batch: a.batch.max(1),
        no_synthetic: a.no_synthetic,
    })?;
    Ok(if ok { 0 } else { 1 })
}

fn model_slice(a: ModelSliceArgs) -> Result<i32> {
    let total = sworn_engine::slice::slice_layers(&a.model, &a.out, a.layers)
        .with_context(|| format!("slicing {}", a.model.display()))?;
    eprintln!(
        "wrote {} layers of {total} to {}",
        a.layers,
        a.out.display()
    );
    Ok(0)
}

fn bench(a: BenchArgs) -> Result<i32> {
    use sworn_engine::model::Feed;
    let model = a
        .model
        .clone()
        .unwrap_or_else(sworn_engine::default_model_path);
    let opts = EngineOptions {
        threads: a.threads,
        isa: match a.kernels {
            Kernels::Auto => None,
            Kernels::Scalar => Some(Isa::Scalar),
            Kernels::Portable => Some(Isa::Portable),
            Kernels::Neon => Some(Isa::Neon),
        },
        max_context: None,
        device: a.device.into(),
    };
    let e = Engine::load(&model, &opts).with_context(|| format!("loading {}", model.display()))?;
    if a.attest {
        return bench_attest(&e, &model, &a);
    }
    let vocab = e.model.cfg.vocab as u32;
    // A fixed pseudo-random prompt: the content does not change the work done.
    let prompt: Vec<u32> = (0..a.prompt_tokens as u32)
        .map(|i| (i * 7919 + 13) % vocab)
        .collect();
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    for _ in 0..a.reps.max(1) {
        let mut seq = e.model.new_sequence();
        let t = Instant::now();
        let h = e.forward(&mut [Feed {
            seq: &mut seq,
            tokens: &prompt,
        }])?;
        let d = e.model.cfg.d_model;
        let mut logits = e.logits(&h[h.len() - d..])?;
        best_pp = best_pp.max(a.prompt_tokens as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..a.gen_tokens {
            let tok = sworn_engine::sampling::argmax(&logits);
            let h = e.forward(&mut [Feed {
                seq: &mut seq,
                tokens: &[tok],
            }])?;
            logits = e.logits(&h)?;
        }
        best_tg = best_tg.max(a.gen_tokens as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "sworn",
            "kernels": e.runner.isa.name(),
            "backend": e.backend_name(),
            "threads": a.threads,
            "pp_tokens": a.prompt_tokens,
            "tg_tokens": a.gen_tokens,
            "pp_tok_s": best_pp,
            "tg_tok_s": best_tg,
        })
    );
    Ok(0)
}

/// Generation, signing, verification and replay of one completion, timed.
fn bench_attest(e: &Engine, model: &Path, a: &BenchArgs) -> Result<i32> {
    let t = Instant::now();
    let m = sworn_engine::commit::manifest(model)?;
    let commit_s = t.elapsed().as_secs_f64();
    let key = OperatorKey::from_seed(&[1; 32]);
    let req = Request {
        prompt: Prompt::Text("The history of the Roman Empire".into()),
        params: SamplingParams::default(),
        max_tokens: a.gen_tokens as u32,
        stop: vec![],
        ..Default::default()
    };
    let (mut gen_s, mut replay_s, mut sign_s, mut verify_s) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut steps = 0;
    for _ in 0..a.reps.max(1) {
        let t = Instant::now();
        let c = e.generate(&req)?;
        gen_s = gen_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let tx = attestation::sign_completion(e, &m, &req, &c, &key, None);
        sign_s = sign_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        sworn_verifier::verify(tx.clone(), &[key.public()])?;
        verify_s = verify_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let r = sworn_verifier::replay::replay_with(&tx, e, m.clone())?;
        replay_s = replay_s.min(t.elapsed().as_secs_f64());
        if !r.ok() {
            bail!("replay failed: {}", r.reason());
        }
        steps = c.tokens.len();
    }
    println!(
        "{}",
        serde_json::json!({
            "threads": a.threads, "kernels": e.runner.isa.name(), "backend": e.backend_name(), "tokens": steps,
            "model_commitment_s": commit_s, "generate_s": gen_s, "sign_s": sign_s, "verify_s": verify_s,
            "replay_s": replay_s, "replay_over_generate": replay_s / gen_s,
        })
    );
    Ok(0)
}

fn serve(a: ServeArgs) -> Result<i32> {
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    if !model.exists() {
        bail!(
            "model {} not found (run scripts/fetch-model.sh, or pass --model PATH)",
            model.display()
        );
    }
    // --data-dir holds this server's key: two servers with two data directories never share
    // one by accident (replicas that must share a key are given it with --key).
    let data_dir = a.data_dir.unwrap_or_else(data_dir);
    let key = signing_key(a.key, &data_dir.join("operator.key"))?;
    let store = sworn::store::Location::parse(a.store.as_deref(), &data_dir)?;
    let cfg = sworn::server::Config {
        store,
        binding: attestation::load_binding(&data_dir, &key.public())?,
        key,
        model,
        listen: a.listen,
        data_dir,
        device: a.device.into(),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        limits: sworn::server::Limits {
            max_prompt_tokens: a.max_prompt_tokens,
            max_output_tokens: a.max_output_tokens,
            max_queue: a.max_queue.max(1),
            max_body_bytes: 1 << 20,
            max_prompt_bytes: a.max_prompt_bytes,
            request_timeout: std::time::Duration::from_secs(a.request_timeout.max(1)),
            header_timeout: std::time::Duration::from_secs(a.header_timeout.max(1)),
            body_timeout: std::time::Duration::from_secs(a.body_timeout.max(1)),
            max_connections: a.max_connections.max(1),
            shutdown_grace: std::time::Duration::from_secs(a.shutdown_grace),
        },
        attestations_by_digest: a.attestations_by_digest,
        verify_dir: a.verify_dir,
        keys: match &a.api_keys {
            Some(p) => Some(sworn::server::auth::ApiKeys::load(p)?),
            None => None,
        },
        public: {
            let groups: Vec<String> = a
                .public
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect();
            if let Some(g) = groups
                .iter()
                .find(|g| !sworn::server::auth::PUBLIC_GROUPS.contains(&g.as_str()))
            {
                anyhow::bail!(
                    "--public {g:?}: the groups are {}",
                    sworn::server::auth::PUBLIC_GROUPS.join(", ")
                );
            }
            groups
        },
        prefill_chunk: a.prefill_chunk.max(1),
        anchor: match (a.anchor_every, a.rpc, a.registry) {
            (Some(every), Some(rpc), Some(registry)) => Some(sworn::server::AutoAnchor {
                chain: chain::commands::ChainArgs {
                    rpc,
                    registry,
                    wallet: a.wallet,
                },
                every: std::time::Duration::from_secs(every.max(1)),
                max_batch: 100_000,
            }),
            _ => None,
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(sworn::server::serve(cfg))?;
    Ok(0)
}

/// Keeps the forward pass's scratch buffers (hundreds of KB to a few MB per pass) on the heap.
/// glibc serves blocks above its mmap threshold (128 KiB until a large block is freed) with
/// fresh mappings, so every pass would fault its buffers in again, and the page faults of two
/// kernel threads serialize on the address space's lock: 5% of a 128-token prefill at two
/// threads. A fixed threshold of 32 MiB (glibc's own ceiling for the dynamic one) and a trim
/// threshold above it keep freed scratch for the next pass; `serve` still hands free memory
/// back once after loading.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWORN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Command::Generate(a) => generate(a),
        Command::Serve(a) => serve(a),
        Command::Bench(a) => bench(a),
        Command::Perplexity(a) => perplexity(a),
        Command::GpuCheck(a) => gpu_check(a),
        Command::ModelSlice(a) => model_slice(a),
        Command::Keygen(a) => keygen(a),
        Command::ApiKey(c) => api_key(c),
        Command::Verify(a) => verify(a),
        Command::Replay(a) => replay(a),
        Command::Manifest(a) => manifest(a),
        Command::Anchor(a) => chain::commands::anchor(a, &chain_paths()),
        Command::Proof(a) => chain::commands::proof(a, &chain_paths()),
        Command::Challenge(c) => chain::commands::challenge(c),
        Command::Registry(c) => chain::commands::registry(c, &chain_paths()),
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
