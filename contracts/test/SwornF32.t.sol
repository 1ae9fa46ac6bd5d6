// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornF32} from "../src/SwornF32.sol";
import {VectorTest} from "./Vectors.sol";

/// The Solidity binary32 arithmetic against the Rust engine's, bit for bit: each file under
/// `test/vectors/f32/` holds 10,000 cases (random and adversarial: NaNs, infinities, signed
/// zeros, subnormals, overflow, exact ties) with the result Rust computed, NaNs canonical. They
/// are written by the engine (`sworn_engine::float_vectors`, through `scripts/contracts.sh`).
contract SwornF32Test is VectorTest {
    function fail(string memory op, uint256 i, uint32 a, uint32 b, uint32 want, uint32 got) internal pure {
        revert(
            string.concat(
                op,
                " case ",
                vm.toString(i),
                ": a=",
                vm.toString(uint256(a)),
                " b=",
                vm.toString(uint256(b)),
                " want ",
                vm.toString(uint256(want)),
                " got ",
                vm.toString(uint256(got))
            )
        );
    }

    function binary(string memory op, function(uint32, uint32) pure returns (uint32) f) internal view {
        bytes memory data = vectors(op);
        assertEq(data.length, CASES * 12, string.concat(op, ": case count"));
        for (uint256 i = 0; i < CASES; i++) {
            (uint32 a, uint32 b, uint32 want) = (word(data, i * 12), word(data, i * 12 + 4), word(data, i * 12 + 8));
            uint32 got = f(a, b);
            if (got != want) fail(op, i, a, b, want, got);
        }
    }

    function unary(string memory op, function(uint32) pure returns (uint32) f) internal view {
        bytes memory data = vectors(op);
        assertEq(data.length, CASES * 8, string.concat(op, ": case count"));
        for (uint256 i = 0; i < CASES; i++) {
            (uint32 a, uint32 want) = (word(data, i * 8), word(data, i * 8 + 4));
            uint32 got = f(a);
            if (got != want) fail(op, i, a, 0, want, got);
        }
    }

    function add(uint32 a, uint32 b) internal pure returns (uint32) {
        return SwornF32.add(a, b);
    }

    function sub(uint32 a, uint32 b) internal pure returns (uint32) {
        return SwornF32.sub(a, b);
    }

    function mul(uint32 a, uint32 b) internal pure returns (uint32) {
        return SwornF32.mul(a, b);
    }

    function div(uint32 a, uint32 b) internal pure returns (uint32) {
        return SwornF32.div(a, b);
    }

    function sqrt(uint32 a) internal pure returns (uint32) {
        return SwornF32.sqrt(a);
    }

    function toF16(uint32 a) internal pure returns (uint32) {
        return SwornF32.toF16(a);
    }

    function fromF16(uint32 h) internal pure returns (uint32) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return SwornF32.fromF16(uint16(h)); // the vectors hold 16-bit inputs in 32-bit words
    }

    function fromBF16(uint32 h) internal pure returns (uint32) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return SwornF32.fromBF16(uint16(h)); // as above
    }

    function test_add_matches_rust() public view {
        binary("add", add);
    }

    function test_sub_matches_rust() public view {
        binary("sub", sub);
    }

    function test_mul_matches_rust() public view {
        binary("mul", mul);
    }

    function test_div_matches_rust() public view {
        binary("div", div);
    }

    function test_sqrt_matches_rust() public view {
        unary("sqrt", sqrt);
    }

    function test_f32_to_f16_matches_rust() public view {
        unary("f32_to_f16", toF16);
    }

    function test_f16_to_f32_matches_rust() public view {
        unary("f16_to_f32", fromF16);
    }

    function test_bf16_to_f32_matches_rust() public view {
        unary("bf16_to_f32", fromBF16);
    }

    /// Ties go to the even neighbour: 1 + 2**-24 is halfway between 1 and 1 + 2**-23 and rounds
    /// down to 1; (1 + 2**-23) + 2**-24 rounds up to 1 + 2**-22.
    function test_ties_go_to_even() public pure {
        assertEq(SwornF32.add(0x3F800000, 0x33800000), 0x3F800000, "1 + 2^-24");
        assertEq(SwornF32.add(0x3F800001, 0x33800000), 0x3F800002, "(1 + 2^-23) + 2^-24");
    }
}
