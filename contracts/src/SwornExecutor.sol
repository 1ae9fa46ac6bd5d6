// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ISwornExecutor} from "./ISwornExecutor.sol";
import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";
import {SwornQuant} from "./SwornQuant.sol";
import {SwornProducts} from "./SwornProducts.sol";
import {SwornTrace} from "./SwornTrace.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornTranscript} from "./SwornTranscript.sol";

/// @title SwornExecutor
/// @notice The one-step executor of sworn's traces (docs/dispute.md §5.4): given any word of a
/// trace laid out by `SwornLayout`, it recomputes that word by the canonical arithmetic from the
/// earlier words it depends on, which the witness proves against the trace's root. Bit for bit
/// as `sworn_engine::trace` computes them (checked on the engine's own traces,
/// `test/SwornExecutor.t.sol`).
///
/// Every kind of step but one: residual adds, gated activations, attention (scores, running
/// maximum, exponentials, running sums, transposed values, running weighted sums, outputs),
/// RMSNorm (lanes, scales, outputs), activation quantization, the products' segments of every
/// quantized type, biases, the embedding, RoPE's rotation, the repetition penalty and greedy
/// sampling; weight rows are proven against the weights root (docs/dispute.md §5.5), tokens
/// against their hash. Not built: the RoPE table's steps (f64 arithmetic), sampled
/// (temperature) steps, and `bind`, which needs the transcript format that commits to the
/// weights root.
contract SwornExecutor is ISwornExecutor {
    using SwornF32 for uint32;

    uint32 private constant NEG_INF = 0xFF800000;

    /// A proven leaf of the trace.
    struct Leaf {
        uint256 index;
        uint32[32] words;
        bytes32[] proof;
    }

    /// What a trace is executed against beyond itself: its shape, the weights root, the hash
    /// of the teacher-forced tokens (`tokensHash`), and the repetition penalty (`penalty` as
    /// binary32 bits, over the last `lastN` tokens).
    struct Context {
        L.Shape shape;
        bytes32 weights;
        bytes32 tokens;
        uint32 penalty;
        uint256 lastN;
    }

    /// A row of a weight tensor, with its proofs: `data` is row `row` of the tensor in slot
    /// `slot` (type `code`, `rows` x `cols`), `rowProof` proves it in the tensor's row tree,
    /// `slotProof` the tensor's leaf in the weights tree.
    struct Weight {
        uint256 slot;
        uint32 code;
        uint256 rows;
        uint256 cols;
        uint256 row;
        bytes data;
        bytes32[] rowProof;
        bytes32[] slotProof;
    }

    /// One execution: the context, the proven leaves, weight rows and tokens, the word in
    /// dispute, its region and its index in the region.
    struct Ctx {
        L.Shape s;
        Context x;
        Leaf[] leaves;
        Weight[] weights;
        uint32[] tokens;
        uint256 element;
        L.Region r;
        uint256 i;
    }

    /// Slots before the layers' in the weights tree, and per layer.
    uint256 private constant GLOBAL_SLOTS = 4;
    uint256 private constant LAYER_SLOTS = 16;
    uint32 private constant ABSENT = 0xFFFFFFFF;

    /// @notice The hash the execution context is committed by.
    function contextOf(Context memory x) public pure returns (bytes32) {
        return keccak256(abi.encode(x));
    }

    /// @notice The hash of the teacher-forced tokens.
    function tokensHash(uint32[] memory tokens) public pure returns (bytes32) {
        return keccak256(abi.encode(tokens));
    }

    /// The model's execution commitment's preimage (docs/dispute.md §5.5): its shape (binary32
    /// values as bits) and its weights root; `exec_root = keccak256(abi.encode(ExecModel))`.
    struct ExecModel {
        uint256 arch;
        uint256 nLayer;
        uint256 d;
        uint256 nHead;
        uint256 nKv;
        uint256 hd;
        uint256 ff;
        uint256 vocab;
        uint256 window;
        uint256 eps;
        uint256 ropeBase;
        uint256 localBase;
        bytes32 weights;
    }

    /// A format-4 model commitment's preimage.
    struct ModelPreimage {
        bytes32 file;
        bytes32 tensors;
        uint32 nTensors;
        bytes32 tokenizer;
        bytes32 template;
        ExecModel exec;
    }

    /// `bind`'s data: the model commitment's preimage, the request's body, the output tokens and
    /// the rest of the output's body (docs/dispute.md §6.1).
    struct Binding {
        ModelPreimage model;
        bytes request;
        uint32[] output;
        bytes outputRest;
    }

    /// The canonical arithmetic the executor implements.
    bytes32 private constant SPEC = keccak256("sworn-canon/1");

    /// @inheritdoc ISwornExecutor
    /// @dev `data` is `abi.encode(Binding)`. The transcript must be of format 4 (its model
    /// commitment carries the execution commitment), of the canonical arithmetic
    /// `sworn-canon/1`, greedy (temperature 0) and without a grammar: sampled and
    /// grammar-constrained steps stay with the committee.
    function bind(bytes32 model, bytes32 request, bytes32 output, uint256 step, bytes calldata data)
        external
        pure
        returns (bytes32 context, uint256 leaves, uint256 element, uint32 token)
    {
        Binding memory b = abi.decode(data, (Binding));
        require(modelCommitment(b.model) == model, "executor: not the model commitment (format 4)");
        require(sha256(abi.encodePacked("sworn.request.v3\x00", b.request)) == request, "executor: request");
        require(outputCommitment(b.output, b.outputRest) == output, "executor: output");
        SwornTranscript.Request memory r = SwornTranscript.request(b.request);
        require(keccak256(r.specVersion) == SPEC, "executor: another canonical arithmetic");
        require(r.temperature & 0x7FFFFFFF == 0, "executor: sampled steps go to the committee");
        require(!r.grammar, "executor: grammar-constrained steps go to the committee");
        require(b.model.exec.arch <= L.GEMMA3, "executor: architecture");
        uint256 n = b.output.length;
        require(step < n && r.promptTokens.length > 0, "executor: no such step");
        Context memory x = contextFor(b, r);
        context = contextOf(x);
        leaves = L.words(x.shape) / L.LEAF;
        uint256 g = L.segments(x.shape.vocab, L.ARGMAX_SEGMENT);
        element = L.find(x.shape, L.ARGMAX, 0, L.NONE).start + (step * g + g - 1) * 2 + 1;
        token = b.output[step];
    }

    /// `SHA-256("sworn.model.v2\0" || file || tensors || n_tensors || tokenizer || template ||
    /// exec_root)`.
    function modelCommitment(ModelPreimage memory m) private pure returns (bytes32) {
        bytes32 execRoot = keccak256(abi.encode(m.exec));
        return sha256(
            abi.encodePacked("sworn.model.v2\x00", m.file, m.tensors, m.nTensors, m.tokenizer, m.template, execRoot)
        );
    }

    /// `SHA-256("sworn.output.v2\0" || u32 count || tokens || rest)`.
    function outputCommitment(uint32[] memory tokens, bytes memory rest) private pure returns (bytes32) {
        bytes memory packed = new bytes(4 + 4 * tokens.length);
        uint256 n = tokens.length;
        assembly {
            mstore(add(packed, 32), shl(224, n))
        }
        for (uint256 i = 0; i < n; i++) {
            uint256 t = tokens[i];
            // Each store writes the token's 4 bytes and zeros after them, which the next token's
            // store overwrites (the last spills into unallocated memory).
            assembly {
                mstore(add(add(packed, 36), mul(i, 4)), shl(224, t))
            }
        }
        return sha256(abi.encodePacked("sworn.output.v2\x00", packed, rest));
    }

    /// The execution context of a bound transcript: its shape, weights root, the
    /// teacher-forced tokens (the prompt, then every output token but the last) and its penalty.
    function contextFor(Binding memory b, SwornTranscript.Request memory r) private pure returns (Context memory x) {
        ExecModel memory e = b.model.exec;
        uint256 p = r.promptTokens.length;
        uint256 n = b.output.length;
        x.shape = L.Shape(
            e.arch,
            e.nLayer,
            e.d,
            e.nHead,
            e.nKv,
            e.hd,
            e.ff,
            e.vocab,
            e.window,
            p + n - 1,
            n,
            r.repeatPenalty != 0x3F800000,
            uint32(e.eps)
        );
        uint32[] memory tokens = new uint32[](p + n - 1);
        for (uint256 i = 0; i < p; i++) {
            tokens[i] = r.promptTokens[i];
        }
        for (uint256 i = 0; i + 1 < n; i++) {
            tokens[p + i] = b.output[i];
        }
        x.weights = e.weights;
        x.tokens = tokensHash(tokens);
        x.penalty = r.repeatPenalty;
        x.lastN = r.repeatLastN;
    }

    /// @inheritdoc ISwornExecutor
    /// @dev `witness` is `abi.encode(Context, Leaf[], Weight[], uint32[] tokens)`: the
    /// context, the leaves holding the inputs, the weight rows the step reads and the
    /// teacher-forced tokens (empty when the step reads none).
    function execute(bytes32 context, bytes32 root, uint256 leaves, uint256 element, bytes calldata witness)
        external
        pure
        returns (uint32)
    {
        Ctx memory c;
        (c.x, c.leaves, c.weights, c.tokens) = abi.decode(witness, (Context, Leaf[], Weight[], uint32[]));
        c.s = c.x.shape;
        require(context == contextOf(c.x), "executor: context");
        require(L.words(c.s) == leaves * L.LEAF, "executor: trace size");
        for (uint256 k = 0; k < c.leaves.length; k++) {
            Leaf memory f = c.leaves[k];
            require(SwornTrace.proves(f.words, f.index, leaves, f.proof, root), "executor: leaf proof");
        }
        if (c.tokens.length > 0) require(tokensHash(c.tokens) == c.x.tokens, "executor: tokens");
        c.element = element;
        c.r = L.locate(c.s, element);
        c.i = element - c.r.start;
        if (c.i >= c.r.len) return 0; // a leaf's padding after its region
        // Float results are canonical (SwornF32 makes every NaN so, and the trace's words are);
        // integer words (packed quants, ids) are returned as they are.
        return step(c);
    }

    // ---------------------------------------------------------------------------------------
    // Dispatch
    // ---------------------------------------------------------------------------------------

    function step(Ctx memory c) private pure returns (uint32) {
        uint256 k = c.r.kind;
        if (k == L.RESIDUAL) return residual(c);
        if (k == L.GATED) return gated(c);
        if (k == L.SCORES) return scores(c);
        if (k == L.MAX) return runningMax(c);
        if (k == L.EXPS) return exps(c);
        if (k == L.SUMS) return sums(c);
        if (k == L.VALUES_T) return valuesT(c);
        if (k == L.WEIGHTED) return weighted(c);
        if (k == L.ATTN_OUT) return attnOut(c);
        if (k == L.NORM_LANES) return normLanes(c);
        if (k == L.NORM_SCALE) return normScale(c);
        if (k == L.QUANT) return quantize(c);
        if (k == L.ROPE) return rope(c);
        if (k == L.ARGMAX) return argmax(c);
        if (k == L.EMBED) return embed(c);
        if (k == L.NORM_OUT) return normOut(c);
        if (k == L.MAT_PARTIAL || k == L.MAT_OUT) return product(c);
        if (k == L.BIAS) return bias(c);
        if (k == L.PENALIZED) return penalized(c);
        revert("executor: RoPE table steps (f64) are not executable yet");
    }

    // ---------------------------------------------------------------------------------------
    // Reading the witness
    // ---------------------------------------------------------------------------------------

    /// Word `idx` of the trace, which must come before the word in dispute (so both traces
    /// hold it alike) and lie in a proven leaf of the witness.
    function word(Ctx memory c, uint256 idx) private pure returns (uint32) {
        require(idx < c.element, "executor: an input after the element");
        uint256 leaf = idx / L.LEAF;
        for (uint256 k = 0; k < c.leaves.length; k++) {
            if (c.leaves[k].index == leaf) return c.leaves[k].words[idx % L.LEAF];
        }
        revert("executor: a leaf the step reads is missing");
    }

    /// Row `row` of the tensor in `slot`, proven against the weights root.
    function weightRow(Ctx memory c, uint256 slot, uint256 row) private pure returns (Weight memory w) {
        for (uint256 k = 0; k < c.weights.length; k++) {
            w = c.weights[k];
            if (w.slot != slot || w.row != row) continue;
            require(w.code != ABSENT, "executor: an absent tensor");
            (bool ok, bytes32 rowRoot) =
                SwornTrace.rootFromInclusion(keccak256(abi.encodePacked(bytes1(0), w.data)), row, w.rows, w.rowProof);
            require(ok, "executor: row proof");
            bytes32 leaf =
                keccak256(abi.encodePacked(bytes1(0), uint32(w.code), uint32(w.rows), uint32(w.cols), rowRoot));
            uint256 slots = GLOBAL_SLOTS + LAYER_SLOTS * c.s.nLayer;
            (bool ok2, bytes32 r) = SwornTrace.rootFromInclusion(leaf, slot, slots, w.slotProof);
            require(ok2 && r == c.x.weights, "executor: weight proof");
            return w;
        }
        revert("executor: a weight row the step reads is missing");
    }

    /// Element `col` of a weight row, as the engine reads it (a quantized row's piece value).
    function valueAt(Weight memory w, uint256 col) private pure returns (uint32) {
        uint256 k = w.code;
        if (k == SwornProducts.F32 || k == SwornProducts.F16 || k == SwornProducts.BF16) {
            return SwornProducts.element(k, w.data, col).canonical();
        }
        return SwornProducts.value(SwornProducts.piece(k, w.data, col / 32), col % 32);
    }

    /// The slot of layer `l`'s vector `v` (norms in `SwornLayout`'s norm order, then the
    /// biases).
    function vecSlot(uint256 l, uint256 v) private pure returns (uint256) {
        return GLOBAL_SLOTS + LAYER_SLOTS * l + 7 + v;
    }

    /// Token `t` of the teacher-forced sequence.
    function token(Ctx memory c, uint256 t) private pure returns (uint32) {
        require(t < c.tokens.length, "executor: tokens missing");
        return c.tokens[t];
    }

    function region(Ctx memory c, uint256 kind, uint256 sub, uint256 layer) private pure returns (uint256) {
        return L.find(c.s, kind, sub, layer).start;
    }

    /// The residual stream entering layer `l` (the embedding for layer 0).
    function stream(Ctx memory c, uint256 l) private pure returns (uint256) {
        return l == 0 ? region(c, L.EMBED, 0, L.NONE) : region(c, L.RESIDUAL, 1, l - 1);
    }

    // ---------------------------------------------------------------------------------------
    // Elementwise steps
    // ---------------------------------------------------------------------------------------

    /// `x + y`: the stream plus the attention (or feed-forward) output, post-normed on Gemma 3.
    function residual(Ctx memory c) private pure returns (uint32) {
        uint256 l = c.r.layer;
        bool ffn = c.r.sub == 1;
        uint256 x = ffn ? region(c, L.RESIDUAL, 0, l) : stream(c, l);
        uint256 y;
        if (L.postNorms(c.s)) y = region(c, L.NORM_OUT, ffn ? L.POST_FFN_NORM : L.POST_ATTN_NORM, l);
        else y = region(c, L.MAT_OUT, ffn ? L.M_DOWN : L.M_O, l);
        return word(c, x + c.i).add(word(c, y + c.i));
    }

    /// `act(g) * u`: SiLU, or GELU on Gemma 3.
    function gated(Ctx memory c) private pure returns (uint32) {
        uint256 l = c.r.layer;
        uint32 g = word(c, region(c, L.MAT_OUT, L.M_GATE, l) + c.i);
        uint32 u = word(c, region(c, L.MAT_OUT, L.M_UP, l) + c.i);
        return (L.gelu(c.s) ? SwornMath.gelu(g) : SwornMath.silu(g)).mul(u);
    }

    /// A value of V, transposed: `vt[col][j] = v[j][col]`.
    function valuesT(Ctx memory c) private pure returns (uint32) {
        uint256 l = c.r.layer;
        uint256 t = c.s.positions;
        uint256 v = L.qkvBias(c.s) ? region(c, L.BIAS, L.M_V, l) : region(c, L.MAT_OUT, L.M_V, l);
        return word(c, v + (c.i % t) * L.kvd(c.s) + c.i / t);
    }

    /// RoPE's rotation of one query or key element, with its pair and the table's `(c, s)`.
    function rope(Ctx memory c) private pure returns (uint32) {
        bool isK = c.r.sub == 1;
        uint256 width = isK ? L.kvd(c.s) : L.qd(c.s);
        uint256 col = (c.i % width) % c.s.hd;
        (uint256 a, uint256 b, uint256 p) = pairOf(c.s, col);
        (uint32 cs, uint32 sn) = tableAt(c, c.i / width, p);
        uint256 row = ropeInput(c, c.r.layer, isK) + c.i - col; // this head's row
        (uint32 x0, uint32 x1) = (word(c, row + a), word(c, row + b));
        return col == a ? x0.mul(cs).sub(x1.mul(sn)) : x0.mul(sn).add(x1.mul(cs));
    }

    /// The pair element `col` of a head rotates with (`a`, `b`), and its table column `p`:
    /// `(i, i + hd/2)` for NeoX, `(2i, 2i + 1)` otherwise.
    function pairOf(L.Shape memory s, uint256 col) private pure returns (uint256 a, uint256 b, uint256 p) {
        uint256 half = s.hd / 2;
        if (!L.neox(s)) return (col & ~uint256(1), col | 1, col / 2);
        return col < half ? (col, col + half, col) : (col - half, col, col - half);
    }

    /// `(c, s)` of the layer's table at position `t`, column `p`.
    function tableAt(Ctx memory c, uint256 t, uint256 p) private pure returns (uint32, uint32) {
        uint256 table = region(c, L.ROPE_TABLE, L.sliding(c.s, c.r.layer) ? 1 : 0, L.NONE);
        table += (t * (c.s.hd / 2) + p) * 2;
        return (word(c, table), word(c, table + 1));
    }

    /// Where RoPE's input lives: the head norms' output (Qwen 3, Gemma 3), the biased
    /// projection (Qwen 2), or the projection.
    function ropeInput(Ctx memory c, uint256 l, bool isK) private pure returns (uint256) {
        if (L.qkNorm(c.s)) return region(c, L.NORM_OUT, isK ? L.K_NORM : L.Q_NORM, l);
        if (L.qkvBias(c.s)) return region(c, L.BIAS, isK ? L.M_K : L.M_Q, l);
        return region(c, L.MAT_OUT, isK ? L.M_K : L.M_Q, l);
    }

    // ---------------------------------------------------------------------------------------
    // Attention
    // ---------------------------------------------------------------------------------------

    /// Where a (position, head) row of attention lies.
    struct Row {
        uint256 t;
        uint256 h;
        uint256 n; // keys
        uint256 segs;
        uint256 w; // window
        uint256 keysAt; // H * keysBefore(t)
        uint256 segsAt; // H * segmentsBefore(t)
    }

    function attnRow(Ctx memory c, uint256 t, uint256 h) private pure returns (Row memory r) {
        r.w = L.windowOf(c.s, c.r.layer);
        (r.t, r.h, r.n) = (t, h, L.keys(t, r.w));
        r.segs = L.segments(r.n, L.KEYS_PER_SEGMENT);
        r.keysAt = c.s.nHead * L.keysBefore(t, r.w);
        r.segsAt = c.s.nHead * L.segmentsBefore(t, r.w);
    }

    /// The row of a word of a keys-long region (scores, exponentials): the row and key `j`.
    function byKeys(Ctx memory c) private pure returns (Row memory r, uint256 j) {
        uint256 w = L.windowOf(c.s, c.r.layer);
        uint256 t = L.rowOf(c.i, c.s.nHead, c.s.positions, w, true);
        uint256 rem = c.i - c.s.nHead * L.keysBefore(t, w);
        uint256 n = L.keys(t, w);
        r = attnRow(c, t, rem / n);
        j = rem % n;
    }

    /// The row of a word of a segments-long region (max, sums; `per` words per segment):
    /// the row, and the rest of the index within the row.
    function bySegments(Ctx memory c, uint256 per) private pure returns (Row memory r, uint256 rest) {
        uint256 w = L.windowOf(c.s, c.r.layer);
        uint256 t = L.rowOf(c.i, c.s.nHead * per, c.s.positions, w, false);
        uint256 rem = c.i - c.s.nHead * per * L.segmentsBefore(t, w);
        uint256 segs = L.segments(L.keys(t, w), L.KEYS_PER_SEGMENT);
        r = attnRow(c, t, rem / (per * segs));
        rest = rem % (per * segs);
    }

    /// `dot(q_h, k_j) * (1 / sqrt(hd))`, the dot product in §1.3's order.
    function scores(Ctx memory c) private pure returns (uint32) {
        (Row memory r, uint256 j) = byKeys(c);
        uint256 l = c.r.layer;
        uint256 hd = c.s.hd;
        uint256 g = r.h / (c.s.nHead / c.s.nKv);
        uint256 q = region(c, L.ROPE, 0, l) + r.t * L.qd(c.s) + r.h * hd;
        uint256 k = region(c, L.ROPE, 1, l) + (L.firstKey(r.t, r.w) + j) * L.kvd(c.s) + g * hd;
        uint32[] memory a = new uint32[](hd);
        uint32[] memory b = new uint32[](hd);
        for (uint256 d = 0; d < hd; d++) {
            (a[d], b[d]) = (word(c, q + d), word(c, k + d));
        }
        uint32 scale = SwornMath.ONE.div(fromInt(hd).sqrt());
        return SwornMath.dot8(a, b).mul(scale);
    }

    /// The scores' running maximum after segment `sg` (a fold with `>`, from -inf).
    function runningMax(Ctx memory c) private pure returns (uint32 m) {
        (Row memory r, uint256 sg) = bySegments(c, 1);
        m = sg == 0 ? NEG_INF : word(c, c.r.start + c.i - 1);
        uint256 base = region(c, L.SCORES, 0, c.r.layer) + r.keysAt + r.h * r.n;
        for (uint256 j = sg * L.KEYS_PER_SEGMENT; j < r.n && j < (sg + 1) * L.KEYS_PER_SEGMENT; j++) {
            uint32 x = word(c, base + j);
            if (SwornMath.lt(m, x)) m = x;
        }
    }

    /// `exp(s_j - max)`, the maximum the row's last.
    function exps(Ctx memory c) private pure returns (uint32) {
        (Row memory r,) = byKeys(c);
        uint256 l = c.r.layer;
        uint32 m = word(c, region(c, L.MAX, 0, l) + r.segsAt + r.h * r.segs + r.segs - 1);
        uint32 s = word(c, region(c, L.SCORES, 0, l) + c.i);
        return SwornMath.exp(s.sub(m));
    }

    /// The exponentials' running sum after segment `sg`, in order from +0.
    function sums(Ctx memory c) private pure returns (uint32 acc) {
        (Row memory r, uint256 sg) = bySegments(c, 1);
        acc = sg == 0 ? 0 : word(c, c.r.start + c.i - 1);
        uint256 base = region(c, L.EXPS, 0, c.r.layer) + r.keysAt + r.h * r.n;
        for (uint256 j = sg * L.KEYS_PER_SEGMENT; j < r.n && j < (sg + 1) * L.KEYS_PER_SEGMENT; j++) {
            acc = acc.add(word(c, base + j));
        }
    }

    /// The running weighted sum `sum_j e_j v_j,d` after segment `sg`, in order from +0.
    function weighted(Ctx memory c) private pure returns (uint32 acc) {
        (Row memory r, uint256 rest) = bySegments(c, c.s.hd);
        (uint256 d, uint256 sg) = (rest / r.segs, rest % r.segs);
        uint256 l = c.r.layer;
        acc = sg == 0 ? 0 : word(c, c.r.start + c.i - 1);
        uint256 g = r.h / (c.s.nHead / c.s.nKv);
        uint256 e = region(c, L.EXPS, 0, l) + r.keysAt + r.h * r.n;
        uint256 v = region(c, L.VALUES_T, 0, l) + (g * c.s.hd + d) * c.s.positions + L.firstKey(r.t, r.w);
        for (uint256 j = sg * L.KEYS_PER_SEGMENT; j < r.n && j < (sg + 1) * L.KEYS_PER_SEGMENT; j++) {
            acc = acc.add(word(c, e + j).mul(word(c, v + j)));
        }
    }

    /// The head's output element: the last weighted sum over the last sum.
    function attnOut(Ctx memory c) private pure returns (uint32) {
        uint256 hd = c.s.hd;
        Row memory r = attnRow(c, c.i / L.qd(c.s), (c.i % L.qd(c.s)) / hd);
        uint256 at = r.segsAt * hd + (r.h * hd + c.i % hd) * r.segs + r.segs - 1;
        uint32 w = word(c, region(c, L.WEIGHTED, 0, c.r.layer) + at);
        at = r.segsAt + r.h * r.segs + r.segs - 1;
        return w.div(word(c, region(c, L.SUMS, 0, c.r.layer) + at));
    }

    // ---------------------------------------------------------------------------------------
    // RMSNorm
    // ---------------------------------------------------------------------------------------

    /// A norm's input region and row width.
    function normInput(Ctx memory c) private pure returns (uint256 start, uint256 n) {
        uint256 l = c.r.layer;
        uint256 sub = c.r.sub;
        if (sub == L.ATTN_NORM) return (stream(c, l), c.s.d);
        if (sub == L.FFN_NORM) return (region(c, L.RESIDUAL, 0, l), c.s.d);
        if (sub == L.Q_NORM) return (region(c, L.MAT_OUT, L.M_Q, l), c.s.hd);
        if (sub == L.K_NORM) return (region(c, L.MAT_OUT, L.M_K, l), c.s.hd);
        if (sub == L.POST_ATTN_NORM) return (region(c, L.MAT_OUT, L.M_O, l), c.s.d);
        if (sub == L.POST_FFN_NORM) return (region(c, L.MAT_OUT, L.M_DOWN, l), c.s.d);
        return (region(c, L.RESIDUAL, 1, c.s.nLayer - 1), c.s.d);
    }

    /// Lane `l` of `sum x^2` after segment `sg` of a row: 16 chunks of 8, from the lane's value
    /// after the segment before (+0 first).
    function normLanes(Ctx memory c) private pure returns (uint32 acc) {
        (uint256 x, uint256 n) = normInput(c);
        uint256 segs = L.segments(n, L.NORM_SEGMENT);
        (uint256 row, uint256 sg, uint256 lane) = (c.i / (segs * 8), (c.i / 8) % segs, c.i % 8);
        acc = sg == 0 ? 0 : word(c, c.r.start + c.i - 8);
        for (uint256 e = sg * L.NORM_SEGMENT + lane; e < n && e < (sg + 1) * L.NORM_SEGMENT; e += 8) {
            uint32 v = word(c, x + row * n + e);
            acc = acc.add(v.mul(v));
        }
    }

    /// `1 / sqrt(tree8(last lanes) / n + eps)`.
    function normScale(Ctx memory c) private pure returns (uint32) {
        (, uint256 n) = normInput(c);
        uint256 segs = L.segments(n, L.NORM_SEGMENT);
        uint256 lanes = region(c, L.NORM_LANES, c.r.sub, c.r.layer) + (c.i * segs + segs - 1) * 8;
        uint32[8] memory a;
        for (uint256 k = 0; k < 8; k++) {
            a[k] = word(c, lanes + k);
        }
        uint32 ss = SwornMath.tree8(a);
        return SwornMath.ONE.div(ss.div(fromInt(n)).add(c.s.eps).sqrt());
    }

    // ---------------------------------------------------------------------------------------
    // Activation quantization
    // ---------------------------------------------------------------------------------------

    /// A word of an activation block record (`q` as 8 words of signed bytes, `d`, `s`, zeros),
    /// the block requantized from its 32 inputs.
    function quantize(Ctx memory c) private pure returns (uint32) {
        (uint256 rec, uint256 k) = (c.i / L.QBLOCK_WORDS, c.i % L.QBLOCK_WORDS);
        if (k >= 10) return 0;
        (uint256 x, uint256 cols, uint256 row0) = quantInput(c);
        uint256 per = cols / 32;
        uint256 at = x + (row0 + rec / per) * cols + (rec % per) * 32;
        uint32[32] memory v;
        for (uint256 j = 0; j < 32; j++) {
            v[j] = word(c, at + j);
        }
        (int256[32] memory q, uint32 d,, uint32 s) = SwornQuant.quantize(v);
        if (k == 8) return d;
        if (k == 9) return s;
        uint32 w;
        for (uint256 j = 0; j < 4; j++) {
            w = (w << 8) | uint32(uint8(int8(q[4 * k + j])));
        }
        return w;
    }

    /// A quantization's input region, its width, and its first row (the head quantizes the
    /// output positions only: the prompt's last position onwards).
    function quantInput(Ctx memory c) private pure returns (uint256 x, uint256 cols, uint256 row0) {
        uint256 l = c.r.layer;
        uint256 sub = c.r.sub;
        if (sub == L.Q_ATTN_IN) return (region(c, L.NORM_OUT, L.ATTN_NORM, l), c.s.d, 0);
        if (sub == L.Q_ATTN_OUT) return (region(c, L.ATTN_OUT, 0, l), L.qd(c.s), 0);
        if (sub == L.Q_FFN_IN) return (region(c, L.NORM_OUT, L.FFN_NORM, l), c.s.d, 0);
        if (sub == L.Q_DOWN_IN) return (region(c, L.GATED, 0, l), c.s.ff, 0);
        return (region(c, L.NORM_OUT, L.OUT_NORM, L.NONE), c.s.d, c.s.positions - c.s.steps);
    }

    // ---------------------------------------------------------------------------------------
    // Steps that read the weights or the tokens
    // ---------------------------------------------------------------------------------------

    /// The embedding row of the position's token, element by element (Gemma 3: times
    /// `sqrt(d)` rounded to binary32).
    function embed(Ctx memory c) private pure returns (uint32 v) {
        uint256 d = c.s.d;
        Weight memory w = weightRow(c, 0, token(c, c.i / d));
        require(w.cols == d, "executor: embedding width");
        v = valueAt(w, c.i % d);
        if (L.embedScale(c.s)) v = v.mul(fromInt(d).sqrt());
    }

    /// RMSNorm's output `(x * r) * w`.
    function normOut(Ctx memory c) private pure returns (uint32) {
        (uint256 x, uint256 n) = normInput(c);
        uint256 l = c.r.layer;
        uint32 r = word(c, region(c, L.NORM_SCALE, c.r.sub, l) + c.i / n);
        Weight memory w = weightRow(c, c.r.sub == L.OUT_NORM ? 1 : vecSlot(l, c.r.sub), 0);
        require(w.cols == n, "executor: norm width");
        return word(c, x + c.i).mul(r).mul(valueAt(w, c.i % n));
    }

    /// A product's rows, columns and input quantization (`SwornLayout`'s sub codes).
    function matShape(Ctx memory c) private pure returns (uint256 rows, uint256 cols, uint256 q) {
        uint256 m = c.r.sub;
        (uint256 d, uint256 qdim, uint256 kv) = (c.s.d, L.qd(c.s), L.kvd(c.s));
        if (m == L.M_Q) return (qdim, d, L.Q_ATTN_IN);
        if (m == L.M_K || m == L.M_V) return (kv, d, L.Q_ATTN_IN);
        if (m == L.M_O) return (d, qdim, L.Q_ATTN_OUT);
        if (m == L.M_GATE || m == L.M_UP) return (c.s.ff, d, L.Q_FFN_IN);
        if (m == L.M_DOWN) return (d, c.s.ff, L.Q_DOWN_IN);
        return (c.s.vocab, d, L.Q_HEAD);
    }

    /// Where a product's word lies: input row `t`, output `row`, segment `seg` of `segs`.
    struct Seg {
        uint256 rows;
        uint256 pieces;
        uint256 q;
        uint256 segs;
        uint256 t;
        uint256 row;
        uint256 seg;
    }

    function segOf(Ctx memory c) private pure returns (Seg memory g) {
        uint256 cols;
        (g.rows, cols, g.q) = matShape(c);
        g.pieces = cols / 32;
        g.segs = L.segments(g.pieces, L.PIECES_PER_SEGMENT);
        if (c.r.kind == L.MAT_PARTIAL) {
            uint256 p = g.segs - 1;
            (g.t, g.row, g.seg) = (c.i / (g.rows * p), (c.i / p) % g.rows, c.i % p);
        } else {
            (g.t, g.row, g.seg) = (c.i / g.rows, c.i % g.rows, g.segs - 1);
        }
    }

    /// One segment of a row's product: up to 8 pieces folded from the accumulator the
    /// segment before left (+0 first), against the activation blocks of the input's row.
    function product(Ctx memory c) private pure returns (uint32) {
        Seg memory g = segOf(c);
        uint32 acc = 0;
        if (g.seg > 0) {
            uint256 prev = (g.t * g.rows + g.row) * (g.segs - 1) + g.seg - 1;
            acc = word(c, region(c, L.MAT_PARTIAL, c.r.sub, c.r.layer) + prev);
        }
        uint256 slot = c.r.sub == L.M_HEAD ? 2 : GLOBAL_SLOTS + LAYER_SLOTS * c.r.layer + c.r.sub;
        Weight memory w = weightRow(c, slot, g.row);
        require(w.rows == g.rows && w.cols == g.pieces * 32, "executor: matrix shape");
        uint256 from = g.seg * L.PIECES_PER_SEGMENT;
        uint256 to = from + L.PIECES_PER_SEGMENT < g.pieces ? from + L.PIECES_PER_SEGMENT : g.pieces;
        SwornProducts.Act[] memory x = new SwornProducts.Act[](to - from);
        uint256 base = region(c, L.QUANT, g.q, c.r.layer) + (g.t * g.pieces + from) * L.QBLOCK_WORDS;
        for (uint256 k = 0; k < to - from; k++) {
            x[k] = act(c, base + k * L.QBLOCK_WORDS);
        }
        return SwornProducts.fold(w.code, w.data, from, to, x, acc);
    }

    /// The activation block recorded at `rec`.
    function act(Ctx memory c, uint256 rec) private pure returns (SwornProducts.Act memory a) {
        uint256 q;
        for (uint256 j = 0; j < 8; j++) {
            q = (q << 32) | word(c, rec + j);
        }
        (a.q, a.d, a.s) = (bytes32(q), word(c, rec + 8), word(c, rec + 9));
    }

    /// A projection plus its bias (Qwen 2).
    function bias(Ctx memory c) private pure returns (uint32) {
        uint256 width = c.r.sub == L.M_Q ? L.qd(c.s) : L.kvd(c.s);
        uint32 y = word(c, region(c, L.MAT_OUT, c.r.sub, c.r.layer) + c.i);
        Weight memory w = weightRow(c, vecSlot(c.r.layer, 6 + c.r.sub), 0);
        require(w.cols == width, "executor: bias width");
        return y.add(valueAt(w, c.i % width));
    }

    /// A logit after the repetition penalty: divided by it (positive) or multiplied (else)
    /// when its id is among the last `lastN` tokens of the history (the prompt, then the
    /// output tokens before this step).
    function penalized(Ctx memory c) private pure returns (uint32) {
        (uint256 n, uint256 id) = (c.i / c.s.vocab, c.i % c.s.vocab);
        uint32 l = word(c, region(c, L.MAT_OUT, L.M_HEAD, L.NONE) + c.i);
        uint256 len = c.s.positions - c.s.steps + 1 + n;
        uint256 from = len > c.x.lastN ? len - c.x.lastN : 0;
        for (uint256 t = from; t < len; t++) {
            if (token(c, t) == id) {
                return SwornMath.lt(0, l) ? l.div(c.x.penalty) : l.mul(c.x.penalty);
            }
        }
        return l;
    }

    // ---------------------------------------------------------------------------------------
    // Greedy sampling
    // ---------------------------------------------------------------------------------------

    /// The running `(largest logit, its lowest id)` after a segment of 256 logits: a logit
    /// replaces the best only when larger (so ties keep the lower id).
    function argmax(Ctx memory c) private pure returns (uint32) {
        uint256 g = L.segments(c.s.vocab, L.ARGMAX_SEGMENT);
        (uint256 n, uint256 sg) = (c.i / (2 * g), (c.i / 2) % g);
        uint256 pair = c.r.start + (n * g + sg) * 2;
        (uint32 best, uint32 id) = sg == 0 ? (NEG_INF, uint32(0)) : (word(c, pair - 2), word(c, pair - 1));
        uint256 logits = c.s.penalty ? region(c, L.PENALIZED, 0, L.NONE) : region(c, L.MAT_OUT, L.M_HEAD, L.NONE);
        logits += n * c.s.vocab;
        for (uint256 i = sg * L.ARGMAX_SEGMENT; i < c.s.vocab && i < (sg + 1) * L.ARGMAX_SEGMENT; i++) {
            uint32 x = word(c, logits + i);
            if (SwornMath.lt(best, x)) (best, id) = (x, uint32(i));
        }
        return c.i % 2 == 0 ? best : id;
    }

    /// An integer as binary32 (exact below 2**24).
    function fromInt(uint256 v) private pure returns (uint32) {
        return uint32(SwornF32.round(0, 0, v, 23, 8));
    }
}
