// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornTrace
/// @notice Keccak-256 Merkle trees over an execution trace (docs/dispute.md §5): leaves of 32
/// binary32 words, in the RFC 6962 / RFC 9162 shape that `SwornMerkle` uses for anchoring (the
/// left subtree holds the largest power of two strictly below the leaf count), with leaf hash
/// `keccak256(0x00 || 32 big-endian words)` and node hash `keccak256(0x01 || left || right)`.
/// Keccak because the EVM hashes with it for 30 gas plus 6 a word, where SHA-256 is a
/// precompile call.
library SwornTrace {
    /// @notice Values per leaf.
    uint256 internal constant WIDTH = 32;

    /// @notice `keccak256(0x00 || words)`, the words as 4 big-endian bytes each.
    function leafHash(uint32[32] memory words) internal pure returns (bytes32 h) {
        assembly {
            // Packed into free memory (not allocated: nothing else runs before the hash). Each
            // store writes a word's 4 bytes and zeros after them, which the next overwrites.
            let buf := mload(0x40)
            mstore8(buf, 0)
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                mstore(add(add(buf, 1), mul(i, 4)), shl(224, mload(add(words, mul(i, 32)))))
            }
            h := keccak256(buf, 129)
        }
    }

    /// @notice `keccak256(0x01 || left || right)`.
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @notice Where a node covering `n >= 2` leaves splits: the largest power of two below `n`.
    function split(uint256 n) internal pure returns (uint256 k) {
        k = 1;
        while (k << 1 < n) {
            k <<= 1;
        }
    }

    /// @notice The root that `proof` gives for a leaf of hash `leaf` as leaf number `index` of a
    /// tree of `size` leaves, and whether the proof has the right shape for that position
    /// (RFC 9162 section 2.1.3.2, without the final comparison).
    function rootFromInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] memory proof)
        internal
        pure
        returns (bool ok, bytes32 r)
    {
        if (index >= size) return (false, bytes32(0));
        uint256 fn = index;
        uint256 sn = size - 1;
        r = leaf;
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

    /// @notice Whether `words` are leaf `index` of the trace of `size` leaves with root `root`.
    function proves(uint32[32] memory words, uint256 index, uint256 size, bytes32[] memory proof, bytes32 root)
        internal
        pure
        returns (bool)
    {
        (bool ok, bytes32 r) = rootFromInclusion(leafHash(words), index, size, proof);
        return ok && r == root;
    }
}
