// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";
import {SwornQuant} from "./SwornQuant.sol";
import {SwornProducts} from "./SwornProducts.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornStepBase} from "./SwornStepBase.sol";

/// @title SwornWeightSteps
/// @notice The one-step executor's steps that read the model's weights or the tokens, and
/// activation quantization (docs/dispute.md §5.4): the embedding, RMSNorm's output, the
/// products' segments of every quantized type, biases, the repetition penalty. Called by
/// `SwornExecutor` with a checked witness.
contract SwornWeightSteps is SwornStepBase {
    using SwornF32 for uint32;

    /// @notice The word of `c.element`, by its region's kind.
    function step(Ctx memory c) external pure returns (uint32) {
        uint256 k = c.r.kind;
        if (k == L.QUANT) return quantize(c);
        if (k == L.EMBED) return embed(c);
        if (k == L.NORM_OUT) return normOut(c);
        if (k == L.MAT_PARTIAL || k == L.MAT_OUT) return product(c);
        if (k == L.BIAS) return bias(c);
        if (k == L.PENALIZED) return penalized(c);
        revert("executor: not a weight step");
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

    /// A word of an activation block record (`q` as 8 words of signed bytes, `d`, `s`, zeros),
    /// the block requantized from its 32 inputs.
    function quantize(Ctx memory c) private pure returns (uint32) {
        (uint256 rec, uint256 k) = (c.i / L.QBLOCK_WORDS, c.i % L.QBLOCK_WORDS);
        if (k >= 10) return 0;
        (uint256 x, uint256 cols, uint256 row0) = activations(c, c.r.sub, c.r.layer);
        uint256 per = cols / 32;
        uint256 from = x + (row0 + rec / per) * cols + (rec % per) * 32;
        uint32[32] memory v;
        for (uint256 j = 0; j < 32; j++) {
            v[j] = word(c, from + j);
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

    function segOf(Ctx memory c) private pure returns (Seg memory g) {
        uint256 cols;
        (g.rows, cols, g.q) = matShape(c.s, c.r.sub);
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
        Weight memory w = weightRow(c, matSlot(c.r.sub, c.r.layer), g.row);
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
}
