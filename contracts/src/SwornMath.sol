// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";

/// @title SwornMath
/// @notice The canonical functions of docs/canonical-arithmetic.md on binary32 bit patterns,
/// operation for operation as the Rust engine writes them (each `+ - * / sqrt` rounded on its
/// own through [`SwornF32`]): `exp` (§2.1), SiLU (§2.2), tanh (§2.4), GELU (§2.5), the
/// fixed-order dot product (§1.3), RMSNorm (§3.2), RoPE's rotation (§3.4) and one attention head
/// (§3.5). NaN results are canonical (`SwornF32.NAN`). Checked against the Rust side on shared
/// vectors (`test/SwornMath.t.sol`).
library SwornMath {
    using SwornF32 for uint32;

    uint32 internal constant ONE = 0x3F800000;
    uint32 internal constant TWO = 0x40000000;
    uint32 internal constant HALF = 0x3F000000;
    /// `exp`'s clamp: -87 and 88.
    uint32 internal constant EXP_MIN = 0xC2AE0000;
    uint32 internal constant EXP_MAX = 0x42B00000;
    /// log2(e), and ln 2 split so that `k * LN2_HI` is exact for |k| <= 128.
    uint32 internal constant LOG2E = 0x3FB8AA3B;
    uint32 internal constant LN2_HI = 0x3F317200;
    uint32 internal constant LN2_LO = 0x35BFBE8E;
    /// 1/n! for n = 2..7 as f32 (1/0! and 1/1! are ONE).
    uint32 internal constant C2 = 0x3F000000;
    uint32 internal constant C3 = 0x3E2AAAAB;
    uint32 internal constant C4 = 0x3D2AAAAB;
    uint32 internal constant C5 = 0x3C088889;
    uint32 internal constant C6 = 0x3AB60B61;
    uint32 internal constant C7 = 0x39500D01;
    /// GELU's sqrt(2 / pi) and cubic coefficient, as ggml writes them.
    uint32 internal constant SQRT_2_OVER_PI = 0x3F4C422A;
    uint32 internal constant GELU_COEF_A = 0x3D372713;

    /// @notice Whether `a < b` (neither NaN; -0 == +0).
    function lt(uint32 a, uint32 b) internal pure returns (bool) {
        return ordered(a) < ordered(b);
    }

    /// @notice Whether `a >= b` (IEEE: false when either is NaN; -0 == +0).
    function ge(uint32 a, uint32 b) internal pure returns (bool) {
        return !isNaN(a) && !isNaN(b) && !lt(a, b);
    }

    /// @notice Whether `a > b` (IEEE: false when either is NaN).
    function gt(uint32 a, uint32 b) internal pure returns (bool) {
        return !isNaN(a) && !isNaN(b) && lt(b, a);
    }

    /// @notice Whether candidate `ida` with scaled logit `a` comes before `idb` with `b` in the
    /// sampler's total order (canonical-arithmetic §4.4): `a` above `b` by IEEE's totalOrder
    /// (Rust's `f32::total_cmp`: the bits as a sign-magnitude integer, so -NaN < -inf < ... <
    /// -0 < +0 < ... < +inf < +NaN), then the lower id first.
    function before(uint32 a, uint32 ida, uint32 b, uint32 idb) internal pure returns (bool) {
        (uint32 ka, uint32 kb) = (totalKey(a), totalKey(b));
        return ka > kb || (ka == kb && ida < idb);
    }

    /// A float's place in IEEE's totalOrder as an unsigned integer.
    function totalKey(uint32 x) private pure returns (uint32) {
        return x >> 31 == 1 ? ~x : x | 0x80000000;
    }

    function isNaN(uint32 x) private pure returns (bool) {
        return (x & 0x7FFFFFFF) > 0x7F800000;
    }

    /// @dev An integer in the order of the floats (zeros equal).
    function ordered(uint32 x) private pure returns (int256) {
        int256 m = int256(uint256(x & 0x7FFFFFFF));
        return x >> 31 == 1 ? -m : m;
    }

    /// @notice `x` rounded to an integer, ties to even, as a float and as an integer; a zero
    /// keeps `x`'s sign. Infinities and NaN come back as they are, with `k` 0.
    function roundTiesEven(uint32 x) internal pure returns (uint32 r, int256 k) {
        uint256 sign = x >> 31;
        uint256 e = (x >> 23) & 0xFF;
        if (e == 0xFF) return (x, 0);
        if (e >= 150) {
            // Already an integer (|x| >= 2**23): its value, below 2**128.
            int256 v = int256((uint256(x & 0x7FFFFF) | (1 << 23)) << (e - 150));
            return (x, sign == 1 ? -v : v);
        }
        uint256 sig = e == 0 ? x & 0x7FFFFF : (x & 0x7FFFFF) | (1 << 23);
        uint256 shift = e == 0 ? 149 : 150 - e;
        uint256 m = shift > 25 ? 0 : sig >> shift;
        if (shift <= 25) {
            uint256 rem = sig & ((1 << shift) - 1);
            uint256 half = 1 << (shift - 1);
            if (rem > half || (rem == half && (m & 1) == 1)) m += 1;
        }
        r = uint32(SwornF32.round(sign, 0, m, 23, 8));
        k = sign == 1 ? -int256(m) : int256(m);
    }

    /// @notice The canonical `exp` (§2.1): clamp to [-87, 88] (NaN counts as -87), split
    /// `x = k ln 2 + r`, a degree-7 Taylor polynomial in `r` by Horner's rule, times `2**k`.
    function exp(uint32 x) internal pure returns (uint32) {
        if (x.isNaN() || lt(x, EXP_MIN)) x = EXP_MIN;
        if (lt(EXP_MAX, x)) x = EXP_MAX;
        (uint32 k, int256 ki) = roundTiesEven(x.mul(LOG2E));
        uint32 r = x.sub(k.mul(LN2_HI)).sub(k.mul(LN2_LO));
        uint32 p = C7;
        p = p.mul(r).add(C6);
        p = p.mul(r).add(C5);
        p = p.mul(r).add(C4);
        p = p.mul(r).add(C3);
        p = p.mul(r).add(C2);
        p = p.mul(r).add(ONE);
        p = p.mul(r).add(ONE);
        // 2**k for k in [-126, 127], from its bits.
        return p.mul(uint32(uint256(ki + 127) << 23));
    }

    /// @notice SiLU (§2.2): `x / (1 + exp(-x))`.
    function silu(uint32 x) internal pure returns (uint32) {
        return x.div(ONE.add(exp(x ^ SwornF32.SIGN)));
    }

    /// @notice tanh (§2.4): `1 - 2 / (exp(2x) + 1)`.
    function tanh(uint32 x) internal pure returns (uint32) {
        uint32 e = exp(x.add(x));
        return ONE.sub(TWO.div(e.add(ONE)));
    }

    /// @notice GELU, tanh form (§2.5): `(0.5 x) (1 + tanh(s (x (1 + a (x x)))))`.
    function gelu(uint32 x) internal pure returns (uint32) {
        uint32 u = SQRT_2_OVER_PI.mul(x.mul(ONE.add(GELU_COEF_A.mul(x.mul(x)))));
        return HALF.mul(x).mul(ONE.add(tanh(u)));
    }

    /// @notice RMSNorm's scale (§3.2) from the row's sum of squares `ss` (a [`dot8`] of the row
    /// with itself) over `n` elements: `1 / sqrt(ss / n + eps)`.
    function rmsScale(uint32 ss, uint256 n, uint32 eps) internal pure returns (uint32) {
        uint32 nf = uint32(SwornF32.round(0, 0, n, 23, 8));
        return ONE.div(ss.div(nf).add(eps).sqrt());
    }

    /// @notice RMSNorm of a whole row (§3.2): `y_i = (x_i * r) * w_i`.
    function rmsnorm(uint32[] memory x, uint32[] memory w, uint32 eps) internal pure returns (uint32[] memory y) {
        require(x.length == w.length, "rmsnorm: lengths");
        uint32 r = rmsScale(dot8(x, x), x.length, eps);
        y = new uint32[](x.length);
        for (uint256 i = 0; i < x.length; i++) {
            y[i] = x[i].mul(r).mul(w[i]);
        }
    }

    /// @notice RoPE's rotation of one head (§3.4) with its position's table row `(c, s)`:
    /// pairs `(x_2i, x_2i+1)` (`neox` false: Llama's adjacent pairs) or `(x_i, x_i+half)`
    /// (Gemma's and Qwen's), each to `(x0 c - x1 s, x0 s + x1 c)`, products rounded, then the sum.
    function rope(uint32[] memory x, uint32[] memory c, uint32[] memory s, bool neox)
        internal
        pure
        returns (uint32[] memory y)
    {
        uint256 half = c.length;
        require(x.length == 2 * half && s.length == half, "rope: lengths");
        y = new uint32[](x.length);
        for (uint256 i = 0; i < half; i++) {
            (uint256 a, uint256 b) = neox ? (i, i + half) : (2 * i, 2 * i + 1);
            (uint32 x0, uint32 x1) = (x[a], x[b]);
            y[a] = x0.mul(c[i]).sub(x1.mul(s[i]));
            y[b] = x0.mul(s[i]).add(x1.mul(c[i]));
        }
    }

    /// @notice One attention head for one query (§3.5): scores `dot8(q, k_j) * scale`, their
    /// maximum (a left fold with `>` from -inf: a NaN never replaces it), weights
    /// `exp(s_j - max)` summed in order from +0, and each output element's weighted sum of the
    /// values in order of `j`, divided by the sum. `keys` and `values` hold `n` rows of `q`'s
    /// length.
    function attend(uint32[] memory q, uint32[] memory keys, uint32[] memory values, uint256 n, uint32 scale)
        internal
        pure
        returns (uint32[] memory o)
    {
        uint256 hd = q.length;
        require(keys.length == n * hd && values.length == n * hd, "attend: lengths");
        uint32[] memory e = new uint32[](n);
        uint32 m = 0xFF800000;
        uint32[] memory k = new uint32[](hd);
        for (uint256 j = 0; j < n; j++) {
            for (uint256 d = 0; d < hd; d++) {
                k[d] = keys[j * hd + d];
            }
            e[j] = dot8(q, k).mul(scale);
            if (!e[j].isNaN() && lt(m, e[j])) m = e[j];
        }
        uint32 sum = 0;
        for (uint256 j = 0; j < n; j++) {
            e[j] = exp(e[j].sub(m));
            sum = sum.add(e[j]);
        }
        o = new uint32[](hd);
        for (uint256 j = 0; j < n; j++) {
            for (uint256 d = 0; d < hd; d++) {
                o[d] = o[d].add(e[j].mul(values[j * hd + d]));
            }
        }
        for (uint256 d = 0; d < hd; d++) {
            o[d] = o[d].div(sum);
        }
    }

    /// @notice The fixed-order dot product (§1.3): eight accumulators, lane `l` adding
    /// `a[i] * b[i]` for `i = l, l + 8, ...` in order, then `((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))`.
    /// The length is a multiple of 8.
    function dot8(uint32[] memory a, uint32[] memory b) internal pure returns (uint32) {
        require(a.length == b.length && a.length % 8 == 0, "dot8: lengths");
        uint32[8] memory acc;
        for (uint256 i = 0; i < a.length; i++) {
            uint256 l = i % 8;
            acc[l] = acc[l].add(a[i].mul(b[i]));
        }
        return tree8(acc);
    }

    /// @notice §1.3's fixed tree over eight lanes: `((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))`.
    function tree8(uint32[8] memory a) internal pure returns (uint32) {
        return a[0].add(a[1]).add(a[2].add(a[3])).add(a[4].add(a[5]).add(a[6].add(a[7])));
    }
}
