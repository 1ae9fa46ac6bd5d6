// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornQuant} from "../src/SwornQuant.sol";
import {VectorTest} from "./Vectors.sol";

/// Activation quantization against the engine's `quantize_block_ref`, on the 10,000 blocks of
/// `sworn_engine::float_vectors` (`quant.bin`: x[32], q[32], d, qsum, s per record).
contract SwornQuantTest is VectorTest {
    uint256 constant RECORD = 67 * 4;

    /// Whether block `i` of `data` quantizes as the engine's did.
    function same(bytes memory data, uint256 i) internal pure returns (bool) {
        uint256 o = i * RECORD;
        uint32[32] memory x;
        for (uint256 j = 0; j < 32; j++) {
            x[j] = word(data, o + 4 * j);
        }
        (int256[32] memory q, uint32 d, int256 qsum, uint32 s) = SwornQuant.quantize(x);
        for (uint256 j = 0; j < 32; j++) {
            if (q[j] != int256(int32(word(data, o + 128 + 4 * j)))) return false;
        }
        return d == word(data, o + 256) && qsum == int256(int32(word(data, o + 260))) && s == word(data, o + 264);
    }

    /// Blocks `p`, `p + 8`, ... (eight tests, each well within a test's gas limit).
    function part(uint256 p) internal view {
        bytes memory data = vectors("quant");
        assertEq(data.length, CASES * RECORD, "quant: case count");
        for (uint256 i = p; i < CASES; i += 8) {
            // The message is built only on failure: memory is never freed within a test.
            if (!same(data, i)) revert(string.concat("quant case ", vm.toString(i)));
        }
    }

    function test_quantization_matches_rust_0() public view {
        part(0);
    }

    function test_quantization_matches_rust_1() public view {
        part(1);
    }

    function test_quantization_matches_rust_2() public view {
        part(2);
    }

    function test_quantization_matches_rust_3() public view {
        part(3);
    }

    function test_quantization_matches_rust_4() public view {
        part(4);
    }

    function test_quantization_matches_rust_5() public view {
        part(5);
    }

    function test_quantization_matches_rust_6() public view {
        part(6);
    }

    function test_quantization_matches_rust_7() public view {
        part(7);
    }
}
