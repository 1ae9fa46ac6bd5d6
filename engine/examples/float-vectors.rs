//! Writes the vectors the Solidity executors are checked on into a folder: the float vectors
//! (`sworn_engine::float_vectors`) and the trace vectors of the one-step executor
//! (`sworn_engine::trace::vectors`, from synthetic models written to a temporary folder):
//! `cargo run --release -p sworn-engine --example float-vectors -- DIR`.
//! `scripts/contracts.sh` runs it before `forge test`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "contracts/test/vectors/f32".into());
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in sworn_engine::float_vectors::generate() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    let models = std::env::temp_dir().join(format!("sworn-trace-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&models)?;
    let traces = sworn_engine::trace::vectors::generate(&models);
    std::fs::remove_dir_all(&models)?;
    for (name, bytes) in traces? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    eprintln!("wrote the float and trace vectors to {}", dir.display());
    Ok(())
}
