// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRegistry} from "../src/SwornRegistry.sol";
import {TestBase} from "./Vm.sol";
import {MerkleHarness} from "./SwornRegistry.t.sol";

/// Checks the contract against the Rust implementation (`sworn_attest::anchor` and the transcript
/// digest): `test/vectors/anchoring.json` is written by the Rust test
/// `attest/tests/shared_vectors.rs`, which fails if the file is stale.
contract SharedVectorsTest is TestBase {
    string constant FILE = "test/vectors/anchoring.json";
    /// Inclusion cases in the file (the Rust generator's sizes 1..9, 13, 16 and 17, every index).
    uint256 constant CASES = 45 + 13 + 16 + 17;
    uint256 constant DIGESTS = 4;

    string json;
    MerkleHarness harness;
    SwornRegistry reg;

    struct Case {
        uint256 size;
        uint256 index;
        bytes32 leaf;
        bytes32 root;
        bytes32[] proof;
    }

    function setUp() public {
        json = vm.readFile(FILE);
        harness = new MerkleHarness();
        address[] memory vs = new address[](1);
        vs[0] = address(0xA11CE);
        reg = new SwornRegistry(1 ether, 0.1 ether, 0.01 ether, 1000, 1 days, 1 days, 3 days, vs, 1, address(0));
    }

    function key(string memory list, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".", list, "[", vm.toString(i), "].", field);
    }

    function load(uint256 i) internal view returns (Case memory c) {
        c.size = vm.parseJsonUint(json, key("inclusion", i, "size"));
        c.index = vm.parseJsonUint(json, key("inclusion", i, "index"));
        c.leaf = vm.parseJsonBytes32(json, key("inclusion", i, "leaf"));
        c.root = vm.parseJsonBytes32(json, key("inclusion", i, "root"));
        c.proof = vm.parseJsonBytes32Array(json, key("inclusion", i, "proof"));
    }

    function test_file_has_every_case() public view {
        // Reading one past the end reverts inside the cheat code, so count by the last entry.
        Case memory last = load(CASES - 1);
        assertEq(last.size, 17, "last case is of the 17-leaf tree");
        assertEq(last.index, 16, "and its last leaf");
        bytes32 d = vm.parseJsonBytes32(json, key("digests", DIGESTS - 1, "digest"));
        assertTrue(d != bytes32(0), "digest vectors present");
    }

    function test_every_rust_inclusion_proof_verifies() public view {
        for (uint256 i = 0; i < CASES; i++) {
            Case memory c = load(i);
            assertTrue(harness.verify(c.leaf, c.index, c.size, c.proof, c.root), "Rust proof verifies on-chain");
        }
    }

    /// Any one flipped bit in a Rust-made proof, leaf or root, or a wrong index, is refused.
    function testFuzz_tampered_rust_proofs_fail(uint8 which, uint8 part, uint8 bit) public view {
        Case memory c = load(uint256(which) % CASES);
        bytes32 flip = bytes32(uint256(1) << bit);
        uint256 p = uint256(part) % (c.proof.length + 3);
        if (p < c.proof.length) {
            c.proof[p] ^= flip;
        } else if (p == c.proof.length) {
            c.leaf ^= flip;
        } else if (p == c.proof.length + 1) {
            c.root ^= flip;
        } else {
            vm.assume(c.size > 1);
            c.index = (c.index + 1 + uint256(bit) % (c.size - 1)) % c.size;
        }
        assertTrue(!harness.verify(c.leaf, c.index, c.size, c.proof, c.root), "tampered proof refused");
    }

    function test_transcript_digests_match_rust() public view {
        for (uint256 i = 0; i < DIGESTS; i++) {
            bytes32 d = reg.transcriptDigest(
                vm.parseJsonBytes32(json, key("digests", i, "model")),
                vm.parseJsonBytes32(json, key("digests", i, "request")),
                vm.parseJsonBytes32(json, key("digests", i, "output")),
                vm.parseJsonBytes32(json, key("digests", i, "meta"))
            );
            assertEq(d, vm.parseJsonBytes32(json, key("digests", i, "digest")), "digest of golden transcript");
        }
    }
}
