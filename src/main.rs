//! `sworn`: deterministic LLM completions.

use sworn::chain;

use clap::{Parser, Subcommand};

mod cli;

use cli::{bench, chain_paths, generate, keys, model, serve, verify};

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
    Generate(generate::GenerateArgs),
    /// Serve an OpenAI-compatible HTTP API in which every completion is attested.
    Serve(serve::ServeArgs),
    /// Measure prefill and decode throughput (tokens/s), as llama-bench does.
    Bench(bench::BenchArgs),
    /// Perplexity of a model on a text file, computed as llama.cpp's llama-perplexity does.
    Perplexity(bench::PerplexityArgs),
    /// Check the GPU against the CPU engine, bit for bit, and time both (scripts/gpu-check.sh).
    /// Exit 0 when every step's logits are equal, 1 otherwise.
    GpuCheck(model::GpuCheckArgs),
    /// Write the first layers of a GGUF model as a smaller GGUF (real weights that travel).
    ModelSlice(model::ModelSliceArgs),
    /// Create an operator signing key (Ed25519, file mode 0600).
    Keygen(keys::KeygenArgs),
    /// Manage the API keys `sworn serve --api-keys FILE` accepts.
    #[command(subcommand)]
    ApiKey(keys::ApiKeyCommand),
    /// Verify a transcript: offline (signature, trusted key, consistency), or with --rpc also on
    /// chain (anchored by a registered, unslashed operator). Exit 0 valid, 1 invalid.
    Verify(verify::VerifyArgs),
    /// Re-run a transcript on a local model and compare bit for bit. Exit 0 match, 1 mismatch.
    Replay(verify::ReplayArgs),
    /// Print a model's commitments and per-tensor hashes (publish them: with the list, a
    /// verifier can name a swapped tensor).
    Manifest(model::ManifestArgs),
    /// Anchor the server's not-yet-anchored transcripts on chain (one transaction per batch).
    Anchor(chain::commands::AnchorArgs),
    /// Print a transcript with its inclusion proof (a bundle `sworn verify --rpc` checks).
    Proof(chain::commands::ProofArgs),
    /// Challenge an operator on chain: equivocation, wrong-result disputes and their verdicts.
    #[command(subcommand)]
    Challenge(chain::commands::ChallengeCommand),
    /// The trustless dispute game: open a game on a wrong anchored transcript, defend one,
    /// show games (docs/dispute.md).
    #[command(subcommand)]
    Dispute(chain::commands::DisputeCommand),
    /// Deploy the registry, register as an operator, manage the bond, withdraw.
    #[command(subcommand)]
    Registry(chain::commands::RegistryCommand),
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
        Command::Generate(a) => generate::generate(a),
        Command::Serve(a) => serve::serve(a),
        Command::Bench(a) => bench::bench(a),
        Command::Perplexity(a) => bench::perplexity(a),
        Command::GpuCheck(a) => model::gpu_check(a),
        Command::ModelSlice(a) => model::model_slice(a),
        Command::Keygen(a) => keys::keygen(a),
        Command::ApiKey(c) => keys::api_key(c),
        Command::Verify(a) => verify::verify(a),
        Command::Replay(a) => verify::replay(a),
        Command::Manifest(a) => model::manifest(a),
        Command::Anchor(a) => chain::commands::anchor(a, &chain_paths()),
        Command::Proof(a) => chain::commands::proof(a, &chain_paths()),
        Command::Challenge(c) => chain::commands::challenge(c),
        Command::Dispute(c) => chain::commands::dispute(c, &chain_paths()),
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
