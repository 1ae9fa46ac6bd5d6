// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";
import {SwornPhilox} from "./SwornPhilox.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornStepBase} from "./SwornStepBase.sol";

/// @title SwornSampleSteps
/// @notice The one-step executor's sampled steps (docs/dispute.md §5.6), canonical-arithmetic
/// §4 steps 3–8 as `sworn_engine::trace::sample` lays them out: the temperature's division, the
/// merge sort of the candidates in the total order (each level's word `(id, a)` found from the
/// word before it and the level below, so that no word needs a search), the weights, their
/// running sum, top-p's and min-p's running cuts, and the draw (Philox4x32-10). Called by
/// `SwornExecutor` with a checked witness.
contract SwornSampleSteps is SwornStepBase {
    using SwornF32 for uint32;

    /// @notice The word of `c.element`, which must lie in a sampled step's region.
    function step(Ctx memory c) external pure returns (uint32) {
        uint256 k = c.r.kind;
        if (k == L.SCALED) return scaled(c);
        if (k == L.MERGE) return merge(c);
        if (k == L.WEIGHTS) return weights(c);
        if (k == L.CUMSUM) return cumsum(c);
        if (k == L.TOP_P) return topP(c);
        if (k == L.MIN_P) return minP(c);
        if (k == L.DRAW) return draw(c);
        if (k == L.SAMPLED) return sampled(c);
        revert("executor: not a sampled step");
    }

    /// Where output step `n`'s part of region (`kind`, `sub`) starts.
    function stepAt(Ctx memory c, uint256 kind, uint256 sub, uint256 n) private pure returns (uint256) {
        uint256 start = region(c, kind, sub, L.NONE);
        if (kind == L.SCALED) return start + n * c.s.vocab;
        if (kind == L.MERGE) return start + n * c.s.vocab * 2;
        if (kind == L.SAMPLED) return start + n;
        return start + n * c.s.candidates;
    }

    /// `l / T`: the logit (after any penalty) divided by the temperature.
    function scaled(Ctx memory c) private pure returns (uint32) {
        uint256 logits = c.s.penalty ? region(c, L.PENALIZED, 0, L.NONE) : region(c, L.MAT_OUT, L.M_HEAD, L.NONE);
        return word(c, logits + c.i).div(c.x.temperature);
    }

    /// Whether candidate `x` comes before `y`: scaled logit descending, then id ascending.
    function before(Ctx memory c, uint256 scaledAt, uint32 x, uint32 y) private pure returns (bool) {
        require(x < c.s.vocab && y < c.s.vocab, "executor: a candidate past the vocabulary");
        return SwornMath.before(word(c, scaledAt + x), x, word(c, scaledAt + y), y);
    }

    /// The id at `j` of merge level `level` of step `n` (level 0: the ids in order).
    function idAt(Ctx memory c, uint256 level, uint256 n, uint256 j) private pure returns (uint32) {
        return level == 0 ? uint32(j) : word(c, stepAt(c, L.MERGE, level, n) + 2 * j);
    }

    /// Where a merge output takes its inputs from: step `n`, output `k`, `q` its index in its
    /// run, the run's halves in the level below from `a0` (`alen` ids) and `b0` (`blen` ids).
    struct MergeAt {
        uint256 n;
        uint256 k;
        uint256 q;
        uint256 a0;
        uint256 alen;
        uint256 b0;
        uint256 blen;
    }

    function mergeAt(Ctx memory c) private pure returns (MergeAt memory m) {
        uint256 v = c.s.vocab;
        (m.n, m.k) = (c.i / (2 * v), (c.i / 2) % v);
        uint256 h = uint256(1) << (c.r.sub - 1);
        m.a0 = m.k / (2 * h) * (2 * h);
        m.b0 = m.a0 + h < v ? m.a0 + h : v;
        uint256 bEnd = m.a0 + 2 * h < v ? m.a0 + 2 * h : v;
        (m.q, m.alen, m.blen) = (m.k - m.a0, m.b0 - m.a0, bEnd - m.b0);
    }

    /// Output `k` of merge level `c.r.sub`: runs of `2h` candidates from two runs of `h` of the
    /// level below; `a`, from the word before (0 at a run's start), is how many the first half
    /// gave so far, so the heads of the halves are at `a` and `q - a`.
    function merge(Ctx memory c) private pure returns (uint32) {
        MergeAt memory m = mergeAt(c);
        uint256 below = c.r.sub - 1;
        uint256 a = m.q == 0 ? 0 : word(c, stepAt(c, L.MERGE, c.r.sub, m.n) + 2 * m.k - 1);
        require(a <= m.q && a <= m.alen && m.q - a <= m.blen, "executor: a merge count out of range");
        uint256 b = m.q - a;
        bool takeA = b >= m.blen;
        uint32 id;
        if (takeA) {
            id = idAt(c, below, m.n, m.a0 + a);
        } else {
            id = idAt(c, below, m.n, m.b0 + b);
            if (a < m.alen) {
                uint32 x = idAt(c, below, m.n, m.a0 + a);
                takeA = before(c, stepAt(c, L.SCALED, 0, m.n), x, id);
                if (takeA) id = x;
            }
        }
        return c.i % 2 == 0 ? id : uint32(takeA ? a + 1 : a);
    }

    /// Sorted candidate `j` of step `n`.
    function sortedId(Ctx memory c, uint256 n, uint256 j) private pure returns (uint32 id) {
        id = idAt(c, L.mergeLevels(c.s.vocab), n, j);
        require(id < c.s.vocab, "executor: a candidate past the vocabulary");
    }

    /// `w_j = exp(l_j - l_0)` over the sorted candidates.
    function weights(Ctx memory c) private pure returns (uint32) {
        (uint256 n, uint256 j) = (c.i / c.s.candidates, c.i % c.s.candidates);
        uint256 sc = stepAt(c, L.SCALED, 0, n);
        uint32 top = word(c, sc + sortedId(c, n, 0));
        return SwornMath.exp(word(c, sc + sortedId(c, n, j)).sub(top));
    }

    /// The running sum of the weights, from +0.
    function cumsum(Ctx memory c) private pure returns (uint32) {
        (uint256 n, uint256 j) = (c.i / c.s.candidates, c.i % c.s.candidates);
        uint32 prev = j == 0 ? 0 : word(c, stepAt(c, L.CUMSUM, 0, n) + j - 1);
        return prev.add(word(c, stepAt(c, L.WEIGHTS, 0, n) + j));
    }

    /// top-p's running cut: once the running sum reaches `P * W`, the count kept.
    function topP(Ctx memory c) private pure returns (uint32) {
        uint256 kk = c.s.candidates;
        (uint256 n, uint256 j) = (c.i / kk, c.i % kk);
        uint32 prev = j == 0 ? 0 : word(c, stepAt(c, L.TOP_P, 0, n) + j - 1);
        if (prev != 0) return prev;
        uint256 cum = stepAt(c, L.CUMSUM, 0, n);
        uint32 target = c.x.topP.mul(word(c, cum + kk - 1));
        return SwornMath.ge(word(c, cum + j), target) ? uint32(j + 1) : 0;
    }

    /// The count top-p keeps (all candidates without top-p).
    function topPKeep(Ctx memory c, uint256 n) private pure returns (uint256) {
        uint256 kk = c.s.candidates;
        if (!c.s.topP) return kk;
        uint32 last = word(c, stepAt(c, L.TOP_P, 0, n) + kk - 1);
        return last == 0 ? kk : last;
    }

    /// min-p's running count of leading kept candidates with `w_j >= M`.
    function minP(Ctx memory c) private pure returns (uint32) {
        uint256 kk = c.s.candidates;
        (uint256 n, uint256 j) = (c.i / kk, c.i % kk);
        uint32 prev = j == 0 ? 0 : word(c, stepAt(c, L.MIN_P, 0, n) + j - 1);
        if (prev == j && j < topPKeep(c, n) && SwornMath.ge(word(c, stepAt(c, L.WEIGHTS, 0, n) + j), c.x.minP)) {
            return uint32(j + 1);
        }
        return prev;
    }

    /// The count kept for the draw: min-p's (at least 1), else top-p's, else all.
    function keepOf(Ctx memory c, uint256 n) private pure returns (uint256 keep) {
        if (c.s.minP) {
            keep = word(c, stepAt(c, L.MIN_P, 0, n) + c.s.candidates - 1);
            if (keep == 0) keep = 1;
        } else {
            keep = topPKeep(c, n);
        }
        require(keep >= 1 && keep <= c.s.candidates, "executor: a kept count out of range");
    }

    /// The draw's running choice: once a kept running sum passes `u * W`, that index plus one.
    function draw(Ctx memory c) private pure returns (uint32) {
        uint256 kk = c.s.candidates;
        (uint256 n, uint256 j) = (c.i / kk, c.i % kk);
        uint32 prev = j == 0 ? 0 : word(c, stepAt(c, L.DRAW, 0, n) + j - 1);
        if (prev != 0) return prev;
        uint256 keep = keepOf(c, n);
        uint256 cum = stepAt(c, L.CUMSUM, 0, n);
        uint32 target = SwornPhilox.uniform(c.x.seed, uint64(n)).mul(word(c, cum + keep - 1));
        return j < keep && SwornMath.gt(word(c, cum + j), target) ? uint32(j + 1) : 0;
    }

    /// The sampled token: the drawn candidate, or the last kept one when none was drawn.
    function sampled(Ctx memory c) private pure returns (uint32) {
        uint256 n = c.i;
        uint256 keep = keepOf(c, n);
        uint32 pick = word(c, stepAt(c, L.DRAW, 0, n) + c.s.candidates - 1);
        uint256 index = pick == 0 ? keep - 1 : pick - 1;
        require(index < c.s.candidates, "executor: a drawn index out of range");
        return sortedId(c, n, index);
    }
}
