// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornPhilox
/// @notice The sampler's randomness (docs/canonical-arithmetic.md §4): Philox4x32-10 (Salmon et
/// al. 2011) and the uniform draw `uniform(seed, n)` of sampling step `n`, bit for bit as the
/// engine's `sampling::philox4x32_10` and `sampling::uniform`. Integer code only: the draw of a
/// disputed sampling step is recomputed exactly on chain.
library SwornPhilox {
    uint256 private constant M0 = 0xD2511F53;
    uint256 private constant M1 = 0xCD9E8D57;
    uint32 private constant W0 = 0x9E3779B9;
    uint32 private constant W1 = 0xBB67AE85;

    /// @notice Ten Philox rounds of counter `c` under key `k` (on the stack: no memory).
    function philox(uint32[4] memory c, uint32[2] memory k) internal pure returns (uint32[4] memory out) {
        (out[0], out[1], out[2], out[3]) = rounds(c[0], c[1], c[2], c[3], k[0], k[1]);
    }

    /// @notice [`philox`] on words.
    function rounds(uint32 c0, uint32 c1, uint32 c2, uint32 c3, uint32 k0, uint32 k1)
        internal
        pure
        returns (uint32, uint32, uint32, uint32)
    {
        for (uint256 round = 0; round < 10; round++) {
            if (round > 0) {
                unchecked {
                    k0 += W0;
                    k1 += W1;
                }
            }
            uint256 p0 = M0 * uint256(c0);
            uint256 p1 = M1 * uint256(c2);
            c1 ^= k0;
            c3 ^= k1;
            (c0, c1) = (uint32(p1 >> 32) ^ c1, uint32(p1));
            (c2, c3) = (uint32(p0 >> 32) ^ c3, uint32(p0));
        }
        return (c0, c1, c2, c3);
    }

    /// @notice The draw in [0, 1) of sampling step `step` under `seed`, as binary32 bits: the top
    /// 24 bits of Philox's first output word times 2**-24 (exact).
    function uniform(uint64 seed, uint64 step) internal pure returns (uint32) {
        (uint32 first,,,) =
            rounds(uint32(step & 0xFFFFFFFF), uint32(step >> 32), 0, 0, uint32(seed & 0xFFFFFFFF), uint32(seed >> 32));
        uint256 w = first >> 8;
        if (w == 0) return 0;
        // w * 2**-24 for 0 < w < 2**24: the float with w's leading bit as its exponent.
        uint256 len = 0;
        for (uint256 t = w; t != 0; t >>= 1) {
            len++;
        }
        uint256 e = 127 + len - 1 - 24;
        uint256 man = (w << (24 - len)) & 0x7FFFFF;
        return uint32((e << 23) | man);
    }
}
