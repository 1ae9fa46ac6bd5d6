//! The CLI's commands, one module each (`main.rs` parses and dispatches), and what they share:
//! where sworn keeps its data and keys, and the device and kernel choices.

pub mod bench;
pub mod generate;
pub mod keys;
pub mod model;
pub mod serve;
pub mod verify;

use anyhow::{Context, Result};
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use sworn::chain;
use sworn_attest::OperatorKey;
use sworn_engine::DeviceKind;

/// sworn's data directory: `$SWORN_DATA_DIR`, else `$XDG_DATA_HOME/sworn`, else
/// `~/.local/share/sworn`.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SWORN_DATA_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
        })
        .join("sworn")
}

pub fn chain_paths() -> chain::commands::Paths {
    chain::commands::Paths {
        data_dir: data_dir(),
        default_key: default_key_path(),
    }
}

pub fn default_key_path() -> PathBuf {
    data_dir().join("operator.key")
}

/// Writes a new key and its public document; returns the key.
pub fn write_new_key(path: &Path) -> Result<OperatorKey> {
    if let Some(dir) = path.parent() {
        sworn::store::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = OperatorKey::generate()?;
    key.save(path)?;
    let pub_path = public_doc_path(path);
    std::fs::write(
        &pub_path,
        serde_json::to_string_pretty(&key.public().doc())? + "\n",
    )
    .with_context(|| format!("writing {}", pub_path.display()))?;
    Ok(key)
}

pub fn public_doc_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub.json");
    PathBuf::from(s)
}

/// Loads the signing key: `path` if given, else `default` (created on first use).
pub fn signing_key(path: Option<PathBuf>, default: &Path) -> Result<OperatorKey> {
    match path {
        Some(p) => Ok(OperatorKey::load(&p)?),
        None => {
            let p = default.to_path_buf();
            if p.exists() {
                Ok(OperatorKey::load(&p)?)
            } else {
                eprintln!("creating operator key {}", p.display());
                write_new_key(&p)
            }
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    /// The CPU kernels.
    Cpu,
    /// sworn's CUDA kernels on NVIDIA GPU 0.
    Cuda,
    /// sworn's CUDA kernels executed on this CPU by the test shim: a GPU's arithmetic without
    /// a GPU, to check a kernel change. Very slow.
    CudaHostShim,
}

impl From<DeviceArg> for DeviceKind {
    fn from(d: DeviceArg) -> DeviceKind {
        match d {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
            DeviceArg::CudaHostShim => DeviceKind::CudaHostShim,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kernels {
    /// The fastest implementation this CPU supports.
    Auto,
    /// The scalar reference (slow; same bits).
    Scalar,
    /// The portable row-group kernels (any CPU; same bits).
    Portable,
    /// aarch64 NEON without the dotprod extension (to compare with `auto` on a CPU that has it).
    Neon,
}

impl Kernels {
    /// The instruction set to force, or `None` for the engine's choice.
    pub fn isa(self) -> Option<sworn_engine::Isa> {
        use sworn_engine::Isa;
        match self {
            Kernels::Auto => None,
            Kernels::Scalar => Some(Isa::Scalar),
            Kernels::Portable => Some(Isa::Portable),
            Kernels::Neon => Some(Isa::Neon),
        }
    }
}
