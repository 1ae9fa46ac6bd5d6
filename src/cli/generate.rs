//! `sworn generate`: one completion, printed, and its signed transcript written on request.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use sworn::attestation;
use sworn_engine::{Engine, EngineOptions, Message, Prompt, Request, SamplingParams};

use super::{data_dir, default_key_path, hex, signing_key, DeviceArg, Kernels};

#[derive(Args)]
pub struct GenerateArgs {
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

pub fn generate(a: GenerateArgs) -> Result<i32> {
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
        isa: a.kernels.isa(),
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
