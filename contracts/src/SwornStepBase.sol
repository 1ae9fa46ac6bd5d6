// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";
import {SwornProducts} from "./SwornProducts.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornTrace} from "./SwornTrace.sol";

/// @title SwornStepBase
/// @notice What the one-step executor's parts share (docs/dispute.md §5.4): the witness's types,
/// reading proven trace words, weight rows proven against the weights root, the teacher-forced
/// tokens, and where regions lie. `SwornExecutor` checks the witness and dispatches each kind of
/// step to `SwornAttentionSteps` or `SwornWeightSteps` (one contract would pass the EVM's 24 KB
/// code size limit).
abstract contract SwornStepBase {
    using SwornF32 for uint32;

    uint32 internal constant NEG_INF = 0xFF800000;
    /// Slots before the layers' in the weights tree, and per layer.
    uint256 internal constant GLOBAL_SLOTS = 4;
    uint256 internal constant LAYER_SLOTS = 16;
    uint32 internal constant ABSENT = 0xFFFFFFFF;
    /// The weights tree's slot of `rope_freqs.weight` (docs/dispute.md §5.5).
    uint256 internal constant ROPE_FREQS_SLOT = 3;

    /// A proven leaf of the trace.
    struct Leaf {
        uint256 index;
        uint32[32] words;
        bytes32[] proof;
    }

    /// What a trace is executed against beyond itself: its shape, the weights root, the hash
    /// of the teacher-forced tokens (`tokensHash`), the repetition penalty (`penalty` as
    /// binary32 bits, over the last `lastN` tokens), the RoPE tables' bases (binary32 bits;
    /// `localBase` is 0 without a sliding window), and the sampling's temperature, top-p and
    /// min-p (binary32 bits) and seed.
    struct Context {
        L.Shape shape;
        bytes32 weights;
        bytes32 tokens;
        uint32 penalty;
        uint256 lastN;
        uint32 ropeBase;
        uint32 localBase;
        uint32 temperature;
        uint32 topP;
        uint32 minP;
        uint64 seed;
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

    /// Word `idx` of the trace, which must come before the word in dispute (so both traces
    /// hold it alike) and lie in a proven leaf of the witness.
    function word(Ctx memory c, uint256 idx) internal pure returns (uint32) {
        require(idx < c.element, "executor: an input after the element");
        uint256 leaf = idx / L.LEAF;
        for (uint256 k = 0; k < c.leaves.length; k++) {
            if (c.leaves[k].index == leaf) return c.leaves[k].words[idx % L.LEAF];
        }
        revert("executor: a leaf the step reads is missing");
    }

    /// Row `row` of the tensor in `slot`, proven against the weights root.
    function weightRow(Ctx memory c, uint256 slot, uint256 row) internal pure returns (Weight memory w) {
        for (uint256 k = 0; k < c.weights.length; k++) {
            w = c.weights[k];
            if (w.slot != slot || w.row != row) continue;
            require(w.code != ABSENT, "executor: an absent tensor");
            (bool ok, bytes32 rowRoot) =
                SwornTrace.rootFromInclusion(keccak256(abi.encodePacked(bytes1(0), w.data)), row, w.rows, w.rowProof);
            require(ok, "executor: row proof");
            provesSlot(c, w, rowRoot);
            return w;
        }
        revert("executor: a weight row the step reads is missing");
    }

    /// Checks that `w`'s slot leaf (its type, shape and row root `rowRoot`) is in the weights
    /// tree.
    function provesSlot(Ctx memory c, Weight memory w, bytes32 rowRoot) internal pure {
        bytes32 leaf = keccak256(abi.encodePacked(bytes1(0), uint32(w.code), uint32(w.rows), uint32(w.cols), rowRoot));
        uint256 slots = GLOBAL_SLOTS + LAYER_SLOTS * c.s.nLayer;
        (bool ok, bytes32 r) = SwornTrace.rootFromInclusion(leaf, w.slot, slots, w.slotProof);
        require(ok && r == c.x.weights, "executor: weight proof");
    }

    /// Llama 3's RoPE frequency factor of pair `p` (`rope_freqs.weight`, slot 3), or
    /// `scaled = false` when the weights tree proves the slot absent: the witness carries the
    /// slot either way, so a player cannot leave the factors out.
    function ropeFactor(Ctx memory c, uint256 p) internal pure returns (bool scaled, uint32 factor) {
        for (uint256 k = 0; k < c.weights.length; k++) {
            Weight memory w = c.weights[k];
            if (w.slot != ROPE_FREQS_SLOT) continue;
            if (w.code == ABSENT) {
                require(w.rows == 0 && w.cols == 0, "executor: an absent tensor has no shape");
                provesSlot(c, w, bytes32(0));
                return (false, 0);
            }
            w = weightRow(c, ROPE_FREQS_SLOT, 0);
            require(p < w.cols, "executor: rope_freqs is too short");
            return (true, valueAt(w, p));
        }
        revert("executor: the rope_freqs slot (present or absent) is missing");
    }

    /// Element `col` of a weight row, as the engine reads it (a quantized row's piece value).
    function valueAt(Weight memory w, uint256 col) internal pure returns (uint32) {
        uint256 k = w.code;
        if (k == SwornProducts.F32 || k == SwornProducts.F16 || k == SwornProducts.BF16) {
            return SwornProducts.element(k, w.data, col).canonical();
        }
        return SwornProducts.value(SwornProducts.piece(k, w.data, col / 32), col % 32);
    }

    /// The slot of layer `l`'s vector `v` (norms in `SwornLayout`'s norm order, then the
    /// biases).
    function vecSlot(uint256 l, uint256 v) internal pure returns (uint256) {
        return GLOBAL_SLOTS + LAYER_SLOTS * l + 7 + v;
    }

    /// Token `t` of the teacher-forced sequence.
    function token(Ctx memory c, uint256 t) internal pure returns (uint32) {
        require(t < c.tokens.length, "executor: tokens missing");
        return c.tokens[t];
    }

    function region(Ctx memory c, uint256 kind, uint256 sub, uint256 layer) internal pure returns (uint256) {
        return L.find(c.s, kind, sub, layer).start;
    }

    /// The residual stream entering layer `l` (the embedding for layer 0).
    function stream(Ctx memory c, uint256 l) internal pure returns (uint256) {
        return l == 0 ? region(c, L.EMBED, 0, L.NONE) : region(c, L.RESIDUAL, 1, l - 1);
    }

    /// A norm's input region and row width.
    function normInput(Ctx memory c) internal pure returns (uint256 start, uint256 n) {
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

    /// Product `m`'s rows, columns and input quantization (`SwornLayout`'s sub codes).
    function matShape(L.Shape memory s, uint256 m) internal pure returns (uint256 rows, uint256 cols, uint256 q) {
        (uint256 d, uint256 qdim, uint256 kv) = (s.d, L.qd(s), L.kvd(s));
        if (m == L.M_Q) return (qdim, d, L.Q_ATTN_IN);
        if (m == L.M_K || m == L.M_V) return (kv, d, L.Q_ATTN_IN);
        if (m == L.M_O) return (d, qdim, L.Q_ATTN_OUT);
        if (m == L.M_GATE || m == L.M_UP) return (s.ff, d, L.Q_FFN_IN);
        if (m == L.M_DOWN) return (d, s.ff, L.Q_DOWN_IN);
        return (s.vocab, d, L.Q_HEAD);
    }

    /// The activations quantization `q` of layer `l` quantizes (and a float matrix multiplies):
    /// their region, width, and first row (the head's are the output positions' only: the
    /// prompt's last position onwards).
    function activations(Ctx memory c, uint256 q, uint256 l)
        internal
        pure
        returns (uint256 x, uint256 cols, uint256 row0)
    {
        if (q == L.Q_ATTN_IN) return (region(c, L.NORM_OUT, L.ATTN_NORM, l), c.s.d, 0);
        if (q == L.Q_ATTN_OUT) return (region(c, L.ATTN_OUT, 0, l), L.qd(c.s), 0);
        if (q == L.Q_FFN_IN) return (region(c, L.NORM_OUT, L.FFN_NORM, l), c.s.d, 0);
        if (q == L.Q_DOWN_IN) return (region(c, L.GATED, 0, l), c.s.ff, 0);
        return (region(c, L.NORM_OUT, L.OUT_NORM, L.NONE), c.s.d, c.s.positions - c.s.steps);
    }

    /// The weight slot of product `m` on layer `l`.
    function matSlot(uint256 m, uint256 l) internal pure returns (uint256) {
        return m == L.M_HEAD ? 2 : GLOBAL_SLOTS + LAYER_SLOTS * l + m;
    }

    /// An integer as binary32 (exact below 2**24).
    function fromInt(uint256 v) internal pure returns (uint32) {
        return uint32(SwornF32.round(0, 0, v, 23, 8));
    }
}
