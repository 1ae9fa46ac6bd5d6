//! `sworn keygen` (an operator's Ed25519 key) and `sworn api-key` (the keys `serve --api-keys`
//! accepts).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::{default_key_path, hex, public_doc_path, write_new_key};

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key [default: DATA_DIR/operator.key]; the public key goes beside it
    /// as KEY.pub.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn keygen(a: KeygenArgs) -> Result<i32> {
    let path = a.out.unwrap_or_else(default_key_path);
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a key",
            path.display()
        );
    }
    let key = write_new_key(&path)?;
    println!("key:        {}", path.display());
    println!("public key: {}", key.public().to_hex());
    println!("key id:     {}", hex(&key.public().id()));
    println!("public doc: {}", public_doc_path(&path).display());
    Ok(0)
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Draw a new key, print it (once: only its SHA-256 is stored) and add it to FILE.
    Add(ApiKeyAddArgs),
}

#[derive(Args)]
pub struct ApiKeyAddArgs {
    /// The key file (JSON, mode 0600; created if absent).
    #[arg(long)]
    file: PathBuf,
    /// Who holds the key: names its attestations' owner, in logs and errors.
    #[arg(long)]
    name: String,
    /// Requests of this key queued or running at once.
    #[arg(long, default_value_t = 4)]
    max_concurrent: usize,
    /// Prompt plus completion tokens per minute.
    #[arg(long, default_value_t = 60_000)]
    tokens_per_minute: u64,
}

pub fn api_key(c: ApiKeyCommand) -> Result<i32> {
    match c {
        ApiKeyCommand::Add(a) => {
            let key = sworn::server::auth::add_key(
                &a.file,
                &a.name,
                a.max_concurrent.max(1),
                a.tokens_per_minute.max(1),
            )?;
            println!("{key}");
            eprintln!(
                "added key {:?} to {} (only its SHA-256 is stored: keep the key now)",
                a.name,
                a.file.display()
            );
            Ok(0)
        }
    }
}
