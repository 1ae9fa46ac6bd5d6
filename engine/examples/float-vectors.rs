//! Writes the vectors the Solidity executors are checked on into a folder: the float vectors
//! (`sworn_engine::float_vectors`) and the trace vectors of the one-step executor
//! (`sworn_engine::dispute_vectors`, from synthetic models written to a temporary folder, and
//! from the real models that `SWORN_MODEL` and `SWORN_GEMMA` name):
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
    let traces = sworn_engine::dispute_vectors::generate(&models);
    std::fs::remove_dir_all(&models)?;
    for (name, bytes) in traces? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    // The real models' steps, for the executor's gas on real shapes (SWORN_MODEL: SmolLM2,
    // SWORN_GEMMA: Gemma 3 270M; scripts/contracts.sh fetches both).
    let mut real = Vec::new();
    for (var, name) in [
        ("SWORN_MODEL", "trace_smollm2"),
        ("SWORN_GEMMA", "trace_gemma3_270m"),
    ] {
        if let Some(p) = std::env::var_os(var) {
            real.push((name, std::path::PathBuf::from(p)));
        }
    }
    let refs: Vec<(&str, &std::path::Path)> = real.iter().map(|(n, p)| (*n, p.as_path())).collect();
    for (name, bytes) in sworn_engine::dispute_vectors::generate_real(&refs)? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    // Whole disputes on SmolLM2 (docs/dispute.md §6): a cheating operator at each point
    // against an honest challenger, and an honest operator against a lying challenger.
    if let Some(model) = std::env::var_os("SWORN_MODEL") {
        use sworn_engine::arch::LayerMat;
        use sworn_engine::dispute_vectors::{generate_games, Point};
        use sworn_engine::trace::layout::{Kind, Mat, Norm};
        // Points at the prompt's last position (5), which the first output token is sampled from.
        let d = 576;
        let points = [
            // A Q4_1 product: layer 29's down projection (its outputs are often past 2, where
            // setting exponent bit 5 multiplies by 2^32).
            Point {
                name: "q4_1_product",
                kind: Kind::MatOut {
                    mat: Mat::Layer(LayerMat::Down),
                },
                layer: Some(29),
                index: 5 * d,
                xor: 0x1000_0000,
            },
            // The Q8_0 head: the first token's logit, its sign flipped.
            Point {
                name: "q8_0_head",
                kind: Kind::MatOut { mat: Mat::Head },
                layer: None,
                index: u64::MAX,
                xor: 0x8000_0000,
            },
            // The greedy token itself (step 0's id).
            Point {
                name: "greedy_token",
                kind: Kind::Argmax,
                layer: None,
                index: (192 - 1) * 2 + 1,
                xor: 1,
            },
            // The residual stream entering layer 21.
            Point {
                name: "residual",
                kind: Kind::Residual { ffn: true },
                layer: Some(20),
                index: 5 * d,
                xor: 0x1000_0000,
            },
            // The final norm's output, its sign flipped.
            Point {
                name: "out_norm",
                kind: Kind::NormOut { norm: Norm::Out },
                layer: None,
                index: 5 * d + 17,
                xor: 0x8000_0000,
            },
        ];
        for (name, bytes) in generate_games(model.as_ref(), "smollm2", &points)? {
            std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
        }
    }
    // `bind` on the format-4 golden vectors of each model (tests/vectors).
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    for (var, prefix) in [("SWORN_MODEL", ""), ("SWORN_GEMMA", "gemma3-")] {
        let Some(model) = std::env::var_os(var) else {
            continue;
        };
        let kinds = ["greedy-text", "greedy-chat", "sampled-text", "sampled-chat"];
        let names: Vec<String> = kinds.iter().map(|k| format!("{prefix}{k}")).collect();
        let paths: Vec<std::path::PathBuf> = names
            .iter()
            .map(|n| golden.join(format!("{n}.json")))
            .collect();
        let list: Vec<(&str, &std::path::Path)> = names
            .iter()
            .map(String::as_str)
            .zip(paths.iter().map(|p| p.as_path()))
            .collect();
        for (name, bytes) in sworn_engine::dispute_vectors::generate_bind(model.as_ref(), &list)? {
            std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
        }
    }
    eprintln!("wrote the float and trace vectors to {}", dir.display());
    Ok(())
}
