//! Kernel dispatch: the scalar reference or a fast path chosen at run time, and the thread-level
//! split of matrix products by output rows (never by reduction).

pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod avx2;

use crate::canon::quant::QActs;
use crate::qmatrix::QMatrix;
use rayon::prelude::*;

/// Which implementation of the kernels runs. Every choice computes the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The scalar reference: the spec, plainly.
    Scalar,
    /// x86-64 AVX2 + F16C.
    Avx2,
}

impl Isa {
    /// The fastest implementation this CPU supports (checked at run time, so one binary runs
    /// everywhere).
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// A short name for logs and transcripts.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "cpu-scalar",
            Isa::Avx2 => "cpu-avx2",
        }
    }

    /// Quantizes every row of `x` (`cols` wide) into `out`.
    pub fn quantize_rows(self, x: &[f32], cols: usize, out: &mut QActs) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only constructed by `detect` after checking the CPU.
            Isa::Avx2 => unsafe { avx2::quantize_rows(x, cols, out) },
            _ => scalar::quantize_rows(x, cols, out),
        }
    }

    /// RMSNorm of each `w.len()`-wide row of `x` into `y`.
    pub fn rmsnorm(self, x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
        let n = w.len();
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            match self {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Isa::Avx2 => unsafe { avx2::rmsnorm_row(xr, w, eps, yr) },
                _ => scalar::rmsnorm_row(xr, w, eps, yr),
            }
        }
    }

    /// `h = silu(g) * u` elementwise.
    pub fn silu_mul(self, g: &[f32], u: &[f32], h: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; lengths are multiples of 8 (checked at model load).
            Isa::Avx2 => unsafe { avx2::silu_mul(g, u, h) },
            _ => scalar::silu_mul(g, u, h),
        }
    }

    /// One attention head for one query; see `scalar::attend`.
    #[allow(clippy::too_many_arguments)]
    pub fn attend(
        self,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        n: usize,
        stride: usize,
        off: usize,
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; head_dim is a multiple of 8 and at most 256 (checked at load).
            Isa::Avx2 => unsafe { avx2::attend(q, keys, values, n, stride, off, scale, scores, out) },
            _ => scalar::attend(q, keys, values, n, stride, off, scale, scores, out),
        }
    }

    /// Outputs of row group `g` of `w` for activation rows `t0..t1`.
    #[allow(clippy::too_many_arguments)]
    fn matmul_group(
        self,
        w: &QMatrix,
        g: usize,
        xq: &QActs,
        xf: &[f32],
        t0: usize,
        t1: usize,
        out: OutPtr,
    ) {
        let stride = w.rows;
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU checked by `detect`; `out` covers `t1 * stride` floats and each
            // (t, row) of this group is written by this call only.
            Isa::Avx2 => unsafe { avx2::matmul_group(w, g, xq, xf, t0, t1, out.0, stride) },
            _ => {
                let r0 = g * crate::qmatrix::GROUP;
                let r1 = (r0 + crate::qmatrix::GROUP).min(w.rows);
                for t in t0..t1 {
                    for r in r0..r1 {
                        let v = scalar::dot_row(w, r, xq, xf, t);
                        // SAFETY: as above.
                        unsafe { *out.0.add(t * stride + r) = v };
                    }
                }
            }
        }
    }
}

/// A raw output pointer shared by the tasks of one parallel matrix product. Each task writes a
/// disjoint set of indices.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements; the owning slice outlives the parallel region.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Runs kernels on a fixed number of threads.
pub struct Runner {
    pub isa: Isa,
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl Runner {
    /// A runner with `threads` worker threads (1 runs everything on the calling thread).
    pub fn new(isa: Isa, threads: usize) -> Result<Runner, rayon::ThreadPoolBuildError> {
        let threads = threads.max(1);
        let pool = if threads > 1 {
            Some(rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("sworn-kernel-{i}")).build()?)
        } else {
            None
        };
        Ok(Runner { isa, pool, threads })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for `i in 0..n` across the threads. Results must not depend on which thread
    /// runs which `i`; callers write disjoint outputs.
    pub fn for_each(&self, n: usize, f: impl Fn(usize) + Sync + Send) {
        match &self.pool {
            None => (0..n).for_each(f),
            Some(pool) => pool.install(|| (0..n).into_par_iter().for_each(f)),
        }
    }

    /// `outs[i] = mats[i] * x` for every matrix, in one parallel region (e.g. Q, K and V).
    /// `x` is given as f32 rows (`xf`) and, for quantized matrices, as their quantization `xq`.
    pub fn matmul_many(&self, mats: &[&QMatrix], xq: &QActs, xf: &[f32], tokens: usize, outs: &mut [&mut Vec<f32>]) {
        let mut tasks: Vec<(usize, usize)> = Vec::new();
        let mut ptrs = Vec::with_capacity(mats.len());
        for (i, (m, o)) in mats.iter().zip(outs.iter_mut()).enumerate() {
            o.resize(tokens * m.rows, 0.0);
            ptrs.push(OutPtr(o.as_mut_ptr()));
            tasks.extend((0..m.groups()).map(|g| (i, g)));
        }
        let isa = self.isa;
        // Split large token counts too, so that prefill keeps every thread busy.
        let tchunk = if tokens > 32 && tasks.len() < 4 * self.threads { 32 } else { tokens.max(1) };
        let tchunks = tokens.div_ceil(tchunk).max(1);
        self.for_each(tasks.len() * tchunks, |k| {
            let (i, g) = tasks[k / tchunks];
            let t0 = (k % tchunks) * tchunk;
            let t1 = (t0 + tchunk).min(tokens);
            isa.matmul_group(mats[i], g, xq, xf, t0, t1, ptrs[i]);
        });
    }
}
