//! Binary Merkle trees in the RFC 6962 shape (leaf prefix 0x00, node prefix 0x01, the left subtree
//! the largest power of two below the leaf count), over BLAKE3. Used for the per-tensor model
//! commitment and the per-step logits trace; a verifier that recomputes the leaves can name the
//! first one that differs.

/// `BLAKE3(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[0]);
    h.update(leaf);
    *h.finalize().as_bytes()
}

/// `BLAKE3(0x01 || left || right)`.
pub fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(l);
    h.update(r);
    *h.finalize().as_bytes()
}

/// Root over `leaves` (already 32-byte values); the empty tree's root is `BLAKE3("")`.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => *blake3::hash(b"").as_bytes(),
        1 => leaf_hash(&leaves[0]),
        n => {
            let k = largest_power_of_two_below(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (n >= 2).
fn largest_power_of_two_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_sensitivity() {
        let l: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
        let want = node_hash(
            &node_hash(
                &node_hash(&leaf_hash(&l[0]), &leaf_hash(&l[1])),
                &node_hash(&leaf_hash(&l[2]), &leaf_hash(&l[3])),
            ),
            &leaf_hash(&l[4]),
        );
        assert_eq!(root(&l), want);
        for i in 0..5 {
            let mut m = l.clone();
            m[i][7] ^= 1;
            assert_ne!(root(&m), want);
        }
        assert_ne!(root(&l[..4]), root(&l[..5]));
        assert_ne!(root(&[]), root(&[[0; 32]]));
    }
}
