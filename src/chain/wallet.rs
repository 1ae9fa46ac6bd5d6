//! The Ethereum account that signs sworn's transactions (and, for a verifier, its verdicts).
//!
//! A private key is read from a file given with `--wallet` (64 hex digits, `0x` optional), or
//! from the `SWORN_WALLET_KEY` environment variable; never from the command line, where other
//! users could read it in the process list. Like the operator's Ed25519 key, a key file that
//! other users can read is refused.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use anyhow::{bail, Context, Result};

/// Environment variable holding a wallet private key when no `--wallet` file is given.
pub const WALLET_ENV: &str = "SWORN_WALLET_KEY";

/// Parses a private key: 64 hex digits, optionally `0x`-prefixed, surrounding white space
/// ignored. The error never echoes the key.
pub fn parse_key(text: &str) -> Result<PrivateKeySigner> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a wallet key is 64 hex digits (optionally 0x-prefixed)");
    }
    t.parse::<PrivateKeySigner>()
        .map_err(|_| anyhow::anyhow!("not a valid secp256k1 private key"))
}

/// Loads the wallet from `path`, else from `$SWORN_WALLET_KEY`.
pub fn load(path: Option<&Path>) -> Result<PrivateKeySigner> {
    match path {
        Some(p) => {
            let meta =
                std::fs::metadata(p).with_context(|| format!("wallet key {}", p.display()))?;
            sworn_attest::keys::check_private(&meta).map_err(|why| {
                anyhow::anyhow!(
                    "wallet key {} is readable by other users: {why}",
                    p.display()
                )
            })?;
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading wallet key {}", p.display()))?;
            parse_key(&text).with_context(|| format!("wallet key {}", p.display()))
        }
        None => match std::env::var(WALLET_ENV) {
            Ok(v) => parse_key(&v).with_context(|| format!("${WALLET_ENV}")),
            Err(_) => bail!("no wallet: give --wallet FILE or set ${WALLET_ENV}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_strictly_and_errors_do_not_echo_them() {
        // anvil's first well-known development key.
        let k = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let a = parse_key(k).unwrap().address();
        assert_eq!(parse_key(&format!(" 0x{k}\n")).unwrap().address(), a);
        assert_eq!(
            format!("{a:?}").to_lowercase(),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        for bad in ["", "0x", &k[1..], &format!("{k}00"), &k.replace('a', "g")] {
            let e = parse_key(bad).unwrap_err().to_string();
            assert!(!e.contains(&k[8..40]), "{e}");
        }
        let zero = "0".repeat(64);
        assert!(parse_key(&zero).is_err());
    }

    #[test]
    fn readable_key_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("sworn-wallet-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("wallet.key");
        std::fs::write(
            &p,
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(Some(&p))
            .unwrap_err()
            .to_string()
            .contains("readable by other users"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(Some(&p)).is_ok());
    }
}
