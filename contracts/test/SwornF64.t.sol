// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF64} from "../src/SwornF64.sol";
import {SwornRopeTable} from "../src/SwornRopeTable.sol";
import {VectorTest} from "./Vectors.sol";

/// The Solidity binary64 arithmetic and the RoPE table's functions against the Rust engine's,
/// bit for bit: each `f64_*` file and `rope_table` under `test/vectors/f32/` holds 10,000 cases
/// (random and adversarial: NaNs, infinities, signed zeros, subnormals, overflow, exact ties,
/// huge angles) with the result Rust computed, NaNs canonical (`sworn_engine::float_vectors`,
/// written by `scripts/contracts.sh`).
// forge-lint: disable-start(unsafe-typecast)
contract SwornF64Test is VectorTest {
    /// The binary64 value at `offset` (two big-endian words).
    function word64(bytes memory data, uint256 offset) internal pure returns (uint64) {
        return (uint64(word(data, offset)) << 32) | word(data, offset + 4);
    }

    function fail(string memory op, uint256 i, uint256 a, uint256 b, uint256 want, uint256 got) internal pure {
        revert(
            string.concat(
                op,
                " case ",
                vm.toString(i),
                ": a=",
                vm.toString(a),
                " b=",
                vm.toString(b),
                " want ",
                vm.toString(want),
                " got ",
                vm.toString(got)
            )
        );
    }

    function binary(string memory op, function(uint64, uint64) pure returns (uint64) f) internal view {
        bytes memory data = vectors(op);
        assertEq(data.length, CASES * 24, string.concat(op, ": case count"));
        for (uint256 i = 0; i < CASES; i++) {
            uint256 o = i * 24;
            (uint64 a, uint64 b, uint64 want) = (word64(data, o), word64(data, o + 8), word64(data, o + 16));
            uint64 got = f(a, b);
            if (got != want) fail(op, i, a, b, want, got);
        }
    }

    function unary(string memory op, function(uint64) pure returns (uint64) f) internal view {
        bytes memory data = vectors(op);
        assertEq(data.length, CASES * 16, string.concat(op, ": case count"));
        for (uint256 i = 0; i < CASES; i++) {
            (uint64 a, uint64 want) = (word64(data, i * 16), word64(data, i * 16 + 8));
            uint64 got = f(a);
            if (got != want) fail(op, i, a, 0, want, got);
        }
    }

    function test_add_matches_rust() public view {
        binary("f64_add", SwornF64.add);
    }

    function test_sub_matches_rust() public view {
        binary("f64_sub", SwornF64.sub);
    }

    function test_mul_matches_rust() public view {
        binary("f64_mul", SwornF64.mul);
    }

    function test_div_matches_rust() public view {
        binary("f64_div", SwornF64.div);
    }

    function test_round_ties_even_matches_rust() public view {
        unary("f64_round", SwornF64.roundEven);
    }

    function toI64(uint64 x) internal pure returns (uint64) {
        return uint64(int64(SwornF64.toI64(x)));
    }

    function test_to_i64_matches_rust() public view {
        unary("f64_to_i64", toI64);
    }

    function test_ln_matches_rust() public view {
        unary("f64_ln", SwornRopeTable.ln);
    }

    function test_exp_matches_rust() public view {
        unary("f64_exp", SwornRopeTable.exp);
    }

    function test_to_f32_matches_rust() public view {
        bytes memory data = vectors("f64_to_f32");
        assertEq(data.length, CASES * 12, "f64_to_f32: case count");
        for (uint256 i = 0; i < CASES; i++) {
            (uint64 a, uint32 want) = (word64(data, i * 12), word(data, i * 12 + 8));
            uint32 got = SwornF64.toF32(a);
            if (got != want) fail("f64_to_f32", i, a, 0, want, got);
            // Widening back is exact for every finite or infinite binary32 value.
            if (got != 0x7FC00000) {
                assertEq(SwornF64.toF32(SwornF64.fromF32(got)), got, "binary32 round trip");
            }
        }
    }

    function test_sin_cos_match_rust() public view {
        bytes memory data = vectors("f64_sincos");
        assertEq(data.length, CASES * 24, "f64_sincos: case count");
        for (uint256 i = 0; i < CASES; i++) {
            uint256 o = i * 24;
            uint64 a = word64(data, o);
            (uint64 s, uint64 c) = SwornRopeTable.sinCos(a);
            if (s != word64(data, o + 8)) fail("sin", i, a, 0, word64(data, o + 8), s);
            if (c != word64(data, o + 16)) fail("cos", i, a, 0, word64(data, o + 16), c);
        }
    }

    /// Whole table words: frequency (with or without a factor), angle, sine and cosine.
    function test_rope_table_words_match_rust() public view {
        bytes memory data = vectors("rope_table");
        assertEq(data.length, CASES * 32, "rope_table: case count");
        for (uint256 i = 0; i < CASES; i++) {
            uint256 o = i * 32;
            uint64 f = SwornRopeTable.invFreq(
                word(data, o), word(data, o + 4), word(data, o + 8), word(data, o + 12) == 1, word(data, o + 16)
            );
            (uint32 c, uint32 s) = SwornRopeTable.word(f, word(data, o + 20));
            if (c != word(data, o + 24)) fail("rope cos", i, word(data, o), word(data, o + 20), word(data, o + 24), c);
            if (s != word(data, o + 28)) fail("rope sin", i, word(data, o), word(data, o + 20), word(data, o + 28), s);
        }
    }

    /// The series' constants are the engine's f64 divisions: `1/(2j+1)`, and `1/n!` with `n!`
    /// an f64 product.
    function test_series_constants_are_the_engines_divisions() public pure {
        for (uint256 j = 0; j < 16; j++) {
            uint64 want = SwornF64.div(SwornF64.ONE, SwornF64.fromInt(int256(2 * j + 1)));
            assertEq(SwornRopeTable.invOdd(j), want, "1/(2j+1)");
        }
        uint64 fact = SwornF64.ONE;
        for (uint256 n = 0; n < 24; n++) {
            if (n > 0) fact = SwornF64.mul(fact, SwornF64.fromInt(int256(n)));
            assertEq(SwornRopeTable.invFact(n), SwornF64.div(SwornF64.ONE, fact), "1/n!");
        }
    }
}
// forge-lint: disable-end(unsafe-typecast)
