//! `sworn bench` (prefill and decode throughput, as llama-bench measures it) and
//! `sworn perplexity` (as llama-perplexity computes it).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use sworn::attestation;
use sworn_attest::OperatorKey;
use sworn_engine::{Engine, EngineOptions, Prompt, Request, SamplingParams};

use super::{DeviceArg, Kernels};

#[derive(Args)]
pub struct BenchArgs {
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
pub struct PerplexityArgs {
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

pub fn bench(a: BenchArgs) -> Result<i32> {
    use sworn_engine::model::Feed;
    let model = a
        .model
        .clone()
        .unwrap_or_else(sworn_engine::default_model_path);
    let opts = EngineOptions {
        threads: a.threads,
        isa: a.kernels.isa(),
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
pub fn bench_attest(e: &Engine, model: &Path, a: &BenchArgs) -> Result<i32> {
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

pub fn perplexity(a: PerplexityArgs) -> Result<i32> {
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
