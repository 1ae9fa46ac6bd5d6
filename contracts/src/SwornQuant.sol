// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";

/// @title SwornQuant
/// @notice Activation quantization (docs/canonical-arithmetic.md §1.1): a block of 32 f32
/// values to 32 integers in [-127, 127], the scale `d` and `s = d * sum(q)` at f16 precision,
/// bit for bit as the engine's `canon::quant::quantize_block_ref`. The input of every quantized
/// matrix product, so the first thing a disputed product's executor recomputes.
library SwornQuant {
    using SwornF32 for uint32;

    uint32 private constant F127 = 0x42FE0000;

    /// @notice The block's integers, `d` (f16 precision, as f32 bits), their sum, and `s`.
    function quantize(uint32[32] memory x)
        internal
        pure
        returns (int256[32] memory q, uint32 d16, int256 qsum, uint32 s16)
    {
        // amax: the largest |x_i| (a NaN never replaces it), from +0.
        uint32 amax = 0;
        for (uint256 i = 0; i < 32; i++) {
            uint32 a = x[i] & 0x7FFFFFFF;
            if (!a.isNaN() && SwornMath.lt(amax, a)) amax = a;
        }
        if (amax == 0) return (q, 0, 0, 0);
        uint32 d = amax.div(F127);
        uint32 id = SwornMath.ONE.div(d);
        for (uint256 i = 0; i < 32; i++) {
            q[i] = level(x[i].mul(id));
            qsum += q[i];
        }
        d16 = roundF16(d);
        uint256 mag = uint256(qsum < 0 ? -qsum : qsum);
        uint32 sumf = uint32(SwornF32.round(qsum < 0 ? 1 : 0, 0, mag, 23, 8));
        s16 = roundF16(sumf.mul(d));
    }

    /// @dev `min(max(round_ties_even(t), -127), 127)` as an integer (NaN gives -127).
    function level(uint32 t) private pure returns (int256) {
        if (t.isNaN()) return -127;
        if ((t >> 23) & 0xFF >= 150) return t >> 31 == 1 ? int256(-127) : int256(127);
        (, int256 k) = SwornMath.roundTiesEven(t);
        if (k < -127) return -127;
        if (k > 127) return 127;
        return k;
    }

    /// @dev `x` rounded to f16 precision, as f32 bits.
    function roundF16(uint32 x) private pure returns (uint32) {
        return SwornF32.fromF16(SwornF32.toF16(x));
    }
}
