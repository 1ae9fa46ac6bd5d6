//! Verdicts of the wrong-result committee (`docs/anchoring.md` section 5): a verifier replays a
//! disputed transcript and signs, as EIP-712 typed data, the output commitment the model really
//! gives. The signing hash is computed here, not asked of the node: a verifier must not sign
//! whatever an RPC endpoint hands it.

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::{eip712_domain, SolStruct};
use serde::{Deserialize, Serialize};
use sworn_attest::hexser;

use super::client::{lower_hex, parse_address, ChainError};

alloy::sol! {
    /// The EIP-712 type the registry's `VERDICT_TYPEHASH` names.
    struct Verdict {
        uint256 dispute;
        bytes32 digest;
        bytes32 replayedOutput;
    }
}

/// The EIP-712 signing hash of a verdict for the registry at `registry` on `chain_id` (domain
/// name "SwornRegistry", version "1").
pub fn signing_hash(
    chain_id: u64,
    registry: Address,
    dispute: u64,
    digest: [u8; 32],
    replayed_output: [u8; 32],
) -> [u8; 32] {
    let domain = eip712_domain! {
        name: "SwornRegistry",
        version: "1",
        chain_id: chain_id,
        verifying_contract: registry,
    };
    let v = Verdict {
        dispute: U256::from(dispute),
        digest: FixedBytes(digest),
        replayedOutput: FixedBytes(replayed_output),
    };
    v.eip712_signing_hash(&domain).0
}

/// A signed verdict, as `sworn challenge verdict` writes it and `sworn challenge resolve` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedVerdict {
    pub chain_id: u64,
    pub registry: String,
    pub dispute: u64,
    #[serde(with = "hexser")]
    pub digest: [u8; 32],
    #[serde(with = "hexser")]
    pub replayed_output: [u8; 32],
    /// The verifier's address.
    pub signer: String,
    /// 65 bytes `r || s || v` (v = 27 or 28), hex.
    #[serde(with = "hexser")]
    pub signature: [u8; 65],
}

impl SignedVerdict {
    /// Signs a verdict with `wallet`.
    pub fn sign(
        wallet: &PrivateKeySigner,
        chain_id: u64,
        registry: Address,
        dispute: u64,
        digest: [u8; 32],
        replayed_output: [u8; 32],
    ) -> Result<SignedVerdict, ChainError> {
        let h = signing_hash(chain_id, registry, dispute, digest, replayed_output);
        let sig = wallet
            .sign_hash_sync(&FixedBytes(h))
            .map_err(|e| ChainError::Other(format!("signing the verdict: {e}")))?;
        Ok(SignedVerdict {
            chain_id,
            registry: lower_hex(&registry),
            dispute,
            digest,
            replayed_output,
            signer: lower_hex(&wallet.address()),
            signature: sig.as_bytes(),
        })
    }

    /// The signer the signature recovers to, checked against the one the verdict names.
    pub fn recover(&self) -> Result<Address, ChainError> {
        let registry = parse_address(&self.registry)?;
        let h = signing_hash(
            self.chain_id,
            registry,
            self.dispute,
            self.digest,
            self.replayed_output,
        );
        let sig = alloy::primitives::Signature::from_raw(&self.signature)
            .map_err(|e| ChainError::Other(format!("verdict signature: {e}")))?;
        let who = sig
            .recover_address_from_prehash(&FixedBytes(h))
            .map_err(|e| ChainError::Other(format!("verdict signature: {e}")))?;
        if who != parse_address(&self.signer)? {
            return Err(ChainError::Other(format!(
                "verdict claims signer {} but is signed by {}",
                self.signer,
                lower_hex(&who)
            )));
        }
        Ok(who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_sign_recover_and_refuse_tampering() {
        let w = super::super::wallet::parse_key(
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .unwrap();
        let reg = parse_address("0x5FbDB2315678afecb367f032d93F642f64180aa3").unwrap();
        let v = SignedVerdict::sign(&w, 31337, reg, 3, [1; 32], [2; 32]).unwrap();
        assert_eq!(v.recover().unwrap(), w.address());
        assert!(v.signature[64] == 27 || v.signature[64] == 28);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<SignedVerdict>(&json).unwrap(), v);
        // Any other dispute, digest, output, chain or registry recovers someone else.
        let mut t = v.clone();
        t.replayed_output[0] ^= 1;
        assert!(t.recover().is_err());
        let mut t = v.clone();
        t.dispute = 4;
        assert!(t.recover().is_err());
        let mut t = v.clone();
        t.chain_id = 1;
        assert!(t.recover().is_err());
        // The domain binds the hash to chain and contract.
        assert_ne!(
            signing_hash(31337, reg, 3, [1; 32], [2; 32]),
            signing_hash(31337, Address::ZERO, 3, [1; 32], [2; 32])
        );
    }
}
