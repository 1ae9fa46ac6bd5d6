// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornProducts} from "../src/SwornProducts.sol";
import {VectorTest} from "./Vectors.sol";

/// Quantized row products against the engine's scalar reference, on the 10,000 rows of
/// `sworn_engine::float_vectors` (`products.bin`: Q4_0, Q4_1 and Q8_0 rows of two blocks).
contract SwornProductsTest is VectorTest {
    /// Checks the record at `o`: its offset after it, or 0 on a mismatch.
    function check(bytes memory data, uint256 o) internal pure returns (uint256) {
        uint256 kind = word(data, o);
        uint256 bb = kind == 2 ? 18 : kind == 3 ? 20 : 34;
        uint256 rawLen = 2 * bb;
        uint256 rawWords = (rawLen + 3) / 4;
        bytes memory raw = new bytes(rawLen);
        for (uint256 k = 0; k < rawLen; k++) {
            raw[k] = data[o + 4 + k];
        }
        uint256 a = o + 4 + 4 * rawWords;
        SwornProducts.Acts memory x =
            SwornProducts.Acts(new int256[](64), new uint32[](2), new int256[](2), new uint32[](2));
        for (uint256 b = 0; b < 2; b++) {
            for (uint256 j = 0; j < 32; j++) {
                x.q[b * 32 + j] = int256(int32(word(data, a + 4 * j)));
            }
            x.d[b] = word(data, a + 128);
            x.qsum[b] = int256(int32(word(data, a + 132)));
            x.s[b] = word(data, a + 136);
            a += 140;
        }
        if (SwornProducts.rowDot(kind, raw, x) != word(data, a)) return 0;
        return a + 4;
    }

    /// Records `p`, `p + 4`, ... (four tests, each within a test's gas limit).
    function part(uint256 p) internal view {
        bytes memory data = vectors("products");
        uint256 o = 0;
        for (uint256 i = 0; i < CASES; i++) {
            if (i % 4 == p && check(data, o) == 0) revert(string.concat("products case ", vm.toString(i)));
            o = skip(data, o);
        }
        assertEq(o, data.length, "products: case count");
    }

    /// The offset after the record at `o`.
    function skip(bytes memory data, uint256 o) internal pure returns (uint256) {
        uint256 kind = word(data, o);
        uint256 bb = kind == 2 ? 18 : kind == 3 ? 20 : 34;
        return o + 4 + 4 * ((2 * bb + 3) / 4) + 2 * 140 + 4;
    }

    function test_products_match_rust_0() public view {
        part(0);
    }

    function test_products_match_rust_1() public view {
        part(1);
    }

    function test_products_match_rust_2() public view {
        part(2);
    }

    function test_products_match_rust_3() public view {
        part(3);
    }
}
