// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornF32
/// @notice IEEE 754 binary32 arithmetic in integer code, bit for bit as the Rust engine computes
/// it on every platform (docs/canonical-arithmetic.md: round to nearest, ties to even, with
/// subnormals, no fused multiply-add): addition, subtraction, multiplication, division and
/// square root, and the binary16 and bfloat16 conversions the engine uses. The one-step
/// executors of wrong-result disputes (issue 29) are built on it, so that the chain re-executes
/// an operation exactly as any honest player computed it.
///
/// Values are their bit patterns (`uint32`). NaN bit patterns are not portable (x86 produces a
/// negative quiet NaN, ARM a positive one, WebAssembly leaves sign and payload unspecified), so
/// every NaN result here is the canonical quiet NaN `0x7FC00000` (binary16: `0x7E00`), and
/// players compare results after mapping each NaN to it ([`canonical`]).
///
/// Every operation first computes the exact result as `sig * 2**exp` with an integer `sig`
/// (exactly, or, where a division or square root is inexact, with a sticky low bit below the
/// rounding position), then rounds it once ([`round`]). Checked against the Rust side on shared
/// vectors (`test/SwornF32.t.sol`, on the files `sworn_engine::float_vectors` writes).
// Every integer cast below converts a bit count, an 8-bit exponent or a shift below 2**9, or a
// value already checked to fit: none truncates. The shifts of 1 are powers of two by design.
// forge-lint: disable-start(unsafe-typecast,incorrect-shift)
library SwornF32 {
    uint32 internal constant NAN = 0x7FC00000;
    uint32 internal constant INF = 0x7F800000;
    uint32 internal constant SIGN = 0x80000000;
    uint16 internal constant NAN16 = 0x7E00;

    /// @notice `x` with any NaN replaced by the canonical one.
    function canonical(uint32 x) internal pure returns (uint32) {
        return isNaN(x) ? NAN : x;
    }

    function isNaN(uint32 x) internal pure returns (bool) {
        return (x & 0x7FFFFFFF) > INF;
    }

    function isInf(uint32 x) internal pure returns (bool) {
        return (x & 0x7FFFFFFF) == INF;
    }

    function isZero(uint32 x) internal pure returns (bool) {
        return (x & 0x7FFFFFFF) == 0;
    }

    /// @dev A finite value as `(-1)**sign * sig * 2**exp`.
    function decode(uint32 x) private pure returns (uint256 sign, uint256 sig, int256 exp) {
        sign = x >> 31;
        uint256 e = (x >> 23) & 0xFF;
        sig = x & 0x7FFFFF;
        if (e == 0) {
            exp = -149;
        } else {
            sig |= 1 << 23;
            exp = int256(e) - 150;
        }
    }

    /// @notice Rounds `(-1)**sign * sig * 2**exp` (any `sig`, any `exp`) to the nearest value of
    /// a binary format with `mbits` stored significand bits, `ebits` exponent bits and the usual
    /// bias, ties to even; overflow goes to infinity, underflow through the subnormals to zero.
    /// `sig`'s lowest bit may be a sticky bit standing for a nonzero remainder below it, provided
    /// it lies below the rounding position.
    function round(uint256 sign, int256 exp, uint256 sig, uint256 mbits, uint256 ebits)
        internal
        pure
        returns (uint256)
    {
        uint256 signBit = sign << (mbits + ebits);
        if (sig == 0) return signBit;
        int256 bias = int256((1 << (ebits - 1)) - 1);
        int256 emax = int256((1 << ebits) - 1);
        uint256 len = bitLength(sig);
        // The biased exponent the result has if it is normal: the leading bit of `sig` is worth
        // 2**(exp + len - 1).
        int256 e = exp + int256(len) - 1 + bias;
        // Where the result's last significand bit sits, as a power of two: normal results keep
        // `mbits + 1` bits; subnormal ones are multiples of the smallest subnormal.
        int256 lsb = e >= 1 ? exp + int256(len) - 1 - int256(mbits) : 1 - bias - int256(mbits);
        uint256 m;
        if (lsb <= exp) {
            m = sig << uint256(exp - lsb);
        } else {
            uint256 shift = uint256(lsb - exp);
            if (shift > len + 1) {
                m = 0;
                // Below half of the smallest step: rounds to zero (a tie needs shift == len).
            } else {
                m = sig >> shift;
                uint256 rem = sig & ((1 << shift) - 1);
                uint256 half = 1 << (shift - 1);
                if (rem > half || (rem == half && (m & 1) == 1)) m += 1;
            }
        }
        // `m` is now the significand with its leading bit at position mbits (normal), or less
        // (subnormal); rounding up may carry into the next binade, which the encoding absorbs:
        // a subnormal's carry gives the smallest normal, a normal's doubles `m` to 2**(mbits+1).
        if (e < 1) {
            // Subnormal (or rounded up to the smallest normal, whose pattern is the same sum).
            return signBit | m;
        }
        if (m >> (mbits + 1) != 0) {
            m >>= 1;
            e += 1;
        }
        if (e >= emax) return signBit | (uint256(emax) << mbits);
        return signBit | (uint256(e) << mbits) | (m & ((1 << mbits) - 1));
    }

    function round32(uint256 sign, int256 exp, uint256 sig) private pure returns (uint32) {
        return uint32(round(sign, exp, sig, 23, 8));
    }

    /// @notice `a + b`.
    function add(uint32 a, uint32 b) internal pure returns (uint32) {
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
        // Align on the smaller exponent; an operand more than 60 binades below the other only
        // decides which side of the larger the sum falls, so it becomes one unit far below.
        int256 e;
        if (ea - eb > 60) {
            ma <<= 62;
            e = ea - 62;
            mb = 1;
        } else {
            ma <<= uint256(ea - eb);
            e = eb;
        }
        if (sa == sb) return round32(sa, e, ma + mb);
        if (ma == mb) return 0; // x + (-x) is +0 when rounding to nearest
        return ma > mb ? round32(sa, e, ma - mb) : round32(sb, e, mb - ma);
    }

    /// @notice `a - b`.
    function sub(uint32 a, uint32 b) internal pure returns (uint32) {
        return add(a, b ^ SIGN);
    }

    /// @notice `a * b`.
    function mul(uint32 a, uint32 b) internal pure returns (uint32) {
        if (isNaN(a) || isNaN(b)) return NAN;
        uint32 s = (a ^ b) & SIGN;
        if (isInf(a) || isInf(b)) {
            if (isZero(a) || isZero(b)) return NAN;
            return s | INF;
        }
        if (isZero(a) || isZero(b)) return s;
        (, uint256 ma, int256 ea) = decode(a);
        (, uint256 mb, int256 eb) = decode(b);
        return round32(s >> 31, ea + eb, ma * mb);
    }

    /// @notice `a / b`.
    function div(uint32 a, uint32 b) internal pure returns (uint32) {
        if (isNaN(a) || isNaN(b)) return NAN;
        uint32 s = (a ^ b) & SIGN;
        if (isInf(a)) return isInf(b) ? NAN : s | INF;
        if (isInf(b)) return s;
        if (isZero(b)) return isZero(a) ? NAN : s | INF;
        if (isZero(a)) return s;
        (, uint256 ma, int256 ea) = decode(a);
        (, uint256 mb, int256 eb) = decode(b);
        // 2**64 * ma / mb keeps at least 40 bits, far more than the 24 kept, with a sticky bit
        // for the remainder.
        uint256 n = ma << 64;
        uint256 q = n / mb;
        if (n % mb != 0) q |= 1;
        return round32(s >> 31, ea - eb - 64, q);
    }

    /// @notice The square root of `a` (of -0 is -0; of anything else negative, NaN).
    function sqrt(uint32 a) internal pure returns (uint32) {
        if (isNaN(a)) return NAN;
        if (isZero(a)) return a;
        if (a >> 31 == 1) return NAN;
        if (isInf(a)) return a;
        (, uint256 m, int256 e) = decode(a);
        if (e % 2 != 0) {
            m <<= 1;
            e -= 1;
        }
        // sqrt(m * 2**128) = sqrt(m) * 2**64: at least 64 bits, with a sticky bit if inexact.
        uint256 n = m << 128;
        uint256 r = isqrt(n);
        if (r * r != n) r |= 1;
        return round32(0, e / 2 - 64, r);
    }

    /// @notice The binary16 value `h` as binary32 (exact; NaN canonical).
    function fromF16(uint16 h) internal pure returns (uint32) {
        uint256 s = h >> 15;
        uint256 e = (h >> 10) & 0x1F;
        uint256 m = h & 0x3FF;
        if (e == 0x1F) return m == 0 ? uint32(s << 31) | INF : NAN;
        if (e == 0) return round32(s, -24, m);
        return round32(s, int256(e) - 25, m | (1 << 10));
    }

    /// @notice `x` rounded to binary16, ties to even (NaN canonical).
    function toF16(uint32 x) internal pure returns (uint16) {
        if (isNaN(x)) return NAN16;
        uint256 s = x >> 31;
        if (isInf(x)) return uint16((s << 15) | 0x7C00);
        (, uint256 m, int256 e) = decode(x);
        return uint16(round(s, e, m, 10, 5));
    }

    /// @notice The bfloat16 value `h` as binary32 (exact: its top half; NaN canonical).
    function fromBF16(uint16 h) internal pure returns (uint32) {
        return canonical(uint32(h) << 16);
    }

    /// @dev Bits in `x` (0 for 0), by binary search.
    function bitLength(uint256 x) private pure returns (uint256 n) {
        for (uint256 s = 128; s > 0; s >>= 1) {
            if (x >> s != 0) {
                x >>= s;
                n += s;
            }
        }
        if (x != 0) n += 1;
    }

    /// @dev floor(sqrt(n)), by Newton's iteration from above.
    function isqrt(uint256 n) private pure returns (uint256 x) {
        if (n == 0) return 0;
        x = 1 << ((bitLength(n) + 1) / 2);
        uint256 y = (x + n / x) >> 1;
        while (y < x) {
            x = y;
            y = (x + n / x) >> 1;
        }
    }
}
// forge-lint: disable-end(unsafe-typecast,incorrect-shift)
