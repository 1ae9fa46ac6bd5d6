//! Where every value of a replay lives in its trace (`docs/dispute.md` §5): the regions, in
//! order, each a fixed shape of 32-bit words starting on a leaf boundary.
//!
//! The layout is a function of the model's shape, the sequence length and the number of output
//! steps alone, so that the two parties of a dispute and the on-chain executor compute the same
//! one. Reductions longer than one bounded step are cut into segments whose running values are
//! regions of their own: a row's product every [`PIECES_PER_SEGMENT`] pieces, RMSNorm's eight
//! lanes every [`NORM_SEGMENT`] elements, attention's maximum, sum and weighted sums every
//! [`KEYS_PER_SEGMENT`] keys, and greedy sampling's maximum every [`ARGMAX_SEGMENT`] logits.
//! A sampled step sorts its candidates by a merge sort whose every level is a region (each
//! output word found from the one before it), then keeps running values per candidate.

use crate::arch::{LayerMat, LayerVec};
use crate::model::{Arch, Config};
use crate::sampling::SamplingParams;

/// Words per leaf of the trace tree.
pub const LEAF: usize = 32;
/// Pieces (32-element blocks) of a matrix row folded in one step.
pub const PIECES_PER_SEGMENT: usize = 8;
/// Elements of a row whose squares one RMSNorm step folds into the eight lanes (16 chunks of 8).
pub const NORM_SEGMENT: usize = 128;
/// Keys one attention step folds into a maximum, a sum or a weighted sum.
pub const KEYS_PER_SEGMENT: usize = 64;
/// Elements of a float (F32, F16, BF16) matrix row one product step folds into its eight lanes
/// (16 chunks of 8, canonical-arithmetic §1.3).
pub const FLOAT_SEGMENT: usize = 128;
/// Logits one greedy-sampling step scans.
pub const ARGMAX_SEGMENT: usize = 256;
/// Words of one quantized activation block: 32 signed bytes in 8 big-endian words, `d`, `s`,
/// then 6 zero words (two blocks a leaf).
pub const QBLOCK_WORDS: usize = 16;

/// Which RMSNorm a norm region belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// A layer's norm vector (`AttnNorm`, `FfnNorm`, `QNorm`, `KNorm`, `PostAttnNorm`,
    /// `PostFfnNorm`).
    Layer(LayerVec),
    /// The final norm.
    Out,
}

/// Which activations a quantization region holds (the input of the products after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantOf {
    /// The attention norm's output (input of Q, K, V).
    AttnIn,
    /// The attention output (input of O).
    AttnOut,
    /// The feed-forward norm's output (input of gate and up).
    FfnIn,
    /// The gated activation (input of down).
    DownIn,
    /// The final norm's output at the output positions (input of the head).
    Head,
}

/// A matrix of a product region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mat {
    Layer(LayerMat),
    Head,
}

/// What a region holds; `layer` is in [`Region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[positions][half][2]`: RoPE table `(c, s)` pairs of table `table` (0: the model's
    /// base, 1: Gemma 3's local base).
    RopeTable { table: usize },
    /// `[T][d]`: the embedding rows of the sequence's tokens (Gemma 3: times `sqrt(d)`).
    Embed,
    /// `[rows][segments][8]`: RMSNorm's eight lanes of `sum x^2` after each segment.
    NormLanes { norm: Norm },
    /// `[rows]`: `r = 1 / sqrt(ss / n + eps)`, `ss` the tree of the last lanes.
    NormScale { norm: Norm },
    /// `[rows][n]`: `y = (x * r) * w`.
    NormOut { norm: Norm },
    /// `[rows][blocks][16]`: activation blocks.
    Quant { of: QuantOf },
    /// `[rows][R][segments - 1]`: a row's accumulator after each segment but the last; for a
    /// float matrix `[rows][R][float segments][8]`, the eight lanes after every segment.
    MatPartial { mat: Mat },
    /// `[rows][R]`: the products.
    MatOut { mat: Mat },
    /// `[T][width]`: a projection plus its bias (Qwen 2), one add each.
    Bias { vec: LayerVec },
    /// `[T][heads * hd]`: queries (`k` false) or keys after RoPE.
    Rope { k: bool },
    /// `[T][H][keys(t)]`: `dot(q, k_j) * scale`.
    Scores,
    /// `[T][H][segments(t)]`: the running maximum of the scores.
    Max,
    /// `[T][H][keys(t)]`: `exp(s_j - max)`.
    Exps,
    /// `[T][H][segments(t)]`: the running sum of the exponentials.
    Sums,
    /// `[kv heads][hd][T]`: the values, transposed (so one step's keys share leaves).
    ValuesT,
    /// `[T][H][hd][segments(t)]`: the running weighted sums `sum_j e_j v_j`.
    Weighted,
    /// `[T][H * hd]`: the weighted sums divided by the sum.
    AttnOut,
    /// `[T][d]`: the residual stream after adding the attention (`ffn` false) or feed-forward
    /// output.
    Residual { ffn: bool },
    /// `[T][d_ff]`: `act(g) * u`.
    Gated,
    /// `[steps][V]`: the logits after the repetition penalty (only when it is not 1).
    Penalized,
    /// `[steps][segments][2]`: greedy sampling's running `(largest logit, its lowest id)`.
    Argmax,
    /// `[steps][V]`: the logits divided by the temperature.
    Scaled,
    /// `[steps][V][2]`: level `level` (from 1) of the merge sort of the scaled logits in the
    /// total order: runs of `2^level` candidates, each word pair `(id, a)` with `a` the number
    /// of the run's first half taken so far.
    Merge { level: usize },
    /// `[steps][K]`: `w_j = exp(l_j - l_0)` of the first K sorted candidates.
    Weights,
    /// `[steps][K]`: the running sum of the weights, in order, from +0.
    Cumsum,
    /// `[steps][K]`: top-p's running cut: 0 until the running sum reaches `P * W`, then the
    /// kept count.
    TopP,
    /// `[steps][K]`: min-p's running count of leading kept candidates with `w_j >= M`.
    MinP,
    /// `[steps][K]`: the draw's running choice: 0 until a kept running sum passes the target,
    /// then that candidate's index plus one.
    Draw,
    /// `[steps]`: the sampled token.
    Sampled,
}

impl Kind {
    /// Whether the region is a sampled step's (§5.6 of `docs/dispute.md`).
    pub fn is_sampled(self) -> bool {
        matches!(
            self,
            Kind::Scaled
                | Kind::Merge { .. }
                | Kind::Weights
                | Kind::Cumsum
                | Kind::TopP
                | Kind::MinP
                | Kind::Draw
                | Kind::Sampled
        )
    }
}

/// What a sampled (temperature > 0) step's regions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampled {
    /// Candidates after top-k: `top_k` when it is in `1..V`, else `V`.
    pub candidates: usize,
    /// Whether top-p applies (`top_p < 1`).
    pub top_p: bool,
    /// Whether min-p applies (`min_p > 0`).
    pub min_p: bool,
}

/// One region: `len` words from `start` (a multiple of [`LEAF`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub kind: Kind,
    pub layer: Option<usize>,
    pub start: u64,
    pub len: u64,
}

/// The shape a trace is laid out for.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub cfg: Config,
    /// Positions of the teacher-forced pass: prompt tokens plus output tokens but the last.
    pub positions: usize,
    /// Output steps (sampled tokens).
    pub steps: usize,
    /// Whether sampling applies a repetition penalty (`repeat_penalty != 1`).
    pub penalty: bool,
    /// The sampled steps' shape; `None` for greedy decoding.
    pub sampled: Option<Sampled>,
    /// Which matrices are float (F32, F16 or BF16: §1.3's eight-lane products, unquantized
    /// activations): bit `r` for the layers' matrices of role `r` ([`LayerMat`] order), bit 7
    /// for the head. A role is float on every layer or on none ([`float_mats`]).
    pub float_mats: u8,
}

impl Shape {
    /// The shape of the replay of `steps` output tokens over `positions` positions sampled with
    /// `params`, on a model whose float matrices are `float_mats` ([`float_mats`]).
    pub fn new(
        cfg: Config,
        positions: usize,
        steps: usize,
        params: &SamplingParams,
        float_mats: u8,
    ) -> Shape {
        let v = cfg.vocab;
        let sampled = (!params.is_greedy()).then_some(Sampled {
            candidates: match params.top_k as usize {
                k if k > 0 && k < v => k,
                _ => v,
            },
            top_p: params.top_p < 1.0,
            min_p: params.min_p > 0.0,
        });
        Shape {
            cfg,
            positions,
            steps,
            penalty: params.repeat_penalty != 1.0,
            sampled,
            float_mats,
        }
    }

    /// Whether `mat` is a float matrix.
    pub fn is_float(&self, mat: Mat) -> bool {
        self.float_mats >> mat_bit(mat) & 1 == 1
    }

    /// Segments of a float matrix row of `cols` elements.
    pub fn float_segments(cols: usize) -> usize {
        cols.div_ceil(FLOAT_SEGMENT)
    }

    /// Words of one output step in a sampled region `kind` (regions are `[steps][width]`):
    /// `V` for the scaled logits, `2V` for a merge level, 1 for the token, `K` for the rest.
    pub fn sampled_width(&self, kind: Kind) -> usize {
        match kind {
            Kind::Scaled => self.cfg.vocab,
            Kind::Merge { .. } => 2 * self.cfg.vocab,
            Kind::Sampled => 1,
            _ => self.sampled.map_or(0, |s| s.candidates),
        }
    }

    /// Levels of the merge sort of the vocabulary: `ceil(log2 V)`.
    pub fn merge_levels(&self) -> usize {
        merge_levels(self.cfg.vocab)
    }

    /// Keys position `t` attends to on layer `li`.
    pub fn keys(&self, li: usize, t: usize) -> usize {
        t + 1 - self.cfg.first_key(self.cfg.is_sliding(li), t)
    }

    /// Segments of `n` keys.
    pub fn key_segments(n: usize) -> usize {
        n.div_ceil(KEYS_PER_SEGMENT)
    }

    /// Segments of a matrix row of `cols` elements.
    pub fn row_segments(cols: usize) -> usize {
        (cols / 32).div_ceil(PIECES_PER_SEGMENT)
    }

    /// Segments of greedy sampling over the vocabulary.
    pub fn argmax_segments(&self) -> usize {
        self.cfg.vocab.div_ceil(ARGMAX_SEGMENT)
    }

    /// Number of RoPE tables (Gemma 3 has a second, local one).
    pub fn tables(&self) -> usize {
        if self.cfg.sliding_window.is_some() {
            2
        } else {
            1
        }
    }

    /// Which table layer `li` rotates with.
    pub fn table_of(&self, li: usize) -> usize {
        usize::from(self.cfg.sliding_window.is_some() && self.cfg.is_sliding(li))
    }
}

/// The regions of a trace, in order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub shape: Shape,
    pub regions: Vec<Region>,
    /// Words in all (a multiple of [`LEAF`]).
    pub words: u64,
}

impl Layout {
    /// The layout of `shape` (`docs/dispute.md` §5).
    pub fn new(shape: Shape) -> Layout {
        let mut b = Builder {
            regions: Vec::new(),
            at: 0,
            float_mats: shape.float_mats,
        };
        let s = &shape;
        let c = &s.cfg;
        let spec = c.arch.spec();
        let (t, d, hd) = (s.positions, c.d_model, c.head_dim);
        let (qd, kvd, ff, v) = (c.q_dim(), c.kv_dim(), c.d_ff, c.vocab);
        for table in 0..s.tables() {
            b.push(Kind::RopeTable { table }, None, t * hd);
        }
        b.push(Kind::Embed, None, t * d);
        for li in 0..c.n_layer {
            let l = Some(li);
            b.norm(Norm::Layer(LayerVec::AttnNorm), l, t, d);
            b.quant(QuantOf::AttnIn, l, t, d);
            for (m, rows) in [(LayerMat::Q, qd), (LayerMat::K, kvd), (LayerMat::V, kvd)] {
                b.mat(Mat::Layer(m), l, t, rows, d);
            }
            if spec.qkv_bias {
                b.push(
                    Kind::Bias {
                        vec: LayerVec::QBias,
                    },
                    l,
                    t * qd,
                );
                b.push(
                    Kind::Bias {
                        vec: LayerVec::KBias,
                    },
                    l,
                    t * kvd,
                );
                b.push(
                    Kind::Bias {
                        vec: LayerVec::VBias,
                    },
                    l,
                    t * kvd,
                );
            }
            if spec.qk_norm {
                b.norm(Norm::Layer(LayerVec::QNorm), l, t * c.n_head, hd);
                b.norm(Norm::Layer(LayerVec::KNorm), l, t * c.n_kv_head, hd);
            }
            b.push(Kind::Rope { k: false }, l, t * qd);
            b.push(Kind::Rope { k: true }, l, t * kvd);
            let keys: usize = (0..t).map(|p| s.keys(li, p)).sum();
            let segs: usize = (0..t).map(|p| Shape::key_segments(s.keys(li, p))).sum();
            let h = c.n_head;
            b.push(Kind::Scores, l, h * keys);
            b.push(Kind::Max, l, h * segs);
            b.push(Kind::Exps, l, h * keys);
            b.push(Kind::Sums, l, h * segs);
            b.push(Kind::ValuesT, l, kvd * t);
            b.push(Kind::Weighted, l, h * hd * segs);
            b.push(Kind::AttnOut, l, t * qd);
            b.quant(QuantOf::AttnOut, l, t, qd);
            b.mat(Mat::Layer(LayerMat::O), l, t, d, qd);
            if spec.post_attn_norm {
                b.norm(Norm::Layer(LayerVec::PostAttnNorm), l, t, d);
            }
            b.push(Kind::Residual { ffn: false }, l, t * d);
            b.norm(Norm::Layer(LayerVec::FfnNorm), l, t, d);
            b.quant(QuantOf::FfnIn, l, t, d);
            b.mat(Mat::Layer(LayerMat::Gate), l, t, ff, d);
            b.mat(Mat::Layer(LayerMat::Up), l, t, ff, d);
            b.push(Kind::Gated, l, t * ff);
            b.quant(QuantOf::DownIn, l, t, ff);
            b.mat(Mat::Layer(LayerMat::Down), l, t, d, ff);
            if spec.post_ffn_norm {
                b.norm(Norm::Layer(LayerVec::PostFfnNorm), l, t, d);
            }
            b.push(Kind::Residual { ffn: true }, l, t * d);
        }
        b.norm(Norm::Out, None, t, d);
        b.quant(QuantOf::Head, None, s.steps, d);
        b.mat(Mat::Head, None, s.steps, v, d);
        if s.penalty {
            b.push(Kind::Penalized, None, s.steps * v);
        }
        match s.sampled {
            None => b.push(Kind::Argmax, None, s.steps * s.argmax_segments() * 2),
            Some(sm) => {
                let (n, k) = (s.steps, sm.candidates);
                b.push(Kind::Scaled, None, n * v);
                for level in 1..=s.merge_levels() {
                    b.push(Kind::Merge { level }, None, n * v * 2);
                }
                b.push(Kind::Weights, None, n * k);
                b.push(Kind::Cumsum, None, n * k);
                if sm.top_p {
                    b.push(Kind::TopP, None, n * k);
                }
                if sm.min_p {
                    b.push(Kind::MinP, None, n * k);
                }
                b.push(Kind::Draw, None, n * k);
                b.push(Kind::Sampled, None, n);
            }
        }
        Layout {
            words: b.at,
            regions: b.regions,
            shape,
        }
    }

    /// Leaves in all.
    pub fn leaves(&self) -> u64 {
        self.words / LEAF as u64
    }

    /// The region of `kind` (on `layer`).
    pub fn region(&self, kind: Kind, layer: Option<usize>) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| r.kind == kind && r.layer == layer)
    }

    /// The region holding word `element`.
    pub fn region_of(&self, element: u64) -> Option<&Region> {
        let i = self.regions.partition_point(|r| r.start + r.len <= element);
        self.regions.get(i).filter(|r| r.start <= element)
    }

    /// The word holding output step `step`'s token: the id of the last greedy segment, or the
    /// sampled token.
    pub fn token_element(&self, step: usize) -> u64 {
        if self.shape.sampled.is_some() {
            let r = self.region(Kind::Sampled, None).expect("a sampled layout");
            return r.start + step as u64;
        }
        let r = self
            .region(Kind::Argmax, None)
            .expect("every layout samples");
        let g = self.shape.argmax_segments();
        r.start + ((step * g + g - 1) * 2 + 1) as u64
    }
}

struct Builder {
    regions: Vec<Region>,
    at: u64,
    float_mats: u8,
}

impl Builder {
    /// Appends a region of `len` words (none if empty), padded to a whole leaf.
    fn push(&mut self, kind: Kind, layer: Option<usize>, len: usize) {
        if len == 0 {
            return;
        }
        let len = len as u64;
        self.regions.push(Region {
            kind,
            layer,
            start: self.at,
            len,
        });
        self.at += len.div_ceil(LEAF as u64) * LEAF as u64;
    }

    fn norm(&mut self, norm: Norm, layer: Option<usize>, rows: usize, n: usize) {
        self.push(
            Kind::NormLanes { norm },
            layer,
            rows * n.div_ceil(NORM_SEGMENT) * 8,
        );
        self.push(Kind::NormScale { norm }, layer, rows);
        self.push(Kind::NormOut { norm }, layer, rows * n);
    }

    fn quant(&mut self, of: QuantOf, layer: Option<usize>, rows: usize, cols: usize) {
        self.push(Kind::Quant { of }, layer, rows * (cols / 32) * QBLOCK_WORDS);
    }

    fn mat(&mut self, mat: Mat, layer: Option<usize>, rows: usize, out: usize, cols: usize) {
        let partials = if self.float_mats >> mat_bit(mat) & 1 == 1 {
            Shape::float_segments(cols) * 8
        } else {
            Shape::row_segments(cols) - 1
        };
        self.push(Kind::MatPartial { mat }, layer, rows * out * partials);
        self.push(Kind::MatOut { mat }, layer, rows * out);
    }
}

/// The bit of `mat` in [`Shape::float_mats`].
pub fn mat_bit(mat: Mat) -> u32 {
    match mat {
        Mat::Layer(m) => m as u32,
        Mat::Head => 7,
    }
}

/// The float matrices of a model whose matrix of role `role` on layer `l` (`None`: the head)
/// is float when `is_float(l, role)` says so, as [`Shape::float_mats`] holds them. A role that
/// is float on some layers and quantized on others has no layout: such a model's transcripts
/// stay with the committee.
pub fn float_mats(
    n_layer: usize,
    mut is_float: impl FnMut(Option<(usize, LayerMat)>) -> bool,
) -> crate::error::Result<u8> {
    let mut bits = u8::from(is_float(None)) << 7;
    for (r, &role) in LAYER_MAT_ROLES.iter().enumerate() {
        let layers: Vec<bool> = (0..n_layer).map(|l| is_float(Some((l, role)))).collect();
        if layers.iter().any(|&f| f != layers[0]) {
            return Err(crate::error::EngineError::Unsupported(format!(
                "the {role:?} matrices are float on some layers and quantized on others: a \
                 dispute trace has no layout for that (its disputes go to the committee)"
            )));
        }
        bits |= u8::from(layers.first().copied().unwrap_or(false)) << r;
    }
    Ok(bits)
}

/// The layers' matrix roles, in [`LayerMat`] order.
pub const LAYER_MAT_ROLES: [LayerMat; 7] = [
    LayerMat::Q,
    LayerMat::K,
    LayerMat::V,
    LayerMat::O,
    LayerMat::Gate,
    LayerMat::Up,
    LayerMat::Down,
];

/// Levels of a merge sort of `n` elements: `ceil(log2 n)` (0 for one).
pub fn merge_levels(n: usize) -> usize {
    n.max(1).next_power_of_two().trailing_zeros() as usize
}

/// The architecture's code in the executor's shape.
pub fn arch_code(a: Arch) -> u32 {
    match a {
        Arch::Llama => 0,
        Arch::Qwen2 => 1,
        Arch::Qwen3 => 2,
        Arch::Gemma3 => 3,
        #[allow(unreachable_patterns)] // a test-only architecture
        _ => u32::MAX,
    }
}
