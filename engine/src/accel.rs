//! The device the forward pass runs on when it is not the CPU: with the `cuda` feature, sworn's
//! CUDA kernels on a GPU or on the host shim; without it, nothing, and asking for a device is a
//! clear error (as candle's `dummy_cuda` does). This module is the one place that knows whether
//! the feature is on: the engine calls [`Accelerator`] and writes no `cfg` of its own.
//! It sits above the backends and the forward pass (it runs the latter on the former).

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::model::{Feed, Model};

/// Where the forward pass runs. Every choice computes the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU kernels ([`crate::generate::EngineOptions::isa`], `threads`).
    #[default]
    Cpu,
    /// sworn's CUDA kernels on NVIDIA GPU 0 (feature `cuda`; needs only the driver).
    Cuda,
    /// sworn's CUDA kernels executed on the host by the shim (feature `cuda`): a GPU's
    /// arithmetic without a GPU, for tests and for checking a kernel change. Very slow.
    CudaHostShim,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::CudaHostShim => "cuda-host-shim",
        }
    }
}

/// The weights and kernels of the device the forward pass runs on, or none for the CPU.
pub struct Accelerator {
    #[cfg(feature = "cuda")]
    gpu: Option<crate::backend::cuda::GpuModel>,
}

impl Accelerator {
    /// The CPU: no device.
    pub fn cpu() -> Accelerator {
        Accelerator {
            #[cfg(feature = "cuda")]
            gpu: None,
        }
    }

    /// Opens the device `kind` names and uploads `model`'s weights to it, read from `f` (the
    /// file `model` came from: `model` gives their shapes and layout); nothing for the CPU. The
    /// engine then frees the host copy ([`Model::release_host_weights`]).
    pub fn open<R: std::io::Read + std::io::Seek>(
        kind: DeviceKind,
        f: &mut GgufFile<R>,
        model: &Model,
    ) -> Result<Accelerator> {
        #[cfg(feature = "cuda")]
        {
            use crate::backend::cuda::{
                driver::Gpu, host::HostShim, host::Order, Device, GpuModel,
            };
            let dev: std::sync::Arc<dyn Device> = match kind {
                DeviceKind::Cpu => return Ok(Accelerator { gpu: None }),
                DeviceKind::Cuda => std::sync::Arc::new(Gpu::open(0)?),
                DeviceKind::CudaHostShim => std::sync::Arc::new(HostShim::new(Order::Shuffled(1))),
            };
            tracing::info!(device = %dev.name(), "uploading the weights");
            Ok(Accelerator {
                gpu: Some(GpuModel::upload(dev, f, model)?),
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (f, model);
            match kind {
                DeviceKind::Cpu => Ok(Accelerator {}),
                other => Err(crate::error::EngineError::Unsupported(format!(
                    "--device {}: this build has no CUDA backend (build with --features cuda)",
                    other.name()
                ))),
            }
        }
    }

    /// Runs on the weights already uploaded to a device (tests pick the shim's thread order).
    #[cfg(feature = "cuda")]
    pub fn with_gpu(gpu: crate::backend::cuda::GpuModel) -> Accelerator {
        Accelerator { gpu: Some(gpu) }
    }

    /// The forward pass on the device (see [`crate::forward::forward`]); `None` on the CPU.
    pub fn forward(&self, model: &Model, feeds: &mut [Feed<'_>]) -> Option<Result<Vec<f32>>> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            use crate::backend::Backend;
            let k = crate::backend::cuda::Kernels::new(model, gpu);
            let h = crate::forward::forward(&model.cfg, model.max_context, &k, feeds);
            return Some(h.and_then(|h| k.to_host(h)));
        }
        let _ = (model, feeds);
        None
    }

    /// Logits on the device (see [`crate::forward::logits`]); `None` on the CPU.
    pub fn logits(&self, model: &Model, hidden: &[f32]) -> Option<Result<Vec<f32>>> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            let k = crate::backend::cuda::Kernels::new(model, gpu);
            let n = hidden.len() / model.cfg.d_model;
            let rows = crate::backend::cuda::upload_rows(&k, hidden);
            return Some(rows.and_then(|r| crate::forward::logits(&model.cfg, &k, &r, n)));
        }
        let _ = (model, hidden);
        None
    }

    /// What runs the forward pass, for logs and transcripts; `None` on the CPU.
    pub fn name(&self) -> Option<String> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return Some(gpu.dev.name());
        }
        None
    }
}
