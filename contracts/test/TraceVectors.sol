// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornExecutor} from "../src/SwornExecutor.sol";
import {VectorTest} from "./Vectors.sol";

/// Reading the engine's trace vectors (`sworn_engine::dispute_vectors`: big-endian words,
/// byte strings and proofs prefixed with their length), shared by the executor's and the
/// disputes' tests.
abstract contract TraceVectors is VectorTest {
    /// The 32 bytes at `o`.
    function hashAt(bytes memory d, uint256 o) internal pure returns (bytes32 h) {
        assembly {
            h := mload(add(add(d, 32), o))
        }
    }

    /// A byte string at `o` (its length, then the bytes padded to words), and the offset after.
    function bytesAt(bytes memory d, uint256 o) internal pure returns (bytes memory b, uint256) {
        uint256 n = word(d, o);
        b = new bytes(n);
        for (uint256 i = 0; i < n; i++) {
            b[i] = d[o + 4 + i];
        }
        return (b, o + 4 + ((n + 3) / 4) * 4);
    }

    /// A proof at `o` (its length, then the hashes), and the offset after.
    function proofAt(bytes memory d, uint256 o) internal pure returns (bytes32[] memory p, uint256) {
        uint256 n = word(d, o);
        p = new bytes32[](n);
        for (uint256 j = 0; j < n; j++) {
            p[j] = hashAt(d, o + 4 + 32 * j);
        }
        return (p, o + 4 + 32 * n);
    }

    /// A leaf's 32 words at `o`.
    function wordsAt(bytes memory d, uint256 o) internal pure returns (uint32[32] memory w) {
        for (uint256 j = 0; j < 32; j++) {
            w[j] = word(d, o + 4 * j);
        }
    }

    /// A witness's leaves at `o` (count, then each: index, words, proof), and the offset after.
    function leavesAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Leaf[] memory leaves, uint256) {
        uint256 n = word(d, o);
        o += 4;
        leaves = new SwornExecutor.Leaf[](n);
        for (uint256 k = 0; k < n; k++) {
            leaves[k].index = word(d, o);
            leaves[k].words = wordsAt(d, o + 4);
            (leaves[k].proof, o) = proofAt(d, o + 132);
        }
        return (leaves, o);
    }

    /// A witness's weight rows at `o` (count, then each: slot, type, rows, cols, row, bytes,
    /// row proof, slot proof), and the offset after.
    function weightsAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Weight[] memory ws, uint256) {
        uint256 n = word(d, o);
        o += 4;
        ws = new SwornExecutor.Weight[](n);
        for (uint256 k = 0; k < n; k++) {
            SwornExecutor.Weight memory w = ws[k];
            (w.slot, w.code, w.rows, w.cols, w.row) =
            (word(d, o), word(d, o + 4), word(d, o + 8), word(d, o + 12), word(d, o + 16));
            (w.data, o) = bytesAt(d, o + 20);
            (w.rowProof, o) = proofAt(d, o);
            (w.slotProof, o) = proofAt(d, o);
        }
        return (ws, o);
    }

    /// What `bind` takes of a transcript, at the start of a `bind_*` or `game_*` file: the
    /// model commitment's fields, the execution model, the request body, the output tokens and
    /// the rest of the output body; and the offset after.
    function bindingAt(bytes memory d) internal pure returns (SwornExecutor.Binding memory b, uint256 o) {
        b.model.file = hashAt(d, 0);
        b.model.tensors = hashAt(d, 32);
        b.model.nTensors = word(d, 64);
        b.model.tokenizer = hashAt(d, 68);
        b.model.template = hashAt(d, 100);
        uint256[12] memory e;
        for (uint256 i = 0; i < 12; i++) {
            e[i] = word(d, 132 + 4 * i);
        }
        b.model.exec = SwornExecutor.ExecModel(
            e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11], hashAt(d, 180)
        );
        (b.request, o) = bytesAt(d, 212);
        uint256 n = word(d, o);
        b.output = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            b.output[i] = word(d, o + 4 + 4 * i);
        }
        (b.outputRest, o) = bytesAt(d, o + 4 + 4 * n);
        (b.slots, o) = bytesAt(d, o);
    }
}
