//! `sworn gpu-check`: the hardware conformance and speed check of the CUDA backend. For each
//! model it compares, bit for bit, every step's logits on the GPU with the CPU engine's, for
//! greedy and sampled generations, alone and batched, and a prefill's logits at every position;
//! then it measures prefill and decode tokens/s on both. One table; exit status 1 on any
//! difference. `scripts/gpu-check.sh` packs it with a real-weights model for a GPU machine; run
//! with `--device cuda-host-shim` it checks the checker on a machine without a GPU (CI does).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use sworn_engine::model::Feed;
use sworn_engine::synthetic::{write_model, SyntheticSpec};
use sworn_engine::{
    hash_logits, DeviceKind, Engine, EngineOptions, Message, Prompt, Request, SamplingParams,
};

/// What to check.
pub struct Options {
    /// Real models to check (besides the synthetic ones the check writes itself).
    pub models: Vec<PathBuf>,
    pub device: DeviceKind,
    /// CPU threads for the reference.
    pub threads: usize,
    /// Prompt tokens of the prefill check and benchmark.
    pub prompt_tokens: usize,
    /// Tokens of each generation, and of the decode benchmark.
    pub gen_tokens: usize,
    /// Sequences decoded together in the batched speed row.
    pub batch: usize,
    /// Skip the synthetic models.
    pub no_synthetic: bool,
}

/// One line of the table.
struct Row {
    model: String,
    check: String,
    detail: String,
    ok: Option<bool>,
}

fn requests(n: u32) -> Vec<Request> {
    use sworn_engine::synthetic::{filtered_sampling as sampled, request};
    vec![
        request(
            Prompt::Text("The history of the Roman Empire".into()),
            SamplingParams::default(),
            n,
            &[],
        ),
        request(
            Prompt::Text("Once upon a time, in a small village,".into()),
            sampled(7, 0.9),
            n,
            &[],
        ),
        request(
            Prompt::Chat(vec![Message::new("user", "Name three colours.")]),
            sampled(42, 1.2),
            n,
            &[],
        ),
    ]
}

/// Synthetic models covering every tensor type and architecture, written under `dir`.
fn synthetic_models(dir: &Path) -> Result<Vec<PathBuf>> {
    let specs = [
        ("synthetic-llama", SyntheticSpec::default()),
        ("synthetic-kquants", SyntheticSpec::k_quants()),
        ("synthetic-gemma3", SyntheticSpec::gemma3()),
    ];
    let mut out = Vec::new();
    for (name, spec) in specs {
        let p = dir.join(format!("{name}.gguf"));
        write_model(&p, &spec).with_context(|| format!("writing {}", p.display()))?;
        out.push(p);
    }
    Ok(out)
}

/// Runs the check; `Ok(true)` when every comparison is bit-exact.
pub fn run(o: &Options) -> Result<bool> {
    let mut models = o.models.clone();
    let dir = std::env::temp_dir().join(format!("sworn-gpu-check-{}", std::process::id()));
    if !o.no_synthetic {
        std::fs::create_dir_all(&dir)?;
        models.extend(synthetic_models(&dir)?);
    }
    let mut rows = Vec::new();
    let mut device_name = String::new();
    for path in &models {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let load = |device| {
            Engine::load(
                path,
                &EngineOptions {
                    threads: o.threads,
                    device,
                    ..Default::default()
                },
            )
            .with_context(|| format!("loading {} on {}", path.display(), device.name()))
        };
        let cpu = load(DeviceKind::Cpu)?;
        let gpu = load(o.device)?;
        device_name = gpu.backend_name();
        check_model(&name, &cpu, &gpu, o, &mut rows)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("sworn gpu-check: {device_name} against the CPU engine");
    let w = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (wm, wc) = (w(|r| &r.model).max(5), w(|r| &r.check).max(5));
    println!("| {:wm$} | {:wc$} | result | detail", "model", "check");
    println!(
        "|-{}-|-{}-|--------|-------",
        "-".repeat(wm),
        "-".repeat(wc)
    );
    for r in &rows {
        let res = match r.ok {
            Some(true) => "equal ",
            Some(false) => "DIFFER",
            None => "      ",
        };
        println!("| {:wm$} | {:wc$} | {res} | {}", r.model, r.check, r.detail);
    }
    Ok(rows.iter().all(|r| r.ok != Some(false)))
}

fn check_model(
    name: &str,
    cpu: &Engine,
    gpu: &Engine,
    o: &Options,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let mut row = |check: &str, detail: String, ok: Option<bool>| {
        rows.push(Row {
            model: name.into(),
            check: check.into(),
            detail,
            ok,
        })
    };
    // Prefill: the logits of every position of one prompt.
    let vocab = cpu.model.cfg.vocab as u32;
    let n = o
        .prompt_tokens
        .min(
            cpu.model
                .max_context
                .saturating_sub(o.gen_tokens.min(64) + 1),
        )
        .max(2);
    let prompt: Vec<u32> = (0..n as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let prefill = |e: &Engine| -> Result<(Vec<[u8; 32]>, f64)> {
        let mut seq = e.model.new_sequence();
        let t = Instant::now();
        let h = e.forward(&mut [Feed {
            seq: &mut seq,
            tokens: &prompt,
        }])?;
        let secs = t.elapsed().as_secs_f64();
        let d = e.model.cfg.d_model;
        let mut hashes = Vec::new();
        for rows in h.chunks(16 * d) {
            let l = e.logits(rows)?;
            hashes.extend(l.chunks_exact(e.model.cfg.vocab).map(hash_logits));
        }
        Ok((hashes, secs))
    };
    let (want, cpu_pp) = prefill(cpu)?;
    let (got, gpu_pp) = prefill(gpu)?;
    let same = want.iter().zip(&got).filter(|(a, b)| a == b).count();
    row(
        "prefill logits, every position",
        format!("{same}/{} positions", want.len()),
        Some(same == want.len() && want.len() == got.len()),
    );
    // Generations alone, then all together in one batch.
    let reqs = requests(o.gen_tokens as u32);
    let alone: Vec<_> = reqs
        .iter()
        .map(|r| cpu.generate(r))
        .collect::<Result<_, _>>()?;
    for (r, want) in reqs.iter().zip(&alone) {
        let got = gpu.generate(r)?;
        let kind = if r.params.temperature == 0.0 {
            "greedy"
        } else {
            "sampled"
        };
        let steps = want.logits_hashes.len();
        let eq = want
            .logits_hashes
            .iter()
            .zip(&got.logits_hashes)
            .filter(|(a, b)| a == b)
            .count();
        row(
            &format!("{kind} generation, alone (seed {})", r.params.seed),
            format!(
                "{eq}/{steps} steps' logits, tokens {}",
                if want.tokens == got.tokens {
                    "equal"
                } else {
                    "differ"
                }
            ),
            Some(eq == steps && want.tokens == got.tokens && steps == got.logits_hashes.len()),
        );
    }
    let batch = gpu.generate_batch(&reqs, None)?;
    let ok = batch
        .iter()
        .zip(&alone)
        .all(|(b, a)| b.tokens == a.tokens && b.logits_hashes == a.logits_hashes);
    let steps: usize = alone.iter().map(|c| c.logits_hashes.len()).sum();
    row(
        "the same, batched together",
        format!("{} sequences, {steps} steps", reqs.len()),
        Some(ok),
    );
    // Speed: prefill (above), decode one token at a time, decode a batch.
    let decode = |e: &Engine, seqs: usize| -> Result<f64> {
        let mut ss: Vec<_> = (0..seqs).map(|_| e.model.new_sequence()).collect();
        for s in ss.iter_mut() {
            e.forward(&mut [Feed {
                seq: s,
                tokens: &prompt[..8.min(prompt.len())],
            }])?;
        }
        let steps = o.gen_tokens.max(1);
        let t = Instant::now();
        for i in 0..steps {
            let toks: Vec<[u32; 1]> = (0..seqs)
                .map(|j| [((i * 31 + j * 7) as u32) % vocab])
                .collect();
            let mut feeds: Vec<Feed> = ss
                .iter_mut()
                .zip(&toks)
                .map(|(s, t)| Feed { seq: s, tokens: t })
                .collect();
            let h = e.forward(&mut feeds)?;
            e.logits(&h)?;
        }
        Ok((steps * seqs) as f64 / t.elapsed().as_secs_f64())
    };
    let (cpu_tg, gpu_tg) = (decode(cpu, 1)?, decode(gpu, 1)?);
    let gpu_batch = decode(gpu, o.batch)?;
    row(
        "prefill tokens/s",
        format!(
            "gpu {:.1}, cpu {:.1} ({n} tokens; {:.2}x)",
            n as f64 / gpu_pp,
            n as f64 / cpu_pp,
            cpu_pp / gpu_pp
        ),
        None,
    );
    row(
        "decode tokens/s, batch 1",
        format!("gpu {gpu_tg:.1}, cpu {cpu_tg:.1} ({:.2}x)", gpu_tg / cpu_tg),
        None,
    );
    row(
        &format!("decode tokens/s, batch {}", o.batch),
        format!("gpu {gpu_batch:.1} in all"),
        None,
    );
    Ok(())
}
