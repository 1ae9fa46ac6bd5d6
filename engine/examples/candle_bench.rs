//! candle-transformers' `quantized_llama` on a GGUF: prefill and decode tokens/s, printed as one
//! JSON line, for `scripts/bench/compare.py`. Threads follow RAYON_NUM_THREADS.
//!
//!     RAYON_NUM_THREADS=1 cargo run --release -p sworn-engine --example candle_bench -- MODEL.gguf

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: candle_bench MODEL.gguf [PP] [TG] [REPS]")?;
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (pp, tg, reps) = (arg(2, 128), arg(3, 128), arg(4, 3));
    let mut file = std::fs::File::open(&path)?;
    let content = gguf_file::Content::read(&mut file)?;
    let mut model = ModelWeights::from_gguf(content, &mut file, &Device::Cpu)?;
    let prompt: Vec<u32> = (0..pp as u32).map(|i| (i * 7919 + 13) % 49152).collect();
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    for _ in 0..reps {
        model.clear_kv_cache();
        let t = Instant::now();
        let x = Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let mut logits = model.forward(&x, 0)?.squeeze(0)?;
        best_pp = best_pp.max(pp as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..tg {
            let tok = logits.argmax(0)?.to_scalar::<u32>()?;
            let x = Tensor::new(&[tok], &Device::Cpu)?.unsqueeze(0)?;
            logits = model.forward(&x, pp + i)?.squeeze(0)?;
        }
        best_tg = best_tg.max(tg as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"engine\":\"candle\",\"pp_tok_s\":{best_pp},\"tg_tok_s\":{best_tg},\"pp_tokens\":{pp},\"tg_tokens\":{tg}}}"
    );
    Ok(())
}
