// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornStepBase} from "./SwornStepBase.sol";

/// @title SwornAttentionSteps
/// @notice The one-step executor's steps that read only the trace (docs/dispute.md §5.4):
/// residual adds, gated activations, RoPE's rotation, attention (scores, running maximum,
/// exponentials, running sums, transposed values, running weighted sums, outputs), RMSNorm's
/// lanes and scales, and greedy sampling. Called by `SwornExecutor` with a checked witness.
contract SwornAttentionSteps is SwornStepBase {
    using SwornF32 for uint32;

    /// @notice The word of `c.element`, by its region's kind.
    function step(Ctx memory c) external pure returns (uint32) {
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
        if (k == L.ROPE) return rope(c);
        if (k == L.ARGMAX) return argmax(c);
        if (k == L.MAT_PARTIAL || k == L.MAT_OUT) return floatProduct(c);
        revert("executor: not an attention step");
    }

    /// A float (F32, F16, BF16) matrix's product, spec §1.3's eight-lane dot product like the
    /// scores': lane `l` after segment `sg` folds its 16 elements of the segment (128 columns)
    /// into the lane's value after the segment before (+0 first); the output is `tree8` of the
    /// last segment's lanes. The activations are not quantized.
    function floatProduct(Ctx memory c) private pure returns (uint32) {
        (uint256 rows, uint256 cols, uint256 q) = matShape(c.s, c.r.sub);
        uint256 segs = L.segments(cols, L.FLOAT_SEGMENT);
        if (c.r.kind == L.MAT_OUT) {
            uint256 lanes = region(c, L.MAT_PARTIAL, c.r.sub, c.r.layer) + (c.i * segs + segs - 1) * 8;
            uint32[8] memory a;
            for (uint256 l = 0; l < 8; l++) {
                a[l] = word(c, lanes + l);
            }
            return SwornMath.tree8(a);
        }
        uint256 row = (c.i / (segs * 8)) % rows;
        Weight memory w = weightRow(c, matSlot(c.r.sub, c.r.layer), row);
        require(w.rows == rows && w.cols == cols, "executor: matrix shape");
        (uint256 x,, uint256 row0) = activations(c, q, c.r.layer);
        return lane(c, w, x + (row0 + c.i / (rows * segs * 8)) * cols, (c.i / 8) % segs);
    }

    /// Lane `c.i % 8` of segment `sg` of the product of the row `w` with the activations at `x`.
    function lane(Ctx memory c, Weight memory w, uint256 x, uint256 sg) private pure returns (uint32 acc) {
        if (sg > 0) acc = word(c, c.r.start + c.i - 8);
        uint256 end = (sg + 1) * L.FLOAT_SEGMENT < w.cols ? (sg + 1) * L.FLOAT_SEGMENT : w.cols;
        for (uint256 e = sg * L.FLOAT_SEGMENT + c.i % 8; e < end; e += 8) {
            acc = acc.add(word(c, x + e).mul(valueAt(w, e)));
        }
    }

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
        uint256 idx = r.segsAt * hd + (r.h * hd + c.i % hd) * r.segs + r.segs - 1;
        uint32 w = word(c, region(c, L.WEIGHTED, 0, c.r.layer) + idx);
        idx = r.segsAt + r.h * r.segs + r.segs - 1;
        return w.div(word(c, region(c, L.SUMS, 0, c.r.layer) + idx));
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
}
