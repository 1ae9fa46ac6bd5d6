// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Test-side tree building (RFC 9162 section 2.1.1 and 2.1.3.1), written from the RFC
/// independently of the contract's verifier.
library MerkleBuilder {
    function leafHash(bytes32 leaf) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), leaf));
    }

    function nodeHash(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    function split(uint256 n) internal pure returns (uint256 k) {
        k = 1;
        while (k * 2 < n) k *= 2;
    }

    function slice(bytes32[] memory a, uint256 from, uint256 to) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](to - from);
        for (uint256 i = from; i < to; i++) {
            out[i - from] = a[i];
        }
    }

    /// MTH(D[n]) for n >= 1.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 1) return leafHash(leaves[0]);
        uint256 k = split(n);
        return nodeHash(root(slice(leaves, 0, k)), root(slice(leaves, k, n)));
    }

    /// PATH(m, D[n]).
    function proof(bytes32[] memory leaves, uint256 m) internal pure returns (bytes32[] memory) {
        uint256 n = leaves.length;
        if (n == 1) return new bytes32[](0);
        uint256 k = split(n);
        bytes32[] memory sub;
        bytes32 sibling;
        if (m < k) {
            sub = proof(slice(leaves, 0, k), m);
            sibling = root(slice(leaves, k, n));
        } else {
            sub = proof(slice(leaves, k, n), m - k);
            sibling = root(slice(leaves, 0, k));
        }
        bytes32[] memory out = new bytes32[](sub.length + 1);
        for (uint256 i = 0; i < sub.length; i++) {
            out[i] = sub[i];
        }
        out[sub.length] = sibling;
        return out;
    }
}
