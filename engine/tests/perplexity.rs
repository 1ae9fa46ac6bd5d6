//! `perplexity` on a synthetic model: the estimate is llama.cpp's formula over the canonical
//! logits, so it can be recomputed here from logits taken another way (token-by-token decoding),
//! and it does not depend on the thread count. On the real models: within 1% of llama.cpp.

mod common;

use std::path::PathBuf;

use sworn_engine::model::Feed;
use sworn_engine::perplexity::{nll, perplexity};
use sworn_engine::synthetic::{write_model, SyntheticSpec};
use sworn_engine::{Engine, EngineOptions};

fn model() -> PathBuf {
    let p = std::env::temp_dir().join(format!("sworn-ppl-{}.gguf", std::process::id()));
    write_model(&p, &SyntheticSpec::default()).unwrap();
    p
}

#[test]
fn perplexity_follows_llama_cpps_definition() {
    let p = model();
    let engine = |threads| {
        Engine::load(
            &p,
            &EngineOptions {
                threads,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let e = engine(1);
    let text = "the rain in the plain and on the hill, then again ".repeat(12);
    let ctx = 32;
    let mut seen = Vec::new();
    let r = perplexity(&e, &text, ctx, None, |c, v| seen.push((c, v))).unwrap();
    let tokens = e.tokenizer.encode(&text, false).unwrap();
    assert_eq!(r.chunks, tokens.len() / ctx);
    assert_eq!(r.scored, r.chunks * (ctx - 1 - ctx / 2));
    assert_eq!(seen.len(), r.chunks);
    assert!(r.ppl.is_finite() && r.ppl > 1.0 && r.err > 0.0, "{r:?}");
    // The same scores from logits computed token by token, chunk by chunk.
    let (mut sum, mut count) = (0f64, 0usize);
    for c in 0..r.chunks {
        let chunk = &tokens[c * ctx..(c + 1) * ctx];
        let mut seq = e.model.new_sequence();
        for (j, &t) in chunk.iter().enumerate().take(ctx - 1) {
            let h = e
                .model
                .forward(
                    &e.runner,
                    &mut [Feed {
                        seq: &mut seq,
                        tokens: &[t],
                    }],
                )
                .unwrap();
            if j >= ctx / 2 {
                let l = e.model.logits(&e.runner, &h).unwrap();
                sum += nll(&l, chunk[j + 1]);
                count += 1;
            }
        }
    }
    assert_eq!(count, r.scored);
    assert_eq!(((sum / count as f64).exp()).to_bits(), r.ppl.to_bits());
    // Threads change nothing.
    let r2 = perplexity(&engine(2), &text, ctx, None, |_, _| {}).unwrap();
    assert_eq!(r2, r);
    // Too short a text, or a context the model cannot hold, is refused with the reason.
    let e1 = perplexity(&e, "the rain", ctx, None, |_, _| {}).unwrap_err();
    assert!(e1.to_string().contains("needs at least"), "{e1}");
    let e2 = perplexity(&e, &text, 1 << 20, None, |_, _| {}).unwrap_err();
    assert!(e2.to_string().contains("exceeds"), "{e2}");
    let _ = std::fs::remove_file(&p);
}

/// Fidelity on the real models without llama.cpp in CI: sworn's perplexity on the GPL-3 text is
/// within 1% of what llama.cpp's `llama-perplexity` measured on the same GGUF and text
/// (recorded by `scripts/bench/perplexity.py --write`, which runs both side by side). sworn's
/// own figure is deterministic, so it must also be exactly the one recorded beside llama.cpp's.
#[test]
fn real_models_are_within_one_percent_of_llama_cpp() {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/golden/perplexity_llama_cpp.json")).unwrap();
    let text = include_str!("../../tests/data/gpl-3.0.txt");
    for run in golden["runs"].as_array().unwrap() {
        let name = run["model"].as_str().unwrap();
        let path = if name.starts_with("gemma") {
            common::gemma_model("perplexity vs llama.cpp (gemma3)")
        } else {
            common::real_model("perplexity vs llama.cpp (smollm2)")
        };
        let Some(path) = path else {
            continue;
        };
        let engine = Engine::load(
            &path,
            &EngineOptions {
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let ctx = run["ctx"].as_u64().unwrap() as usize;
        let r = perplexity(&engine, text, ctx, None, |_, _| {}).unwrap();
        let llama = run["llama_ppl"].as_f64().unwrap();
        let diff = (r.ppl - llama) / llama;
        println!(
            "{name}: sworn {:.4} +/- {:.4}, llama.cpp {llama:.4} ({:+.2}%)",
            r.ppl,
            r.err,
            100.0 * diff
        );
        assert_eq!(r.chunks as u64, run["chunks"].as_u64().unwrap(), "{name}");
        assert_eq!(r.scored as u64, run["scored"].as_u64().unwrap(), "{name}");
        assert!(diff.abs() < 0.01, "{name}: {diff:+.4} from llama.cpp");
        assert!(
            (r.ppl - run["sworn_ppl"].as_f64().unwrap()).abs() < 1e-9,
            "{name}: sworn's perplexity changed"
        );
    }
}
