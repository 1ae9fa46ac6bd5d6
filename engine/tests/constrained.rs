//! Constrained decoding and logprobs on a synthetic model: every output keeps to its grammar
//! (and would not without it), the mask and the logprobs are the same alone and batched with
//! other requests, and teacher-forced logits recompute the logprobs bit for bit.

use sworn_engine::logprobs::step_logprobs;
use sworn_engine::synthetic::{write_model, SyntheticSpec};
use sworn_engine::{Engine, EngineOptions, FinishReason, Prompt, Request, SamplingParams};

/// The synthetic model, written under `name` (each test its own file: tests run in parallel).
fn engine(name: &str) -> Engine {
    let dir = std::env::temp_dir().join(format!("sworn-constrained-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.gguf"));
    write_model(&p, &SyntheticSpec::default()).unwrap();
    Engine::load(
        &p,
        &EngineOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap()
}

/// `ab`, two to four digits, `!`.
const GRAMMAR: &str = r#"start: "ab" /[0-9]{2,4}/ "!""#;

fn matches(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("ab") else {
        return false;
    };
    let Some(digits) = rest.strip_suffix('!') else {
        return false;
    };
    (2..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn request(seed: u64, grammar: bool, logprobs: Option<u8>) -> Request {
    Request {
        prompt: Prompt::Text("the the".into()),
        params: SamplingParams {
            temperature: 1.3,
            seed,
            ..Default::default()
        },
        max_tokens: 24,
        logprobs,
        grammar: grammar.then(|| GRAMMAR.to_string()),
        ..Default::default()
    }
}

#[test]
fn outputs_keep_to_their_grammar_and_only_with_it() {
    let e = engine("grammar");
    let mut unconstrained_matches = 0;
    for seed in 0..8 {
        let c = e.generate(&request(seed, true, None)).unwrap();
        assert!(matches(&c.text), "seed {seed}: {:?}", c.text);
        assert_eq!(c.finish_reason, FinishReason::Stop, "seed {seed}");
        assert!(e.tokenizer.stop_ids.contains(c.tokens.last().unwrap()));
        let free = e.generate(&request(seed, false, None)).unwrap();
        unconstrained_matches += matches(&free.text) as usize;
    }
    assert_eq!(
        unconstrained_matches, 0,
        "the grammar is what shapes the output"
    );
    // A grammar that does not compile is an invalid request.
    let mut bad = request(0, true, None);
    bad.grammar = Some("start: (".into());
    assert!(e.generate(&bad).is_err());
}

#[test]
fn masks_and_logprobs_are_batch_invariant_and_recomputable() {
    let e = engine("batch");
    let reqs = vec![
        request(3, true, Some(4)),
        request(4, false, Some(0)),
        request(5, true, None),
        request(6, false, Some(20)),
    ];
    let solo: Vec<_> = reqs.iter().map(|r| e.generate(r).unwrap()).collect();
    for chunk in [None, Some(1), Some(3)] {
        let batched = e.generate_batch(&reqs, chunk).unwrap();
        assert_eq!(batched, solo, "prefill chunk {chunk:?}");
    }
    for (r, c) in reqs.iter().zip(&solo) {
        let n = match r.logprobs {
            Some(n) => n as usize,
            None => {
                assert!(c.logprobs.is_empty());
                continue;
            }
        };
        assert_eq!(c.logprobs.len(), c.tokens.len());
        e.teacher_forced(&c.prompt_tokens, &c.tokens, |i, logits| {
            let mine = step_logprobs(logits, c.tokens[i], n);
            assert_eq!(mine.logprob.to_bits(), c.logprobs[i].logprob.to_bits());
            assert_eq!(mine.top, c.logprobs[i].top);
            assert_eq!(mine.top.len(), n.min(logits.len()));
            assert!(mine.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
            Ok(())
        })
        .unwrap();
    }
}

/// A JSON schema whose `$ref`s only lead to each other compiles in llguidance but fails at
/// the first mask. It is refused when the constraint is made, before any work is queued, with
/// a short message that carries neither the parser's state nor the grammar. (Before, it failed
/// at the first token with the whole grammar and parser state in the error.)
#[test]
fn grammars_that_cannot_start_are_refused_up_front_and_briefly() {
    let e = engine("recursive-ref");
    let schema = r##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##;
    let grammar = format!("start: %json {schema}");
    let err = e.constraint(&grammar).err().expect("refused").to_string();
    assert!(err.len() < 400, "{} bytes: {err}", err.len());
    assert!(!err.contains("$defs"), "echoes the grammar: {err}");
    // A sound grammar still compiles and starts.
    assert!(e.constraint(GRAMMAR).is_ok());
}
