//! What sworn's CUDA kernels need from a device: memory, copies and kernel launches by name. Two
//! devices provide it: an NVIDIA GPU through the driver
//! ([`crate::backend::cuda::driver::Gpu`]), and the host shim that runs the same kernel sources
//! on the CPU ([`crate::backend::cuda::host::HostShim`]), which is how the kernels are tested on
//! machines without a GPU. And the memory a sequence keeps there: its keys and values.

use std::sync::Arc;

use crate::error::{EngineError, Result};

/// A kernel parameter, as `cuLaunchKernel` takes it (pointers are device addresses).
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Ptr(u64),
    I32(i32),
    F32(f32),
}

impl Arg {
    /// The parameter's bytes (8 for a pointer, 4 otherwise), in a slot of 8.
    pub(crate) fn bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        match self {
            Arg::Ptr(p) => b = p.to_ne_bytes(),
            Arg::I32(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
            Arg::F32(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
        }
        b
    }
}

/// A launch shape: blocks in the grid and threads per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub grid: [u32; 3],
    pub block: u32,
}

/// A device that runs sworn's kernels.
pub trait Device: Send + Sync {
    /// `bytes` of zeroed device memory (at least 256-byte aligned).
    fn alloc(&self, bytes: usize) -> Result<u64>;
    /// Frees what [`Device::alloc`] gave.
    fn free(&self, ptr: u64, bytes: usize);
    fn upload(&self, dst: u64, src: &[u8]) -> Result<()>;
    /// Waits for every launch before it, then copies.
    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()>;
    fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result<()>;
    fn launch(&self, kernel: &str, shape: Shape, args: &[Arg]) -> Result<()>;
    /// What runs the kernels, for logs and transcripts (`cuda sm_90 NVIDIA H200`).
    fn name(&self) -> String;
}

/// Device memory, freed when dropped.
pub struct DevBuf {
    dev: Arc<dyn Device>,
    pub ptr: u64,
    pub bytes: usize,
}

impl std::fmt::Debug for DevBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevBuf({:#x}, {} bytes)", self.ptr, self.bytes)
    }
}

impl DevBuf {
    /// `bytes` of zeroed memory on `dev` (one byte at least, so every buffer has an address).
    pub fn new(dev: &Arc<dyn Device>, bytes: usize) -> Result<DevBuf> {
        let bytes = bytes.max(1);
        Ok(DevBuf {
            dev: dev.clone(),
            ptr: dev.alloc(bytes)?,
            bytes,
        })
    }

    /// A buffer holding `data`.
    pub fn from_bytes(dev: &Arc<dyn Device>, data: &[u8]) -> Result<DevBuf> {
        let b = DevBuf::new(dev, data.len())?;
        dev.upload(b.ptr, data)?;
        Ok(b)
    }

    pub fn from_f32(dev: &Arc<dyn Device>, data: &[f32]) -> Result<DevBuf> {
        DevBuf::from_bytes(dev, &f32_bytes(data))
    }

    pub fn device(&self) -> &Arc<dyn Device> {
        &self.dev
    }

    /// A copy in new memory.
    pub fn duplicate(&self) -> Result<DevBuf> {
        let b = DevBuf::new(&self.dev, self.bytes)?;
        self.dev.copy(b.ptr, self.ptr, self.bytes)?;
        Ok(b)
    }

    /// The first `n` f32 values.
    pub fn read_f32(&self, n: usize) -> Result<Vec<f32>> {
        let mut raw = vec![0u8; n * 4];
        if n * 4 > self.bytes {
            return Err(EngineError::Device(format!(
                "reading {n} floats from a buffer of {} bytes",
                self.bytes
            )));
        }
        self.dev.download(self.ptr, &mut raw)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        self.dev.free(self.ptr, self.bytes);
    }
}

/// Little-endian bytes of f32 values (the engine runs on little-endian machines only).
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One sequence's keys and values in device memory: per layer, rows of `kv_dim` floats.
#[derive(Debug)]
pub struct DevKv {
    pub(crate) k: Vec<DevBuf>,
    pub(crate) v: Vec<DevBuf>,
    /// Rows each layer's buffers hold room for, and rows filled.
    pub(crate) cap: usize,
    pub(crate) rows: Vec<usize>,
    pub(crate) row_bytes: usize,
}

impl DevKv {
    pub(crate) fn new(
        dev: &Arc<dyn Device>,
        layers: usize,
        kvd: usize,
        cap: usize,
    ) -> Result<DevKv> {
        let row_bytes = kvd * 4;
        let alloc = || -> Result<Vec<DevBuf>> {
            (0..layers)
                .map(|_| DevBuf::new(dev, cap * row_bytes))
                .collect()
        };
        Ok(DevKv {
            k: alloc()?,
            v: alloc()?,
            cap,
            rows: vec![0; layers],
            row_bytes,
        })
    }

    /// Room for `rows` rows in every layer, keeping what is there.
    pub(crate) fn reserve(&mut self, rows: usize) -> Result<()> {
        if rows <= self.cap {
            return Ok(());
        }
        let cap = rows.max(2 * self.cap).max(16);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            let bigger = DevBuf::new(buf.device(), cap * self.row_bytes)?;
            buf.device()
                .copy(bigger.ptr, buf.ptr, self.cap * self.row_bytes)?;
            *buf = bigger;
        }
        self.cap = cap;
        Ok(())
    }
}

impl DevKv {
    /// Forgets everything after the first `n` positions.
    pub fn truncate(&mut self, n: usize) {
        self.rows.iter_mut().for_each(|r| *r = (*r).min(n));
    }
}

impl Clone for DevKv {
    fn clone(&self) -> DevKv {
        // A sequence is cloned to fork it; device memory that cannot be copied leaves the copy
        // empty, and its next step fails with a clear error rather than reading shared rows.
        let dup = |bs: &[DevBuf]| bs.iter().map(DevBuf::duplicate).collect::<Result<Vec<_>>>();
        match (dup(&self.k), dup(&self.v)) {
            (Ok(k), Ok(v)) => DevKv {
                k,
                v,
                cap: self.cap,
                rows: self.rows.clone(),
                row_bytes: self.row_bytes,
            },
            _ => DevKv {
                k: Vec::new(),
                v: Vec::new(),
                cap: 0,
                rows: Vec::new(),
                row_bytes: self.row_bytes,
            },
        }
    }
}
