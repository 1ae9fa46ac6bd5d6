//! Operator keys: Ed25519, stored as a small JSON file with mode 0600. A key file that others can
//! read is refused, as ssh refuses one. The key id is SHA-256 of the public key.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AttestError;
use crate::hexser;
use crate::transcript::{OperatorBinding, Transcript};

/// An operator's signing key.
pub struct OperatorKey {
    key: SigningKey,
}

/// An operator's public key, as third parties hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    algorithm: String,
    #[serde(with = "hexser")]
    secret_key: [u8; 32],
    #[serde(with = "hexser")]
    public_key: [u8; 32],
    #[serde(with = "hexser")]
    key_id: [u8; 32],
}

/// The public key document (`sworn keygen` writes it beside the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyDoc {
    pub algorithm: String,
    #[serde(with = "hexser")]
    pub public_key: [u8; 32],
    #[serde(with = "hexser")]
    pub key_id: [u8; 32],
}

/// Domain tag of the key-possession proof given at registration.
pub const TAG_KEY_BINDING: &[u8] = b"sworn.operator-key.v1\0";

/// What an operator's Ed25519 key signs to prove, at registration, that the registering address
/// holds it: `TAG_KEY_BINDING || u64 chain_id || registry (20 bytes) || operator (20 bytes)`
/// (`docs/anchoring.md` §1.1). Bound to one chain, one registry and one address, so the proof
/// cannot be reused by anyone else.
pub fn key_binding_message(binding: &OperatorBinding) -> Vec<u8> {
    let mut m = TAG_KEY_BINDING.to_vec();
    m.extend_from_slice(&binding.chain_id.to_be_bytes());
    m.extend_from_slice(&binding.registry);
    m.extend_from_slice(&binding.address);
    m
}

/// SHA-256 of a public key's 32 bytes.
pub fn key_id(public: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(public).into()
}

/// Refuses a secret-key file that other users can read (any group or other permission bit):
/// the check every secret key file sworn reads goes through.
pub fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {mode:o} lets others read the secret key; run chmod 600 on it"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

impl OperatorKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<OperatorKey, AttestError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| AttestError::Key {
            path: "<random>".into(),
            why: e.to_string(),
        })?;
        Ok(OperatorKey::from_seed(&seed))
    }

    /// A key from its 32-byte secret (tests use fixed ones).
    pub fn from_seed(seed: &[u8; 32]) -> OperatorKey {
        OperatorKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// Signs `t` in place: sets its operator key id, then the signature over its digest.
    pub fn sign(&self, t: &mut Transcript) {
        t.meta.operator_key_id = self.public().id();
        t.signature = self.key.sign(&t.signing_message()).to_bytes();
    }

    /// The key-possession proof for registering as `binding.address` (see [`key_binding_message`]).
    pub fn sign_binding(&self, binding: &OperatorBinding) -> [u8; 64] {
        self.key.sign(&key_binding_message(binding)).to_bytes()
    }

    /// Writes the key to `path` (created new, mode 0600; never overwrites).
    pub fn save(&self, path: &Path) -> Result<(), AttestError> {
        let public = self.public();
        let doc = SecretFile {
            algorithm: "ed25519".into(),
            secret_key: self.key.to_bytes(),
            public_key: public.to_bytes(),
            key_id: public.id(),
        };
        let json = serde_json::to_string_pretty(&doc).expect("key serializes");
        let io = |source| AttestError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        std::io::Write::write_all(&mut f, json.as_bytes()).map_err(io)?;
        Ok(())
    }

    /// Reads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<OperatorKey, AttestError> {
        let err = |why: String| AttestError::Key {
            path: path.display().to_string(),
            why,
        };
        let io = |source| AttestError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        check_private(&meta).map_err(err)?;
        if meta.len() > 4096 {
            return Err(err("too large to be a key file".into()));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let doc: SecretFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        if doc.algorithm != "ed25519" {
            return Err(err(format!("algorithm {:?}", doc.algorithm)));
        }
        let key = OperatorKey::from_seed(&doc.secret_key);
        if key.public().to_bytes() != doc.public_key || key.public().id() != doc.key_id {
            return Err(err(
                "public key or key id does not match the secret key".into()
            ));
        }
        Ok(key)
    }
}

/// Whether `b` encodes its y coordinate canonically (y < p = 2^255 - 19). RFC 8032 §5.1.3
/// refuses y >= p; `curve25519-dalek` reduces it instead, which would let one key have two
/// encodings (and two key ids).
fn canonical_y(b: &[u8; 32]) -> bool {
    // y >= p exactly when the low 255 bits are 0x7fff…ffed to 0x7fff…ffff.
    let top = b[31] & 0x7f == 0x7f;
    let middle = b[1..31].iter().all(|&x| x == 0xff);
    !(top && middle && b[0] >= 0xed)
}

impl PublicKey {
    /// Decodes a public key as RFC 8032 §5.1.3 does, refusing a non-canonical y.
    pub fn from_bytes(b: &[u8; 32]) -> Result<PublicKey, AttestError> {
        if !canonical_y(b) {
            return Err(AttestError::Key {
                path: "<public key>".into(),
                why: "non-canonical encoding (y is not below 2^255 - 19), refused as RFC 8032 \
                      §5.1.3 does"
                    .into(),
            });
        }
        VerifyingKey::from_bytes(b)
            .map(|key| PublicKey { key })
            .map_err(|e| AttestError::Key {
                path: "<public key>".into(),
                why: e.to_string(),
            })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// SHA-256 of the public key.
    pub fn id(&self) -> [u8; 32] {
        key_id(&self.to_bytes())
    }

    pub fn to_hex(&self) -> String {
        hexser::encode(&self.to_bytes())
    }

    /// Parses 64 hex digits, or the JSON public key document.
    pub fn parse(s: &str) -> Result<PublicKey, AttestError> {
        let s = s.trim();
        let bad = |why: String| AttestError::Key {
            path: "<public key>".into(),
            why,
        };
        if s.starts_with('{') {
            let doc: PublicKeyDoc = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
            let k = PublicKey::from_bytes(&doc.public_key)?;
            if doc.algorithm != "ed25519" || k.id() != doc.key_id {
                return Err(bad("document's algorithm or key id is wrong".into()));
            }
            return Ok(k);
        }
        PublicKey::from_bytes(&hexser::decode::<32>(s).map_err(bad)?)
    }

    pub fn doc(&self) -> PublicKeyDoc {
        PublicKeyDoc {
            algorithm: "ed25519".into(),
            public_key: self.to_bytes(),
            key_id: self.id(),
        }
    }

    /// Checks a transcript's signature (strict Ed25519, `docs/transcript.md` §4).
    pub fn verify(&self, t: &Transcript) -> Result<(), AttestError> {
        self.verify_message(&t.signing_message(), &t.signature)
            .map_err(|_| AttestError::Signature("does not verify under the operator key".into()))
    }

    /// Checks a key-possession proof for `binding` (see [`key_binding_message`]).
    pub fn verify_binding(
        &self,
        binding: &OperatorBinding,
        proof: &[u8; 64],
    ) -> Result<(), AttestError> {
        self.verify_message(&key_binding_message(binding), proof)
            .map_err(|_| {
                AttestError::Signature(
                    "the key-possession proof does not verify for this chain, registry and operator"
                        .into(),
                )
            })
    }

    /// Strict Ed25519: RFC 8032 with a canonical `S`, and neither the key nor `R` of small order.
    fn verify_message(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), ()> {
        let sig = Signature::from_bytes(signature);
        self.key.verify_strict(message, &sig).map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Non-canonical y (p to 2^255 - 1) is refused, with either sign bit; the largest
    /// canonical y is not refused for its encoding.
    #[test]
    fn non_canonical_public_keys_are_refused() {
        for low in [0xed, 0xee, 0xff] {
            for sign in [0x7f, 0xff] {
                let mut b = [0xff; 32];
                b[0] = low;
                b[31] = sign;
                let e = PublicKey::from_bytes(&b).unwrap_err().to_string();
                assert!(e.contains("non-canonical"), "{e}");
            }
        }
        let mut edge = [0xff; 32];
        edge[0] = 0xec;
        edge[31] = 0x7f;
        assert!(canonical_y(&edge));
        let k = OperatorKey::from_seed(&[1; 32]).public();
        assert_eq!(PublicKey::from_bytes(&k.to_bytes()).unwrap().id(), k.id());
    }
}
