//! Every golden vector (made on x86 with the AVX2 kernels) verifies and replays bit for bit on
//! this machine's own kernels: the check that carries determinism across CPUs. CI runs it on x86
//! and, cross-compiled, on aarch64 under qemu (`scripts/ci/test-aarch64.sh`), where the hashes of
//! every step's logits must be x86's.
#![cfg(feature = "replay")]

use std::path::{Path, PathBuf};

use sworn_attest::PublicKey;
use sworn_engine::Isa;
use sworn_engine::{DeviceKind, Engine, EngineOptions};
use sworn_verifier::replay::replay_with;
use sworn_verifier::{parse, verify};

/// The workspace root, without a `..` (which WASI runtimes refuse to resolve).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the verifier is inside the workspace")
        .to_path_buf()
}

/// The model from `var`, or a loud skip; a failure when `SWORN_REQUIRE_MODEL=1`.
fn model(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
    {
        Some(p) => Some(p),
        None if std::env::var("SWORN_REQUIRE_MODEL").as_deref() == Ok("1") => {
            panic!("SWORN_REQUIRE_MODEL=1 but {var} is not set to an existing file")
        }
        None => {
            eprintln!("!!! SKIPPED golden replay: set {var} (scripts/test.sh does) !!!");
            None
        }
    }
}

/// The kernels to replay on: this CPU's best and the portable ones (what a CPU without SIMD
/// kernels runs), or `SWORN_REPLAY_ISAS` (comma-separated names such as `cpu-neon`, or
/// `detected`), which the emulated legs use to avoid replaying on the same kernels twice.
fn isas() -> Vec<Isa> {
    let Ok(names) = std::env::var("SWORN_REPLAY_ISAS") else {
        let mut isas = vec![Isa::detect()];
        if isas[0] != Isa::Portable {
            isas.push(Isa::Portable);
        }
        return isas;
    };
    names
        .split(',')
        .map(|n| match n {
            "detected" => Isa::detect(),
            _ => Isa::from_name(n).unwrap_or_else(|| panic!("SWORN_REPLAY_ISAS: unknown {n:?}")),
        })
        .collect()
}

/// `SWORN_REPLAY_DEVICE=cuda-host-shim` replays on sworn's CUDA kernels executed on the host
/// (feature `cuda`): the proof, without a GPU, that the GPU's kernels reproduce the vectors.
fn device() -> DeviceKind {
    match std::env::var("SWORN_REPLAY_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => DeviceKind::Cpu,
        Ok("cuda-host-shim") => DeviceKind::CudaHostShim,
        Ok("cuda") => DeviceKind::Cuda,
        Ok(other) => panic!("SWORN_REPLAY_DEVICE: unknown {other:?}"),
    }
}

#[test]
fn every_golden_vector_replays_bit_for_bit_on_this_cpu() {
    let doc = std::fs::read_to_string(root().join("tests/vectors/operator.pub.json")).unwrap();
    let key = PublicKey::parse(&doc).unwrap();
    // SWORN_GOLDEN_MODELS=smollm2 limits the run to SmolLM2's vectors (emulated runs).
    let only = std::env::var("SWORN_GOLDEN_MODELS").unwrap_or_default();
    for (var, prefix) in [("SWORN_MODEL", ""), ("SWORN_GEMMA", "gemma3-")] {
        let family = if prefix.is_empty() {
            "smollm2"
        } else {
            "gemma3"
        };
        if !only.is_empty() && !only.split(',').any(|m| m == family) {
            eprintln!("!!! SKIPPED {family} golden replays (SWORN_GOLDEN_MODELS={only}) !!!");
            continue;
        }
        let Some(path) = model(var) else {
            continue;
        };
        for isa in isas() {
            let opts = EngineOptions {
                threads: 2,
                isa: Some(isa),
                device: device(),
                ..Default::default()
            };
            let (engine, manifest) = Engine::load_with_manifest(&path, &opts).unwrap();
            eprintln!("{family}: replaying on {}", engine.backend_name());
            // SWORN_GOLDEN_KINDS=greedy-text,... limits the vectors (the slow host-shim leg).
            let kinds = std::env::var("SWORN_GOLDEN_KINDS").unwrap_or_default();
            for kind in ["greedy-text", "greedy-chat", "sampled-text", "sampled-chat"] {
                if !kinds.is_empty() && !kinds.split(',').any(|k| k == kind) {
                    eprintln!("!!! SKIPPED {prefix}{kind} (SWORN_GOLDEN_KINDS={kinds}) !!!");
                    continue;
                }
                let name = format!("{prefix}{kind}.json");
                let bytes = std::fs::read(root().join("tests/vectors").join(&name)).unwrap();
                let t = parse(&bytes, Default::default()).unwrap();
                verify(t.clone(), &[key]).unwrap_or_else(|e| panic!("{name}: {e}"));
                let r = replay_with(&t, &engine, manifest.clone()).unwrap();
                assert!(r.ok(), "{name} on {}: {}", isa.name(), r.reason());
            }
        }
    }
}
