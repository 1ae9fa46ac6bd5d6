// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";

/// @title SwornF64
/// @notice IEEE 754 binary64 arithmetic in integer code, bit for bit as the Rust engine computes
/// the RoPE table (docs/canonical-arithmetic.md §2.3, round to nearest, ties to even, with
/// subnormals, no fused multiply-add): addition, subtraction, multiplication, division, the
/// conversions to and from binary32 and integers, and rounding to an integer, ties to even.
/// Like `SwornF32`, it computes each exact result as `sig * 2**exp` and rounds it once
/// (`SwornF32.round`, which takes the format's widths); every NaN it returns is the canonical
/// quiet NaN `0x7FF8000000000000`, and a NaN's sign or payload never decides a result (the
/// engine's f64 values only reach the trace through a binary32 rounding, whose NaN the trace
/// canonicalizes). Checked against the Rust side on shared vectors (`test/SwornF64.t.sol`).
///
/// The operations mirror `SwornF32`'s at binary64's widths instead of sharing code generic in
/// the widths: binary32 arithmetic is every other step's hot path, and its constant widths keep
/// it cheap (Gemma 3's costliest step is within 10% of the 5M-gas target, docs/dispute.md §4).
// Every integer cast below converts an 11-bit exponent, a shift below 2**11 or a value already
// checked to fit: none truncates. The shifts of 1 are powers of two by design.
// forge-lint: disable-start(unsafe-typecast,incorrect-shift)
library SwornF64 {
    uint64 internal constant NAN = 0x7FF8000000000000;
    uint64 internal constant INF = 0x7FF0000000000000;
    uint64 internal constant SIGN = 0x8000000000000000;
    uint64 internal constant ONE = 0x3FF0000000000000;
    uint64 internal constant TWO = 0x4000000000000000;

    function isNaN(uint64 x) internal pure returns (bool) {
        return (x & ~SIGN) > INF;
    }

    function isInf(uint64 x) internal pure returns (bool) {
        return (x & ~SIGN) == INF;
    }

    function isZero(uint64 x) internal pure returns (bool) {
        return (x & ~SIGN) == 0;
    }

    /// @dev A finite value as `(-1)**sign * sig * 2**exp`.
    function decode(uint64 x) private pure returns (uint256 sign, uint256 sig, int256 exp) {
        sign = x >> 63;
        uint256 e = (x >> 52) & 0x7FF;
        sig = x & 0xFFFFFFFFFFFFF;
        if (e == 0) {
            exp = -1074;
        } else {
            sig |= 1 << 52;
            exp = int256(e) - 1075;
        }
    }

    function round64(uint256 sign, int256 exp, uint256 sig) private pure returns (uint64) {
        return uint64(SwornF32.round(sign, exp, sig, 52, 11));
    }

    /// @notice `-x` (the sign flipped, as the engine's negation does; NaN canonical).
    function neg(uint64 x) internal pure returns (uint64) {
        return isNaN(x) ? NAN : x ^ SIGN;
    }

    /// @notice `a + b`.
    function add(uint64 a, uint64 b) internal pure returns (uint64) {
        if (isNaN(a) || isNaN(b)) return NAN;
        if (isInf(a)) {
            if (isInf(b) && (a ^ b) == SIGN) return NAN;
            return a;
        }
        if (isInf(b)) return b;
        if (isZero(a) && isZero(b)) return a & b; // -0 only when both are -0
        if (isZero(a)) return b;
        if (isZero(b)) return a;
        (uint256 sa, uint256 ma, int256 ea) = decode(a);
        (uint256 sb, uint256 mb, int256 eb) = decode(b);
        if (ea < eb) {
            (sa, ma, ea, sb, mb, eb) = (sb, mb, eb, sa, ma, ea);
        }
        // Align on the smaller exponent; an operand more than 60 binades below the other (so
        // below 2**-7 of its last place) only decides which side of the larger the sum falls,
        // so it becomes one unit far below (a sticky bit under the rounding position).
        int256 e;
        if (ea - eb > 60) {
            ma <<= 62;
            e = ea - 62;
            mb = 1;
        } else {
            ma <<= uint256(ea - eb);
            e = eb;
        }
        if (sa == sb) return round64(sa, e, ma + mb);
        if (ma == mb) return 0; // x + (-x) is +0 when rounding to nearest
        return ma > mb ? round64(sa, e, ma - mb) : round64(sb, e, mb - ma);
    }

    /// @notice `a - b`.
    function sub(uint64 a, uint64 b) internal pure returns (uint64) {
        return add(a, b ^ SIGN);
    }

    /// @notice `a * b`.
    function mul(uint64 a, uint64 b) internal pure returns (uint64) {
        if (isNaN(a) || isNaN(b)) return NAN;
        uint64 s = (a ^ b) & SIGN;
        if (isInf(a) || isInf(b)) {
            if (isZero(a) || isZero(b)) return NAN;
            return s | INF;
        }
        if (isZero(a) || isZero(b)) return s;
        (, uint256 ma, int256 ea) = decode(a);
        (, uint256 mb, int256 eb) = decode(b);
        return round64(s >> 63, ea + eb, ma * mb);
    }

    /// @notice `a / b`.
    function div(uint64 a, uint64 b) internal pure returns (uint64) {
        if (isNaN(a) || isNaN(b)) return NAN;
        uint64 s = (a ^ b) & SIGN;
        if (isInf(a)) return isInf(b) ? NAN : s | INF;
        if (isInf(b)) return s;
        if (isZero(b)) return isZero(a) ? NAN : s | INF;
        if (isZero(a)) return s;
        (, uint256 ma, int256 ea) = decode(a);
        (, uint256 mb, int256 eb) = decode(b);
        // Normalize subnormal significands so that the quotient keeps enough bits: with both
        // at 53 bits, 2**64 * ma / mb has at least 64, far more than the 53 kept, and a sticky
        // bit stands for the remainder.
        (ma, ea) = normalize(ma, ea);
        (mb, eb) = normalize(mb, eb);
        uint256 n = ma << 64;
        uint256 q = n / mb;
        if (n % mb != 0) q |= 1;
        return round64(s >> 63, ea - eb - 64, q);
    }

    /// @dev `sig * 2**exp` with `sig` shifted up to 53 bits (the same value).
    function normalize(uint256 sig, int256 exp) private pure returns (uint256, int256) {
        while (sig >> 52 == 0) {
            sig <<= 1;
            exp -= 1;
        }
        return (sig, exp);
    }

    /// @notice `a < b` (false when either is NaN; -0 equals +0).
    function lt(uint64 a, uint64 b) internal pure returns (bool) {
        if (isNaN(a) || isNaN(b)) return false;
        if (isZero(a) && isZero(b)) return false;
        bool na = a >> 63 == 1;
        bool nb = b >> 63 == 1;
        if (na != nb) return na;
        // Same sign: the magnitudes' bit patterns order as the values do.
        return na ? (a & ~SIGN) > (b & ~SIGN) : a < b;
    }

    /// @notice The binary32 value `x` as binary64 (exact; NaN canonical).
    function fromF32(uint32 x) internal pure returns (uint64) {
        if (SwornF32.isNaN(x)) return NAN;
        uint256 s = x >> 31;
        if (SwornF32.isInf(x)) return uint64(s << 63) | INF;
        uint256 e = (x >> 23) & 0xFF;
        uint256 m = x & 0x7FFFFF;
        if (e == 0) return round64(s, -149, m); // a subnormal (or zero) of binary32
        return round64(s, int256(e) - 150, m | (1 << 23));
    }

    /// @notice `x` rounded to binary32, ties to even (NaN canonical).
    function toF32(uint64 x) internal pure returns (uint32) {
        if (isNaN(x)) return SwornF32.NAN;
        uint256 s = x >> 63;
        if (isInf(x)) return uint32(s << 31) | SwornF32.INF;
        (, uint256 m, int256 e) = decode(x);
        return uint32(SwornF32.round(s, e, m, 23, 8));
    }

    /// @notice The integer `v` as binary64, rounded to nearest, ties to even (Rust's `as f64`).
    function fromInt(int256 v) internal pure returns (uint64) {
        if (v < 0) return round64(1, 0, uint256(-v));
        return round64(0, 0, uint256(v));
    }

    /// @notice `x` rounded to an integer, ties to even (Rust's `round_ties_even`): infinities,
    /// NaN and values of 2**52 and more are integers already; the sign of a zero result is
    /// `x`'s.
    function roundEven(uint64 x) internal pure returns (uint64) {
        if (isNaN(x)) return NAN;
        uint256 e = (x >> 52) & 0x7FF;
        if (e >= 1075) return x; // |x| >= 2**52 (or infinite): an integer already
        (uint256 s, uint256 m, int256 ex) = decode(x);
        uint256 shift = uint256(-ex); // 1 ..= 1074
        uint256 q;
        if (shift <= 54) {
            q = m >> shift;
            uint256 rem = m & ((1 << shift) - 1);
            uint256 half = 1 << (shift - 1);
            if (rem > half || (rem == half && (q & 1) == 1)) q += 1;
        }
        // With `shift` > 54, |x| < 2**-2 rounds to a zero (`q` stays 0), signed as `x`.
        return round64(s, 0, q);
    }

    /// @notice `x` as a signed 64-bit integer, as Rust's `x as i64` converts: toward zero,
    /// saturating at the type's bounds, NaN to 0.
    function toI64(uint64 x) internal pure returns (int256) {
        if (isNaN(x)) return 0;
        int256 maxI = type(int64).max;
        int256 minI = type(int64).min;
        uint256 e = (x >> 52) & 0x7FF;
        bool negative = x >> 63 == 1;
        if (e >= 1023 + 63) return negative ? minI : maxI; // |x| >= 2**63, or infinite
        (, uint256 m, int256 ex) = decode(x);
        uint256 mag = ex >= 0 ? m << uint256(ex) : (ex <= -53 ? 0 : m >> uint256(-ex));
        return negative ? -int256(mag) : int256(mag);
    }

    /// @notice `2**k` for `-1022 <= k <= 1023` (a normal power of two, from its bits).
    function pow2(int256 k) internal pure returns (uint64) {
        require(k >= -1022 && k <= 1023, "SwornF64: 2**k out of range");
        return uint64(uint256(k + 1023) << 52);
    }
}
// forge-lint: disable-end(unsafe-typecast,incorrect-shift)
