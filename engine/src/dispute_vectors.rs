//! Vectors for the on-chain dispute code, from the engine's traces (`crate::trace`): kept out
//! of `trace` itself because they also build transcripts and model commitments
//! (`crate::commit`), which depend on `trace`'s weights.
//!
//! Vectors for the on-chain executor (`contracts/test/SwornExecutor.t.sol`): real traces of
//! synthetic models (Llama with Q4_0/Q4_1/Q8_0, Llama 3 with RoPE frequency factors, Gemma 3
//! with its sliding window, ...), and for words of every kind, the leaves the step reads with
//! their proofs, and the word.
//!
//! File layout (big-endian 32-bit words): the shape (`arch n_layer d n_head n_kv hd ff vocab
//! window positions steps penalty eps candidates top_p min_p float_mats`), the root (8 words), the leaf
//! count, the weights root (8 words), the penalty's bits, its window, the RoPE base's and local
//! base's bits, the temperature's, top-p's and min-p's bits, the seed (high word first), the
//! token count and the tokens, the case count, then
//! per case `element value n_leaves (index words[32] n_proof proof[8 n_proof])* n_weights (slot
//! code rows cols row n_bytes bytes[padded] n_row_proof proof* n_slot_proof proof*)* tokens?`.

use std::path::Path;

use crate::error::{EngineError, Result};
use crate::model::Arch;
use crate::sampling::SamplingParams;
use crate::synthetic::{write_model, Rng, SyntheticSpec};
use crate::trace::layout::{Kind, LEAF};
use crate::trace::record::{trace, Corruption, Trace};
use crate::trace::weights::Weights;
use sworn_attest::trace_tree::TraceTree;

/// The shape's words, as the executor's `SwornLayout.Shape` takes them.
pub fn shape_words(t: &Trace) -> [u32; 17] {
    crate::trace::bind::shape_words(&t.layout.shape)
}

/// The cases of one trace: per region of the first and (with `last_layer`) the last layer,
/// and those outside the layers, its last word, then its first and `per_region - 2` random ones.
fn cases(
    t: &Trace,
    tree: &TraceTree,
    weights: &Weights,
    tokens: &[u32],
    (per_region, last_layer): (usize, bool),
    rng: &mut Rng,
) -> Result<Vec<u8>> {
    let last = t.layout.shape.cfg.n_layer - 1;
    let mut elements = Vec::new();
    for r in &t.layout.regions {
        let other_layer = r
            .layer
            .is_some_and(|l| l != 0 && (l != last || !last_layer));
        if other_layer {
            continue;
        }
        elements.push(r.start + r.len - 1);
        if per_region > 1 {
            elements.push(r.start);
        }
        // A sampled step's regions hold the running values the game is most subtle about:
        // twelve more words each.
        let extra = if r.kind.is_sampled() && per_region > 1 {
            12
        } else {
            0
        };
        for _ in 2..per_region + extra {
            elements.push(r.start + rng.next_u64() % r.len);
        }
        if per_region == 1 && matches!(r.kind, Kind::Max | Kind::Sums | Kind::Weighted) {
            // The last position's first segment: a full one when the replay is longer than a
            // segment of keys (the real models' vectors), the costliest of these steps.
            let s = &t.layout.shape;
            let l = r.layer.unwrap_or(0);
            let last = s.positions - 1;
            let (nh, hd) = (s.cfg.n_head, s.cfg.head_dim);
            let segs = |p: usize| crate::trace::layout::Shape::key_segments(s.keys(l, p));
            let before: usize = (0..last).map(segs).sum::<usize>() * nh;
            let unit = if r.kind == Kind::Weighted { hd } else { 1 };
            let row = before * unit + ((nh - 1) * unit + unit - 1) * segs(last);
            elements.push(r.start + row as u64);
        }
        if r.kind == Kind::Penalized {
            // The logits the penalty changes: each step's recent history ids.
            let s = &t.layout.shape;
            let v = s.cfg.vocab as u64;
            let prompt = s.positions + 1 - s.steps;
            for n in 0..s.steps {
                let end = prompt + n;
                for &tok in &tokens[end.saturating_sub(16)..end] {
                    elements.push(r.start + n as u64 * v + u64::from(tok));
                }
            }
        }
    }
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&w.to_be_bytes());
    put(&mut out, elements.len() as u32);
    for e in elements {
        put_words(&mut out, &[e as u32, t.words[e as usize]]);
        put_witness(&mut out, t, tree, weights, tokens, e)?;
    }
    Ok(out)
}

/// Greedy sampling with repetition penalty `penalty` over the last 16 tokens.
fn greedy_params(penalty: f32) -> SamplingParams {
    SamplingParams {
        repeat_penalty: penalty,
        repeat_last_n: 16,
        ..Default::default()
    }
}

/// One trace's vector file: the model at `path` replaying `prompt` and three output tokens
/// (any do: the trace holds what the model computes from them) sampled with `params`.
fn file(
    path: &Path,
    prompt: &[u32],
    params: &SamplingParams,
    per: (usize, bool),
    rng: &mut Rng,
) -> Result<Vec<u8>> {
    let model = crate::model::Model::load(path, None)?;
    let rt = crate::kernels::Runner::new(crate::kernels::Isa::detect(), 1)?;
    let output: Vec<u32> = vec![7, 100, 42];
    let params = params.clone();
    let t = trace(&model, &rt, prompt, &output, &params, None)?;
    let tree = TraceTree::new(&t.words);
    let weights = Weights::load(path, &model.cfg)?;
    let mut tokens = prompt.to_vec();
    tokens.extend_from_slice(&output[..output.len() - 1]);
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&w.to_be_bytes());
    for w in shape_words(&t) {
        put(&mut out, w);
    }
    out.extend_from_slice(&tree.root());
    put(&mut out, tree.leaves() as u32);
    out.extend_from_slice(&weights.root());
    put(&mut out, params.repeat_penalty.to_bits());
    put(&mut out, params.repeat_last_n);
    put(&mut out, model.cfg.rope_base.to_bits());
    put(&mut out, crate::trace::bind::local_base(&model.cfg));
    for w in [
        params.temperature.to_bits(),
        params.top_p.to_bits(),
        params.min_p.to_bits(),
        (params.seed >> 32) as u32,
        params.seed as u32,
    ] {
        put(&mut out, w);
    }
    put(&mut out, tokens.len() as u32);
    for &tok in &tokens {
        put(&mut out, tok);
    }
    out.extend(cases(&t, &tree, &weights, &tokens, per, rng)?);
    Ok(out)
}

/// Vector files of real models (`(file name, GGUF path)`, greedy, and `_sampled`): the last
/// word of every region of the first layer and outside the layers, for the executor's gas on
/// real shapes.
pub fn generate_real(models: &[(&str, &Path)]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut rng = Rng(0x8EA1);
    let mut files = Vec::new();
    for (name, path) in models {
        // 70 tokens: past a segment of 64 keys, so that attention's segments are full ones.
        let prompt: Vec<u32> = (0..70).map(|i| 100 + (i * 37 % 4000)).collect();
        files.push((
            name.to_string(),
            file(path, &prompt, &greedy_params(1.1), (1, false), &mut rng)?,
        ));
        // And sampled, with every filter: the sort's levels and the draw on the real vocabulary.
        let sampled = SamplingParams {
            temperature: 0.7,
            top_p: 0.9,
            min_p: 0.02,
            seed: 42,
            ..greedy_params(1.1)
        };
        files.push((
            format!("{name}_sampled"),
            file(path, &prompt, &sampled, (1, false), &mut rng)?,
        ));
    }
    Ok(files)
}

/// Vector files of `bind` (`bind_*`) for transcripts of the model at `model`: per transcript,
/// the model commitment's preimage (its fields, the execution model's 12 words and the weights
/// root), the request's body, the output tokens, the rest of the output's body and the packed
/// weight slots (`pack_slots`), the three
/// commitments, the disputed step (the last), then what `bind` must give (context, leaves,
/// element, token), or nothing but a zero flag for a transcript the game does not take.
pub fn generate_bind(
    model: &Path,
    transcripts: &[(&str, &Path)],
) -> Result<Vec<(String, Vec<u8>)>> {
    use sworn_attest::{Limits, Transcript};
    let m = crate::model::Model::load(model, None)?;
    let mut f = crate::gguf::GgufFile::open(model)?;
    let slots = crate::trace::weights::slot_preimages(&mut f, &m.cfg)?;
    let weights = crate::trace::weights::slots_root(&slots);
    let mut files = Vec::new();
    for (name, path) in transcripts {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let json = String::from_utf8_lossy(&bytes);
        let t = Transcript::from_json(&json, Limits::default())
            .map_err(|e| EngineError::InvalidRequest(format!("{name}: {e}")))?;
        let mut out = Vec::new();
        let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&w.to_be_bytes());
        let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
            out.resize(out.len().div_ceil(4) * 4, 0);
        };
        let c = &t.model;
        out.extend_from_slice(&c.file_blake3);
        out.extend_from_slice(&c.tensors_root);
        put(&mut out, c.n_tensors);
        out.extend_from_slice(&c.tokenizer_blake3);
        out.extend_from_slice(&c.chat_template_blake3);
        for w in crate::trace::weights::exec_words(&m.cfg) {
            put(&mut out, w);
        }
        out.extend_from_slice(&weights);
        put_bytes(&mut out, &t.request.body(t.version));
        let body = t.output.body(t.version);
        let n = t.output.tokens.len();
        put(&mut out, n as u32);
        for &tok in &t.output.tokens {
            put(&mut out, tok);
        }
        put_bytes(&mut out, &body[4 + 4 * n..]);
        put_bytes(&mut out, &crate::trace::weights::pack_slots(&slots));
        let cs = t.commitments();
        for h in [cs.model, cs.request, cs.output] {
            out.extend_from_slice(&h);
        }
        let step = n - 1;
        put(&mut out, step as u32);
        match crate::trace::bind::bind(
            &m.cfg,
            &slots,
            &t.request.prompt_tokens,
            &t.output.tokens,
            &t.request.sampling,
        ) {
            Ok(b) if t.request.grammar.is_none() => {
                put(&mut out, 1);
                out.extend_from_slice(&b.context);
                put(&mut out, b.leaves as u32);
                put(&mut out, b.element(step) as u32);
                put(&mut out, t.output.tokens[step]);
            }
            _ => put(&mut out, 0),
        }
        files.push((format!("bind_{name}"), out));
    }
    Ok(files)
}

/// The vector files (name, bytes), from models written into `dir`.
pub fn generate(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    use candle_core::quantized::GgmlDType as T;
    let specs = [
        (
            "trace_llama",
            SyntheticSpec {
                kinds: vec![T::Q4_1, T::Q4_0, T::Q8_0],
                d_ff: 288,
                ..Default::default()
            },
            70,
            greedy_params(1.0),
        ),
        (
            "trace_llama3",
            SyntheticSpec {
                kinds: vec![T::Q8_0],
                n_layer: 1,
                llama3: true,
                ..Default::default()
            },
            6,
            greedy_params(1.0),
        ),
        (
            "trace_kquants",
            SyntheticSpec {
                kinds: vec![T::Q4K, T::Q6K, T::Q5_0, T::Q5K, T::Q3K, T::Q2K, T::Q5_1],
                n_layer: 1,
                ..SyntheticSpec::k_quants()
            },
            5,
            greedy_params(1.0),
        ),
        (
            "trace_gemma3",
            SyntheticSpec {
                kinds: vec![T::Q4_1, T::Q8_0, T::Q5_0, T::Q4_0],
                ..SyntheticSpec::gemma3()
            },
            12,
            greedy_params(1.3),
        ),
        (
            "trace_qwen2",
            SyntheticSpec {
                arch: Arch::Qwen2,
                kinds: vec![T::Q8_0, T::Q4_1],
                n_layer: 1,
                ..Default::default()
            },
            6,
            greedy_params(0.8),
        ),
        (
            "trace_qwen3",
            SyntheticSpec {
                arch: Arch::Qwen3,
                kinds: vec![T::Q4_0, T::Q8_0],
                n_layer: 1,
                ..Default::default()
            },
            6,
            greedy_params(1.0),
        ),
        (
            // Float matrices (spec §1.3's eight lanes): F32, F16 and BF16 products, and the
            // tied F16 embedding as a float head.
            "trace_float",
            SyntheticSpec {
                kinds: vec![T::F32, T::F16, T::BF16, T::Q8_0],
                embd_kind: T::F16,
                n_layer: 1,
                d_ff: 288,
                ..Default::default()
            },
            6,
            greedy_params(1.0),
        ),
        (
            // Every sampled step: penalty, temperature, the sort, top-p, min-p, the draw.
            "trace_sampled",
            SyntheticSpec {
                kinds: vec![T::Q8_0],
                n_layer: 1,
                ..Default::default()
            },
            6,
            SamplingParams {
                temperature: 0.7,
                top_p: 0.9,
                min_p: 0.05,
                seed: 0x1234_5678_9ABC,
                ..greedy_params(1.1)
            },
        ),
        (
            // top-k's cut, a hot temperature, no top-p or min-p.
            "trace_sampled_top_k",
            SyntheticSpec {
                kinds: vec![T::Q4_0],
                n_layer: 1,
                ..Default::default()
            },
            5,
            SamplingParams {
                temperature: 1.7,
                top_k: 9,
                seed: 77,
                ..Default::default()
            },
        ),
    ];
    let mut rng = Rng(0x7ACE);
    let mut files = Vec::new();
    for (name, spec, prompt_len, params) in specs {
        let path = dir.join(format!("{name}.gguf"));
        write_model(&path, &spec)?;
        let prompt: Vec<u32> = (0..prompt_len).map(|i| (i * 29 % 250) as u32 + 3).collect();
        let bytes = file(&path, &prompt, &params, (4, true), &mut rng)?;
        files.push((name.to_string(), bytes));
    }
    Ok(files)
}

/// One dispute's corruption point: the region, the word, and the bits flipped.
pub struct Point {
    pub name: &'static str,
    pub kind: Kind,
    pub layer: Option<usize>,
    pub index: u64,
    pub xor: u32,
}

/// Appends `words` as big-endian words.
fn put_words(out: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// Appends a length-prefixed byte string padded to whole words.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

/// Appends a proof: its length, then its hashes.
fn put_proof(out: &mut Vec<u8>, proof: &[[u8; 32]]) {
    put_words(out, &[proof.len() as u32]);
    for h in proof {
        out.extend_from_slice(h);
    }
}

/// Appends what `bind` takes of a transcript (as the `bind_*` files lay it out) and its three
/// commitments.
fn put_binding(
    out: &mut Vec<u8>,
    t: &sworn_attest::Transcript,
    cfg: &crate::model::Config,
    weights: &Weights,
) {
    let c = &t.model;
    out.extend_from_slice(&c.file_blake3);
    out.extend_from_slice(&c.tensors_root);
    put_words(out, &[c.n_tensors]);
    out.extend_from_slice(&c.tokenizer_blake3);
    out.extend_from_slice(&c.chat_template_blake3);
    put_words(out, &crate::trace::weights::exec_words(cfg));
    out.extend_from_slice(&weights.root());
    put_bytes(out, &t.request.body(t.version));
    let body = t.output.body(t.version);
    let n = t.output.tokens.len();
    put_words(out, &[n as u32]);
    put_words(out, &t.output.tokens);
    put_bytes(out, &body[4 + 4 * n..]);
    put_bytes(
        out,
        &crate::trace::weights::pack_slots(&weights.preimages()),
    );
    let cs = t.commitments();
    for h in [cs.model, cs.request, cs.output, cs.meta] {
        out.extend_from_slice(&h);
    }
}

/// Appends a witness for word `e` of `t`, its leaves proven in `tree` (the operator's).
fn put_witness(
    out: &mut Vec<u8>,
    t: &Trace,
    tree: &TraceTree,
    weights: &Weights,
    tokens: &[u32],
    e: u64,
) -> Result<()> {
    let w = crate::trace::witness::witness(t, tree, weights, tokens, e)?;
    put_words(out, &[w.leaves.len() as u32]);
    for l in &w.leaves {
        put_words(out, &[l.index as u32]);
        put_words(out, &l.words);
        put_proof(out, &l.proof);
    }
    put_words(out, &[w.rows.len() as u32]);
    for r in &w.rows {
        put_words(
            out,
            &[
                r.slot as u32,
                r.code,
                r.rows as u32,
                r.cols as u32,
                r.row as u32,
            ],
        );
        put_bytes(out, &r.data);
        put_proof(out, &r.row_proof);
        put_proof(out, &r.slot_proof);
    }
    put_words(out, &[u32::from(w.tokens)]);
    Ok(())
}

/// The completion of `steps` tokens after `prompt`, sampled with `params` (greedy or not), by an
/// operator whose computation is changed by `corruption` (none: an honest one), one token at a
/// time as a server decodes.
pub fn completion(
    model: &crate::model::Model,
    rt: &crate::kernels::Runner,
    prompt: &[u32],
    steps: usize,
    params: &crate::sampling::SamplingParams,
    corruption: Option<Corruption>,
) -> Result<Vec<u32>> {
    // (The last token fed is a placeholder: the step that samples it never reads it.)
    let mut out: Vec<u32> = Vec::new();
    for n in 0..steps {
        let mut feed = out.clone();
        feed.push(0);
        let t = trace(model, rt, prompt, &feed, params, corruption)?;
        out.push(t.token(n));
    }
    Ok(out)
}

/// The corruption of point `p` that changes the first token a greedy operator samples after
/// `prompt`: `index` `u64::MAX` on the head names the logit of the honest first token
/// (`honest_first`; flipping its sign makes another token the greedy one); otherwise the first
/// word from `index` on (up to 32 further) whose change changes the first token and leaves the
/// logits finite.
pub fn effective_corruption(
    model: &crate::model::Model,
    rt: &crate::kernels::Runner,
    prompt: &[u32],
    params: &crate::sampling::SamplingParams,
    p: &Point,
    honest_first: u32,
) -> Corruption {
    let mut c = Corruption {
        kind: p.kind,
        layer: p.layer,
        index: if p.index == u64::MAX {
            u64::from(honest_first)
        } else {
            p.index
        },
        xor: p.xor,
    };
    for _ in 0..32 {
        // (A change that makes a logit infinite has no sampled token: the next word.)
        let t = trace(model, rt, prompt, &[0], params, Some(c));
        if t.is_ok_and(|t| t.token(0) != honest_first) {
            break;
        }
        c.index += 1;
    }
    c
}

/// An unsigned format-4 transcript of the completion `out` of `prompt` (sampled with `params`) on the model
/// `commitment` commits to, naming `operator` (chain id, registry, address) in its meta.
pub fn transcript_of(
    commitment: &sworn_attest::ModelCommitment,
    prompt: &[u32],
    params: &crate::sampling::SamplingParams,
    out: &[u32],
    operator: sworn_attest::OperatorBinding,
) -> sworn_attest::Transcript {
    use sworn_attest::{FinishReason, Meta, OutputRecord, Prompt, RequestRecord, Transcript};
    Transcript {
        version: sworn_attest::FORMAT_VERSION,
        model: commitment.clone(),
        request: RequestRecord {
            spec_version: crate::canon::SPEC_VERSION.into(),
            prompt: Prompt::Text("a disputed completion".into()),
            prompt_tokens: prompt.to_vec(),
            sampling: params.clone(),
            max_tokens: out.len() as u32,
            stop: vec![],
            logprobs: None,
            grammar: None,
            tools: None,
        },
        output: OutputRecord {
            tokens: out.to_vec(),
            text: String::new(),
            finish_reason: FinishReason::Length,
            step_hashes: vec![[0; 32]; out.len()],
            logprobs: vec![],
        },
        meta: Meta {
            engine: "sworn".into(),
            engine_version: "test".into(),
            backend: "cpu".into(),
            operator_key_id: [0; 32],
            timestamp_ms: 0,
            operator: Some(operator),
        },
        signature: [0; 64],
    }
}

/// Whole disputes on a real model, for `contracts/test/SwornDispute.t.sol`: for each
/// corruption point, a cheating operator's greedy completion (its computation changed at that
/// word, everything after computed from it, so its transcript signs wrong tokens), the honest
/// challenger's trace of that transcript, and every move of the game as the contract will ask
/// for them: the opening, the operator's root, both parties' children at each level of the
/// bisection, both leaves, and the witness of the word in dispute. Then the same transcript
/// defended by an honest operator against a challenger that lies about one sampled token.
/// File layout (big-endian words): `put_binding`, the disputed step, the token's word, the
/// leaf count, the challenger's root and token leaf with its proof, the operator's, the levels
/// (each: operator left and right, challenger left and right), both leaves, the word in
/// dispute, its operator and challenger values, the witness (as the executor vectors), the
/// expected winner (1: the challenger).
pub fn generate_games(
    model_path: &Path,
    name: &str,
    points: &[Point],
) -> Result<Vec<(String, Vec<u8>)>> {
    use sworn_attest::{OperatorBinding, Transcript};
    let model = crate::model::Model::load(model_path, None)?;
    let rt = crate::kernels::Runner::new(crate::kernels::Isa::detect(), 2)?;
    let manifest = crate::commit::manifest(model_path)?;
    let weights = Weights::load(model_path, &model.cfg)?;
    let prompt: Vec<u32> = vec![1, 504, 3158, 282, 4649, 314];
    let steps = 4;
    let params = crate::sampling::SamplingParams::default(); // greedy
    let greedy_from = |corruption: Option<Corruption>| -> Result<Vec<u32>> {
        completion(&model, &rt, &prompt, steps, &params, corruption)
    };
    let transcript_of = |out: &[u32]| {
        transcript_of(
            &manifest.commitment,
            &prompt,
            &params,
            out,
            OperatorBinding {
                chain_id: 31337,
                registry: [0; 20],
                address: [0; 20],
            },
        )
    };
    // The honest operator's completion, and a challenger that lies about its last token.
    let honest_out = greedy_from(None)?;
    let honest_trace = trace(&model, &rt, &prompt, &honest_out, &params, None)?;
    let lie = {
        let mut words = honest_trace.words.clone();
        words[honest_trace.layout.token_element(steps - 1) as usize] ^= 1;
        Trace {
            layout: honest_trace.layout.clone(),
            words,
        }
    };
    type Game = (
        String,
        Transcript,
        Trace,
        Trace,
        usize,
        u32,
        Option<(Kind, Option<usize>, u64)>,
    );
    let mut games: Vec<Game> = vec![(
        format!("game_{name}_lie"),
        transcript_of(&honest_out),
        honest_trace.clone(),
        lie,
        steps - 1,
        0,
        None,
    )];
    for p in points {
        let corruption = effective_corruption(&model, &rt, &prompt, &params, p, honest_out[0]);
        eprintln!("{}: index {}", p.name, corruption.index);
        let index = corruption.index;
        let out = greedy_from(Some(corruption))?;
        let cheat = trace(&model, &rt, &prompt, &out, &params, Some(corruption))?;
        let honest = trace(&model, &rt, &prompt, &out, &params, None)?;
        for (n, &tok) in out.iter().enumerate() {
            assert_eq!(
                cheat.token(n),
                tok,
                "{} step {n}: the cheater's trace is its transcript",
                p.name
            );
        }
        let step = (0..steps)
            .find(|&n| honest.token(n) != out[n])
            .ok_or_else(|| {
                EngineError::Trace(format!(
                    "{}: the corruption does not change the output",
                    p.name
                ))
            })?;
        games.push((
            format!("game_{name}_{}", p.name),
            transcript_of(&out),
            cheat,
            honest,
            step,
            1,
            Some((p.kind, p.layer, index)),
        ));
    }
    let mut files = Vec::new();
    for (file, transcript, op, ch, step, winner, point) in &games {
        let (op, ch, step, winner) = (op, ch, *step, *winner);
        let out = &transcript.output.tokens;
        let mut tokens = prompt.clone();
        tokens.extend_from_slice(&out[..steps - 1]);
        {
            let (op_tree, ch_tree) = (TraceTree::new(&op.words), TraceTree::new(&ch.words));
            let mut f = Vec::new();
            put_binding(&mut f, transcript, &model.cfg, &weights);
            let element = op.layout.token_element(step);
            let leaf = element / LEAF as u64;
            put_words(
                &mut f,
                &[step as u32, element as u32, op_tree.leaves() as u32],
            );
            for (tr, tree) in [(ch, &ch_tree), (op, &op_tree)] {
                f.extend_from_slice(&tree.root());
                put_words(&mut f, tr.leaf(leaf));
                put_proof(&mut f, &tree.proof(leaf));
            }
            let (mut lo, mut hi) = (0u64, op_tree.leaves());
            let mut levels = Vec::new();
            while hi - lo > 1 {
                let k = sworn_attest::trace_tree::split(hi - lo);
                let (ol, or) = (op_tree.node(lo, lo + k), op_tree.node(lo + k, hi));
                let (cl, cr) = (ch_tree.node(lo, lo + k), ch_tree.node(lo + k, hi));
                levels.push([ol, or, cl, cr]);
                if ol != cl {
                    hi = lo + k;
                } else {
                    lo += k;
                }
            }
            put_words(&mut f, &[levels.len() as u32]);
            for l in &levels {
                for h in l {
                    f.extend_from_slice(h);
                }
            }
            put_words(&mut f, op.leaf(lo));
            put_words(&mut f, ch.leaf(lo));
            let e = (0..LEAF)
                .find(|&i| op.leaf(lo)[i] != ch.leaf(lo)[i])
                .expect("the leaves differ");
            let e = lo * LEAF as u64 + e as u64;
            if let Some((kind, layer, index)) = point {
                let expect = op.layout.region(*kind, *layer).expect("the region").start + index;
                assert_eq!(
                    e, expect,
                    "{file}: the bisection ends at the corrupted word"
                );
            }
            put_words(
                &mut f,
                &[e as u32, op.words[e as usize], ch.words[e as usize]],
            );
            put_witness(&mut f, op, &op_tree, &weights, &tokens, e)?;
            put_words(&mut f, &[winner]);
            files.push((file.clone(), f));
        }
    }
    Ok(files)
}
