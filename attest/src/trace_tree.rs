//! The Merkle tree over a dispute trace (`docs/dispute.md` §5.1): leaves of 32 big-endian
//! 32-bit words, Keccak-256 (what the EVM hashes cheaply), RFC 6962's shape as in
//! [`crate::merkle`]: `leaf = keccak256(0x00 || words)`, `node = keccak256(0x01 || left ||
//! right)`, the left subtree the largest power of two below the leaf count. The contract side is
//! `contracts/src/SwornTrace.sol`; both are checked against the same vectors.

use sha3::{Digest, Keccak256};

/// Words per leaf.
pub const WIDTH: usize = 32;

/// `keccak256(0x00 || words)`, each word big-endian.
pub fn leaf_hash(words: &[u32]) -> [u8; 32] {
    assert_eq!(words.len(), WIDTH, "a trace leaf is 32 words");
    let mut h = Keccak256::new();
    h.update([0u8]);
    for w in words {
        h.update(w.to_be_bytes());
    }
    h.finalize().into()
}

/// `keccak256(0x00 || bytes)`: a leaf of the model's row trees (`docs/dispute.md` §5.5), whose
/// leaves are rows of bytes rather than words.
pub fn bytes_leaf_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// A weight tensor's leaf in the weights tree (`docs/dispute.md` §5.5): `keccak256(0x00 || u32
/// ggml_type || u32 rows || u32 cols || row_root)`, big-endian.
pub fn tensor_leaf(code: u32, rows: u32, cols: u32, row_root: [u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update([0u8]);
    h.update(code.to_be_bytes());
    h.update(rows.to_be_bytes());
    h.update(cols.to_be_bytes());
    h.update(row_root);
    h.finalize().into()
}

/// `keccak256` of 32-byte words laid end to end (what Solidity's `keccak256(abi.encode(...))`
/// gives for a struct of static fields).
pub fn words_hash(words: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for w in words {
        h.update(w);
    }
    h.finalize().into()
}

/// `keccak256(0x01 || left || right)`.
pub fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Where a node over `n >= 2` leaves splits: the largest power of two below `n`.
pub fn split(n: u64) -> u64 {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// A trace's tree, with every perfect aligned subtree's hash kept, so that any node the
/// bisection visits and any inclusion proof is a few hashes away.
#[derive(Debug, Clone)]
pub struct TraceTree {
    /// `levels[k][i]`: the hash of leaves `i 2^k .. (i + 1) 2^k` (whole blocks only).
    levels: Vec<Vec<[u8; 32]>>,
}

impl TraceTree {
    /// The tree over `words` (a whole number of leaves, at least one).
    pub fn new(words: &[u32]) -> TraceTree {
        assert!(
            !words.is_empty() && words.len().is_multiple_of(WIDTH),
            "a trace is a whole number of leaves"
        );
        TraceTree::from_leaf_hashes(words.chunks_exact(WIDTH).map(leaf_hash).collect())
    }

    /// The tree over leaves already hashed (at least one).
    pub fn from_leaf_hashes(leaves: Vec<[u8; 32]>) -> TraceTree {
        assert!(!leaves.is_empty(), "a tree has a leaf");
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level");
            let next = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        TraceTree { levels }
    }

    /// Leaves in the tree.
    pub fn leaves(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The root.
    pub fn root(&self) -> [u8; 32] {
        self.node(0, self.leaves())
    }

    /// The hash of the node over leaves `lo .. hi`, a node of this tree (as the bisection
    /// visits them: aligned, its left part a power of two).
    pub fn node(&self, lo: u64, hi: u64) -> [u8; 32] {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let k = n.trailing_zeros() as usize;
            if let Some(h) = self.levels.get(k).and_then(|l| l.get((lo / n) as usize)) {
                return *h;
            }
        }
        let k = split(n);
        node_hash(&self.node(lo, lo + k), &self.node(lo + k, hi))
    }

    /// The inclusion proof of leaf `m`, the sibling nearest the leaf first (RFC 9162's audit
    /// path).
    pub fn proof(&self, m: u64) -> Vec<[u8; 32]> {
        let mut path = Vec::new();
        self.path(m, 0, self.leaves(), &mut path);
        path
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<[u8; 32]>) {
        if hi - lo == 1 {
            return;
        }
        let k = split(hi - lo);
        if m < lo + k {
            self.path(m, lo, lo + k, out);
            out.push(self.node(lo + k, hi));
        } else {
            self.path(m, lo + k, hi, out);
            out.push(self.node(lo, lo + k));
        }
    }
}

/// The root `proof` gives for a leaf of hash `leaf` at `index` in a tree of `size` leaves, if
/// the proof has the right shape for that position (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    leaf: [u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n_leaves: usize) -> Vec<u32> {
        (0..n_leaves * WIDTH)
            .map(|i| (i as u32).wrapping_mul(2654435761))
            .collect()
    }

    /// The root by the definition, recursively, with no stored levels.
    fn by_definition(w: &[u32]) -> [u8; 32] {
        let n = w.len() / WIDTH;
        if n == 1 {
            return leaf_hash(w);
        }
        let k = split(n as u64) as usize * WIDTH;
        node_hash(&by_definition(&w[..k]), &by_definition(&w[k..]))
    }

    #[test]
    fn roots_nodes_and_proofs_agree_with_the_definition() {
        for n in [1usize, 2, 3, 5, 8, 13, 37, 64, 100] {
            let w = words(n);
            let t = TraceTree::new(&w);
            assert_eq!(t.root(), by_definition(&w), "{n} leaves");
            for m in 0..n as u64 {
                let leaf = leaf_hash(&w[m as usize * WIDTH..][..WIDTH]);
                let p = t.proof(m);
                assert_eq!(root_from_inclusion(leaf, m, n as u64, &p), Some(t.root()));
                // A proof for another position, or of another length, does not verify.
                if n > 1 {
                    let other = (m + 1) % n as u64;
                    assert_ne!(
                        root_from_inclusion(leaf, other, n as u64, &p),
                        Some(t.root())
                    );
                    assert_eq!(
                        root_from_inclusion(leaf, m, n as u64, &p[..p.len() - 1])
                            .filter(|r| *r == t.root()),
                        None
                    );
                }
            }
        }
    }

    #[test]
    fn every_word_changes_the_root() {
        let w = words(5);
        let root = TraceTree::new(&w).root();
        for i in 0..w.len() {
            let mut v = w.clone();
            v[i] ^= 1;
            assert_ne!(TraceTree::new(&v).root(), root, "word {i}");
        }
    }
}
