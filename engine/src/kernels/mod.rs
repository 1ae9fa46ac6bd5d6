//! Kernel dispatch: the scalar reference or a fast path chosen at run time, and the thread-level
//! split of matrix products by output rows (never by reduction).

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod pool;
pub mod portable;
pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;
#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
pub mod simd4;

use crate::canon::quant::{QActs, QBlocksMut};
use crate::qmatrix::{QMatrix, WeightKind};
use std::sync::Mutex;

/// Which implementation of the kernels runs. Every choice computes the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The scalar reference: the spec, plainly.
    Scalar,
    /// The row-group kernels in plain Rust, vectorized by the compiler: any CPU.
    Portable,
    /// x86-64 AVX2 + F16C.
    Avx2,
    /// aarch64 NEON (Advanced SIMD, in every aarch64 CPU).
    Neon,
    /// aarch64 NEON with the `dotprod` extension (`sdot`, Armv8.2 and later).
    NeonDot,
    /// WebAssembly SIMD128 (in a module built with `-C target-feature=+simd128`).
    Simd128,
}

/// The 4-lane instruction set this build's `simd4` kernels run on.
#[cfg(target_arch = "aarch64")]
type Lanes4 = neon::Neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type Lanes4 = simd128::Simd128;

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
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                return Isa::NeonDot;
            }
            return Isa::Neon;
        }
        #[allow(unreachable_code)] // on aarch64, which always has NEON
        if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            Isa::Simd128
        } else {
            Isa::Portable
        }
    }

    /// Whether this CPU can run this implementation.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar | Isa::Portable => true,
            Isa::Avx2 => Isa::detect() == Isa::Avx2,
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::NeonDot => Isa::detect() == Isa::NeonDot,
            Isa::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
        }
    }

    /// Whether to take a `simd4` path (NEON, either variant, or SIMD128): requested and
    /// supported. As with [`Isa::avx2`], an entry point that cannot take it runs the scalar
    /// reference.
    #[cfg_attr(
        not(any(
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )),
        allow(dead_code)
    )]
    fn lanes4(self) -> bool {
        matches!(self, Isa::Neon | Isa::NeonDot | Isa::Simd128) && self.is_supported()
    }

    /// Whether to take the AVX2 path: requested and supported. The public kernel entry points
    /// below check this and their slice preconditions, and otherwise run the scalar reference
    /// (which computes the same bits), so no input can make them read out of bounds.
    fn avx2(self) -> bool {
        self == Isa::Avx2 && self.is_supported()
    }

    /// A short name for logs and transcripts.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "cpu-scalar",
            Isa::Portable => "cpu-portable",
            Isa::Avx2 => "cpu-avx2",
            Isa::Neon => "cpu-neon",
            Isa::NeonDot => "cpu-neon-dotprod",
            Isa::Simd128 => "wasm-simd128",
        }
    }

    /// Every implementation, the scalar reference first (supported here or not).
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Portable,
        Isa::Avx2,
        Isa::Neon,
        Isa::NeonDot,
        Isa::Simd128,
    ];

    /// The implementation [`Isa::name`] names.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Quantizes every row of `x` (`cols` wide) into `out`.
    pub fn quantize_rows(self, x: &[f32], cols: usize, out: &mut QActs) {
        out.resize(x.len() / cols, cols);
        self.quantize_blocks(x, out.blocks_mut());
    }

    /// Quantizes `x` block by block into `out`, which has room for every block.
    fn quantize_blocks(self, x: &[f32], out: QBlocksMut) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked; all accesses are bounds-checked slices of 32.
            Isa::Avx2 if self.avx2() => unsafe { avx2::quantize_blocks(x, out) },
            #[cfg(any(
                target_arch = "aarch64",
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            // SAFETY: the instruction set is there; all accesses are bounds-checked slices of 32.
            Isa::Neon | Isa::NeonDot | Isa::Simd128 if self.lanes4() => unsafe {
                simd4::quantize_blocks::<Lanes4>(x, out)
            },
            _ => scalar::quantize_blocks(x, out),
        }
    }

    /// RMSNorm of each `w.len()`-wide row of `x` into `y`.
    pub fn rmsnorm(self, x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
        let n = w.len();
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // the AVX2 arm's guard
        let fast = self.avx2() && n.is_multiple_of(8);
        #[cfg_attr(
            not(any(
                target_arch = "aarch64",
                all(target_arch = "wasm32", target_feature = "simd128")
            )),
            allow(unused_variables)
        )] // the 4-lane arm's guard
        let lanes4 = self.lanes4() && n.is_multiple_of(8);
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            match self {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: CPU support checked; rows are `n` long, a multiple of 8.
                Isa::Avx2 if fast => unsafe { avx2::rmsnorm_row(xr, w, eps, yr) },
                #[cfg(any(
                    target_arch = "aarch64",
                    all(target_arch = "wasm32", target_feature = "simd128")
                ))]
                // SAFETY: as above.
                Isa::Neon | Isa::NeonDot | Isa::Simd128 if lanes4 => unsafe {
                    simd4::rmsnorm_row::<Lanes4>(xr, w, eps, yr)
                },
                _ => scalar::rmsnorm_row(xr, w, eps, yr),
            }
        }
    }

    /// Whether the AVX2 gated activations can run on these slices: every length they read.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn avx2_gated(self, g: &[f32], u: &[f32], h: &[f32]) -> bool {
        self.avx2() && gated_lengths(g, u, h)
    }

    /// Whether the 4-lane gated activations can run on these slices.
    #[cfg_attr(
        not(any(
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )),
        allow(dead_code)
    )]
    fn lanes4_gated(self, g: &[f32], u: &[f32], h: &[f32]) -> bool {
        self.lanes4() && gated_lengths(g, u, h)
    }

    /// `h = silu(g) * u` elementwise.
    pub fn silu_mul(self, g: &[f32], u: &[f32], h: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked; the guard checks every length the loop reads.
            Isa::Avx2 if self.avx2_gated(g, u, h) => unsafe { avx2::silu_mul(g, u, h) },
            #[cfg(any(
                target_arch = "aarch64",
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            // SAFETY: the instruction set is there; the guard checks every length it reads.
            Isa::Neon | Isa::NeonDot | Isa::Simd128 if self.lanes4_gated(g, u, h) => unsafe {
                simd4::silu_mul::<Lanes4>(g, u, h)
            },
            _ => scalar::silu_mul(g, u, h),
        }
    }

    /// `h = gelu(g) * u` elementwise (GeGLU, spec §2.5).
    pub fn gelu_mul(self, g: &[f32], u: &[f32], h: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked; the guard checks every length the loop reads.
            Isa::Avx2 if self.avx2_gated(g, u, h) => unsafe { avx2::gelu_mul(g, u, h) },
            #[cfg(any(
                target_arch = "aarch64",
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            // SAFETY: as for `silu_mul`.
            Isa::Neon | Isa::NeonDot | Isa::Simd128 if self.lanes4_gated(g, u, h) => unsafe {
                simd4::gelu_mul::<Lanes4>(g, u, h)
            },
            _ => scalar::gelu_mul(g, u, h),
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
        let hd = q.len();
        let fits = |m: &[f32]| n == 0 || m.len() >= (n - 1) * stride + off + hd;
        #[cfg_attr(
            not(any(
                target_arch = "x86_64",
                any(
                    target_arch = "aarch64",
                    all(target_arch = "wasm32", target_feature = "simd128")
                )
            )),
            allow(unused_variables)
        )] // the SIMD arms' guard
        let ok = hd.is_multiple_of(8)
            && fits(keys)
            && fits(values)
            && scores.len() >= n
            && out.len() >= hd;
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked; `ok` checks every range the kernel reads or writes.
            Isa::Avx2 if self.avx2() && ok => unsafe {
                avx2::attend(q, keys, values, n, stride, off, scale, scores, out)
            },
            #[cfg(any(
                target_arch = "aarch64",
                all(target_arch = "wasm32", target_feature = "simd128")
            ))]
            // SAFETY: the instruction set is there; `ok` checks every range the kernel reads or
            // writes.
            Isa::Neon | Isa::NeonDot | Isa::Simd128 if self.lanes4() && ok => unsafe {
                simd4::attend::<Lanes4>(q, keys, values, n, stride, off, scale, scores, out)
            },
            _ => scalar::attend(q, keys, values, n, stride, off, scale, scores, out),
        }
    }

    /// Several attention queries against one head's keys and values (same `keys`, `values`,
    /// `stride`, `off` and `scale` as [`Isa::attend`]); each output is bit for bit what
    /// [`Isa::attend`] gives for that query alone. Prefill and replay use it: the AVX2 kernel
    /// reads each block of keys and values once for the whole group.
    #[allow(clippy::too_many_arguments)]
    pub fn attend_many(
        self,
        queries: &mut [Query],
        keys: &[f32],
        values: &[f32],
        stride: usize,
        off: usize,
        scale: f32,
    ) {
        let Some(hd) = queries.first().map(|q| q.q.len()) else {
            return;
        };
        let nmax = queries.iter().map(|q| q.n).max().unwrap_or(0);
        let fits = |m: &[f32]| m.len() >= (nmax - 1) * stride + off + hd;
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // the AVX2 arm's guard
        let ok = nmax >= 1
            && hd.is_multiple_of(8)
            && queries.len() <= avx2_max_tile()
            && queries
                .iter()
                .all(|q| q.q.len() == hd && q.out.len() >= hd && q.n >= 1)
            && fits(keys)
            && fits(values);
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked; `ok` checks every range the kernel reads, the outputs
            // are distinct `&mut` slices of at least `hd`, and the scratch is sized as required.
            Isa::Avx2 if self.avx2() && ok => unsafe {
                let ptrs: Vec<*const f32> = queries.iter().map(|q| q.q.as_ptr()).collect();
                let ns: Vec<usize> = queries.iter().map(|q| q.n).collect();
                let outs: Vec<*mut f32> = queries.iter_mut().map(|q| q.out.as_mut_ptr()).collect();
                let mut scores = vec![0f32; queries.len() * nmax];
                let mut acc = vec![0f32; queries.len() * hd];
                avx2::attend_many(
                    &ptrs,
                    &ns,
                    &outs,
                    hd,
                    keys,
                    values,
                    stride,
                    off,
                    scale,
                    &mut scores,
                    &mut acc,
                )
            },
            _ => {
                let mut scores = vec![0f32; nmax];
                for q in queries.iter_mut() {
                    self.attend(
                        q.q,
                        keys,
                        values,
                        q.n,
                        stride,
                        off,
                        scale,
                        &mut scores,
                        q.out,
                    );
                }
            }
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
            // SAFETY: only a `Runner` calls this, and `Runner::new` checked CPU support; `out`
            // covers `t1 * stride` floats and each (t, row) of this group is written here only.
            Isa::Avx2 => unsafe { avx2::matmul_group(w, g, xq, xf, t0, t1, out.0, stride) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above (NEON is in every aarch64 CPU).
            Isa::Neon => unsafe {
                simd4::matmul_group::<neon::Neon, neon::Plain>(w, g, xq, xf, t0, t1, out.0, stride)
            },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above; `Runner::new` checked the `dotprod` extension.
            Isa::NeonDot => unsafe {
                neon::matmul_group_dotprod(w, g, xq, xf, t0, t1, out.0, stride)
            },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            // SAFETY: as above (SIMD128 is compiled in).
            Isa::Simd128 => unsafe {
                simd4::matmul_group::<simd128::Simd128, simd128::Dot16>(
                    w, g, xq, xf, t0, t1, out.0, stride,
                )
            },
            Isa::Portable if w.kind != WeightKind::F32 => {
                let r0 = g * crate::qmatrix::GROUP;
                let lanes = (w.rows - r0).min(crate::qmatrix::GROUP);
                for t in t0..t1 {
                    let v = portable::group_row(w, g, xq, t);
                    for (l, &x) in v.iter().enumerate().take(lanes) {
                        // SAFETY: as above.
                        unsafe { *out.0.add(t * stride + r0 + l) = x };
                    }
                }
            }
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

/// Whether gated-activation slices fit the SIMD kernels: `g` a multiple of 8 long, `u` and `h`
/// at least as long.
fn gated_lengths(g: &[f32], u: &[f32], h: &[f32]) -> bool {
    g.len().is_multiple_of(8) && u.len() >= g.len() && h.len() >= g.len()
}

/// One query of [`Isa::attend_many`]: `q` attends to keys `0..n`, its head output goes to `out`.
pub struct Query<'a> {
    pub q: &'a [f32],
    pub n: usize,
    pub out: &'a mut [f32],
}

/// Most queries in one [`Isa::attend_many`] call on the AVX2 path.
fn avx2_max_tile() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::MAX_TILE
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        usize::MAX
    }
}

/// A raw output pointer shared by the tasks of one parallel matrix product. Each task writes a
/// disjoint set of indices.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements; the owning slice outlives the parallel region.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Fewest rows in one part of split row-wise work (see [`Runner::rows_per_part`]).
const MIN_PART_ROWS: usize = 8;

/// Activation rows per task of a long matrix product (see [`Runner::matmul_many`]).
const TOKEN_CHUNK: usize = 32;

/// Runs kernels on a fixed number of threads.
pub struct Runner {
    pub isa: Isa,
    pool: pool::Pool,
}

impl Runner {
    /// A runner with `threads` threads in all (1 runs everything on the calling thread). An
    /// implementation this CPU cannot run is refused: the matrix products trust the runner's.
    pub fn new(isa: Isa, threads: usize) -> std::io::Result<Runner> {
        if !isa.is_supported() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("this CPU cannot run the {} kernels", isa.name()),
            ));
        }
        Ok(Runner {
            isa,
            pool: pool::Pool::new(threads.max(1))?,
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `f(i)` for `i in 0..n` across the threads. Results must not depend on which thread
    /// runs which `i`; callers write disjoint outputs.
    pub fn for_each(&self, n: usize, f: impl Fn(usize) + Sync) {
        self.pool.run(n, &f);
    }

    /// Runs `f` once on each part, the parts spread over the threads.
    pub fn each_part<T: Send>(&self, parts: Vec<T>, f: impl Fn(T) + Sync) {
        let slots: Vec<Mutex<Option<T>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
        self.for_each(slots.len(), |i| {
            let part = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(p) = part {
                f(p);
            }
        });
    }

    /// Rows per part when `rows` rows of row-wise work (normalization, quantization, ...) are
    /// split over the threads; all of them when they are too few to be worth it (decoding).
    pub fn rows_per_part(&self, rows: usize) -> usize {
        if rows < 2 * MIN_PART_ROWS || self.threads() == 1 {
            rows.max(1)
        } else {
            rows.div_ceil(4 * self.threads()).max(MIN_PART_ROWS)
        }
    }

    /// [`Isa::quantize_rows`], rows split over the threads. Each block is quantized on its own,
    /// so the split changes nothing.
    pub fn quantize_rows(&self, x: &[f32], cols: usize, out: &mut QActs) {
        let rows = x.len() / cols;
        out.resize(rows, cols);
        let per = self.rows_per_part(rows);
        let parts: Vec<_> = x.chunks(per * cols).zip(out.row_parts(per)).collect();
        let isa = self.isa;
        self.each_part(parts, |(x, o)| isa.quantize_blocks(x, o));
    }

    /// [`Isa::rmsnorm`], rows split over the threads.
    pub fn rmsnorm(&self, x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
        let n = w.len().max(1);
        let per = self.rows_per_part(x.len() / n) * n;
        let parts: Vec<_> = x.chunks(per).zip(y.chunks_mut(per)).collect();
        let isa = self.isa;
        self.each_part(parts, |(x, y)| isa.rmsnorm(x, w, eps, y));
    }

    /// [`Isa::silu_mul`] over rows of `cols` elements, rows split over the threads.
    pub fn silu_mul(&self, g: &[f32], u: &[f32], cols: usize, h: &mut [f32]) {
        let isa = self.isa;
        self.gated(g, u, cols, h, |g, u, h| isa.silu_mul(g, u, h));
    }

    /// [`Isa::gelu_mul`] (GeGLU) over rows of `cols` elements, rows split over the threads.
    pub fn gelu_mul(&self, g: &[f32], u: &[f32], cols: usize, h: &mut [f32]) {
        let isa = self.isa;
        self.gated(g, u, cols, h, |g, u, h| isa.gelu_mul(g, u, h));
    }

    /// `f(g, u, h)` on parts of whole rows of `cols` elements, split over the threads.
    fn gated(
        &self,
        g: &[f32],
        u: &[f32],
        cols: usize,
        h: &mut [f32],
        f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
    ) {
        let cols = cols.max(1);
        let per = self.rows_per_part(g.len() / cols) * cols;
        let parts: Vec<_> = g
            .chunks(per)
            .zip(u.chunks(per))
            .zip(h.chunks_mut(per))
            .collect();
        self.each_part(parts, |((g, u), h)| f(g, u, h));
    }

    /// `outs[i] = mats[i] * x` for every matrix, in one parallel region (e.g. Q, K and V).
    /// `x` is given as f32 rows (`xf`) and, for quantized matrices, as their quantization `xq`.
    pub fn matmul_many(
        &self,
        mats: &[&QMatrix],
        xq: &QActs,
        xf: &[f32],
        tokens: usize,
        outs: &mut [&mut Vec<f32>],
    ) {
        // Tasks are runs of row groups: enough of them to balance the threads, few enough that
        // scheduling and cache-line sharing between neighbours stay negligible.
        let total: usize = mats.iter().map(|m| m.groups()).sum();
        let per = (total / (self.threads() * 16)).max(1);
        let mut tasks: Vec<(usize, usize, usize)> = Vec::new();
        let mut ptrs = Vec::with_capacity(mats.len());
        for (i, (m, o)) in mats.iter().zip(outs.iter_mut()).enumerate() {
            o.resize(tokens * m.rows, 0.0);
            ptrs.push(OutPtr(o.as_mut_ptr()));
            let g = m.groups();
            tasks.extend((0..g).step_by(per).map(|g0| (i, g0, (g0 + per).min(g))));
        }
        let isa = self.isa;
        // Long inputs (prefill, replay) go in chunks of TOKEN_CHUNK rows, chunk-major: both
        // threads work through one chunk's row groups before the next, so the chunk's
        // activations stay in cache while the weights stream past (for 256 tokens this took
        // the AVX2 Q4_1 product from ~105 to ~145 G multiply-adds/s on two cores). It also gives
        // every thread work when a matrix has few row groups.
        let tchunk = if tokens > TOKEN_CHUNK {
            TOKEN_CHUNK
        } else {
            tokens.max(1)
        };
        let tchunks = tokens.div_ceil(tchunk).max(1);
        let ntasks = tasks.len();
        self.for_each(ntasks * tchunks, |k| {
            let (i, g0, g1) = tasks[k % ntasks];
            let t0 = (k / ntasks) * tchunk;
            let t1 = (t0 + tchunk).min(tokens);
            for g in g0..g1 {
                isa.matmul_group(mats[i], g, xq, xf, t0, t1, ptrs[i]);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    //! Each fast kernel against the scalar reference, bit for bit, on inputs that make a reordered
    //! reduction visible (many blocks, mixed magnitudes, zero blocks, extremes).
    use super::*;
    use crate::canon::quant::QK;
    use crate::qmatrix::GgufKind;
    use crate::quant::QuantType;
    use half::f16;

    use crate::synthetic::Rng;

    fn random_matrix(rng: &mut Rng, kind: GgufKind, rows: usize, cols: usize) -> QMatrix {
        let nb = cols / QK;
        let mut raw = Vec::new();
        let scale = |rng: &mut Rng| f16::from_f32(rng.f() * 0.05).to_le_bytes();
        match kind {
            GgufKind::F32 => (0..rows * cols).for_each(|_| raw.extend(rng.wild().to_le_bytes())),
            GgufKind::F16 => {
                (0..rows * cols).for_each(|_| raw.extend(f16::from_f32(rng.wild()).to_le_bytes()))
            }
            GgufKind::Blocks(qt) => {
                // Random bytes, with the f16 scale fields (where each format keeps them) set
                // to finite values of either sign.
                let at: &[usize] = match qt {
                    QuantType::Q5_0 => &[0],
                    QuantType::Q5_1 | QuantType::Q4K | QuantType::Q5K => &[0, 2],
                    QuantType::Q2K => &[80, 82],
                    QuantType::Q3K => &[108],
                    QuantType::Q6K => &[208],
                    _ => unreachable!("not a block-layout type"),
                };
                for _ in 0..rows * cols / qt.block_elements() {
                    let mut blk: Vec<u8> = (0..qt.block_bytes()).map(|_| rng.byte()).collect();
                    for &o in at {
                        blk[o..o + 2].copy_from_slice(&scale(rng));
                    }
                    raw.extend(blk);
                }
            }
            _ => {
                for _ in 0..rows * nb {
                    raw.extend(scale(rng));
                    match kind {
                        GgufKind::Q4_1 => {
                            raw.extend(scale(rng));
                            (0..16).for_each(|_| raw.push(rng.byte()));
                        }
                        GgufKind::Q4_0 => (0..16).for_each(|_| raw.push(rng.byte())),
                        _ => (0..32).for_each(|_| raw.push(rng.byte())),
                    }
                }
            }
        }
        QMatrix::from_gguf(kind, rows, cols, &raw).unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Bit-equality, reporting the first difference rather than both vectors.
    #[track_caller]
    fn same(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
            panic!(
                "{what}: element {i} differs: {:e} ({:#x}) vs {:e} ({:#x})",
                a[i],
                a[i].to_bits(),
                b[i],
                b[i].to_bits()
            );
        }
    }

    #[test]
    fn fast_paths_match_the_scalar_reference_bit_for_bit() {
        for fast in Isa::ALL.into_iter().filter(|&i| i != Isa::Scalar) {
            if !fast.is_supported() {
                eprintln!(
                    "!!! SKIPPED {} comparison: this CPU cannot run it !!!",
                    fast.name()
                );
                continue;
            }
            compare_with_reference(fast);
        }
    }

    /// CI names the kernels each CPU (or emulated CPU) must get, so that a leg meant to test
    /// `dotprod` cannot pass by skipping it: `SWORN_EXPECT_ISA=cpu-neon-dotprod`.
    #[test]
    fn the_detected_kernels_are_the_expected_ones() {
        match std::env::var("SWORN_EXPECT_ISA") {
            Ok(want) => assert_eq!(Isa::detect().name(), want, "kernels chosen on this CPU"),
            Err(_) => eprintln!(
                "SWORN_EXPECT_ISA unset: this CPU gets {} (not checked)",
                Isa::detect().name()
            ),
        }
    }

    fn compare_with_reference(fast: Isa) {
        // 11 tokens: one chunk, the AVX2 block-major Q4 kernel plus the token tiles' remainder
        // elsewhere; 70 tokens: two full chunks of TOKEN_CHUNK and a short one (6 < SPAN_MIN).
        for tokens in [11, 70] {
            compare_products(fast, tokens);
        }
        compare_elementwise(fast);
        compare_split_rows(fast);
    }

    /// The runner's row-split quantization, RMSNorm and SiLU against the scalar reference on
    /// one thread, with enough rows to be split.
    fn compare_split_rows(fast: Isa) {
        let mut rng = Rng(0xa11);
        let (cols, rows) = (32 * 5, 61);
        let x: Vec<f32> = (0..rows * cols).map(|_| rng.wild()).collect();
        let u: Vec<f32> = (0..rows * cols).map(|_| rng.wild()).collect();
        let w: Vec<f32> = (0..cols).map(|_| rng.f() + 1.0).collect();
        let reference = Runner::new(Isa::Scalar, 1).unwrap();
        let (mut qa, mut ya, mut ha) = (QActs::default(), vec![0f32; x.len()], vec![0f32; x.len()]);
        reference.quantize_rows(&x, cols, &mut qa);
        reference.rmsnorm(&x, &w, 1e-5, &mut ya);
        reference.silu_mul(&x, &u, cols, &mut ha);
        for threads in [2, 3] {
            let rt = Runner::new(fast, threads).unwrap();
            // Without threads (wasip1) the pool runs on one and nothing is split.
            assert!(
                rt.threads() == 1 && cfg!(target_family = "wasm") || rt.rows_per_part(rows) < rows,
                "the rows are split"
            );
            let (mut qb, mut yb, mut hb) =
                (QActs::default(), vec![0f32; x.len()], vec![0f32; x.len()]);
            rt.quantize_rows(&x, cols, &mut qb);
            assert_eq!(
                qa.q,
                qb.q,
                "{} quantized values, {threads} threads",
                fast.name()
            );
            same(&qa.d, &qb.d, "split quantization scales");
            same(&qa.s, &qb.s, "split quantization sums");
            assert_eq!(qa.qsum, qb.qsum);
            rt.rmsnorm(&x, &w, 1e-5, &mut yb);
            same(&ya, &yb, &format!("split rmsnorm, {threads} threads"));
            rt.silu_mul(&x, &u, cols, &mut hb);
            same(&ha, &hb, &format!("split silu_mul, {threads} threads"));
        }
    }

    fn compare_products(fast: Isa, tokens: usize) {
        let mut rng = Rng(0x5eed + tokens as u64);
        // 45 rows: five full row groups and a partial one; 1280 columns: five K-quant
        // super-blocks, forty activation blocks.
        let (rows, cols) = (45, 256 * 5);
        let x: Vec<f32> = (0..tokens * cols).map(|_| rng.wild()).collect();
        let (mut qs, mut qf) = (QActs::default(), QActs::default());
        Isa::Scalar.quantize_rows(&x, cols, &mut qs);
        fast.quantize_rows(&x, cols, &mut qf);
        assert_eq!(qs.q, qf.q);
        assert_eq!(bits(&qs.d), bits(&qf.d));
        assert_eq!(bits(&qs.s), bits(&qf.s));
        assert_eq!(qs.qsum, qf.qsum);
        for kind in [
            GgufKind::Q4_0,
            GgufKind::Q4_1,
            GgufKind::Q8_0,
            GgufKind::F16,
            GgufKind::F32,
        ]
        .into_iter()
        .chain(QuantType::ALL.iter().filter_map(|&qt| match qt {
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0 => None,
            _ => Some(GgufKind::Blocks(qt)),
        })) {
            let w = random_matrix(&mut rng, kind, rows, cols);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            Runner::new(Isa::Scalar, 1)
                .unwrap()
                .matmul_many(&[&w], &qs, &x, tokens, &mut [&mut a]);
            for threads in [1, 2, 3] {
                Runner::new(fast, threads).unwrap().matmul_many(
                    &[&w],
                    &qs,
                    &x,
                    tokens,
                    &mut [&mut b],
                );
                same(
                    &a,
                    &b,
                    &format!("{} {kind:?} matmul, {threads} threads", fast.name()),
                );
            }
        }
    }

    fn compare_elementwise(fast: Isa) {
        let mut rng = Rng(0x5eed);
        let (cols, tokens) = (32 * 37, 11);
        let x: Vec<f32> = (0..tokens * cols).map(|_| rng.wild()).collect();
        let w: Vec<f32> = (0..cols).map(|_| rng.f() + 1.0).collect();
        let (mut ya, mut yb) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        Isa::Scalar.rmsnorm(&x, &w, 1e-5, &mut ya);
        fast.rmsnorm(&x, &w, 1e-5, &mut yb);
        same(&ya, &yb, "rmsnorm");
        let g: Vec<f32> = (0..4096)
            .map(|i| {
                if i < 16 {
                    [
                        0.0, -0.0, 100.0, -100.0, 88.5, -88.5, 1e-30, -1e30, 1e30, 3.0, -3.0, 0.5,
                        -0.5, 1e-7, 20.0, -20.0,
                    ][i]
                } else {
                    rng.f() * 30.0
                }
            })
            .collect();
        let u: Vec<f32> = (0..4096).map(|_| rng.wild()).collect();
        let (mut ha, mut hb) = (vec![0f32; 4096], vec![0f32; 4096]);
        Isa::Scalar.silu_mul(&g, &u, &mut ha);
        fast.silu_mul(&g, &u, &mut hb);
        same(&ha, &hb, "silu_mul");
        Isa::Scalar.gelu_mul(&g, &u, &mut ha);
        fast.gelu_mul(&g, &u, &mut hb);
        same(&ha, &hb, "gelu_mul");
        for (hd, n) in [
            (64, 1),
            (64, 37),
            (16, 9),
            (128, 100),
            (256, 8),
            (8, 5),
            (24, 9),
            (56, 20),
            (264, 3),
        ] {
            let stride = hd * 3;
            let q: Vec<f32> = (0..hd).map(|_| rng.f() * 3.0).collect();
            let k: Vec<f32> = (0..n * stride).map(|_| rng.f() * 3.0).collect();
            let v: Vec<f32> = (0..n * stride).map(|_| rng.wild()).collect();
            let (mut oa, mut ob) = (vec![0f32; hd], vec![0f32; hd]);
            let mut sc = vec![0f32; n];
            Isa::Scalar.attend(&q, &k, &v, n, stride, hd, 0.125, &mut sc, &mut oa);
            fast.attend(&q, &k, &v, n, stride, hd, 0.125, &mut sc, &mut ob);
            same(&oa, &ob, &format!("attention hd {hd} n {n}"));
        }
        // Groups of queries with different key counts (as a prefill tile: consecutive positions,
        // and ragged ones crossing key blocks), each against the scalar reference alone.
        for (hd, ns) in [
            (64, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (64, vec![30, 31, 32, 33, 40, 64, 65, 100]),
            (8, vec![70, 3]),
            (264, vec![9, 1, 33]),
            (72, (50..74).collect()),
        ] {
            let stride = hd * 2;
            let nmax = *ns.iter().max().unwrap();
            let k: Vec<f32> = (0..nmax * stride).map(|_| rng.f() * 3.0).collect();
            let v: Vec<f32> = (0..nmax * stride).map(|_| rng.wild()).collect();
            let qs: Vec<Vec<f32>> = ns
                .iter()
                .map(|_| (0..hd).map(|_| rng.f() * 3.0).collect())
                .collect();
            let mut outs = vec![vec![0f32; hd]; ns.len()];
            let mut queries: Vec<Query> = qs
                .iter()
                .zip(&ns)
                .zip(outs.iter_mut())
                .map(|((q, &n), out)| Query { q, n, out })
                .collect();
            fast.attend_many(&mut queries, &k, &v, stride, hd, 0.125);
            for ((q, &n), got) in qs.iter().zip(&ns).zip(&outs) {
                let mut want = vec![0f32; hd];
                let mut sc = vec![0f32; n];
                Isa::Scalar.attend(q, &k, &v, n, stride, hd, 0.125, &mut sc, &mut want);
                same(
                    &want,
                    got,
                    &format!("grouped attention hd {hd} n {n} of {ns:?}"),
                );
            }
        }
    }
}
