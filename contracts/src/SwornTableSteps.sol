// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRopeTable} from "./SwornRopeTable.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornStepBase} from "./SwornStepBase.sol";

/// @title SwornTableSteps
/// @notice The one-step executor's steps in binary64 (docs/dispute.md §5.4): the words of the
/// RoPE tables, each computed from the model's base (and Llama 3's frequency factors) by the
/// spec's f64 `ln`, `exp` and `sin`/`cos` (`SwornRopeTable`). Their soft binary64 code is a
/// contract of its own: beside the other steps it would pass the EVM's 24 KB code size limit.
/// Called by `SwornExecutor` with a checked witness.
contract SwornTableSteps is SwornStepBase {
    /// @notice The word of `c.element`, which must lie in a RoPE table (`[T][hd/2][cos, sin]`):
    /// table 0 from the model's base and, when the weights hold them, its frequency factors
    /// (the witness proves the `rope_freqs` slot present or absent); table 1 (Gemma 3's
    /// sliding-window layers) from the local base.
    function step(Ctx memory c) external pure returns (uint32) {
        require(c.r.kind == L.ROPE_TABLE, "executor: not a table step");
        uint256 half = c.s.hd / 2;
        uint256 pair = c.i / 2;
        uint256 p = pair % half;
        bool local = c.r.sub == 1;
        (bool scaled, uint32 factor) = local ? (false, uint32(0)) : ropeFactor(c, p);
        uint64 f = SwornRopeTable.invFreq(local ? c.x.localBase : c.x.ropeBase, c.s.hd, p, scaled, factor);
        (uint32 cs, uint32 sn) = SwornRopeTable.word(f, pair / half);
        return c.i % 2 == 0 ? cs : sn;
    }
}
