//! The host shim as a [`Device`]: memory is host memory, and a launch runs the kernel's CUDA C
//! source, compiled for the host (`engine/cuda/shim/`), block by block with its threads as
//! fibers. Slow (a CPU emulating a GPU's threads one at a time), but the same source and the same
//! arithmetic: what the tests use to prove the kernels bit-exact without a GPU.

use std::alloc::Layout;
use std::ffi::{c_char, c_void, CString};

use crate::devmem::{Arg, Device, Shape};
use crate::error::{EngineError, Result};

extern "C" {
    fn sworn_shim_launch(
        name: *const c_char,
        gx: u32,
        gy: u32,
        gz: u32,
        bx: u32,
        by: u32,
        bz: u32,
        args: *mut *mut c_void,
        order: u32,
        err: *mut c_char,
        errlen: usize,
    ) -> i32;
    fn sworn_shim_kernels(names: *mut *const c_char, cap: u32) -> u32;
}

/// The order in which the shim runs a block's threads between synchronization points, and the
/// grid's blocks. A correct kernel gives the same bits in every order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
    /// A pseudo-random permutation per block and per round, from this seed.
    Shuffled(u32),
}

impl Order {
    fn code(self) -> u32 {
        match self {
            Order::Ascending => 0,
            Order::Descending => 1,
            Order::Shuffled(s) => 2 + s,
        }
    }
}

/// The kernels on the host.
#[derive(Debug)]
pub struct HostShim {
    pub order: Order,
}

const ALIGN: usize = 256;

impl HostShim {
    pub fn new(order: Order) -> HostShim {
        HostShim { order }
    }

    /// The names of the kernels the shim can run.
    pub fn kernels() -> Vec<String> {
        let mut names = vec![std::ptr::null(); 64];
        // SAFETY: the shim writes at most `cap` static C strings.
        let n = unsafe { sworn_shim_kernels(names.as_mut_ptr(), names.len() as u32) } as usize;
        names
            .iter()
            .take(n)
            // SAFETY: the names are NUL-terminated literals in the shim.
            .map(|&p| {
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

fn layout(bytes: usize) -> Result<Layout> {
    Layout::from_size_align(bytes.max(1), ALIGN)
        .map_err(|e| EngineError::Device(format!("allocating {bytes} bytes: {e}")))
}

impl Device for HostShim {
    fn alloc(&self, bytes: usize) -> Result<u64> {
        let l = layout(bytes)?;
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(l) };
        if p.is_null() {
            return Err(EngineError::Device(format!(
                "out of memory for {bytes} bytes"
            )));
        }
        Ok(p as u64)
    }

    fn free(&self, ptr: u64, bytes: usize) {
        if let Ok(l) = layout(bytes) {
            // SAFETY: `ptr` came from `alloc` with this size (DevBuf keeps both).
            unsafe { std::alloc::dealloc(ptr as *mut u8, l) }
        }
    }

    fn upload(&self, dst: u64, src: &[u8]) -> Result<()> {
        // SAFETY: `dst` is a live allocation of at least `src.len()` bytes (DevBuf checks).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()> {
        // SAFETY: as for `upload`.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        // SAFETY: as for `upload`; distinct allocations.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    fn launch(&self, kernel: &str, shape: Shape, args: &[Arg]) -> Result<()> {
        let mut slots: Vec<[u8; 8]> = args.iter().map(|a| a.bytes()).collect();
        let mut ptrs: Vec<*mut c_void> = slots
            .iter_mut()
            .map(|s| s.as_mut_ptr() as *mut c_void)
            .collect();
        let name = CString::new(kernel).map_err(|_| EngineError::Device("kernel name".into()))?;
        let mut err = vec![0 as c_char; 512];
        let [gx, gy, gz] = shape.grid;
        // SAFETY: `ptrs` points at one slot per kernel parameter, in order, as the kernel's
        // signature expects (the backend builds them from the same signatures); every pointer
        // argument is a live host allocation sized for what the kernel touches.
        let rc = unsafe {
            sworn_shim_launch(
                name.as_ptr(),
                gx,
                gy,
                gz,
                shape.block,
                1,
                1,
                ptrs.as_mut_ptr(),
                self.order.code(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            // SAFETY: the shim NUL-terminates its message within the buffer.
            let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
            return Err(EngineError::Device(format!(
                "{kernel} on the host shim: {}",
                msg.to_string_lossy()
            )));
        }
        Ok(())
    }

    fn name(&self) -> String {
        "cuda-kernels on the host shim".into()
    }
}
