// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";

/// @title SwornProducts
/// @notice Matrix-row products (docs/canonical-arithmetic.md §1.2-§1.4) for every tensor type
/// sworn loads, from the file's own bytes, bit for bit as the engine's reference
/// (`sworn_engine::quant::Piece::term`, `kernels::scalar::dot_row`).
///
/// A quantized row is read as 32-element *pieces*, one per activation block (§1.4): Q4_0, Q4_1,
/// Q5_0, Q5_1 and Q8_0 blocks are one piece each, a K-quant super-block (Q2_K … Q6_K) is eight.
/// An output is the left fold of its pieces' terms from +0.0; `fold` runs any stretch of it
/// from a given accumulator, so that a dispute can cut a long row into bounded segments whose
/// running values are committed (docs/dispute.md). F32, F16 and BF16 rows use §1.3's dot
/// product: eight lanes over the elements, then a fixed tree; `lanes` runs a stretch of it.
library SwornProducts {
    using SwornF32 for uint32;

    /// ggml's type codes.
    uint256 internal constant F32 = 0;
    uint256 internal constant F16 = 1;
    uint256 internal constant Q4_0 = 2;
    uint256 internal constant Q4_1 = 3;
    uint256 internal constant Q5_0 = 6;
    uint256 internal constant Q5_1 = 7;
    uint256 internal constant Q8_0 = 8;
    uint256 internal constant Q2_K = 10;
    uint256 internal constant Q3_K = 11;
    uint256 internal constant Q4_K = 12;
    uint256 internal constant Q5_K = 13;
    uint256 internal constant Q6_K = 14;
    uint256 internal constant BF16 = 30;

    /// A piece's forms (§1.4).
    uint256 internal constant SCALED = 0;
    uint256 internal constant AFFINE = 1;
    uint256 internal constant SUB_SCALED = 2;
    uint256 internal constant SUB_AFFINE = 3;

    /// 32 consecutive weights of a row: integer weights (byte `j` of `q` is `q_j` as a signed
    /// byte) and the exact scales of the form. `mw` is the affine offset, or sub-affine's
    /// `dmin`; `s0, s1` and `m0, m1` are the halves' sub-scales and sub-mins.
    struct Piece {
        uint256 form;
        uint32 dw;
        uint32 mw;
        int256 s0;
        int256 s1;
        int256 m0;
        int256 m1;
        bytes32 q;
    }

    /// One activation block (§1.1): its 32 integers (byte `j` of `q`, signed), `d` and `s`.
    struct Act {
        bytes32 q;
        uint32 d;
        uint32 s;
    }

    /// @notice Bytes per block of a quantized type, and how many pieces a block holds.
    function shape(uint256 kind) internal pure returns (uint256 blockBytes, uint256 perBlock) {
        if (kind == Q4_0) return (18, 1);
        if (kind == Q4_1) return (20, 1);
        if (kind == Q5_0) return (22, 1);
        if (kind == Q5_1) return (24, 1);
        if (kind == Q8_0) return (34, 1);
        if (kind == Q2_K) return (84, 8);
        if (kind == Q3_K) return (110, 8);
        if (kind == Q4_K) return (144, 8);
        if (kind == Q5_K) return (176, 8);
        if (kind == Q6_K) return (210, 8);
        revert("products: not a quantized type");
    }

    /// @notice Piece `k` of the row `row` (whole blocks of type `kind`, as the file stores them).
    function piece(uint256 kind, bytes memory row, uint256 k) internal pure returns (Piece memory p) {
        (uint256 bb, uint256 per) = shape(kind);
        uint256 o = (k / per) * bb;
        require(o + bb <= row.length, "products: piece outside the row");
        k %= per;
        if (kind == Q4_0 || kind == Q4_1 || kind == Q5_0 || kind == Q5_1 || kind == Q8_0) {
            legacy(kind, row, o, p);
        } else if (kind == Q2_K) {
            q2k(row, o, k, p);
        } else if (kind == Q3_K) {
            q3k(row, o, k, p);
        } else if (kind == Q6_K) {
            q6k(row, o, k, p);
        } else {
            qk45(kind, row, o, k, p);
        }
    }

    /// @notice The piece's term for activation block `x` (§1.2, §1.4): exact integer sums, then
    /// the fixed float operations of its form.
    function term(Piece memory p, Act memory x) internal pure returns (uint32) {
        (int256 dot0, int256 dot1, int256 sum0, int256 sum1) = sums(p.q, x.q);
        uint32 dd = p.dw.mul(x.d);
        if (p.form == SCALED) return dd.mul(fromInt(dot0 + dot1));
        if (p.form == AFFINE) return dd.mul(fromInt(dot0 + dot1)).add(p.mw.mul(x.s));
        int256 isum = p.s0 * dot0 + p.s1 * dot1;
        if (p.form == SUB_SCALED) return dd.mul(fromInt(isum));
        int256 msum = p.m0 * sum0 + p.m1 * sum1;
        return dd.mul(fromInt(isum)).sub(p.mw.mul(x.d).mul(fromInt(msum)));
    }

    /// @notice Weight `j` of a piece, as the engine dequantizes it (`Piece::value`): `dw * q`,
    /// `dw * q + mw`, `(dw * s_h) * q`, or `(dw * s_h) * q - dmin * m_h` with `h = j / 16`.
    function value(Piece memory p, uint256 j) internal pure returns (uint32) {
        uint32 q = fromInt(signedByte(p.q, j));
        if (p.form == SCALED) return p.dw.mul(q);
        if (p.form == AFFINE) return p.dw.mul(q).add(p.mw);
        uint32 s = fromInt(j < 16 ? p.s0 : p.s1);
        uint32 v = p.dw.mul(s).mul(q);
        if (p.form == SUB_SCALED) return v;
        return v.sub(p.mw.mul(fromInt(j < 16 ? p.m0 : p.m1)));
    }

    /// @notice The fold of pieces `from .. to` (exclusive) of the row from accumulator `acc`:
    /// `acc = acc + term` for each in order. `x[i]` is the activation block of piece `from + i`.
    /// From +0.0 over the whole row, this is the output (§1.2).
    function fold(uint256 kind, bytes memory row, uint256 from, uint256 to, Act[] memory x, uint32 acc)
        internal
        pure
        returns (uint32)
    {
        require(from <= to && x.length == to - from, "products: fold range");
        for (uint256 k = from; k < to; k++) {
            acc = acc.add(term(piece(kind, row, k), x[k - from]));
        }
        // Every sum made a NaN canonical; an empty stretch hands back its input, as canonical.
        return acc.canonical();
    }

    /// @notice Element `i` of an F32, F16 or BF16 row, widened exactly to binary32.
    function element(uint256 kind, bytes memory row, uint256 i) internal pure returns (uint32) {
        if (kind == F32) {
            require(4 * i + 4 <= row.length, "products: element outside the row");
            return uint32(le(row, 4 * i, 4));
        }
        require(2 * i + 2 <= row.length, "products: element outside the row");
        uint16 h = uint16(le(row, 2 * i, 2));
        if (kind == F16) return SwornF32.fromF16(h);
        require(kind == BF16, "products: not a float type");
        return SwornF32.fromBF16(h);
    }

    /// @notice §1.3's lanes over elements `from .. from + x.length` of a float row (from a
    /// multiple of 8, whole chunks of 8): `acc[l] = acc[l] + w_i * x_i` for `l = i mod 8`.
    /// From zero lanes over the whole row, `SwornMath.tree8` of the result is the output.
    function lanes(uint256 kind, bytes memory row, uint256 from, uint32[] memory x, uint32[8] memory acc)
        internal
        pure
        returns (uint32[8] memory)
    {
        require(from % 8 == 0 && x.length % 8 == 0, "products: lanes take whole chunks");
        for (uint256 i = 0; i < x.length; i++) {
            uint256 l = i % 8;
            acc[l] = acc[l].add(element(kind, row, from + i).mul(x[i]));
        }
        return acc;
    }

    // ---------------------------------------------------------------------------------------
    // Readers (ggml's block layouts; `engine/src/quant/legacy.rs`, `kquants.rs`)
    // ---------------------------------------------------------------------------------------

    /// @dev Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: f16 `d` (and f16 `m` for the affine ones), a 5-bit
    /// type's `qh` (bit `j` is element `j`'s fifth bit), then the quants; a 4- or 5-bit quant
    /// byte `j` holds element `j` in its low nibble and `j + 16` in its high nibble.
    function legacy(uint256 kind, bytes memory row, uint256 o, Piece memory p) private pure {
        p.dw = f16At(row, o);
        if (kind == Q8_0) {
            p.q = bytes32(word(row, o + 2));
            return;
        }
        bool affine = kind == Q4_1 || kind == Q5_1;
        uint256 pos = o + 2;
        if (affine) {
            p.form = AFFINE;
            p.mw = f16At(row, pos);
            pos += 2;
        }
        uint256 qh;
        bool five = kind == Q5_0 || kind == Q5_1;
        if (five) {
            qh = le(row, pos, 4);
            pos += 4;
        }
        int256 minus = kind == Q4_0 ? int256(8) : kind == Q5_0 ? int256(16) : int256(0);
        uint256 packed;
        for (uint256 j = 0; j < 32; j++) {
            uint256 b = byteAt(row, pos + (j % 16));
            int256 v = int256(j < 16 ? b & 15 : b >> 4);
            if (five) v |= int256((qh >> j) & 1) << 4;
            packed = put(packed, j, v - minus);
        }
        p.q = bytes32(packed);
    }

    /// @dev Q2_K: 16 bytes of `scale | min << 4` per 16 elements, 64 bytes of 2-bit quants,
    /// f16 `d`, f16 `dmin`. Element `128n + 32j + l` is bits `2j` of quant byte `32n + l`.
    function q2k(bytes memory row, uint256 o, uint256 k, Piece memory p) private pure {
        p.form = SUB_AFFINE;
        p.dw = f16At(row, o + 80);
        p.mw = f16At(row, o + 82);
        uint256 a = byteAt(row, o + 2 * k);
        uint256 b = byteAt(row, o + 2 * k + 1);
        p.s0 = int256(a & 15);
        p.s1 = int256(b & 15);
        p.m0 = int256(a >> 4);
        p.m1 = int256(b >> 4);
        p.q = bytes32(twoBits(row, o + 16 + 32 * (k / 4), 2 * (k % 4)));
    }

    /// @dev Bits `shift, shift + 1` of 32 consecutive bytes from `pos`, packed.
    function twoBits(bytes memory row, uint256 pos, uint256 shift) private pure returns (uint256 packed) {
        for (uint256 l = 0; l < 32; l++) {
            packed = put(packed, l, int256((byteAt(row, pos + l) >> shift) & 3));
        }
    }

    /// @dev Q3_K: 32 bytes `hmask`, 64 bytes of low 2-bit quants, 12 bytes of packed 6-bit
    /// scales (centred by 32), f16 `d`. A clear `hmask` bit means the value is 4 less.
    function q3k(bytes memory row, uint256 o, uint256 k, Piece memory p) private pure {
        p.form = SUB_SCALED;
        p.dw = f16At(row, o + 108);
        p.s0 = q3Scale(row, o + 96, 2 * k);
        p.s1 = q3Scale(row, o + 96, 2 * k + 1);
        uint256 low = twoBits(row, o + 32 + 32 * (k / 4), 2 * (k % 4));
        uint256 bit = 1 << (4 * (k / 4) + k % 4);
        // A clear hmask bit takes 4 from the value: a byte `v` in 0..3 becomes `v - 4`, whose
        // two's complement byte is `v | 0xFC`.
        for (uint256 l = 0; l < 32; l++) {
            if (byteAt(row, o + l) & bit == 0) low |= 0xFC << (8 * (31 - l));
        }
        p.q = bytes32(low);
    }

    /// @dev Scale `i` (0..16) of a Q3_K super-block from its 12 packed bytes pos `pos`, as ggml's
    /// `aux` words spell it: with `a = i / 4`, `b = i mod 4`, the low four bits are the low
    /// (a < 2) or high nibble of byte `b` (a even) or `4 + b` (a odd), the high two bits are
    /// bits `2a` of byte `8 + b`.
    function q3Scale(bytes memory row, uint256 pos, uint256 i) private pure returns (int256) {
        (uint256 a, uint256 b) = (i / 4, i % 4);
        uint256 lo = byteAt(row, pos + (a % 2 == 0 ? b : 4 + b));
        lo = a < 2 ? lo & 15 : lo >> 4;
        uint256 hi = (byteAt(row, pos + 8 + b) >> (2 * a)) & 3;
        return int256(lo | (hi << 4)) - 32;
    }

    /// @dev Q4_K and Q5_K: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins (ggml's
    /// `get_scale_min_k4`), Q5_K's 32 bytes `qh` (bit `k` of byte `l` is piece `k`'s element
    /// `l`'s fifth bit), quants: in each 64 elements, the low nibbles of 32 bytes, then the high.
    /// Affine with `dw = d * sc` and `mw = -(dmin * m)`, both exact.
    function qk45(uint256 kind, bytes memory row, uint256 o, uint256 k, Piece memory p) private pure {
        p.form = AFFINE;
        (uint256 sc, uint256 m) = scaleMin(row, o + 4, k);
        p.dw = f16At(row, o).mul(fromInt(int256(sc)));
        p.mw = f16At(row, o + 2).mul(fromInt(int256(m))) ^ 0x80000000;
        bool five = kind == Q5_K;
        uint256 qs = o + (five ? 48 : 16) + 32 * (k / 2);
        uint256 packed;
        for (uint256 l = 0; l < 32; l++) {
            uint256 b = byteAt(row, qs + l);
            uint256 v = k % 2 == 0 ? b & 15 : b >> 4;
            if (five) v |= ((byteAt(row, o + 16 + l) >> k) & 1) << 4;
            packed = put(packed, l, int256(v));
        }
        p.q = bytes32(packed);
    }

    /// @dev ggml's `get_scale_min_k4`.
    function scaleMin(bytes memory row, uint256 pos, uint256 k) private pure returns (uint256 sc, uint256 m) {
        if (k < 4) return (byteAt(row, pos + k) & 63, byteAt(row, pos + k + 4) & 63);
        sc = (byteAt(row, pos + k + 4) & 15) | ((byteAt(row, pos + k - 4) >> 6) << 4);
        m = (byteAt(row, pos + k + 4) >> 4) | ((byteAt(row, pos + k) >> 6) << 4);
    }

    /// @dev Q6_K: 128 bytes of low nibbles `ql`, 64 bytes of high bit pairs `qh`, 16 signed
    /// scales, f16 `d`; values `q - 32`. Piece `k = 4n + j` takes, for element `l`, the low
    /// (j < 2) or high nibble of `ql[64n + l + 32 (j odd)]` and bits `2j` of `qh[32n + l]`.
    function q6k(bytes memory row, uint256 o, uint256 k, Piece memory p) private pure {
        p.form = SUB_SCALED;
        p.dw = f16At(row, o + 208);
        p.s0 = int256(int8(uint8(byteAt(row, o + 192 + 2 * k))));
        p.s1 = int256(int8(uint8(byteAt(row, o + 192 + 2 * k + 1))));
        (uint256 n, uint256 j) = (k / 4, k % 4);
        uint256 packed;
        for (uint256 l = 0; l < 32; l++) {
            uint256 b = byteAt(row, o + 64 * n + l + (j % 2 == 1 ? 32 : 0));
            uint256 lo = j < 2 ? b & 15 : b >> 4;
            uint256 hi = (byteAt(row, o + 128 + 32 * n + l) >> (2 * j)) & 3;
            packed = put(packed, l, int256(lo | (hi << 4)) - 32);
        }
        p.q = bytes32(packed);
    }

    // ---------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------

    /// @dev Per half of 16: `sum q_j x_j` and `sum x_j`, exact.
    function sums(bytes32 q, bytes32 x) private pure returns (int256 dot0, int256 dot1, int256 sum0, int256 sum1) {
        for (uint256 j = 0; j < 16; j++) {
            int256 xj = signedByte(x, j);
            dot0 += signedByte(q, j) * xj;
            sum0 += xj;
            int256 xk = signedByte(x, j + 16);
            dot1 += signedByte(q, j + 16) * xk;
            sum1 += xk;
        }
    }

    /// @dev Byte `j` (0 = most significant) of `w` as a signed byte.
    function signedByte(bytes32 w, uint256 j) private pure returns (int256 v) {
        assembly {
            v := signextend(0, byte(j, w))
        }
    }

    /// @dev `packed` with byte `j` (0 = most significant) set to `v` (-128..127).
    function put(uint256 packed, uint256 j, int256 v) private pure returns (uint256) {
        return packed | (uint256(uint8(int8(v))) << (8 * (31 - j)));
    }

    /// @dev `row[pos]`; the caller has checked the block lies in the row.
    function byteAt(bytes memory row, uint256 pos) private pure returns (uint256 b) {
        assembly {
            b := byte(0, mload(add(add(row, 32), pos)))
        }
    }

    /// @dev The `n`-byte little-endian integer pos `row[pos..]`.
    function le(bytes memory row, uint256 pos, uint256 n) private pure returns (uint256 v) {
        for (uint256 i = 0; i < n; i++) {
            v |= byteAt(row, pos + i) << (8 * i);
        }
    }

    /// @dev The 32 bytes pos `row[pos..]` as one word, first byte most significant.
    function word(bytes memory row, uint256 pos) private pure returns (uint256 v) {
        assembly {
            v := mload(add(add(row, 32), pos))
        }
    }

    /// @dev The little-endian f16 pos `row[pos..]`, widened exactly.
    function f16At(bytes memory row, uint256 pos) private pure returns (uint32) {
        return SwornF32.fromF16(uint16(le(row, pos, 2)));
    }

    /// @dev An integer as binary32, correctly rounded (exact below 2**24 in magnitude, which
    /// every integer part is, §1.4).
    function fromInt(int256 v) internal pure returns (uint32) {
        uint256 mag = uint256(v < 0 ? -v : v);
        return uint32(SwornF32.round(v < 0 ? 1 : 0, 0, mag, 23, 8));
    }
}
