//! Writes the float vectors the Solidity executors are checked on (`sworn_engine::float_vectors`)
//! into a folder: `cargo run --release -p sworn-engine --example float-vectors -- DIR`.
//! `scripts/contracts.sh` runs it before `forge test`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "contracts/test/vectors/f32".into());
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in sworn_engine::float_vectors::generate() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    eprintln!("wrote the float vectors to {}", dir.display());
    Ok(())
}
