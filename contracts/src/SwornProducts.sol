// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";

/// @title SwornProducts
/// @notice Quantized matrix-vector products (docs/canonical-arithmetic.md §1.2): one output of
/// a row in GGUF's Q4_0, Q4_1 or Q8_0 blocks (the file's own bytes) times an activation row
/// quantized by §1.1, the blocks folded left to right, each block's integer sum exact, bit for
/// bit as the engine's scalar reference (`kernels::scalar::dot_row`). The K-quants (§1.4) and
/// Q5_0 / Q5_1 are not here yet.
library SwornProducts {
    using SwornF32 for uint32;

    /// ggml's type codes.
    uint256 internal constant Q4_0 = 2;
    uint256 internal constant Q4_1 = 3;
    uint256 internal constant Q8_0 = 8;

    /// The activation row: per block, 32 integers, `d`, their sum and `s` (§1.1).
    struct Acts {
        int256[] q;
        uint32[] d;
        int256[] qsum;
        uint32[] s;
    }

    /// @notice Output `sum over blocks` of the row `raw` (GGUF blocks of type `kind`) times `x`.
    function rowDot(uint256 kind, bytes memory raw, Acts memory x) internal pure returns (uint32 acc) {
        uint256 bb = kind == Q4_0 ? 18 : kind == Q4_1 ? 20 : kind == Q8_0 ? 34 : 0;
        require(bb != 0, "products: type");
        uint256 nb = x.d.length;
        require(raw.length == nb * bb && x.q.length == nb * 32, "products: lengths");
        for (uint256 b = 0; b < nb; b++) {
            uint256 o = b * bb;
            uint32 dw = SwornF32.fromF16(f16At(raw, o));
            int256 isum = 0;
            for (uint256 j = 0; j < 32; j++) {
                isum += weight(kind, raw, o, j) * x.q[b * 32 + j];
            }
            if (kind == Q4_0) isum -= 8 * x.qsum[b];
            uint32 t = dw.mul(x.d[b]).mul(fromInt(isum));
            if (kind == Q4_1) {
                uint32 u = SwornF32.fromF16(f16At(raw, o + 2)).mul(x.s[b]);
                acc = acc.add(t.add(u));
            } else {
                acc = acc.add(t);
            }
        }
    }

    /// @dev Element `j` of the block at `o`: Q4 blocks keep element j in the low nibble of quant
    /// byte j and element j + 16 in its high nibble; Q8_0 bytes are signed.
    function weight(uint256 kind, bytes memory raw, uint256 o, uint256 j) private pure returns (int256) {
        if (kind == Q8_0) return int256(int8(uint8(raw[o + 2 + j])));
        uint256 qs = o + (kind == Q4_1 ? 4 : 2);
        uint8 v = uint8(raw[qs + (j % 16)]);
        return int256(uint256(j < 16 ? v & 0x0F : v >> 4));
    }

    /// @dev The little-endian f16 at `raw[o..o+2]`.
    function f16At(bytes memory raw, uint256 o) private pure returns (uint16) {
        return uint16(uint8(raw[o])) | (uint16(uint8(raw[o + 1])) << 8);
    }

    /// @dev An exact integer (|v| < 2**24) as binary32.
    function fromInt(int256 v) private pure returns (uint32) {
        uint256 mag = uint256(v < 0 ? -v : v);
        return uint32(SwornF32.round(v < 0 ? 1 : 0, 0, mag, 23, 8));
    }
}
