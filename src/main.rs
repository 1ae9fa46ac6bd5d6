//! `sworn`: deterministic LLM completions.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sworn_engine::{Engine, EngineOptions, Isa, Message, Prompt, Request, SamplingParams};

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
    /// Measure prefill and decode throughput (tokens/s), as llama-bench does.
    Bench(BenchArgs),
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
}

#[derive(Clone, Copy, ValueEnum)]
enum Kernels {
    /// The fastest implementation this CPU supports.
    Auto,
    /// The scalar reference (slow; same bits).
    Scalar,
    /// The portable row-group kernels (any CPU; same bits).
    Portable,
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
    /// Print JSON: text, token ids and a BLAKE3 of every step's logits.
    #[arg(long)]
    json: bool,
}

/// Where scripts/fetch-model.sh caches the default model.
fn default_model() -> PathBuf {
    let cache = std::env::var_os("SWORN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                })
                .join("sworn")
        });
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn generate(a: GenerateArgs) -> Result<()> {
    let model = a.model.unwrap_or_else(default_model);
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
        },
        max_context: None,
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
    };
    let t1 = Instant::now();
    let c = engine.generate(&req)?;
    let gen_s = t1.elapsed().as_secs_f64();
    if a.json {
        let out = serde_json::json!({
            "model": model.display().to_string(),
            "kernels": engine.runner.isa.name(),
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
            "[{} prompt + {} generated tokens in {:.2}s, {:?}, {} on {} thread(s)]",
            c.prompt_tokens.len(),
            c.tokens.len(),
            gen_s,
            c.finish_reason,
            engine.runner.isa.name(),
            threads
        );
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    use sworn_engine::model::Feed;
    let model = a.model.unwrap_or_else(default_model);
    let opts = EngineOptions {
        threads: a.threads,
        isa: match a.kernels {
            Kernels::Auto => None,
            Kernels::Scalar => Some(Isa::Scalar),
            Kernels::Portable => Some(Isa::Portable),
        },
        max_context: None,
    };
    let e = Engine::load(&model, &opts).with_context(|| format!("loading {}", model.display()))?;
    let vocab = e.model.cfg.vocab as u32;
    // A fixed pseudo-random prompt: the content does not change the work done.
    let prompt: Vec<u32> = (0..a.prompt_tokens as u32)
        .map(|i| (i * 7919 + 13) % vocab)
        .collect();
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    for _ in 0..a.reps.max(1) {
        let mut seq = e.model.new_sequence();
        let t = Instant::now();
        let h = e.model.forward(
            &e.runner,
            &mut [Feed {
                seq: &mut seq,
                tokens: &prompt,
            }],
        )?;
        let d = e.model.cfg.d_model;
        let mut logits = e.model.logits(&e.runner, &h[h.len() - d..])?;
        best_pp = best_pp.max(a.prompt_tokens as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..a.gen_tokens {
            let tok = sworn_engine::sampling::argmax(&logits);
            let h = e.model.forward(
                &e.runner,
                &mut [Feed {
                    seq: &mut seq,
                    tokens: &[tok],
                }],
            )?;
            logits = e.model.logits(&e.runner, &h)?;
        }
        best_tg = best_tg.max(a.gen_tokens as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "sworn",
            "kernels": e.runner.isa.name(),
            "threads": a.threads,
            "pp_tokens": a.prompt_tokens,
            "tg_tokens": a.gen_tokens,
            "pp_tok_s": best_pp,
            "tg_tok_s": best_tg,
        })
    );
    Ok(())
}

fn main() {
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
        Command::Bench(a) => bench(a),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
