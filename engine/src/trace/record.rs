//! The tracing backend: the engine's forward pass ([`crate::forward`]) run on the CPU kernels,
//! with every operation's output and every segment's running value written into the trace
//! ([`super::layout`]).
//!
//! [`Tracer`] implements [`Backend`] by running each operation on [`Cpu`] and recomputing it by
//! the spec's reference (the scalar definitions the kernels are tested against), keeping the
//! running values a kernel never shows (a row's accumulator after each segment, RMSNorm's
//! lanes, attention's maximum, sums and weighted sums). The reference result must be the
//! kernel's, bit for bit, or tracing fails: a trace never holds a value the engine did not
//! compute. A [`Corruption`] (for tests of the dispute game) changes one value as it is
//! computed, and everything after it is computed from the changed value.

use std::cell::RefCell;

use super::layout::{Kind, Layout, Mat, Norm, QuantOf, Shape, LEAF, QBLOCK_WORDS};
use super::layout::{ARGMAX_SEGMENT, KEYS_PER_SEGMENT, NORM_SEGMENT};
use super::products;
use super::sample::{sample_step, StepWords};
use crate::arch::LayerVec;
use crate::backend::{Backend, Cpu, Gate, MatId, Positions, Qkv, VecId};
use crate::canon::math::{dot8_f32, exp_f32, tree8};
use crate::canon::quant::{QActs, QK};
use crate::error::{EngineError, Result};
use crate::kernels::Runner;
use crate::model::{Feed, Model};
use crate::qmatrix::WeightKind;
use crate::sampling::SamplingParams;

/// A value's word in the trace: its bits, any NaN canonical (`docs/dispute.md` §1), as in the
/// float vectors.
pub use crate::float_vectors::canonical as word;

/// The words of `values`.
fn words(values: &[f32]) -> Vec<u32> {
    values.iter().map(|&v| word(v)).collect()
}

/// One value changed as it is computed: word `index` of region (`kind`, `layer`) xor-ed with
/// `xor`. A test double for a cheating operator (`docs/dispute.md` §7), compiled only for
/// tests: without the `test-doubles` feature the type holds an uninhabited field, so no value
/// of it can exist and every trace is honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    pub kind: Kind,
    pub layer: Option<usize>,
    pub index: u64,
    pub xor: u32,
    #[cfg(not(feature = "test-doubles"))]
    _never: std::convert::Infallible,
}

/// A replay's trace: its layout and every word.
#[derive(Debug, Clone)]
pub struct Trace {
    pub layout: Layout,
    pub words: Vec<u32>,
}

impl Trace {
    /// The words of leaf `i`.
    pub fn leaf(&self, i: u64) -> &[u32] {
        &self.words[i as usize * LEAF..][..LEAF]
    }

    /// The token output step `step` samples.
    pub fn token(&self, step: usize) -> u32 {
        self.words[self.layout.token_element(step) as usize]
    }
}

/// The trace of the replay of a greedy completion: the teacher-forced pass over `prompt` and
/// every `output` token but the last, then each step's sampling. The trace holds what the model
/// computes, so where the output tokens are not the model's, its sampled tokens
/// ([`Trace::token`]) say so. Greedy and sampled steps alike (a grammar's mask is not traced:
/// grammar-constrained transcripts stay with the committee).
pub fn trace(
    model: &Model,
    rt: &Runner,
    prompt: &[u32],
    output: &[u32],
    params: &SamplingParams,
    corruption: Option<Corruption>,
) -> Result<Trace> {
    if let Err(why) = params.validate() {
        return Err(EngineError::InvalidRequest(why));
    }
    if prompt.is_empty() || output.is_empty() {
        return Err(EngineError::InvalidRequest(
            "a trace needs a prompt and at least one output token".into(),
        ));
    }
    let mut tokens = prompt.to_vec();
    tokens.extend_from_slice(&output[..output.len() - 1]);
    let layout = Layout::new(Shape::new(
        model.cfg.clone(),
        tokens.len(),
        output.len(),
        params,
        model_float_mats(model)?,
    ));
    let tracer = Tracer::new(model, rt, &layout, corruption);
    let mut seq = model.new_sequence();
    let mut feeds = [Feed {
        seq: &mut seq,
        tokens: &tokens,
    }];
    let hidden = crate::forward::forward(&model.cfg, model.max_context, &tracer, &mut feeds)?;
    let d = model.cfg.d_model;
    let mut at_steps = Vec::with_capacity(output.len() * d);
    for n in 0..output.len() {
        at_steps.extend_from_slice(&hidden[(prompt.len() - 1 + n) * d..][..d]);
    }
    tracer.state.borrow_mut().stage = Stage::Head;
    let logits = crate::forward::logits(&model.cfg, &tracer, &at_steps, output.len())?;
    tracer.sample(&logits, prompt, output, params)?;
    tracer.finish()
}

/// The model's float matrices ([`super::layout::float_mats`]).
pub fn model_float_mats(model: &Model) -> Result<u8> {
    super::layout::float_mats(model.cfg.n_layer, |at| {
        let id = match at {
            None => MatId::LmHead,
            Some((l, role)) => MatId::Layer(l, role),
        };
        model.mat(id).kind == WeightKind::F32
    })
}

/// Which region the next `quantize` or `add` fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AttnIn,
    AttnOut,
    AttnResidual,
    FfnIn,
    DownIn,
    FfnResidual,
    Head,
}

struct State {
    words: Vec<u32>,
    filled: Vec<bool>,
    stage: Stage,
    layer: usize,
}

/// The tracing backend (see the module's documentation).
pub struct Tracer<'a> {
    cpu: Cpu<'a>,
    layout: &'a Layout,
    corruption: Option<Corruption>,
    state: RefCell<State>,
}

impl<'a> Tracer<'a> {
    pub fn new(
        model: &'a Model,
        rt: &'a Runner,
        layout: &'a Layout,
        corruption: Option<Corruption>,
    ) -> Tracer<'a> {
        Tracer {
            cpu: Cpu::new(model, rt),
            layout,
            corruption,
            state: RefCell::new(State {
                words: vec![0; layout.words as usize],
                filled: vec![false; layout.regions.len()],
                stage: Stage::AttnIn,
                layer: 0,
            }),
        }
    }

    fn model(&self) -> &Model {
        self.cpu.model
    }

    /// The trace, once every region is filled.
    fn finish(self) -> Result<Trace> {
        let state = self.state.into_inner();
        if let Some(i) = state.filled.iter().position(|f| !f) {
            return Err(EngineError::Trace(format!(
                "the trace's region {:?} was never computed",
                self.layout.regions[i]
            )));
        }
        Ok(Trace {
            layout: self.layout.clone(),
            words: state.words,
        })
    }

    /// Applies the corruption, if it is at word `index` of (`kind`, `layer`).
    fn corrupt(&self, kind: Kind, layer: Option<usize>, index: usize, x: f32) -> f32 {
        match self.corruption {
            Some(c) if c.kind == kind && c.layer == layer && c.index == index as u64 => {
                f32::from_bits(x.to_bits() ^ c.xor)
            }
            _ => x,
        }
    }

    /// Writes `words` as region (`kind`, `layer`).
    fn fill(&self, kind: Kind, layer: Option<usize>, words: &[u32]) -> Result<()> {
        let i = self
            .layout
            .regions
            .iter()
            .position(|r| r.kind == kind && r.layer == layer);
        let Some(i) = i else {
            return if words.is_empty() {
                Ok(())
            } else {
                Err(EngineError::Trace(format!(
                    "the layout has no region {kind:?} on layer {layer:?}"
                )))
            };
        };
        let r = self.layout.regions[i];
        if r.len as usize != words.len() {
            return Err(EngineError::Trace(format!(
                "region {kind:?} on layer {layer:?} has {} words, the computation {}",
                r.len,
                words.len()
            )));
        }
        let mut st = self.state.borrow_mut();
        st.words[r.start as usize..][..words.len()].copy_from_slice(words);
        st.filled[i] = true;
        Ok(())
    }

    /// Fills (`kind`, `layer`) with `values`, applying the corruption to them first.
    fn fill_values(&self, kind: Kind, layer: Option<usize>, values: &mut [f32]) -> Result<()> {
        for (i, v) in values.iter_mut().enumerate() {
            *v = self.corrupt(kind, layer, i, *v);
        }
        self.fill(kind, layer, &words(values))
    }

    /// The kernel's result must be the reference's (corrupted values aside).
    fn agree(&self, what: &str, kernel: &[f32], reference: &[f32]) -> Result<()> {
        if self.corruption.is_none() {
            if let Some(i) = (0..kernel.len()).find(|&i| word(kernel[i]) != word(reference[i])) {
                return Err(EngineError::Trace(format!(
                    "{what}: the kernel gives {} and the reference {} at {i}",
                    kernel[i], reference[i]
                )));
            }
        }
        Ok(())
    }

    fn layer_of(id: VecId) -> (Norm, Option<usize>) {
        match id {
            VecId::Layer(li, role) => (Norm::Layer(role), Some(li)),
            VecId::OutNorm => (Norm::Out, None),
        }
    }

    /// RMSNorm of every row of `x` by the reference, with its lanes and scales.
    fn norm(&self, x: &[f32], id: VecId, kernel: &mut [f32]) -> Result<()> {
        let w = self.model().vector(id);
        let (norm, layer) = Self::layer_of(id);
        let n = w.len();
        let eps = self.model().cfg.rms_eps;
        let rows = x.len() / n;
        let segs = n.div_ceil(NORM_SEGMENT);
        let mut lanes = Vec::with_capacity(rows * segs * 8);
        let mut scales = Vec::with_capacity(rows);
        let mut y = vec![0f32; x.len()];
        let lanes_kind = Kind::NormLanes { norm };
        let scale_kind = Kind::NormScale { norm };
        for (r, row) in x.chunks_exact(n).enumerate() {
            let mut acc = [0f32; 8];
            for s in 0..segs {
                let seg = &row[s * NORM_SEGMENT..((s + 1) * NORM_SEGMENT).min(n)];
                for c in seg.chunks_exact(8) {
                    for l in 0..8 {
                        acc[l] += c[l] * c[l];
                    }
                }
                for (l, a) in acc.iter_mut().enumerate() {
                    *a = self.corrupt(lanes_kind, layer, (r * segs + s) * 8 + l, *a);
                    lanes.push(*a);
                }
            }
            let scale = 1.0 / (tree8(acc) / n as f32 + eps).sqrt();
            let scale = self.corrupt(scale_kind, layer, r, scale);
            scales.push(scale);
            for i in 0..n {
                y[r * n + i] = (row[i] * scale) * w[i];
            }
        }
        self.agree(&format!("RMSNorm {id:?}"), kernel, &y)?;
        self.fill(lanes_kind, layer, &words(&lanes))?;
        self.fill(scale_kind, layer, &words(&scales))?;
        self.fill_values(Kind::NormOut { norm }, layer, &mut y)?;
        kernel.copy_from_slice(&y);
        let mut st = self.state.borrow_mut();
        if let VecId::Layer(li, _) = id {
            st.layer = li;
        }
        match id {
            VecId::Layer(_, LayerVec::AttnNorm) => st.stage = Stage::AttnIn,
            VecId::Layer(_, LayerVec::FfnNorm) => st.stage = Stage::FfnIn,
            _ => {}
        }
        Ok(())
    }

    /// Applies sampling (and its repetition penalty) to each step's logits.
    fn sample(
        &self,
        logits: &[f32],
        prompt: &[u32],
        output: &[u32],
        params: &SamplingParams,
    ) -> Result<()> {
        let v = self.model().cfg.vocab;
        let penalty = params.repeat_penalty != 1.0;
        let mut penalized = Vec::new();
        let mut argmax = Vec::new();
        let mut sampled: Vec<StepWords> = Vec::new();
        for (n, row) in logits.chunks_exact(v).enumerate() {
            let mut l = row.to_vec();
            if penalty {
                let mut history = prompt.to_vec();
                history.extend_from_slice(&output[..n]);
                let last = (params.repeat_last_n as usize).min(history.len());
                let mut seen = vec![false; v];
                for &t in &history[history.len() - last..] {
                    if (t as usize) < v {
                        seen[t as usize] = true;
                    }
                }
                for (i, x) in l.iter_mut().enumerate() {
                    if seen[i] {
                        *x = if *x > 0.0 {
                            *x / params.repeat_penalty
                        } else {
                            *x * params.repeat_penalty
                        };
                    }
                    *x = self.corrupt(Kind::Penalized, None, n * v + i, *x);
                }
                penalized.extend(l.iter().map(|&x| word(x)));
            }
            let id = match self.layout.shape.sampled {
                None => self.argmax(&l, n, &mut argmax),
                Some(shape) => {
                    let layout = &self.layout.shape;
                    let step = sample_step(&words(&l), params, shape, n as u64, |kind, i, w| {
                        let at = n * layout.sampled_width(kind) + i;
                        self.corrupt(kind, None, at, f32::from_bits(w)).to_bits()
                    })?;
                    sampled.push(step);
                    sampled.last().expect("just pushed").token
                }
            };
            if self.corruption.is_none() {
                let mut history = prompt.to_vec();
                history.extend_from_slice(&output[..n]);
                let engine = crate::sampling::sample(row, params, &history, n as u64)?;
                if engine != id {
                    return Err(EngineError::Trace(format!(
                        "step {n}: the sampler gives {engine}, the trace {id}"
                    )));
                }
            }
        }
        self.fill(Kind::Penalized, None, &penalized)?;
        if self.layout.shape.sampled.is_none() {
            return self.fill(Kind::Argmax, None, &argmax);
        }
        let join = |f: &dyn Fn(&StepWords) -> &[u32]| -> Vec<u32> {
            sampled.iter().flat_map(|s| f(s).iter().copied()).collect()
        };
        self.fill(Kind::Scaled, None, &join(&|s| &s.scaled))?;
        for level in 1..=self.layout.shape.merge_levels() {
            self.fill(Kind::Merge { level }, None, &join(&|s| &s.merge[level - 1]))?;
        }
        self.fill(Kind::Weights, None, &join(&|s| &s.weights))?;
        self.fill(Kind::Cumsum, None, &join(&|s| &s.cumsum))?;
        self.fill(Kind::TopP, None, &join(&|s| &s.top_p))?;
        self.fill(Kind::MinP, None, &join(&|s| &s.min_p))?;
        self.fill(Kind::Draw, None, &join(&|s| &s.draw))?;
        let tokens: Vec<u32> = sampled.iter().map(|s| s.token).collect();
        self.fill(Kind::Sampled, None, &tokens)
    }

    /// Greedy sampling of step `n`'s logits `l`: its running `(largest, lowest id)` pairs
    /// appended to `argmax`; the id.
    fn argmax(&self, l: &[f32], n: usize, argmax: &mut Vec<u32>) -> u32 {
        let v = l.len();
        let g = v.div_ceil(ARGMAX_SEGMENT);
        let (mut best, mut id) = (f32::NEG_INFINITY, 0u32);
        for s in 0..g {
            for (i, &x) in l
                .iter()
                .enumerate()
                .take(((s + 1) * ARGMAX_SEGMENT).min(v))
                .skip(s * ARGMAX_SEGMENT)
            {
                if x > best {
                    (best, id) = (x, i as u32);
                }
            }
            let at = (n * g + s) * 2;
            best = self.corrupt(Kind::Argmax, None, at, best);
            id = self
                .corrupt(Kind::Argmax, None, at + 1, f32::from_bits(id))
                .to_bits();
            argmax.extend([word(best), id]);
        }
        id
    }
}

impl Backend for Tracer<'_> {
    type Buf = Vec<f32>;
    type Acts = QActs;

    fn buf(&self) -> Result<Vec<f32>> {
        Ok(Vec::new())
    }

    fn acts(&self) -> Result<QActs> {
        Ok(QActs::default())
    }

    fn embed(&self, tokens: &[u32], x: &mut Vec<f32>) -> Result<()> {
        self.cpu.embed(tokens, x)?;
        if self.model().cfg.arch.spec().embed_scale {
            return Ok(()); // the region holds the scaled rows: `scale` fills it
        }
        self.fill_values(Kind::Embed, None, x)
    }

    fn scale(&self, x: &mut Vec<f32>, s: f32) -> Result<()> {
        // Only the embedding is scaled (Gemma 3): its region holds the scaled rows.
        self.cpu.scale(x, s)?;
        self.fill_values(Kind::Embed, None, x)
    }

    fn rmsnorm(&self, x: &Vec<f32>, w: VecId, y: &mut Vec<f32>) -> Result<()> {
        self.cpu.rmsnorm(x, w, y)?;
        self.norm(x, w, y)
    }

    fn rmsnorm_in_place(&self, x: &mut Vec<f32>, w: VecId) -> Result<()> {
        let input = x.clone();
        self.cpu.rmsnorm_in_place(x, w)?;
        self.norm(&input, w, x)?;
        let mut st = self.state.borrow_mut();
        match w {
            VecId::Layer(_, LayerVec::PostAttnNorm) => st.stage = Stage::AttnResidual,
            VecId::Layer(_, LayerVec::PostFfnNorm) => st.stage = Stage::FfnResidual,
            _ => {}
        }
        Ok(())
    }

    fn quantize(&self, x: &Vec<f32>, cols: usize, xq: &mut QActs) -> Result<()> {
        self.cpu.quantize(x, cols, xq)?;
        let (stage, layer) = {
            let st = self.state.borrow();
            (st.stage, st.layer)
        };
        let (of, layer) = match stage {
            Stage::AttnIn => (QuantOf::AttnIn, Some(layer)),
            Stage::AttnOut => (QuantOf::AttnOut, Some(layer)),
            Stage::FfnIn => (QuantOf::FfnIn, Some(layer)),
            Stage::DownIn => (QuantOf::DownIn, Some(layer)),
            Stage::Head => (QuantOf::Head, None),
            s => return Err(EngineError::Trace(format!("a quantization at stage {s:?}"))),
        };
        // Each block from the reference (spec §1.1), which must be the kernel's.
        let kind = Kind::Quant { of };
        let blocks = x.len() / QK;
        let mut words = vec![0u32; blocks * QBLOCK_WORDS];
        for b in 0..blocks {
            let mut q = [0i8; QK];
            let (d, _, s) = crate::canon::quant::quantize_block_ref(&x[b * QK..][..QK], &mut q);
            let same = q[..] == xq.q[b * QK..][..QK]
                && word(d) == word(xq.d[b])
                && word(s) == word(xq.s[b]);
            if !same && self.corruption.is_none() {
                return Err(EngineError::Trace(format!(
                    "quantization {of:?}: block {b} differs from the reference"
                )));
            }
            let rec = &mut words[b * QBLOCK_WORDS..][..QBLOCK_WORDS];
            for (k, c) in q.chunks_exact(4).enumerate() {
                rec[k] = u32::from_be_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
            }
            (rec[8], rec[9]) = (word(d), word(s));
            for (k, w) in rec.iter_mut().enumerate().take(10) {
                let v = self.corrupt(kind, layer, b * QBLOCK_WORDS + k, f32::from_bits(*w));
                *w = v.to_bits();
            }
            // The block the products read is the one recorded.
            for (k, c) in xq.q[b * QK..][..QK].chunks_exact_mut(4).enumerate() {
                let bytes = rec[k].to_be_bytes();
                for j in 0..4 {
                    c[j] = bytes[j] as i8;
                }
            }
            xq.d[b] = f32::from_bits(rec[8]);
            xq.s[b] = f32::from_bits(rec[9]);
            xq.qsum[b] = xq.q[b * QK..][..QK].iter().map(|&v| i32::from(v)).sum();
        }
        self.fill(kind, layer, &words)
    }

    fn matmul(
        &self,
        mats: &[MatId],
        xq: &QActs,
        xf: &Vec<f32>,
        tokens: usize,
        outs: &mut [&mut Vec<f32>],
    ) -> Result<()> {
        self.cpu.matmul(mats, xq, xf, tokens, outs)?;
        for (&id, out) in mats.iter().zip(outs.iter_mut()) {
            let (mat, layer) = match id {
                MatId::Layer(li, role) => (Mat::Layer(role), Some(li)),
                MatId::LmHead => (Mat::Head, None),
                MatId::TokEmbd => {
                    return Err(EngineError::Trace("a product with the embedding".into()))
                }
            };
            let m = self.model().mat(id);
            let kind = Kind::MatPartial { mat };
            let corrupt = |at: usize, x: f32| self.corrupt(kind, layer, at, x);
            let (partials, mut y) = if m.kind == WeightKind::F32 {
                products::float_product(m, xf, tokens, corrupt)
            } else {
                products::quantized_product(m, xq, tokens, corrupt)
            };
            self.agree(&format!("product {id:?}"), out, &y)?;
            self.fill(Kind::MatPartial { mat }, layer, &partials)?;
            self.fill_values(Kind::MatOut { mat }, layer, &mut y)?;
            out.copy_from_slice(&y);
            let mut st = self.state.borrow_mut();
            match id {
                MatId::Layer(_, crate::arch::LayerMat::O) => st.stage = Stage::AttnResidual,
                MatId::Layer(_, crate::arch::LayerMat::Down) => st.stage = Stage::FfnResidual,
                _ => {}
            }
        }
        Ok(())
    }

    fn add_rows(&self, x: &mut Vec<f32>, b: VecId) -> Result<()> {
        self.cpu.add_rows(x, b)?;
        let VecId::Layer(li, vec) = b else {
            return Err(EngineError::Trace("a bias that is not a layer's".into()));
        };
        self.fill_values(Kind::Bias { vec }, Some(li), x)
    }

    fn rope(&self, layer: usize, q: &mut Vec<f32>, k: &mut Vec<f32>, at: &Positions) -> Result<()> {
        self.cpu.rope(layer, q, k, at)?;
        let shape = &self.layout.shape;
        let table = shape.table_of(layer);
        let kind = Kind::RopeTable { table };
        let i = self.layout.regions.iter().position(|r| r.kind == kind);
        if i.is_some_and(|i| !self.state.borrow().filled[i]) {
            let rope = self.model().rope_of(layer);
            let mut pairs = Vec::with_capacity(shape.positions * rope.half * 2);
            for p in 0..shape.positions {
                let (c, s) = rope.row(p);
                for j in 0..rope.half {
                    pairs.extend([word(c[j]), word(s[j])]);
                }
            }
            self.fill(kind, None, &pairs)?;
        }
        let l = Some(layer);
        self.fill_values(Kind::Rope { k: false }, l, q)?;
        self.fill_values(Kind::Rope { k: true }, l, k)?;
        self.state.borrow_mut().layer = layer;
        Ok(())
    }

    fn attend(
        &self,
        li: usize,
        feeds: &mut [Feed<'_>],
        at: &Positions,
        qkv: Qkv<'_, Vec<f32>>,
        att: &mut Vec<f32>,
    ) -> Result<()> {
        if at.iter().enumerate().any(|(i, &(f, p))| f != 0 || p != i) {
            return Err(EngineError::Trace(
                "a trace is one sequence in one pass from position 0".into(),
            ));
        }
        let Qkv { q, k, v } = qkv;
        self.cpu.attend(li, feeds, at, Qkv { q, k, v }, att)?;
        let shape = &self.layout.shape;
        let cfg = &self.model().cfg;
        let (hd, qd, kvd, h_n) = (cfg.head_dim, cfg.q_dim(), cfg.kv_dim(), cfg.n_head);
        let group = cfg.n_head / cfg.n_kv_head;
        let sliding = cfg.is_sliding(li);
        let scale = 1.0 / (hd as f32).sqrt();
        let l = Some(li);
        let nt = at.len();
        let (mut scores, mut maxes, mut exps, mut sums, mut weighted) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut out = vec![0f32; nt * qd];
        for t in 0..nt {
            let first = cfg.first_key(sliding, t);
            let n = shape.keys(li, t);
            let segs = Shape::key_segments(n);
            for h in 0..h_n {
                let g = h / group;
                let qh = &q[t * qd + h * hd..][..hd];
                let s0 = scores.len();
                for j in 0..n {
                    let kj = &k[(first + j) * kvd + g * hd..][..hd];
                    let s = dot8_f32(qh, kj) * scale;
                    scores.push(self.corrupt(Kind::Scores, l, s0 + j, s));
                }
                let mut m = f32::NEG_INFINITY;
                for s in 0..segs {
                    for &x in
                        &scores[s0 + s * KEYS_PER_SEGMENT..s0 + ((s + 1) * KEYS_PER_SEGMENT).min(n)]
                    {
                        if x > m {
                            m = x;
                        }
                    }
                    m = self.corrupt(Kind::Max, l, maxes.len(), m);
                    maxes.push(m);
                }
                let e0 = exps.len();
                for j in 0..n {
                    let e = exp_f32(scores[s0 + j] - m);
                    exps.push(self.corrupt(Kind::Exps, l, e0 + j, e));
                }
                let mut sum = 0f32;
                for s in 0..segs {
                    for &e in
                        &exps[e0 + s * KEYS_PER_SEGMENT..e0 + ((s + 1) * KEYS_PER_SEGMENT).min(n)]
                    {
                        sum += e;
                    }
                    sum = self.corrupt(Kind::Sums, l, sums.len(), sum);
                    sums.push(sum);
                }
                for dd in 0..hd {
                    let mut acc = 0f32;
                    for s in 0..segs {
                        for j in s * KEYS_PER_SEGMENT..((s + 1) * KEYS_PER_SEGMENT).min(n) {
                            acc += exps[e0 + j] * v[(first + j) * kvd + g * hd + dd];
                        }
                        acc = self.corrupt(Kind::Weighted, l, weighted.len(), acc);
                        weighted.push(acc);
                    }
                    out[t * qd + h * hd + dd] = acc / sum;
                }
            }
        }
        let mut vt = vec![0f32; kvd * nt];
        for j in 0..nt {
            for c in 0..kvd {
                vt[c * nt + j] = v[j * kvd + c];
            }
        }
        self.agree(&format!("attention {li}"), att, &out)?;
        // Corrupted as they were computed (above); the transposed values only here.
        self.fill(Kind::Scores, l, &words(&scores))?;
        self.fill(Kind::Max, l, &words(&maxes))?;
        self.fill(Kind::Exps, l, &words(&exps))?;
        self.fill(Kind::Sums, l, &words(&sums))?;
        self.fill_values(Kind::ValuesT, l, &mut vt)?;
        self.fill(Kind::Weighted, l, &words(&weighted))?;
        self.fill_values(Kind::AttnOut, l, &mut out)?;
        att.copy_from_slice(&out);
        self.state.borrow_mut().stage = Stage::AttnOut;
        Ok(())
    }

    fn add(&self, x: &mut Vec<f32>, y: &Vec<f32>) -> Result<()> {
        self.cpu.add(x, y)?;
        let (stage, layer) = {
            let st = self.state.borrow();
            (st.stage, st.layer)
        };
        let ffn = match stage {
            Stage::AttnResidual => false,
            Stage::FfnResidual => true,
            s => return Err(EngineError::Trace(format!("an add at stage {s:?}"))),
        };
        self.fill_values(Kind::Residual { ffn }, Some(layer), x)
    }

    fn gated(
        &self,
        act: Gate,
        g: &Vec<f32>,
        u: &Vec<f32>,
        cols: usize,
        h: &mut Vec<f32>,
    ) -> Result<()> {
        self.cpu.gated(act, g, u, cols, h)?;
        let layer = self.state.borrow().layer;
        self.fill_values(Kind::Gated, Some(layer), h)?;
        self.state.borrow_mut().stage = Stage::DownIn;
        Ok(())
    }

    fn to_host(&self, x: Vec<f32>) -> Result<Vec<f32>> {
        Ok(x)
    }
}
