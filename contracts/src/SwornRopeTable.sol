// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF64 as F} from "./SwornF64.sol";

/// @title SwornRopeTable
/// @notice The RoPE table's words (docs/canonical-arithmetic.md §3.4) from the spec's f64
/// functions `ln`, `exp` and `sin`/`cos` (§2.3), each operation as the engine's
/// `canon::math` performs it, in the same order, on `SwornF64`. One word is one step of a
/// dispute (docs/dispute.md §5.4): about 140 binary64 operations.
///
/// The reciprocals `1/(2j+1)` and `1/n!` the series use are the engine's own f64 divisions
/// (`n!` an f64 product), kept here as bit patterns; `test/SwornRopeTable.t.sol` recomputes
/// each on `SwornF64`.
// forge-lint: disable-start(unsafe-typecast)
library SwornRopeTable {
    uint64 internal constant LN2 = 0x3FE62E42FEFA39EF;
    uint64 internal constant SQRT2 = 0x3FF6A09E667F3BCD;
    uint64 internal constant LN2_HI = 0x3FE62E42FEE00000;
    uint64 internal constant LN2_LO = 0x3DEA39EF35793C76;
    uint64 internal constant TWO_OVER_PI = 0x3FE45F306DC9C883;
    uint64 internal constant PIO2_1 = 0x3FF921FB54400000;
    uint64 internal constant PIO2_2 = 0x3DD0B4611A600000;
    uint64 internal constant PIO2_3 = 0x3BA3198A2E037073;
    uint64 internal constant MIN_POSITIVE = 0x0010000000000000;
    uint64 internal constant TWO_54 = 0x4350000000000000;
    uint64 internal constant C700 = 0x4085E00000000000;

    /// `1/(2j+1)` for j = 0..15, four to a word, the first in the high bits.
    uint256 private constant INV_ODD_0 = 0x3FF0000000000000_3FD5555555555555_3FC999999999999A_3FC2492492492492;
    uint256 private constant INV_ODD_1 = 0x3FBC71C71C71C71C_3FB745D1745D1746_3FB3B13B13B13B14_3FB1111111111111;
    uint256 private constant INV_ODD_2 = 0x3FAE1E1E1E1E1E1E_3FAAF286BCA1AF28_3FA8618618618618_3FA642C8590B2164;
    uint256 private constant INV_ODD_3 = 0x3FA47AE147AE147B_3FA2F684BDA12F68_3FA1A7B9611A7B96_3FA0842108421084;

    /// `1/n!` for n = 0..23, four to a word, the first in the high bits.
    uint256 private constant INV_FACT_0 = 0x3FF0000000000000_3FF0000000000000_3FE0000000000000_3FC5555555555555;
    uint256 private constant INV_FACT_1 = 0x3FA5555555555555_3F81111111111111_3F56C16C16C16C17_3F2A01A01A01A01A;
    uint256 private constant INV_FACT_2 = 0x3EFA01A01A01A01A_3EC71DE3A556C734_3E927E4FB7789F5C_3E5AE64567F544E4;
    uint256 private constant INV_FACT_3 = 0x3E21EED8EFF8D898_3DE6124613A86D09_3DA93974A8C07C9D_3D6AE7F3E733B81F;
    uint256 private constant INV_FACT_4 = 0x3D2AE7F3E733B81F_3CE952C77030AD4A_3CA6827863B97D97_3C62F49B46814157;
    uint256 private constant INV_FACT_5 = 0x3C1E542BA4020225_3BD71B8EF6DCF572_3B90CE396DB7F853_3B4761B413163819;

    /// @dev Entry `i % 4` of a word of four binary64 values.
    function quarter(uint256 w, uint256 i) private pure returns (uint64) {
        return uint64(w >> (64 * (3 - (i % 4))));
    }

    function invOdd(uint256 j) internal pure returns (uint64) {
        uint256 q = j / 4;
        return quarter(q == 0 ? INV_ODD_0 : q == 1 ? INV_ODD_1 : q == 2 ? INV_ODD_2 : INV_ODD_3, j);
    }

    function invFact(uint256 n) internal pure returns (uint64) {
        uint256 q = n / 4;
        uint256 w = q == 0
            ? INV_FACT_0
            : q == 1 ? INV_FACT_1 : q == 2 ? INV_FACT_2 : q == 3 ? INV_FACT_3 : q == 4 ? INV_FACT_4 : INV_FACT_5;
        return quarter(w, n);
    }

    /// @notice The spec's `ln(x)` for finite `x > 0`; NaN for anything else.
    function ln(uint64 x) internal pure returns (uint64) {
        if (!(F.lt(0, x) && !F.isInf(x))) return F.NAN;
        int256 bias = 0;
        if (F.lt(x, MIN_POSITIVE)) {
            x = F.mul(x, TWO_54); // exact: a power of two
            bias = -54;
        }
        int256 e = int256(uint256((x >> 52) & 0x7FF)) - 1023 + bias;
        uint64 m = (x & 0xFFFFFFFFFFFFF) | F.ONE;
        if (F.lt(SQRT2, m)) {
            m = F.div(m, F.TWO);
            e += 1;
        }
        uint64 s = F.div(F.sub(m, F.ONE), F.add(m, F.ONE));
        uint64 s2 = F.mul(s, s);
        uint64 t = invOdd(15);
        for (uint256 j = 15; j > 0; j--) {
            t = F.add(F.mul(t, s2), invOdd(j - 1));
        }
        return F.add(F.mul(F.fromInt(e), LN2), F.mul(F.mul(F.TWO, s), t));
    }

    /// @notice The spec's `exp(x)`, `x` first clamped to [-700, 700]; NaN for NaN.
    function exp(uint64 x) internal pure returns (uint64) {
        if (F.isNaN(x)) return F.NAN;
        if (F.lt(x, F.neg(C700))) x = F.neg(C700);
        if (F.lt(C700, x)) x = C700;
        uint64 k = F.roundEven(F.div(x, LN2));
        uint64 r = F.sub(F.sub(x, F.mul(k, LN2_HI)), F.mul(k, LN2_LO));
        uint64 p = invFact(20);
        for (uint256 n = 20; n > 0; n--) {
            p = F.add(F.mul(p, r), invFact(n - 1));
        }
        return F.mul(p, F.pow2(F.toI64(k)));
    }

    /// @notice The spec's `(sin x, cos x)`: reduction by pi/2 in three parts, the two series,
    /// and the quadrant from `k`'s Euclidean remainder by 4 (`k` as Rust converts it to i64).
    function sinCos(uint64 x) internal pure returns (uint64 s, uint64 c) {
        uint64 k = F.roundEven(F.mul(x, TWO_OVER_PI));
        uint64 r = F.sub(F.sub(F.sub(x, F.mul(k, PIO2_1)), F.mul(k, PIO2_2)), F.mul(k, PIO2_3));
        uint64 r2 = F.mul(r, r);
        uint64 sn = F.mul(r, series(r2, 1));
        uint64 cs = series(r2, 0);
        int256 q = F.toI64(k) % 4;
        if (q < 0) q += 4;
        if (q == 0) return (sn, cs);
        if (q == 1) return (cs, F.neg(sn));
        if (q == 2) return (F.neg(sn), F.neg(cs));
        return (F.neg(cs), sn);
    }

    /// @dev `sum_{j=0..11} (-1)**j r2**j / (2j+odd)!`, Horner from j = 11 down.
    function series(uint64 r2, uint256 odd) private pure returns (uint64 p) {
        p = coeff(11, odd);
        for (uint256 j = 11; j > 0; j--) {
            p = F.add(F.mul(p, r2), coeff(j - 1, odd));
        }
    }

    function coeff(uint256 j, uint256 odd) private pure returns (uint64) {
        uint64 c = invFact(2 * j + odd);
        return j % 2 == 0 ? c : F.neg(c);
    }

    /// @notice Pair `i`'s frequency: `exp(-(2i / dim) * ln(base))`, divided by `factor` (the
    /// file's `rope_freqs` entry, binary32 bits) when `scaled`.
    function invFreq(uint32 base, uint256 dim, uint256 i, bool scaled, uint32 factor) internal pure returns (uint64 f) {
        uint64 q = F.div(F.fromInt(int256(2 * i)), F.fromInt(int256(dim)));
        f = exp(F.mul(F.neg(q), ln(F.fromF32(base))));
        if (scaled) f = F.div(f, F.fromF32(factor));
    }

    /// @notice The table's `(cos, sin)` of position `pos` for a pair of frequency `f`, each
    /// rounded to binary32 (NaN canonical).
    function word(uint64 f, uint256 pos) internal pure returns (uint32 cos, uint32 sin) {
        (uint64 s, uint64 c) = sinCos(F.mul(F.fromInt(int256(pos)), f));
        return (F.toF32(c), F.toF32(s));
    }
}
// forge-lint: disable-end(unsafe-typecast)
