// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornExecutor} from "../src/SwornExecutor.sol";
import {SwornLayout} from "../src/SwornLayout.sol";
import {VectorTest} from "./Vectors.sol";

/// The one-step executor against the engine's own traces (`sworn_engine::trace::vectors`:
/// synthetic Llama and Gemma 3 models, every executable kind of step on the first and last
/// layers): each word recomputed on chain from its proven inputs is the engine's, and the
/// layout's size is the engine's.
contract SwornExecutorTest is VectorTest {
    SwornExecutor exec;

    function setUp() public {
        exec = new SwornExecutor();
    }

    struct File {
        bytes data;
        SwornLayout.Shape shape;
        bytes32 root;
        uint256 leaves;
        uint256 cases;
        uint256 at;
    }

    function open(string memory name) internal view returns (File memory f) {
        f.data = vectors(name);
        uint256[13] memory w;
        for (uint256 i = 0; i < 13; i++) {
            w[i] = word(f.data, 4 * i);
        }
        f.shape = SwornLayout.Shape(
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11] == 1, uint32(w[12])
        );
        bytes memory d = f.data;
        bytes32 r;
        assembly {
            r := mload(add(add(d, 32), 52))
        }
        f.root = r;
        f.leaves = word(f.data, 84);
        f.cases = word(f.data, 88);
        f.at = 92;
    }

    /// Reads the case at `f.at` and advances past it: its element, value and witness.
    function next(File memory f) internal pure returns (uint256 element, uint32 value, bytes memory witness) {
        bytes memory d = f.data;
        element = word(d, f.at);
        value = word(d, f.at + 4);
        uint256 n = word(d, f.at + 8);
        uint256 o = f.at + 12;
        SwornExecutor.Leaf[] memory leaves = new SwornExecutor.Leaf[](n);
        for (uint256 k = 0; k < n; k++) {
            leaves[k].index = word(d, o);
            for (uint256 j = 0; j < 32; j++) {
                leaves[k].words[j] = word(d, o + 4 + 4 * j);
            }
            uint256 np = word(d, o + 132);
            leaves[k].proof = new bytes32[](np);
            for (uint256 j = 0; j < np; j++) {
                bytes32 h;
                uint256 off = o + 136 + 32 * j;
                assembly {
                    h := mload(add(add(d, 32), off))
                }
                leaves[k].proof[j] = h;
            }
            o += 136 + 32 * np;
        }
        f.at = o;
        witness = abi.encode(f.shape, leaves);
    }

    function check(string memory name) internal view {
        File memory f = open(name);
        assertEq(SwornLayout.words(f.shape), f.leaves * 32, "the layout's size is the engine's");
        bytes32 context = exec.contextOf(f.shape);
        for (uint256 i = 0; i < f.cases; i++) {
            (uint256 element, uint32 value, bytes memory witness) = next(f);
            SwornLayout.Region memory r = SwornLayout.locate(f.shape, element);
            uint32 got = exec.execute(context, f.root, f.leaves, element, witness);
            if (got != value) {
                revert(
                    string.concat(
                        name,
                        ": element ",
                        vm.toString(element),
                        " of kind ",
                        vm.toString(r.kind),
                        " gives ",
                        vm.toString(uint256(got)),
                        ", the engine ",
                        vm.toString(uint256(value))
                    )
                );
            }
        }
        assertEq(f.at, f.data.length, "every case read");
    }

    function test_llama_steps_match_the_engine() public view {
        check("trace_llama");
    }

    function test_gemma3_steps_match_the_engine() public view {
        check("trace_gemma3");
    }
}
