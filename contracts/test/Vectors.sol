// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {TestBase} from "./Vm.sol";

/// What the tests on the engine's generated vectors share (`test/vectors/f32/`, written by
/// `sworn_engine::float_vectors`): the case count and big-endian word reads.
abstract contract VectorTest is TestBase {
    uint256 constant CASES = 10_000;

    /// The big-endian 32-bit word at `offset` of `data`.
    function word(bytes memory data, uint256 offset) internal pure returns (uint32 w) {
        assembly {
            w := shr(224, mload(add(add(data, 32), offset)))
        }
    }

    /// The file `test/vectors/f32/NAME.bin`.
    function vectors(string memory name) internal view returns (bytes memory) {
        return vm.readFileBinary(string.concat("test/vectors/f32/", name, ".bin"));
    }
}
