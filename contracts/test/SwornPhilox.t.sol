// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornPhilox} from "../src/SwornPhilox.sol";
import {VectorTest} from "./Vectors.sol";

/// Philox4x32-10 and the sampling draw against the engine's, on the 10,000 shared cases of
/// `sworn_engine::float_vectors`, and Random123's known answers.
contract SwornPhiloxTest is VectorTest {
    /// Whether case `i` of `data` matches.
    function same(bytes memory data, uint256 i) internal pure returns (bool) {
        uint256 o = i * 36;
        uint64 seed = (uint64(word(data, o)) << 32) | word(data, o + 4);
        uint64 step = (uint64(word(data, o + 8)) << 32) | word(data, o + 12);
        uint32[4] memory got;
        (got[0], got[1], got[2], got[3]) = SwornPhilox.rounds(
            uint32(step & 0xFFFFFFFF), uint32(step >> 32), 0, 0, uint32(seed & 0xFFFFFFFF), uint32(seed >> 32)
        );
        for (uint256 j = 0; j < 4; j++) {
            if (got[j] != word(data, o + 16 + 4 * j)) return false;
        }
        return SwornPhilox.uniform(seed, step) == word(data, o + 32);
    }

    function test_draws_match_rust() public view {
        bytes memory data = vectors("philox");
        assertEq(data.length, CASES * 36, "philox: case count");
        for (uint256 i = 0; i < CASES; i++) {
            // The message is built only on failure: memory is never freed within a test.
            if (!same(data, i)) revert(string.concat("philox case ", vm.toString(i)));
        }
    }

    /// Random123's known answers for philox4x32-10 (kat_vectors): zero counter and key, and
    /// all-ones.
    function test_random123_known_answers() public pure {
        uint32[4] memory z = SwornPhilox.philox([uint32(0), 0, 0, 0], [uint32(0), 0]);
        assertEq(z[0], 0x6627e8d5, "zeros 0");
        assertEq(z[1], 0xe169c58d, "zeros 1");
        assertEq(z[2], 0xbc57ac4c, "zeros 2");
        assertEq(z[3], 0x9b00dbd8, "zeros 3");
        uint32 f = 0xffffffff;
        uint32[4] memory o = SwornPhilox.philox([f, f, f, f], [f, f]);
        assertEq(o[0], 0x408f276d, "ones 0");
        assertEq(o[1], 0x41c83b0e, "ones 1");
        assertEq(o[2], 0xa20bc7c6, "ones 2");
        assertEq(o[3], 0x6d5451fd, "ones 3");
    }
}
