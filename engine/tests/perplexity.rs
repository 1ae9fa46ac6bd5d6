//! `perplexity` on a synthetic model: the estimate is llama.cpp's formula over the canonical
//! logits, so it can be recomputed here from logits taken another way (token-by-token decoding),
//! and it does not depend on the thread count.

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
