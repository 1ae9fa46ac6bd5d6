//! An NVIDIA GPU as a [`Device`], through the CUDA driver API (`cudarc`, loading `libcuda` at run
//! time, so a build needs neither the toolkit nor the driver). Kernels come from the PTX that
//! `scripts/gen/build-ptx.py` compiled with the pinned NVRTC and the build embedded
//! (`engine/cuda/ptx/`); the driver JIT-compiles it for the GPU at hand.
//!
//! Everything runs on the context's legacy default stream, so launches run in order and a
//! download waits for them.

use std::ffi::{c_void, CString};

use cudarc::driver::{result, sys};

use crate::devmem::{Arg, Device, Shape};
use crate::error::{EngineError, Result};

/// The PTX for compute capability 8.0 (runs on 8.x and 9.x by JIT) and 9.0.
/// The kernels for compute capability 8.0, which the driver JIT-compiles for the GPU at hand
/// (8.x, 9.x and later: PTX is forward compatible). A PTX per later target would differ in its
/// `.target` line alone, since the kernels use nothing newer than 8.0.
const PTX: &str = include_str!("../../../cuda/ptx/sm_80.ptx");

/// The kernels every backend launches (those in `engine/cuda/kernels.cu`).
pub const KERNELS: [&str; 14] = [
    "quantize_q8",
    "qmatvec",
    "qmatmul",
    "f32matmul",
    "embed",
    "rmsnorm",
    "rope",
    "attention",
    "silu_mul",
    "gelu_mul",
    "add",
    "scale",
    "add_rows",
    "store_kv",
];

/// GPU 0 with sworn's kernels loaded.
pub struct Gpu {
    ctx: sys::CUcontext,
    functions: Vec<(&'static str, sys::CUfunction)>,
    name: String,
}

// SAFETY: a CUDA context and its functions may be used from any thread once made current there,
// which every method does first.
unsafe impl Send for Gpu {}
unsafe impl Sync for Gpu {}

fn err(what: &str, e: impl std::fmt::Debug) -> EngineError {
    EngineError::Device(format!("{what}: {e:?}"))
}

impl Gpu {
    /// Opens GPU `ordinal`. Fails with a clear message when no driver or no GPU is present.
    pub fn open(ordinal: i32) -> Result<Gpu> {
        // SAFETY: only probes for the library; loads nothing else.
        if !unsafe { sys::is_culib_present() } {
            return Err(EngineError::Device(
                "no NVIDIA driver: libcuda could not be loaded (install the driver, or run on \
                 the CPU with --device cpu)"
                    .into(),
            ));
        }
        result::init().map_err(|e| err("initializing the CUDA driver", e))?;
        let count = result::device::get_count().map_err(|e| err("counting GPUs", e))?;
        if ordinal >= count {
            return Err(EngineError::Device(format!(
                "no CUDA GPU {ordinal}: the driver sees {count}"
            )));
        }
        let dev = result::device::get(ordinal).map_err(|e| err("opening the GPU", e))?;
        let cap = |a| {
            // SAFETY: `dev` is a valid device handle.
            unsafe { result::device::get_attribute(dev, a) }.map_err(|e| err("querying the GPU", e))
        };
        let major = cap(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = cap(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        if major < 8 {
            return Err(EngineError::Device(format!(
                "GPU compute capability {major}.{minor}: sworn's kernels need 8.0 or later"
            )));
        }
        let gpu_name = result::device::get_name(dev).map_err(|e| err("naming the GPU", e))?;
        // SAFETY: `dev` is valid; the primary context is retained for the process's life.
        let ctx = unsafe { result::primary_ctx::retain(dev) }.map_err(|e| err("context", e))?;
        // SAFETY: `ctx` was just retained.
        unsafe { result::ctx::set_current(ctx) }.map_err(|e| err("context", e))?;
        let image = CString::new(PTX).map_err(|e| err("PTX", e))?;
        // SAFETY: a NUL-terminated PTX image; the context is current.
        let module = unsafe { result::module::load_data(image.as_ptr() as *const c_void) }
            .map_err(|e| err("loading the kernels' PTX", e))?;
        let mut functions = Vec::new();
        for k in KERNELS {
            let n = CString::new(k).map_err(|e| err("kernel name", e))?;
            // SAFETY: `module` is loaded and alive for the process.
            let f = unsafe { result::module::get_function(module, n) }
                .map_err(|e| err(&format!("kernel {k}"), e))?;
            functions.push((k, f));
        }
        Ok(Gpu {
            ctx,
            functions,
            name: format!("cuda sm_{major}{minor} {gpu_name} (ptx sm_80)"),
        })
    }

    fn current(&self) -> Result<()> {
        // SAFETY: `ctx` is retained for the life of `self`.
        unsafe { result::ctx::set_current(self.ctx) }.map_err(|e| err("context", e))
    }
}

impl Device for Gpu {
    fn alloc(&self, bytes: usize) -> Result<u64> {
        self.current()?;
        // SAFETY: plain allocation on the current context, zeroed before use.
        unsafe {
            let p = result::malloc_sync(bytes.max(1))
                .map_err(|e| err(&format!("allocating {bytes} bytes on the GPU"), e))?;
            result::memset_d8_sync(p, 0, bytes.max(1)).map_err(|e| err("zeroing", e))?;
            Ok(p)
        }
    }

    fn free(&self, ptr: u64, _bytes: usize) {
        if self.current().is_ok() {
            // SAFETY: `ptr` came from `alloc` and is freed once (DevBuf's drop).
            let _ = unsafe { result::free_sync(ptr) };
        }
    }

    fn upload(&self, dst: u64, src: &[u8]) -> Result<()> {
        self.current()?;
        // SAFETY: `dst` holds at least `src.len()` bytes (DevBuf).
        unsafe { result::memcpy_htod_sync(dst, src) }.map_err(|e| err("copy to the GPU", e))
    }

    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()> {
        self.current()?;
        // SAFETY: as above.
        unsafe { result::memcpy_dtoh_sync(dst, src) }.map_err(|e| err("copy from the GPU", e))
    }

    fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        self.current()?;
        // SAFETY: both hold `bytes` bytes.
        unsafe { result::memcpy_dtod_sync(dst, src, bytes) }.map_err(|e| err("copy on the GPU", e))
    }

    fn launch(&self, kernel: &str, shape: Shape, args: &[Arg]) -> Result<()> {
        self.current()?;
        let f = self
            .functions
            .iter()
            .find(|(n, _)| *n == kernel)
            .map(|(_, f)| *f)
            .ok_or_else(|| EngineError::Device(format!("no kernel {kernel}")))?;
        let mut slots: Vec<[u8; 8]> = args.iter().map(|a| a.bytes()).collect();
        let mut params: Vec<*mut c_void> = slots
            .iter_mut()
            .map(|s| s.as_mut_ptr() as *mut c_void)
            .collect();
        let [gx, gy, gz] = shape.grid;
        // SAFETY: one parameter slot per kernel parameter, in the kernel's order; the device
        // addresses among them are live allocations sized for what the kernel touches.
        unsafe {
            result::launch_kernel(
                f,
                (gx, gy, gz),
                (shape.block, 1, 1),
                0,
                std::ptr::null_mut(),
                &mut params,
            )
        }
        .map_err(|e| err(&format!("launching {kernel}"), e))
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
