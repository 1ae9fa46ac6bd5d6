// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornLayout
/// @notice Where each value of a replay lives in its trace (docs/dispute.md §5.2), as
/// `sworn_engine::trace::layout` lays it out: regions of 32-bit words in a fixed order, each
/// starting on a leaf boundary. A function of the model's shape, the sequence length and the
/// output steps alone. `locate` finds the region of a word; `find` a region by what it holds.
library SwornLayout {
    /// Words per leaf.
    uint256 internal constant LEAF = 32;
    /// Segment sizes (docs/dispute.md §5.3).
    uint256 internal constant PIECES_PER_SEGMENT = 8;
    uint256 internal constant NORM_SEGMENT = 128;
    uint256 internal constant KEYS_PER_SEGMENT = 64;
    uint256 internal constant ARGMAX_SEGMENT = 256;
    /// Elements of a float matrix row one product step folds into its eight lanes.
    uint256 internal constant FLOAT_SEGMENT = 128;
    uint256 internal constant QBLOCK_WORDS = 16;
    /// `layer` of the regions outside the layers.
    uint256 internal constant NONE = type(uint256).max;

    /// Architectures (`sworn_engine::arch::Arch`).
    uint256 internal constant LLAMA = 0;
    uint256 internal constant QWEN2 = 1;
    uint256 internal constant QWEN3 = 2;
    uint256 internal constant GEMMA3 = 3;

    /// Region kinds.
    uint256 internal constant ROPE_TABLE = 1;
    uint256 internal constant EMBED = 2;
    uint256 internal constant NORM_LANES = 3;
    uint256 internal constant NORM_SCALE = 4;
    uint256 internal constant NORM_OUT = 5;
    uint256 internal constant QUANT = 6;
    uint256 internal constant MAT_PARTIAL = 7;
    uint256 internal constant MAT_OUT = 8;
    uint256 internal constant BIAS = 9;
    uint256 internal constant ROPE = 10;
    uint256 internal constant SCORES = 11;
    uint256 internal constant MAX = 12;
    uint256 internal constant EXPS = 13;
    uint256 internal constant SUMS = 14;
    uint256 internal constant VALUES_T = 15;
    uint256 internal constant WEIGHTED = 16;
    uint256 internal constant ATTN_OUT = 17;
    uint256 internal constant RESIDUAL = 18;
    uint256 internal constant GATED = 19;
    uint256 internal constant PENALIZED = 20;
    uint256 internal constant ARGMAX = 21;
    /// A sampled step's regions (docs/dispute.md §5.6); `sub` of `MERGE` is its level, from 1.
    uint256 internal constant SCALED = 22;
    uint256 internal constant MERGE = 23;
    uint256 internal constant WEIGHTS = 24;
    uint256 internal constant CUMSUM = 25;
    uint256 internal constant TOP_P = 26;
    uint256 internal constant MIN_P = 27;
    uint256 internal constant DRAW = 28;
    uint256 internal constant SAMPLED = 29;

    /// `sub` of norm regions.
    uint256 internal constant ATTN_NORM = 0;
    uint256 internal constant FFN_NORM = 1;
    uint256 internal constant Q_NORM = 2;
    uint256 internal constant K_NORM = 3;
    uint256 internal constant POST_ATTN_NORM = 4;
    uint256 internal constant POST_FFN_NORM = 5;
    uint256 internal constant OUT_NORM = 6;
    /// `sub` of quantization regions.
    uint256 internal constant Q_ATTN_IN = 0;
    uint256 internal constant Q_ATTN_OUT = 1;
    uint256 internal constant Q_FFN_IN = 2;
    uint256 internal constant Q_DOWN_IN = 3;
    uint256 internal constant Q_HEAD = 4;
    /// `sub` of product and bias regions.
    uint256 internal constant M_Q = 0;
    uint256 internal constant M_K = 1;
    uint256 internal constant M_V = 2;
    uint256 internal constant M_O = 3;
    uint256 internal constant M_GATE = 4;
    uint256 internal constant M_UP = 5;
    uint256 internal constant M_DOWN = 6;
    uint256 internal constant M_HEAD = 7;

    /// What a trace is laid out for. `window` is Gemma 3's sliding window (0: none);
    /// `positions` the teacher-forced pass's length (prompt plus output tokens but the last);
    /// `candidates` a sampled step's candidates after top-k (0: greedy decoding), `topP` and
    /// `minP` whether those apply; `floatMats` the float (F32, F16, BF16) matrices, bit `sub`
    /// of each product (`M_Q` .. `M_HEAD`).
    struct Shape {
        uint256 arch;
        uint256 nLayer;
        uint256 d;
        uint256 nHead;
        uint256 nKv;
        uint256 hd;
        uint256 ff;
        uint256 vocab;
        uint256 window;
        uint256 positions;
        uint256 steps;
        bool penalty;
        uint32 eps;
        uint256 candidates;
        bool topP;
        bool minP;
        uint256 floatMats;
    }

    /// A region: what it holds and where.
    struct Region {
        uint256 kind;
        uint256 sub;
        uint256 layer;
        uint256 start;
        uint256 len;
    }

    /// The walk over the regions: looking for the one holding `element` (`byElement`), or for
    /// (`kind`, `sub`, `layer`).
    struct Walk {
        uint256 cursor;
        bool byElement;
        uint256 element;
        uint256 kind;
        uint256 sub;
        uint256 layer;
        bool found;
        Region r;
    }

    // ---------------------------------------------------------------------------------------
    // Architecture switches (`sworn_engine::arch::ARCHS`)
    // ---------------------------------------------------------------------------------------

    function qkvBias(Shape memory s) internal pure returns (bool) {
        return s.arch == QWEN2;
    }

    function qkNorm(Shape memory s) internal pure returns (bool) {
        return s.arch == QWEN3 || s.arch == GEMMA3;
    }

    function neox(Shape memory s) internal pure returns (bool) {
        return s.arch != LLAMA;
    }

    function postNorms(Shape memory s) internal pure returns (bool) {
        return s.arch == GEMMA3;
    }

    function gelu(Shape memory s) internal pure returns (bool) {
        return s.arch == GEMMA3;
    }

    function embedScale(Shape memory s) internal pure returns (bool) {
        return s.arch == GEMMA3;
    }

    /// Whether layer `l` attends through the sliding window (five layers in six, Gemma 3).
    function sliding(Shape memory s, uint256 l) internal pure returns (bool) {
        return s.window != 0 && l % 6 < 5;
    }

    /// The window of layer `l`: its key count cap, or 0 for none.
    function windowOf(Shape memory s, uint256 l) internal pure returns (uint256) {
        return sliding(s, l) ? s.window : 0;
    }

    /// Whether the product `sub` (`M_Q` .. `M_HEAD`) is a float matrix's (eight-lane partials).
    function floatMat(Shape memory s, uint256 sub) internal pure returns (bool) {
        return (s.floatMats >> sub) & 1 == 1;
    }

    function qd(Shape memory s) internal pure returns (uint256) {
        return s.nHead * s.hd;
    }

    function kvd(Shape memory s) internal pure returns (uint256) {
        return s.nKv * s.hd;
    }

    // ---------------------------------------------------------------------------------------
    // Attention's row lengths
    // ---------------------------------------------------------------------------------------

    /// Keys position `t` attends to under window `w` (0: none).
    function keys(uint256 t, uint256 w) internal pure returns (uint256) {
        return w == 0 || t + 1 < w ? t + 1 : w;
    }

    /// The first key position `t` attends to.
    function firstKey(uint256 t, uint256 w) internal pure returns (uint256) {
        return t + 1 - keys(t, w);
    }

    function segments(uint256 n, uint256 per) internal pure returns (uint256) {
        return (n + per - 1) / per;
    }

    /// `keys(0) + ... + keys(t - 1)`.
    function keysBefore(uint256 t, uint256 w) internal pure returns (uint256) {
        if (w == 0 || t <= w) return t * (t + 1) / 2;
        return w * (w + 1) / 2 + (t - w) * w;
    }

    /// `sum over m = 1..M of ceil(m / K)`.
    function ceilSum(uint256 m) private pure returns (uint256) {
        uint256 q = m / KEYS_PER_SEGMENT;
        uint256 r = m % KEYS_PER_SEGMENT;
        return KEYS_PER_SEGMENT * q * (q + 1) / 2 + (q + 1) * r;
    }

    /// `segments(keys(0)) + ... + segments(keys(t - 1))`.
    function segmentsBefore(uint256 t, uint256 w) internal pure returns (uint256) {
        if (w == 0 || t <= w) return ceilSum(t);
        return ceilSum(w) + (t - w) * segments(w, KEYS_PER_SEGMENT);
    }

    /// The position whose rows hold `i` in a region of rows `rows(t) = unit * f(t)` with
    /// `before(t) = sum of f` (by keys when `byKeys`, else by segments): `t` with
    /// `unit * before(t) <= i < unit * before(t + 1)`.
    function rowOf(uint256 i, uint256 unit, uint256 positions, uint256 w, bool byKeys)
        internal
        pure
        returns (uint256 t)
    {
        (uint256 lo, uint256 hi) = (0, positions);
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            uint256 b = byKeys ? keysBefore(mid, w) : segmentsBefore(mid, w);
            if (unit * b <= i) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    // ---------------------------------------------------------------------------------------
    // The walk
    // ---------------------------------------------------------------------------------------

    /// @notice The region holding word `element` (reverts past the trace's end).
    function locate(Shape memory s, uint256 element) internal pure returns (Region memory) {
        Walk memory w;
        (w.byElement, w.element) = (true, element);
        walk(s, w);
        require(w.found, "layout: past the trace");
        return w.r;
    }

    /// @notice The region (`kind`, `sub`, `layer`) (reverts if the layout has none).
    function find(Shape memory s, uint256 kind, uint256 sub, uint256 layer) internal pure returns (Region memory) {
        Walk memory w;
        (w.kind, w.sub, w.layer) = (kind, sub, layer);
        walk(s, w);
        require(w.found, "layout: no such region");
        return w.r;
    }

    /// @notice Words in the whole trace.
    function words(Shape memory s) internal pure returns (uint256) {
        Walk memory w;
        (w.byElement, w.element) = (true, type(uint256).max);
        walk(s, w);
        return w.cursor;
    }

    function push(Walk memory w, uint256 kind, uint256 sub, uint256 layer, uint256 len) private pure {
        if (w.found || len == 0) return;
        bool hit = w.byElement ? w.element < w.cursor + len : (kind == w.kind && sub == w.sub && layer == w.layer);
        if (hit) {
            w.found = true;
            w.r = Region(kind, sub, layer, w.cursor, len);
        }
        w.cursor += ((len + LEAF - 1) / LEAF) * LEAF;
    }

    function norm(Walk memory w, uint256 sub, uint256 layer, uint256 rows, uint256 n) private pure {
        push(w, NORM_LANES, sub, layer, rows * segments(n, NORM_SEGMENT) * 8);
        push(w, NORM_SCALE, sub, layer, rows);
        push(w, NORM_OUT, sub, layer, rows * n);
    }

    function quant(Walk memory w, uint256 sub, uint256 layer, uint256 rows, uint256 cols) private pure {
        push(w, QUANT, sub, layer, rows * (cols / 32) * QBLOCK_WORDS);
    }

    function mat(Walk memory w, Shape memory s, uint256 sub, uint256 layer, uint256 rows, uint256 out, uint256 cols)
        private
        pure
    {
        uint256 partials =
            floatMat(s, sub) ? segments(cols, FLOAT_SEGMENT) * 8 : segments(cols / 32, PIECES_PER_SEGMENT) - 1;
        push(w, MAT_PARTIAL, sub, layer, rows * out * partials);
        push(w, MAT_OUT, sub, layer, rows * out);
    }

    /// The walk, jumping over whole layers: a layer's size depends only on whether it is a
    /// sliding-window one, so the regions of one layer are walked, not all of them.
    function walk(Shape memory s, Walk memory w) private pure {
        uint256 t = s.positions;
        uint256 tables = s.window != 0 ? 2 : 1;
        for (uint256 i = 0; i < tables; i++) {
            push(w, ROPE_TABLE, i, NONE, t * s.hd);
        }
        push(w, EMBED, 0, NONE, t * s.d);
        if (w.found) return;
        (uint256 global, uint256 slid) = (layerWords(s, 5), layerWords(s, 0));
        for (uint256 l = 0; l < s.nLayer; l++) {
            uint256 size = sliding(s, l) ? slid : global;
            bool here = w.byElement ? w.element < w.cursor + size : w.layer == l;
            if (here) {
                layer(s, w, l);
                return;
            }
            w.cursor += size;
        }
        norm(w, OUT_NORM, NONE, t, s.d);
        quant(w, Q_HEAD, NONE, s.steps, s.d);
        mat(w, s, M_HEAD, NONE, s.steps, s.vocab, s.d);
        if (s.penalty) push(w, PENALIZED, 0, NONE, s.steps * s.vocab);
        if (s.candidates == 0) {
            push(w, ARGMAX, 0, NONE, s.steps * segments(s.vocab, ARGMAX_SEGMENT) * 2);
            return;
        }
        (uint256 n, uint256 k) = (s.steps, s.candidates);
        push(w, SCALED, 0, NONE, n * s.vocab);
        uint256 levels = mergeLevels(s.vocab);
        for (uint256 l = 1; l <= levels; l++) {
            push(w, MERGE, l, NONE, n * s.vocab * 2);
        }
        push(w, WEIGHTS, 0, NONE, n * k);
        push(w, CUMSUM, 0, NONE, n * k);
        if (s.topP) push(w, TOP_P, 0, NONE, n * k);
        if (s.minP) push(w, MIN_P, 0, NONE, n * k);
        push(w, DRAW, 0, NONE, n * k);
        push(w, SAMPLED, 0, NONE, n);
    }

    /// Levels of the merge sort of `n` candidates: `ceil(log2 n)` (0 for one).
    function mergeLevels(uint256 n) internal pure returns (uint256 l) {
        while ((uint256(1) << l) < n) {
            l++;
        }
    }

    /// Words in a layer like layer `l` (all layers of one kind, sliding or not, are alike).
    function layerWords(Shape memory s, uint256 l) private pure returns (uint256) {
        Walk memory dry;
        (dry.byElement, dry.element) = (true, type(uint256).max);
        layer(s, dry, l);
        return dry.cursor;
    }

    function layer(Shape memory s, Walk memory w, uint256 l) private pure {
        uint256 t = s.positions;
        (uint256 q, uint256 kv) = (qd(s), kvd(s));
        norm(w, ATTN_NORM, l, t, s.d);
        quant(w, Q_ATTN_IN, l, t, s.d);
        mat(w, s, M_Q, l, t, q, s.d);
        mat(w, s, M_K, l, t, kv, s.d);
        mat(w, s, M_V, l, t, kv, s.d);
        if (qkvBias(s)) {
            push(w, BIAS, M_Q, l, t * q);
            push(w, BIAS, M_K, l, t * kv);
            push(w, BIAS, M_V, l, t * kv);
        }
        if (qkNorm(s)) {
            norm(w, Q_NORM, l, t * s.nHead, s.hd);
            norm(w, K_NORM, l, t * s.nKv, s.hd);
        }
        push(w, ROPE, 0, l, t * q);
        push(w, ROPE, 1, l, t * kv);
        uint256 win = windowOf(s, l);
        uint256 nKeys = s.nHead * keysBefore(t, win);
        uint256 nSegs = s.nHead * segmentsBefore(t, win);
        push(w, SCORES, 0, l, nKeys);
        push(w, MAX, 0, l, nSegs);
        push(w, EXPS, 0, l, nKeys);
        push(w, SUMS, 0, l, nSegs);
        push(w, VALUES_T, 0, l, kv * t);
        push(w, WEIGHTED, 0, l, nSegs * s.hd);
        push(w, ATTN_OUT, 0, l, t * q);
        quant(w, Q_ATTN_OUT, l, t, q);
        mat(w, s, M_O, l, t, s.d, q);
        if (postNorms(s)) norm(w, POST_ATTN_NORM, l, t, s.d);
        push(w, RESIDUAL, 0, l, t * s.d);
        norm(w, FFN_NORM, l, t, s.d);
        quant(w, Q_FFN_IN, l, t, s.d);
        mat(w, s, M_GATE, l, t, s.ff, s.d);
        mat(w, s, M_UP, l, t, s.ff, s.d);
        push(w, GATED, 0, l, t * s.ff);
        quant(w, Q_DOWN_IN, l, t, s.ff);
        mat(w, s, M_DOWN, l, t, s.d, s.ff);
        if (postNorms(s)) norm(w, POST_FFN_NORM, l, t, s.d);
        push(w, RESIDUAL, 1, l, t * s.d);
    }
}
