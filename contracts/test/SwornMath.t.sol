// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornMath} from "../src/SwornMath.sol";
import {VectorTest} from "./Vectors.sol";

/// The canonical elementary functions and dot product against the Rust engine's `canon::math`,
/// bit for bit, on the shared vectors of `sworn_engine::float_vectors` (10,000 cases each).
contract SwornMathTest is VectorTest {
    /// Cases `half * CASES / 2` to the end of that half of `op`'s file (two tests per function,
    /// each within a test's gas limit).
    function unary(string memory op, function(uint32) pure returns (uint32) f, uint256 half) internal view {
        bytes memory data = vectors(op);
        assertEq(data.length, CASES * 8, string.concat(op, ": case count"));
        for (uint256 i = half * CASES / 2; i < (half + 1) * CASES / 2; i++) {
            (uint32 a, uint32 want) = (word(data, i * 8), word(data, i * 8 + 4));
            uint32 got = f(a);
            if (got != want) {
                revert(
                    string.concat(
                        op,
                        " case ",
                        vm.toString(i),
                        ": x=",
                        vm.toString(uint256(a)),
                        " want ",
                        vm.toString(uint256(want)),
                        " got ",
                        vm.toString(uint256(got))
                    )
                );
            }
        }
    }

    function test_exp_matches_rust_0() public view {
        unary("exp", SwornMath.exp, 0);
    }

    function test_exp_matches_rust_1() public view {
        unary("exp", SwornMath.exp, 1);
    }

    function test_silu_matches_rust_0() public view {
        unary("silu", SwornMath.silu, 0);
    }

    function test_silu_matches_rust_1() public view {
        unary("silu", SwornMath.silu, 1);
    }

    function test_tanh_matches_rust_0() public view {
        unary("tanh", SwornMath.tanh, 0);
    }

    function test_tanh_matches_rust_1() public view {
        unary("tanh", SwornMath.tanh, 1);
    }

    function test_gelu_matches_rust_0() public view {
        unary("gelu", SwornMath.gelu, 0);
    }

    function test_gelu_matches_rust_1() public view {
        unary("gelu", SwornMath.gelu, 1);
    }

    /// `dot8.bin` in four parts (each a test, to keep one test's gas moderate).
    function dots(uint256 part) internal view {
        bytes memory data = vectors("dot8");
        uint256 off = 0;
        uint256 i = 0;
        for (; off < data.length; i++) {
            uint256 n = word(data, off);
            if (i % 4 == part) {
                uint32[] memory a = new uint32[](n);
                uint32[] memory b = new uint32[](n);
                for (uint256 j = 0; j < n; j++) {
                    a[j] = word(data, off + 4 + 4 * j);
                    b[j] = word(data, off + 4 + 4 * (n + j));
                }
                uint32 want = word(data, off + 4 + 8 * n);
                uint32 got = SwornMath.dot8(a, b);
                if (got != want) {
                    revert(
                        string.concat(
                            "dot8 case ",
                            vm.toString(i),
                            ": want ",
                            vm.toString(uint256(want)),
                            " got ",
                            vm.toString(uint256(got))
                        )
                    );
                }
            }
            off += 4 * (2 + 2 * n);
        }
        assertEq(i, CASES, "dot8: case count");
    }

    function test_dot8_matches_rust_0() public view {
        dots(0);
    }

    function test_dot8_matches_rust_1() public view {
        dots(1);
    }

    function test_dot8_matches_rust_2() public view {
        dots(2);
    }

    function test_dot8_matches_rust_3() public view {
        dots(3);
    }

    /// exp's clamp: NaN and -inf give exp(-87), +inf gives exp(88), both finite.
    /// The sampled steps' comparisons (docs/dispute.md §5.6): the total order with its id
    /// tie-break, `>=` and `>`, on 10,000 pairs (every pair of specials both ways round, equal
    /// values, neighbours, sign flips, random bits).
    function test_sampling_order_matches_rust() public view {
        bytes memory data = vectors("order");
        assertEq(data.length, CASES * 28, "order: case count");
        for (uint256 i = 0; i < CASES; i++) {
            uint256 o = i * 28;
            (uint32 a, uint32 b) = (word(data, o), word(data, o + 4));
            (uint32 ida, uint32 idb) = (word(data, o + 8), word(data, o + 12));
            bool ok = SwornMath.before(a, ida, b, idb) == (word(data, o + 16) == 1)
                && SwornMath.ge(a, b) == (word(data, o + 20) == 1) && SwornMath.gt(a, b) == (word(data, o + 24) == 1);
            if (!ok) {
                revert(
                    string.concat(
                        "order case ", vm.toString(i), ": a=", vm.toString(uint256(a)), " b=", vm.toString(uint256(b))
                    )
                );
            }
        }
    }

    function test_exp_clamps() public pure {
        assertEq(SwornMath.exp(0x7FC00000), SwornMath.exp(SwornMath.EXP_MIN), "NaN");
        assertEq(SwornMath.exp(0xFF800000), SwornMath.exp(SwornMath.EXP_MIN), "-inf");
        assertEq(SwornMath.exp(0x7F800000), SwornMath.exp(SwornMath.EXP_MAX), "+inf");
        assertEq(SwornMath.exp(0), SwornMath.ONE, "exp(0) = 1");
    }

    /// Whether the RMSNorm row at `o` of `data` matches; the offset after it, or 0.
    function norm(bytes memory data, uint256 o) internal pure returns (uint256) {
        uint256 n = word(data, o);
        uint32 eps = word(data, o + 4);
        uint32[] memory x = new uint32[](n);
        uint32[] memory w = new uint32[](n);
        for (uint256 j = 0; j < n; j++) {
            x[j] = word(data, o + 8 + 4 * j);
            w[j] = word(data, o + 8 + 4 * (n + j));
        }
        uint32[] memory y = SwornMath.rmsnorm(x, w, eps);
        for (uint256 j = 0; j < n; j++) {
            if (y[j] != word(data, o + 8 + 4 * (2 * n + j))) return 0;
        }
        return o + 8 + 12 * n;
    }

    /// RMSNorm rows `p`, `p + 8`, ... of `rmsnorm.bin` (eight tests, each within a test's gas
    /// limit).
    function norms(uint256 p) internal view {
        bytes memory data = vectors("rmsnorm");
        uint256 o = 0;
        for (uint256 i = 0; i < CASES; i++) {
            uint256 next = o + 8 + 12 * word(data, o);
            if (i % 8 == p && norm(data, o) != next) revert(string.concat("rmsnorm case ", vm.toString(i)));
            o = next;
        }
        assertEq(o, data.length, "rmsnorm: case count");
    }

    function test_rmsnorm_matches_rust_0() public view {
        norms(0);
    }

    function test_rmsnorm_matches_rust_1() public view {
        norms(1);
    }

    function test_rmsnorm_matches_rust_2() public view {
        norms(2);
    }

    function test_rmsnorm_matches_rust_3() public view {
        norms(3);
    }

    function test_rmsnorm_matches_rust_4() public view {
        norms(4);
    }

    function test_rmsnorm_matches_rust_5() public view {
        norms(5);
    }

    function test_rmsnorm_matches_rust_6() public view {
        norms(6);
    }

    function test_rmsnorm_matches_rust_7() public view {
        norms(7);
    }

    /// Whether the attention record at `o` of `data` matches; the offset after it, or 0.
    function head(bytes memory data, uint256 o) internal pure returns (uint256) {
        (uint256 hd, uint256 n, uint32 scale) = (word(data, o), word(data, o + 4), word(data, o + 8));
        uint32[] memory q = new uint32[](hd);
        uint32[] memory keys = new uint32[](n * hd);
        uint32[] memory values = new uint32[](n * hd);
        uint256 a = o + 12;
        for (uint256 j = 0; j < hd; j++) {
            q[j] = word(data, a + 4 * j);
        }
        a += 4 * hd;
        for (uint256 j = 0; j < n * hd; j++) {
            keys[j] = word(data, a + 4 * j);
            values[j] = word(data, a + 4 * (n * hd + j));
        }
        a += 8 * n * hd;
        uint32[] memory out = SwornMath.attend(q, keys, values, n, scale);
        for (uint256 j = 0; j < hd; j++) {
            if (out[j] != word(data, a + 4 * j)) return 0;
        }
        return a + 4 * hd;
    }

    /// Attention records `p`, `p + 16`, ... of `attention.bin` (sixteen tests, each within a
    /// test's gas limit).
    function heads(uint256 p) internal view {
        bytes memory data = vectors("attention");
        uint256 o = 0;
        for (uint256 i = 0; i < CASES; i++) {
            (uint256 hd, uint256 n) = (word(data, o), word(data, o + 4));
            uint256 next = o + 12 + 4 * hd * (2 + 2 * n);
            if (i % 16 == p && head(data, o) != next) revert(string.concat("attention case ", vm.toString(i)));
            o = next;
        }
        assertEq(o, data.length, "attention: case count");
    }

    function test_attention_matches_rust_0() public view {
        heads(0);
    }

    function test_attention_matches_rust_1() public view {
        heads(1);
    }

    function test_attention_matches_rust_2() public view {
        heads(2);
    }

    function test_attention_matches_rust_3() public view {
        heads(3);
    }

    function test_attention_matches_rust_4() public view {
        heads(4);
    }

    function test_attention_matches_rust_5() public view {
        heads(5);
    }

    function test_attention_matches_rust_6() public view {
        heads(6);
    }

    function test_attention_matches_rust_7() public view {
        heads(7);
    }

    function test_attention_matches_rust_8() public view {
        heads(8);
    }

    function test_attention_matches_rust_9() public view {
        heads(9);
    }

    function test_attention_matches_rust_10() public view {
        heads(10);
    }

    function test_attention_matches_rust_11() public view {
        heads(11);
    }

    function test_attention_matches_rust_12() public view {
        heads(12);
    }

    function test_attention_matches_rust_13() public view {
        heads(13);
    }

    function test_attention_matches_rust_14() public view {
        heads(14);
    }

    function test_attention_matches_rust_15() public view {
        heads(15);
    }

    /// Whether RoPE record `i` of `data` matches, in both pairings.
    function rotation(bytes memory data, uint256 i) internal pure returns (bool) {
        uint256 o = i * 4 * 65 + 4;
        uint32[] memory c = new uint32[](8);
        uint32[] memory s = new uint32[](8);
        uint32[] memory x = new uint32[](16);
        for (uint256 j = 0; j < 8; j++) {
            c[j] = word(data, o + 4 * j);
            s[j] = word(data, o + 32 + 4 * j);
        }
        for (uint256 j = 0; j < 16; j++) {
            x[j] = word(data, o + 64 + 4 * j);
        }
        uint32[] memory adjacent = SwornMath.rope(x, c, s, false);
        uint32[] memory neox = SwornMath.rope(x, c, s, true);
        for (uint256 j = 0; j < 16; j++) {
            if (adjacent[j] != word(data, o + 128 + 4 * j) || neox[j] != word(data, o + 192 + 4 * j)) return false;
        }
        return true;
    }

    /// RoPE records `p`, `p + 16`, ... of `rope.bin` (sixteen tests, each within a test's gas
    /// limit).
    function rotations(uint256 p) internal view {
        bytes memory data = vectors("rope");
        assertEq(data.length, CASES * 4 * 65, "rope: case count");
        for (uint256 i = p; i < CASES; i += 16) {
            if (!rotation(data, i)) revert(string.concat("rope case ", vm.toString(i)));
        }
    }

    function test_rope_matches_rust_0() public view {
        rotations(0);
    }

    function test_rope_matches_rust_1() public view {
        rotations(1);
    }

    function test_rope_matches_rust_2() public view {
        rotations(2);
    }

    function test_rope_matches_rust_3() public view {
        rotations(3);
    }

    function test_rope_matches_rust_4() public view {
        rotations(4);
    }

    function test_rope_matches_rust_5() public view {
        rotations(5);
    }

    function test_rope_matches_rust_6() public view {
        rotations(6);
    }

    function test_rope_matches_rust_7() public view {
        rotations(7);
    }

    function test_rope_matches_rust_8() public view {
        rotations(8);
    }

    function test_rope_matches_rust_9() public view {
        rotations(9);
    }

    function test_rope_matches_rust_10() public view {
        rotations(10);
    }

    function test_rope_matches_rust_11() public view {
        rotations(11);
    }

    function test_rope_matches_rust_12() public view {
        rotations(12);
    }

    function test_rope_matches_rust_13() public view {
        rotations(13);
    }

    function test_rope_matches_rust_14() public view {
        rotations(14);
    }

    function test_rope_matches_rust_15() public view {
        rotations(15);
    }

    /// Rounding to an integer, at both ends: halves go to even, and values already integral
    /// (beyond 2**23) come back with their exact integer value.
    function test_round_ties_even() public pure {
        (uint32 r, int256 k) = SwornMath.roundTiesEven(0x3FC00000); // 1.5
        assertEq(r, 0x40000000, "1.5 -> 2.0");
        assertTrue(k == 2, "1.5 -> 2");
        (r, k) = SwornMath.roundTiesEven(0x40200000); // 2.5
        assertTrue(r == 0x40000000 && k == 2, "2.5 -> 2");
        (r, k) = SwornMath.roundTiesEven(0xBE99999A); // -0.3
        assertTrue(r == 0x80000000 && k == 0, "-0.3 -> -0");
        (r, k) = SwornMath.roundTiesEven(0xCB000001); // -(2**23 + 1)
        assertTrue(r == 0xCB000001 && k == -8388609, "-(2^23 + 1)");
        (r, k) = SwornMath.roundTiesEven(0x7F7FFFFF); // the largest finite value
        assertTrue(k == int256(uint256(0xFFFFFF) << 104), "max");
        (r, k) = SwornMath.roundTiesEven(0x7F800000);
        assertTrue(r == 0x7F800000 && k == 0, "inf");
    }
}
