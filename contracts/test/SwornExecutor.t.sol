// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornExecutor} from "../src/SwornExecutor.sol";
import {SwornLayout} from "../src/SwornLayout.sol";
import {VectorTest} from "./Vectors.sol";

/// The one-step executor against the engine's own traces (`sworn_engine::trace::vectors`:
/// synthetic Llama, K-quant, Gemma 3, Qwen 2 and Qwen 3 models, every executable kind of step on
/// the first and last layers): each word recomputed on chain from its proven inputs and weight
/// rows is the engine's, and the layout's size is the engine's.
contract SwornExecutorTest is VectorTest {
    SwornExecutor exec;

    function setUp() public {
        exec = new SwornExecutor();
    }

    struct File {
        bytes data;
        SwornExecutor.Context x;
        bytes32 root;
        uint256 leaves;
        uint32[] tokens;
        uint256 cases;
        uint256 at;
    }

    function hashAt(bytes memory d, uint256 off) internal pure returns (bytes32 h) {
        assembly {
            h := mload(add(add(d, 32), off))
        }
    }

    function open(string memory name) internal view returns (File memory f) {
        f.data = vectors(name);
        uint256[13] memory w;
        for (uint256 i = 0; i < 13; i++) {
            w[i] = word(f.data, 4 * i);
        }
        f.x.shape = SwornLayout.Shape(
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11] == 1, uint32(w[12])
        );
        f.root = hashAt(f.data, 52);
        f.leaves = word(f.data, 84);
        f.x.weights = hashAt(f.data, 88);
        f.x.penalty = word(f.data, 120);
        f.x.lastN = word(f.data, 124);
        uint256 n = word(f.data, 128);
        f.tokens = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            f.tokens[i] = word(f.data, 132 + 4 * i);
        }
        f.x.tokens = exec.tokensHash(f.tokens);
        f.cases = word(f.data, 132 + 4 * n);
        f.at = 136 + 4 * n;
    }

    /// The proof of `n` hashes at `o`.
    function proofAt(bytes memory d, uint256 o, uint256 n) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](n);
        for (uint256 j = 0; j < n; j++) {
            p[j] = hashAt(d, o + 32 * j);
        }
    }

    /// The leaves of the case at `o`, and the offset after them.
    function leavesAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Leaf[] memory leaves, uint256) {
        uint256 n = word(d, o);
        o += 4;
        leaves = new SwornExecutor.Leaf[](n);
        for (uint256 k = 0; k < n; k++) {
            leaves[k].index = word(d, o);
            for (uint256 j = 0; j < 32; j++) {
                leaves[k].words[j] = word(d, o + 4 + 4 * j);
            }
            uint256 np = word(d, o + 132);
            leaves[k].proof = proofAt(d, o + 136, np);
            o += 136 + 32 * np;
        }
        return (leaves, o);
    }

    /// The weight rows of the case at `o`, and the offset after them.
    function weightsAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Weight[] memory ws, uint256) {
        uint256 n = word(d, o);
        o += 4;
        ws = new SwornExecutor.Weight[](n);
        for (uint256 k = 0; k < n; k++) {
            SwornExecutor.Weight memory w = ws[k];
            (w.slot, w.code, w.rows, w.cols, w.row) =
            (word(d, o), word(d, o + 4), word(d, o + 8), word(d, o + 12), word(d, o + 16));
            uint256 nb = word(d, o + 20);
            w.data = new bytes(nb);
            for (uint256 j = 0; j < nb; j++) {
                w.data[j] = d[o + 24 + j];
            }
            o += 24 + ((nb + 3) / 4) * 4;
            uint256 np = word(d, o);
            w.rowProof = proofAt(d, o + 4, np);
            o += 4 + 32 * np;
            np = word(d, o);
            w.slotProof = proofAt(d, o + 4, np);
            o += 4 + 32 * np;
        }
        return (ws, o);
    }

    /// Reads the case at `f.at` and advances past it: its element, value and witness.
    function next(File memory f) internal pure returns (uint256 element, uint32 value, bytes memory witness) {
        bytes memory d = f.data;
        element = word(d, f.at);
        value = word(d, f.at + 4);
        (SwornExecutor.Leaf[] memory leaves, uint256 o) = leavesAt(d, f.at + 8);
        SwornExecutor.Weight[] memory ws;
        (ws, o) = weightsAt(d, o);
        uint32[] memory tokens = word(d, o) == 1 ? f.tokens : new uint32[](0);
        f.at = o + 4;
        witness = abi.encode(f.x, leaves, ws, tokens);
    }

    function check(string memory name) internal view {
        File memory f = open(name);
        assertEq(SwornLayout.words(f.x.shape), f.leaves * 32, "the layout's size is the engine's");
        bytes32 context = exec.contextOf(f.x);
        for (uint256 i = 0; i < f.cases; i++) {
            (uint256 element, uint32 value, bytes memory witness) = next(f);
            uint32 got = exec.execute(context, f.root, f.leaves, element, witness);
            if (got != value) {
                SwornLayout.Region memory r = SwornLayout.locate(f.x.shape, element);
                revert(
                    string.concat(
                        name,
                        ": element ",
                        vm.toString(element),
                        " of kind ",
                        vm.toString(r.kind),
                        ".",
                        vm.toString(r.sub),
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

    function test_k_quant_steps_match_the_engine() public view {
        check("trace_kquants");
    }

    function test_qwen2_steps_match_the_engine() public view {
        check("trace_qwen2");
    }

    function test_qwen3_steps_match_the_engine() public view {
        check("trace_qwen3");
    }
}
