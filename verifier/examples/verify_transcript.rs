//! Check a sworn transcript with nothing but this crate: no model, no engine, no network.
//!
//!     cargo run -p sworn-verifier --example verify_transcript -- TRANSCRIPT OPERATOR_PUBLIC_KEY
//!
//! OPERATOR_PUBLIC_KEY is 64 hex digits, or a file holding them or the operator's public key
//! JSON document. Exit status: 0 valid, 1 invalid, 2 usage or I/O error.

use sworn_verifier::{verify_bytes, PublicKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} TRANSCRIPT OPERATOR_PUBLIC_KEY", args[0]);
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[1]).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", args[1]);
        std::process::exit(2)
    });
    let key_text = std::fs::read_to_string(&args[2]).unwrap_or_else(|_| args[2].clone());
    let key = PublicKey::parse(&key_text).unwrap_or_else(|e| {
        eprintln!("bad public key: {e}");
        std::process::exit(2)
    });
    match verify_bytes(&bytes, &[key]) {
        Ok(v) => {
            let t = &v.transcript;
            println!("VALID");
            println!(
                "  output ({} tokens, {:?}): {:?}",
                t.output.tokens.len(),
                t.output.finish_reason,
                t.output.text
            );
            println!(
                "  model file BLAKE3: {}",
                sworn_attest::hexser::encode(&t.model.file_blake3)
            );
            println!(
                "  engine {} {}, arithmetic {}",
                t.meta.engine, t.meta.engine_version, t.request.spec_version
            );
            println!("  digest {}", sworn_attest::hexser::encode(&v.digest));
        }
        Err(e) => {
            println!("INVALID: {e}");
            std::process::exit(1);
        }
    }
}
