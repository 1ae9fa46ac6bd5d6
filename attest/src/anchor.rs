//! The SHA-256 Merkle tree that anchors batches of transcript digests on Ethereum, and the
//! inclusion proofs a client keeps to show that a transcript was anchored.
//!
//! The tree has the RFC 6962 / RFC 9162 shape (`docs/anchoring.md` section 2): leaf hash
//! `SHA-256(0x00 || digest)`, node hash `SHA-256(0x01 || left || right)`, and for `n > 1` leaves
//! the left subtree holds the largest power of two strictly below `n`. SHA-256, not BLAKE3,
//! because the contract recomputes roots with the EVM's SHA-256 precompile. The contract's
//! `SwornMerkle` library is the on-chain twin of [`root_from_inclusion`]; both are checked against
//! the vectors in `contracts/test/MerkleVectors.sol`, which this crate's tests generate.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::Limits;
use crate::error::AttestError;
use crate::hexser;
use crate::transcript::{Commitments, Transcript};

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(leaf)
        .finalize()
        .into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two strictly below `n` (`n >= 2`): the left subtree's size.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (RFC 9162 section 2.1.1), or `None` for no leaves: an
/// empty batch is never anchored.
pub fn root(leaves: &[[u8; 32]]) -> Option<[u8; 32]> {
    (!leaves.is_empty()).then(|| subtree_root(leaves))
}

fn subtree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        1 => leaf_hash(&leaves[0]),
        n => {
            let k = split(n);
            node_hash(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` (RFC 9162 section 2.1.3.1): sibling hashes from the leaf
/// up. `None` if `index` is out of range.
pub fn inclusion_proof(leaves: &[[u8; 32]], index: usize) -> Option<Vec<[u8; 32]>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    subtree_path(leaves, index, &mut path);
    Some(path)
}

fn subtree_path(leaves: &[[u8; 32]], index: usize, path: &mut Vec<[u8; 32]>) {
    let n = leaves.len();
    if n == 1 {
        return;
    }
    let k = split(n);
    if index < k {
        subtree_path(&leaves[..k], index, path);
        path.push(subtree_root(&leaves[k..]));
    } else {
        subtree_path(&leaves[k..], index - k, path);
        path.push(subtree_root(&leaves[..k]));
    }
}

/// The root that `proof` gives for `leaf` as leaf `index` of a tree of `size` leaves, or `None`
/// if the proof has the wrong length for that position (RFC 9162 section 2.1.3.2, without the
/// final comparison). The contract's `SwornMerkle.rootFromInclusion` does exactly this.
pub fn root_from_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf_hash(leaf);
    for p in proof {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

/// Whether `proof` shows `leaf` at `index` of the `size`-leaf tree with root `root`.
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    root_from_inclusion(leaf, index, size, proof).as_ref() == Some(root)
}

/// The four commitments of a transcript, in the form anchoring documents carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentsDoc {
    #[serde(with = "hexser")]
    pub model: [u8; 32],
    #[serde(with = "hexser")]
    pub request: [u8; 32],
    #[serde(with = "hexser")]
    pub output: [u8; 32],
    #[serde(with = "hexser")]
    pub meta: [u8; 32],
}

impl From<Commitments> for CommitmentsDoc {
    fn from(c: Commitments) -> Self {
        CommitmentsDoc {
            model: c.model,
            request: c.request,
            output: c.output,
            meta: c.meta,
        }
    }
}

impl From<CommitmentsDoc> for Commitments {
    fn from(c: CommitmentsDoc) -> Self {
        Commitments {
            model: c.model,
            request: c.request,
            output: c.output,
            meta: c.meta,
        }
    }
}

/// Where a transcript is anchored and the proof of it: everything the registry's `Claim` needs
/// (`docs/anchoring.md` section 3). It names the registry by chain id and address so that a proof
/// cannot be checked against the wrong chain by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorProof {
    pub chain_id: u64,
    /// The registry contract, `0x` and 40 hex digits.
    pub registry: String,
    /// The operator's Ethereum address, `0x` and 40 hex digits.
    pub operator: String,
    pub batch: u64,
    pub index: u64,
    pub batch_size: u64,
    /// The batch's block timestamp, as its `Anchored` event gave it.
    pub anchored_at: u64,
    #[serde(with = "hexser")]
    pub root: [u8; 32],
    pub commitments: CommitmentsDoc,
    /// Sibling hashes from the leaf up, lowercase hex.
    #[serde(with = "hex_list")]
    pub proof: Vec<[u8; 32]>,
}

/// Proofs longer than this cannot be right: a batch holds fewer than 2^64 leaves.
pub const MAX_PROOF_LEN: usize = 64;

impl AnchorProof {
    /// The anchored transcript's digest.
    pub fn digest(&self) -> [u8; 32] {
        Commitments::from(self.commitments).digest()
    }

    /// Whether the proof takes the digest to `root` (the on-chain part, that the registry holds
    /// this root for this batch, is the caller's to check).
    pub fn verifies(&self) -> bool {
        self.proof.len() <= MAX_PROOF_LEN
            && verify_inclusion(
                &self.digest(),
                self.index,
                self.batch_size,
                &self.proof,
                &self.root,
            )
    }
}

/// A transcript together with the proof that it was anchored: what `sworn proof` prints and
/// `sworn verify --rpc` checks. JSON: `{"transcript": <transcript JSON>, "anchor": <AnchorProof>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchoredTranscript {
    pub transcript: Transcript,
    pub anchor: AnchorProof,
}

impl AnchoredTranscript {
    /// Pairs a transcript with its proof; refused if the proof is about another transcript.
    pub fn new(transcript: Transcript, anchor: AnchorProof) -> Result<Self, AttestError> {
        if Commitments::from(anchor.commitments) != transcript.commitments() {
            return Err(AttestError::Inconsistent(
                "the anchor proof is for another transcript (its commitments differ)".into(),
            ));
        }
        Ok(AnchoredTranscript { transcript, anchor })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "transcript": self.transcript.to_json(),
            "anchor": self.anchor,
        })
    }

    /// Parses the JSON form, or returns `Ok(None)` if `text` is not a bundle (a plain
    /// transcript, say). The transcript inside is held to `limits` like any other.
    pub fn parse(text: &str, limits: Limits) -> Result<Option<Self>, AttestError> {
        if text.len() > limits.max_bytes {
            return Err(AttestError::TooLarge {
                size: text.len(),
                max: limits.max_bytes,
            });
        }
        let mut o = match crate::strict_json::parse(text) {
            Ok(serde_json::Value::Object(o)) => o,
            Ok(_) => return Ok(None),
            // A document with a key twice is refused, whatever it claims to be.
            Err(e) if crate::strict_json::is_duplicate_key(&e) => {
                return Err(AttestError::Json(e.to_string()))
            }
            Err(_) => return Ok(None),
        };
        if !(o.len() == 2 && o.contains_key("transcript") && o.contains_key("anchor")) {
            return Ok(None);
        }
        let anchor: AnchorProof = serde_json::from_value(o.remove("anchor").unwrap_or_default())
            .map_err(|e| AttestError::Json(format!("anchor: {e}")))?;
        // Already parsed (strictly) with the bundle: read from the value, not from its text again.
        let transcript =
            Transcript::from_json_value(o.remove("transcript").unwrap_or_default(), limits)?;
        AnchoredTranscript::new(transcript, anchor).map(Some)
    }
}

mod hex_list {
    use serde::{de::Error, Deserialize, Deserializer};

    pub use crate::hexser::list::serialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let v: Vec<String> = Vec::deserialize(d)?;
        if v.len() > super::MAX_PROOF_LEN {
            return Err(D::Error::custom(format!(
                "proof of {} hashes (at most {})",
                v.len(),
                super::MAX_PROOF_LEN
            )));
        }
        v.iter()
            .map(|s| crate::hexser::decode::<32>(s).map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n as u32)
            .map(|i| Sha256::digest(i.to_le_bytes()).into())
            .collect()
    }

    /// A proof document for `c` as leaf `index` of an `n`-leaf batch of test leaves.
    fn proof_at(c: Commitments, n: usize, index: usize) -> AnchorProof {
        let mut l = leaves(n);
        l[index] = c.digest();
        AnchorProof {
            chain_id: 31337,
            registry: format!("0x{}", "ab".repeat(20)),
            operator: format!("0x{}", "cd".repeat(20)),
            batch: 7,
            index: index as u64,
            batch_size: n as u64,
            anchored_at: 1_700_000_000,
            root: root(&l).unwrap(),
            commitments: c.into(),
            proof: inclusion_proof(&l, index).unwrap(),
        }
    }

    /// Plain recursive RFC 9162 reference for the proof: the path computed from first
    /// principles (the audit path definition with explicit subtree ranges).
    fn reference_path(leaves: &[[u8; 32]], m: usize) -> Vec<[u8; 32]> {
        if leaves.len() <= 1 {
            return vec![];
        }
        let mut k = 1;
        while k * 2 < leaves.len() {
            k *= 2;
        }
        if m < k {
            let mut p = reference_path(&leaves[..k], m);
            p.push(root(&leaves[k..]).unwrap());
            p
        } else {
            let mut p = reference_path(&leaves[k..], m - k);
            p.push(root(&leaves[..k]).unwrap());
            p
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for n in 2..1000usize {
            let k = split(n);
            assert!(k.is_power_of_two() && k < n && 2 * k >= n, "n={n} k={k}");
        }
    }

    #[test]
    fn small_trees_by_hand() {
        let l = leaves(3);
        assert_eq!(root(&[]), None);
        assert_eq!(root(&l[..1]), Some(leaf_hash(&l[0])));
        let ab = node_hash(&leaf_hash(&l[0]), &leaf_hash(&l[1]));
        assert_eq!(root(&l[..2]), Some(ab));
        assert_eq!(root(&l), Some(node_hash(&ab, &leaf_hash(&l[2]))));
        assert_eq!(inclusion_proof(&l, 2).unwrap(), vec![ab]);
        assert_eq!(
            inclusion_proof(&l, 0).unwrap(),
            vec![leaf_hash(&l[1]), leaf_hash(&l[2])]
        );
    }

    #[test]
    fn every_proof_verifies_and_every_tamper_fails() {
        for n in 1..=40usize {
            let l = leaves(n);
            let r = root(&l).unwrap();
            for m in 0..n {
                let p = inclusion_proof(&l, m).unwrap();
                assert_eq!(p, reference_path(&l, m), "n={n} m={m}");
                assert!(verify_inclusion(&l[m], m as u64, n as u64, &p, &r));
                // Wrong index, leaf, length, or any flipped bit: refused.
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(!verify_inclusion(&l[m], other as u64, n as u64, &p, &r));
                    assert!(!verify_inclusion(&l[other], m as u64, n as u64, &p, &r));
                }
                // (A proof may also fit a tree of another size; that is harmless because the
                // size is the anchored batch's, bound into the on-chain batch word.)
                for (i, h) in p.iter().enumerate() {
                    let mut bad = p.clone();
                    bad[i] = {
                        let mut x = *h;
                        x[(i * 7) % 32] ^= 1 << (i % 8);
                        x
                    };
                    assert!(!verify_inclusion(&l[m], m as u64, n as u64, &bad, &r));
                }
                let mut longer = p.clone();
                longer.push(r);
                assert!(root_from_inclusion(&l[m], m as u64, n as u64, &longer).is_none());
                if !p.is_empty() {
                    assert!(
                        root_from_inclusion(&l[m], m as u64, n as u64, &p[..p.len() - 1]).is_none()
                    );
                }
            }
            assert!(inclusion_proof(&l, n).is_none());
            assert!(root_from_inclusion(&l[0], n as u64, n as u64, &[]).is_none());
        }
    }

    #[test]
    fn proof_document_round_trips_and_refuses_garbage() {
        let c = Commitments {
            model: [1; 32],
            request: [2; 32],
            output: [3; 32],
            meta: [4; 32],
        };
        let doc = proof_at(c, 5, 3);
        assert!(doc.verifies());
        let json = serde_json::to_string(&doc).unwrap();
        let back: AnchorProof = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
        let mut wrong = doc.clone();
        wrong.commitments.output[0] ^= 1;
        assert!(!wrong.verifies());
        let long = json.replace(
            "\"proof\":[",
            &format!(
                "\"proof\":[{}",
                format!("\"{}\",", "00".repeat(32)).repeat(65)
            ),
        );
        assert!(serde_json::from_str::<AnchorProof>(&long).is_err());
        let odd = json.replace("\"batch\":7", "\"batch\":7,\"extra\":1");
        assert!(serde_json::from_str::<AnchorProof>(&odd).is_err());
    }

    #[test]
    fn bundles_pair_a_transcript_with_its_own_proof_only() {
        let t = crate::transcript::tests::sample();
        let proof = proof_at(t.commitments(), 3, 1);
        let b = AnchoredTranscript::new(t.clone(), proof.clone()).unwrap();
        let text = b.to_json().to_string();
        let back = AnchoredTranscript::parse(&text, Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(back, b);
        // A plain transcript is not a bundle; a bundle with another transcript's proof is refused.
        let plain = t.to_json().to_string();
        assert!(AnchoredTranscript::parse(&plain, Limits::default())
            .unwrap()
            .is_none());
        let mut other = proof;
        other.commitments.output[0] ^= 1;
        assert!(AnchoredTranscript::new(t.clone(), other.clone()).is_err());
        let forged = serde_json::json!({"transcript": t.to_json(), "anchor": other}).to_string();
        assert!(AnchoredTranscript::parse(&forged, Limits::default()).is_err());
        let tiny = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        assert!(AnchoredTranscript::parse(&text, tiny).is_err());
        // A key twice (here the anchor's batch) is refused, not read last-wins.
        let dup = text.replacen("\"batch\":", "\"batch\":0,\"batch\":", 1);
        assert_ne!(dup, text);
        let e = AnchoredTranscript::parse(&dup, Limits::default()).unwrap_err();
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }
}
