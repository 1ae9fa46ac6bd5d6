//! Commands about a model file: `sworn manifest` (its commitments and tensor hashes),
//! `sworn gpu-check` (the GPU against the CPU, bit for bit), `sworn model-slice`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

use super::{hex, DeviceArg};

#[derive(Args)]
pub struct ManifestArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print JSON, with every tensor's hash.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GpuCheckArgs {
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
pub struct ModelSliceArgs {
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

pub fn manifest(a: ManifestArgs) -> Result<i32> {
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
                "exec_root": c.exec_root.as_ref().map(|e| hex(e)),
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
        if let Some(e) = &c.exec_root {
            println!("execution        {}", hex(e));
        }
        println!("commitment       {}", hex(&c.commitment()));
        eprintln!("[hashed in {secs:.3}s]");
    }
    Ok(0)
}

pub fn gpu_check(a: GpuCheckArgs) -> Result<i32> {
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

pub fn model_slice(a: ModelSliceArgs) -> Result<i32> {
    let total = sworn_engine::slice::slice_layers(&a.model, &a.out, a.layers)
        .with_context(|| format!("slicing {}", a.model.display()))?;
    eprintln!(
        "wrote {} layers of {total} to {}",
        a.layers,
        a.out.display()
    );
    Ok(0)
}
