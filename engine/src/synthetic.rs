//! Tiny synthetic models (Llama or Gemma 3 architecture) written as real GGUF files, for tests, fuzz seeds and benchmarks
//! that must not depend on a downloaded model. Weights come from a fixed PRNG, so every run writes
//! the same bytes.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

/// The tensor types a [`SyntheticSpec`] names (candle's, re-exported for callers without it).
pub use candle_core::quantized::GgmlDType;

use crate::error::{EngineError, Result};
use crate::tokenizer::byte_to_char;

/// Shape and weight types of a synthetic model.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    /// The architecture: `llama`; `qwen2` (Q/K/V biases); `qwen3` (q/k head norms); `gemma3`
    /// (Gemma's extra norms, and a sliding window of `sliding_window` keys on five layers in
    /// six). `head_dim` sets the heads' width where the architecture allows it.
    pub arch: crate::model::Arch,
    pub head_dim: Option<usize>,
    pub sliding_window: usize,
    /// Llama 3 style: per-pair RoPE frequency factors (`rope_freqs.weight`) and an untied
    /// output matrix (`output.weight`).
    pub llama3: bool,
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub d_ff: usize,
    pub context_length: usize,
    /// Types of the projection matrices, used in turn (covers every kernel).
    pub kinds: Vec<GgmlDType>,
    /// Type of the (tied) embedding.
    pub embd_kind: GgmlDType,
    pub seed: u64,
    /// `tokenizer.chat_template`; `None` writes a minimal ChatML template.
    pub chat_template: Option<String>,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            arch: crate::model::Arch::Llama,
            head_dim: None,
            sliding_window: 8,
            llama3: false,
            n_layer: 2,
            d_model: 64,
            n_head: 4,
            n_kv_head: 2,
            d_ff: 160,
            context_length: 512,
            kinds: vec![
                GgmlDType::Q4_1,
                GgmlDType::Q4_0,
                GgmlDType::Q8_0,
                GgmlDType::F16,
                GgmlDType::F32,
            ],
            embd_kind: GgmlDType::Q8_0,
            seed: 1,
            chat_template: None,
        }
    }
}

impl SyntheticSpec {
    /// Llama with its projections in every other block format (spec §1.4: the K-quants, Q5_0,
    /// Q5_1) and BF16, width 256 so that K-quant super-blocks fit. One spec for the determinism
    /// suite, the CUDA host-shim suite and `sworn gpu-check`, so that all three check the same
    /// model.
    pub fn k_quants() -> SyntheticSpec {
        use GgmlDType as T;
        SyntheticSpec {
            d_model: 256,
            n_head: 4,
            n_kv_head: 2,
            d_ff: 512,
            kinds: vec![
                T::Q4K,
                T::Q6K,
                T::Q5_0,
                T::Q5K,
                T::Q3K,
                T::Q2K,
                T::Q5_1,
                T::BF16,
            ],
            embd_kind: T::Q6K,
            seed: 21,
            ..Default::default()
        }
    }

    /// Gemma 3 with six layers (five sliding-window ones, window 8, then a global one) and
    /// 32-wide heads. Shared like [`SyntheticSpec::k_quants`].
    pub fn gemma3() -> SyntheticSpec {
        use GgmlDType as T;
        SyntheticSpec {
            arch: crate::model::Arch::Gemma3,
            head_dim: Some(32),
            sliding_window: 8,
            n_layer: 6,
            d_model: 64,
            n_head: 4,
            n_kv_head: 2,
            d_ff: 96,
            kinds: vec![T::Q4_1, T::Q8_0, T::Q5_0, T::F32, T::Q4_0],
            seed: 33,
            ..Default::default()
        }
    }
}

/// Merges of the synthetic vocabulary, each also a token.
const MERGES: [(&str, &str); 8] = [
    ("t", "h"),
    ("th", "e"),
    ("Ġ", "the"),
    ("i", "n"),
    ("e", "r"),
    ("a", "n"),
    ("Ġ", "a"),
    ("o", "n"),
];
/// Special tokens after the merged ones.
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Writes a synthetic model to `path`. Vocabulary: the 256 byte tokens, 8 merges, 3 specials.
pub fn write_model(path: &Path, spec: &SyntheticSpec) -> Result<()> {
    let mut tokens: Vec<String> = byte_to_char().iter().map(|c| c.to_string()).collect();
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    let vocab = tokens.len();
    let mut types = vec![1i32; vocab];
    for t in types.iter_mut().skip(vocab - SPECIALS.len()) {
        *t = 3;
    }
    let eos = (vocab - 1) as u32;
    let u32v = |v: usize| Value::U32(v as u32);
    let a = spec.arch.name();
    let k = |s: &str| format!("{a}.{s}");
    let hd = spec.head_dim.unwrap_or(spec.d_model / spec.n_head);
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(a.into())),
        (
            "general.name".into(),
            Value::String("sworn-synthetic".into()),
        ),
        (k("block_count"), u32v(spec.n_layer)),
        (k("context_length"), u32v(spec.context_length)),
        (k("embedding_length"), u32v(spec.d_model)),
        (k("feed_forward_length"), u32v(spec.d_ff)),
        (k("attention.head_count"), u32v(spec.n_head)),
        (k("attention.head_count_kv"), u32v(spec.n_kv_head)),
        (k("rope.freq_base"), Value::F32(10000.0)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
    ];
    if spec.arch == crate::model::Arch::Llama {
        meta.push((k("rope.dimension_count"), u32v(hd)));
    } else {
        meta.push((k("attention.key_length"), u32v(hd)));
        meta.push((k("attention.value_length"), u32v(hd)));
    }
    if spec.arch.spec().sliding_window {
        meta.push((k("attention.sliding_window"), u32v(spec.sliding_window)));
    }
    let meta: Vec<(String, Value)> = meta
        .into_iter()
        .chain(tokenizer_meta(
            &tokens,
            &types,
            eos,
            spec.chat_template.as_deref(),
        ))
        .collect();
    write_weights(path, spec, vocab, hd, &meta)
}

/// The gpt2-style tokenizer keys of the synthetic vocabulary.
fn tokenizer_meta(
    tokens: &[String],
    types: &[i32],
    eos: u32,
    template: Option<&str>,
) -> Vec<(String, Value)> {
    let meta: Vec<(&str, Value)> = vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(
                MERGES
                    .iter()
                    .map(|(a, b)| Value::String(format!("{a} {b}")))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.eos_token_id", Value::U32(eos)),
        ("tokenizer.ggml.bos_token_id", Value::U32(eos - 1)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        (
            "tokenizer.chat_template",
            Value::String(template.unwrap_or(TEMPLATE).into()),
        ),
    ];
    meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Writes the weights (from the spec's seeded PRNG) and `meta` as a GGUF file.
fn write_weights(
    path: &Path,
    spec: &SyntheticSpec,
    vocab: usize,
    hd: usize,
    meta: &[(String, Value)],
) -> Result<()> {
    let err = |e: candle_core::Error| EngineError::Malformed(format!("synthetic model: {e}"));
    use crate::arch::{
        Dim, LayerMat, LayerVec, MatTensor, VecTensor, LAYER_MATRICES, LAYER_VECTORS,
    };
    let arch = spec.arch.spec();
    let mut rng = Rng(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut tensor =
        |rows: usize, cols: usize, scale: f32, offset: f32, kind: GgmlDType| -> Result<QTensor> {
            let v: Vec<f32> = (0..rows * cols).map(|_| offset + scale * rng.f()).collect();
            let shape: Vec<usize> = if rows == 1 {
                vec![cols]
            } else {
                vec![rows, cols]
            };
            let t = Tensor::from_vec(v, shape, &Device::Cpu).map_err(err)?;
            QTensor::quantize(&t, kind).map_err(err)
        };
    let (d, ff) = (spec.d_model, spec.d_ff);
    let (q, kv) = (spec.n_head * hd, spec.n_kv_head * hd);
    let mut named: Vec<(String, QTensor)> = Vec::new();
    named.push((
        "token_embd.weight".into(),
        tensor(vocab, d, 1.0, 0.0, spec.embd_kind)?,
    ));
    let mut k = 0;
    let mut kind = || {
        let t = spec.kinds[k % spec.kinds.len()];
        k += 1;
        t
    };
    let ws = 1.0 / (d as f32).sqrt();
    let dim = |x: Dim| match x {
        Dim::Model => d,
        Dim::Q => q,
        Dim::Kv => kv,
        Dim::Ff => ff,
        Dim::Head => hd,
    };
    let attention =
        |r: LayerMat| matches!(r, LayerMat::Q | LayerMat::K | LayerMat::V | LayerMat::O);
    let scale = |r: LayerMat| {
        if r == LayerMat::Down {
            1.0 / (ff as f32).sqrt()
        } else {
            ws
        }
    };
    let (attn_norm, ffn_norm) = (LayerVec::AttnNorm.tensor(), LayerVec::FfnNorm.tensor());
    // Per layer, from the tensor tables: the attention norm and matrices, the architecture's
    // other vectors (a norm's weights around 1, a bias around 0), then the feed-forward norm and
    // matrices.
    for l in 0..spec.n_layer {
        let vname = |t: &VecTensor| format!("blk.{l}.{}", t.gguf);
        let mname = |t: &MatTensor| format!("blk.{l}.{}.weight", t.gguf);
        let offset = |t: &VecTensor| if t.is_norm { 1.0 } else { 0.0 };
        named.push((vname(attn_norm), tensor(1, d, 0.2, 1.0, GgmlDType::F32)?));
        for t in LAYER_MATRICES.iter().filter(|t| attention(t.role)) {
            let w = tensor(dim(t.rows), dim(t.cols), scale(t.role), 0.0, kind())?;
            named.push((mname(t), w));
        }
        let others = LAYER_VECTORS
            .iter()
            .filter(|t| t.role != LayerVec::AttnNorm && t.role != LayerVec::FfnNorm);
        for t in others.filter(|t| (t.has)(arch)) {
            let v = tensor(1, dim(t.len), 0.2, offset(t), GgmlDType::F32)?;
            named.push((vname(t), v));
        }
        named.push((vname(ffn_norm), tensor(1, d, 0.2, 1.0, GgmlDType::F32)?));
        for t in LAYER_MATRICES.iter().filter(|t| !attention(t.role)) {
            let w = tensor(dim(t.rows), dim(t.cols), scale(t.role), 0.0, kind())?;
            named.push((mname(t), w));
        }
    }
    named.push((
        "output_norm.weight".into(),
        tensor(1, d, 0.2, 1.0, GgmlDType::F32)?,
    ));
    if spec.llama3 {
        // Factors between 1 and 8, as Llama 3.1's scaling gives.
        named.push((
            "rope_freqs.weight".into(),
            tensor(1, hd / 2, 3.5, 4.5, GgmlDType::F32)?,
        ));
        named.push((
            "output.weight".into(),
            tensor(vocab, d, 1.0, 0.0, GgmlDType::Q8_0)?,
        ));
    }
    let mut file = std::fs::File::create(path).map_err(|source| EngineError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).map_err(err)
}

/// A xorshift generator for test data (kernel inputs, random blocks): fixed, fast, and the same
/// on every platform, so that a failing case is reproduced from its seed.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// The next 64 bits of state.
    pub fn next_u64(&mut self) -> u64 {
        self.f();
        self.0
    }

    pub fn byte(&mut self) -> u8 {
        self.f();
        (self.0 >> 20) as u8
    }

    /// Values over twelve binary orders of magnitude, some exactly zero.
    pub fn wild(&mut self) -> f32 {
        let v = self.f();
        let e = (self.byte() % 12) as i32 - 6;
        if self.byte().is_multiple_of(17) {
            0.0
        } else {
            v * 2f32.powi(e)
        }
    }
}

/// Sampling at `temperature` with every filter on (top-k 40, top-p 0.95, min-p 0.02, and a
/// repetition penalty of 1.1 over the last 32 tokens): the sampled requests that the invariance
/// tests and `sworn gpu-check` run beside greedy ones.
pub fn filtered_sampling(seed: u64, temperature: f32) -> crate::SamplingParams {
    crate::SamplingParams {
        temperature,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.02,
        repeat_penalty: 1.1,
        repeat_last_n: 32,
        seed,
    }
}

/// A request for test tables: `prompt`, sampled by `params`, at most `max_tokens`, ending at any
/// of `stop`.
pub fn request(
    prompt: crate::Prompt,
    params: crate::SamplingParams,
    max_tokens: u32,
    stop: &[&str],
) -> crate::Request {
    crate::Request {
        prompt,
        params,
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}
