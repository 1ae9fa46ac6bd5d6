// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornMerkle
/// @notice SHA-256 binary Merkle trees in the RFC 6962 / RFC 9162 shape, as sworn anchors them:
/// leaf hash `sha256(0x00 || leaf)`, node hash `sha256(0x01 || left || right)`, the left subtree
/// holding the largest power of two strictly below the leaf count. Specified in
/// `docs/anchoring.md`; the Rust side is `sworn_attest::anchor`, and both are checked against the
/// same vectors.
library SwornMerkle {
    /// @notice `sha256(0x00 || leaf)`.
    function leafHash(bytes32 leaf) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), leaf));
    }

    /// @notice `sha256(0x01 || left || right)`.
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @notice Whether `proof` shows that `leaf` is leaf number `index` of the tree of `size`
    /// leaves whose root is `root` (RFC 9162 section 2.1.3.2).
    function verifyInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        internal
        pure
        returns (bool)
    {
        (bool ok, bytes32 r) = rootFromInclusion(leaf, index, size, proof);
        return ok && r == root;
    }

    /// @notice The root that `proof` gives for `leaf` as leaf number `index` of a tree of `size`
    /// leaves, and whether the proof has the right shape for that position at all (RFC 9162
    /// section 2.1.3.2, without the final comparison).
    function rootFromInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata proof)
        internal
        pure
        returns (bool ok, bytes32 r)
    {
        if (index >= size) return (false, bytes32(0));
        uint256 fn = index;
        uint256 sn = size - 1;
        r = leafHash(leaf);
        for (uint256 i = 0; i < proof.length; i++) {
            if (sn == 0) return (false, bytes32(0));
            if (fn & 1 == 1 || fn == sn) {
                r = nodeHash(proof[i], r);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = nodeHash(r, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return (sn == 0, r);
    }
}
