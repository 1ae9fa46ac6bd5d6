//! aarch64 NEON fast paths, with the `dotprod` extension (`sdot`) where the CPU has it. Each
//! function computes exactly what its twin in `scalar.rs` computes, as the AVX2 kernels do: SIMD
//! lanes run *independent* outputs (the eight rows of a row group as two vectors of four, the
//! elements of a vector, the spec's eight dot-product accumulators), never a reordered float
//! reduction. Integer sums inside a block are exact, so how the two variants form them (widening
//! multiplies and pairwise adds, or `sdot`) cannot show in the result.
//!
//! Floating point: every multiply and add is its own instruction (`fmul`, `fadd`; Rust never
//! fuses them), NaN-sensitive maxima and clamps are written as compare-and-select so that they
//! do what the scalar `if a > m` and `f32::max` do for every NaN, signalling ones included (the
//! IEEE `fmaxnm` would not), and f16 scales are widened by `fcvtl`, which is exact for the finite
//! scales the loader admits.
//!
//! `dotprod`'s intrinsics are not stable in Rust 1.95, so `sdot` is written as inline assembly;
//! f16 vectors (`float16x4_t`) are not stable either, so `fcvtl` is too.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::canon::math::{
    exp_f32, EXP_F32_COEFFS, EXP_MAX, EXP_MIN, GELU_COEF_A, LN2_HI_F32, LN2_LO_F32, SQRT_2_OVER_PI,
};
use crate::canon::quant::{QActs, QBlocksMut, QK};
use crate::qmatrix::{QMatrix, WeightKind, CHUNK, GROUP, NIB_Q, WIDE_Q};
use crate::quant::{FormClass, QuantType};

/// Four rows' integer dot products of four bytes each: the two ways a CPU forms them.
///
/// # Safety
/// Every method requires the CPU features of its implementation ([`DotProd`]: `dotprod`).
pub trait Dot4 {
    /// Partial sums of four rows.
    type Acc: Copy;
    /// No partial sums yet.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn zero() -> Self::Acc;
    /// Adds, for each row `r` of four, `sum_{i<4} w[4r + i] * x[4r + i]`; `x` holds the same four
    /// activation bytes in each of its four words.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn add(acc: Self::Acc, w: int8x16_t, x: int8x16_t) -> Self::Acc;
    /// Each row's sum.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn finish(acc: Self::Acc) -> int32x4_t;
}

/// Plain NEON: 8x8 -> 16-bit widening multiplies (exact: |product| <= 2^14), pairwise widened
/// into 32-bit sums, the last pairing at [`Dot4::finish`].
pub struct Plain;

impl Dot4 for Plain {
    /// Rows 0-1 and rows 2-3, two partial sums per row: `[r0, r0, r1, r1]`, `[r2, r2, r3, r3]`.
    type Acc = (int32x4_t, int32x4_t);
    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        (vdupq_n_s32(0), vdupq_n_s32(0))
    }
    #[inline(always)]
    unsafe fn add(acc: Self::Acc, w: int8x16_t, x: int8x16_t) -> Self::Acc {
        (
            vpadalq_s16(acc.0, vmull_s8(vget_low_s8(w), vget_low_s8(x))),
            vpadalq_s16(acc.1, vmull_high_s8(w, x)),
        )
    }
    #[inline(always)]
    unsafe fn finish(acc: Self::Acc) -> int32x4_t {
        vpaddq_s32(acc.0, acc.1)
    }
}

/// The `dotprod` extension: one `sdot` per sixteen bytes.
pub struct DotProd;

impl Dot4 for DotProd {
    type Acc = int32x4_t;
    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        vdupq_n_s32(0)
    }
    #[inline(always)]
    unsafe fn add(mut acc: Self::Acc, w: int8x16_t, x: int8x16_t) -> Self::Acc {
        asm!(
            ".arch_extension dotprod",
            "sdot {a:v}.4s, {w:v}.16b, {x:v}.16b",
            a = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack, preserves_flags),
        );
        acc
    }
    #[inline(always)]
    unsafe fn finish(acc: Self::Acc) -> int32x4_t {
        acc
    }
}

/// Eight lanes of f32: rows 0-3 and rows 4-7 of a row group.
type F8 = [float32x4_t; 2];

#[inline(always)]
unsafe fn zero8() -> F8 {
    [vdupq_n_f32(0.0), vdupq_n_f32(0.0)]
}

/// Eight f16 values at `p`, widened exactly.
#[inline(always)]
unsafe fn f16x8(p: *const u8) -> F8 {
    let h = vld1q_u16(p as *const u16);
    let (lo, hi): (float32x4_t, float32x4_t);
    asm!(
        "fcvtl {lo:v}.4s, {h:v}.4h",
        "fcvtl2 {hi:v}.4s, {h:v}.8h",
        h = in(vreg) h,
        lo = out(vreg) lo,
        hi = out(vreg) hi,
        options(pure, nomem, nostack, preserves_flags),
    );
    [lo, hi]
}

/// Eight f32 values at `p`.
#[inline(always)]
unsafe fn f32x8(p: *const u8) -> F8 {
    let p = p as *const f32;
    [vld1q_f32(p), vld1q_f32(p.add(4))]
}

/// Eight i8 values at `p`, widened to i32.
#[inline(always)]
unsafe fn i8x8(p: *const u8) -> [int32x4_t; 2] {
    let v = vmovl_s8(vld1_s8(p as *const i8));
    [vmovl_s16(vget_low_s16(v)), vmovl_high_s16(v)]
}

/// Four activation bytes at `x`, in each word of a vector.
#[inline(always)]
unsafe fn bcast4(x: *const i8) -> int8x16_t {
    vreinterpretq_s8_s32(vdupq_n_s32((x as *const i32).read_unaligned()))
}

/// `a + (d * dx) * isum` per lane (with `+ u` inside for the affine forms): the spec's block
/// step, lane by lane as the scalar reference rounds it.
#[inline(always)]
unsafe fn scaled(d: float32x4_t, dx: float32x4_t, isum: int32x4_t) -> float32x4_t {
    vmulq_f32(vmulq_f32(d, dx), vcvtq_f32_s32(isum))
}

/// The nibble layouts, as the const parameter `K` of [`q4_tile`] (see `avx2.rs`).
const NIB_Q4_0: u8 = 0;
const NIB_Q4_1: u8 = 1;
const NIB_Q4K: u8 = 2;

/// The forms of the byte-layout block kernel, as the const parameter `F` of [`wide_tile`].
const FORM_AFFINE: u8 = 0;
const FORM_SUB_SCALED: u8 = 1;
const FORM_SUB_AFFINE: u8 = 2;

/// Tokens processed together per pass over a row group's weights.
const TILE: usize = 4;

/// Computes the outputs of row group `g` for activation rows `t0..t1` into `out[t * stride + r]`,
/// with plain NEON.
///
/// # Safety
/// `out` must be valid for every written index; `xq` holds rows `t0..t1` of `w.cols` elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_group(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    xf: &[f32],
    t0: usize,
    t1: usize,
    out: *mut f32,
    stride: usize,
) {
    matmul_group_with::<Plain>(w, g, xq, xf, t0, t1, out, stride)
}

/// [`matmul_group`] with `sdot`.
///
/// # Safety
/// As [`matmul_group`], and the CPU has the `dotprod` extension.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "dotprod")]
pub unsafe fn matmul_group_dotprod(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    xf: &[f32],
    t0: usize,
    t1: usize,
    out: *mut f32,
    stride: usize,
) {
    matmul_group_with::<DotProd>(w, g, xq, xf, t0, t1, out, stride)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn matmul_group_with<D: Dot4>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    xf: &[f32],
    t0: usize,
    t1: usize,
    out: *mut f32,
    stride: usize,
) {
    let rows_here = (w.rows - g * GROUP).min(GROUP);
    if w.kind == WeightKind::F32 {
        for t in t0..t1 {
            for lane in 0..rows_here {
                let r = g * GROUP + lane;
                let v = dot8_f32(&w.f32s[r * w.cols..][..w.cols], &xf[t * w.cols..][..w.cols]);
                *out.add(t * stride + r) = v;
            }
        }
        return;
    }
    let mut t = t0;
    while t < t1 {
        // Full tiles run an instantiation with a constant token count, so the accumulators stay
        // in registers; the remainder goes one token at a time.
        let n = if t1 - t >= TILE { TILE } else { 1 };
        let mut v = [[0f32; GROUP]; TILE];
        if n == TILE {
            tile::<D, TILE>(w, g, xq, t, &mut v);
        } else {
            tile::<D, 1>(w, g, xq, t, (&mut v[..1]).try_into().expect("one row"));
        }
        for (j, row) in v.iter().enumerate().take(n) {
            for (lane, &x) in row.iter().enumerate().take(rows_here) {
                *out.add((t + j) * stride + g * GROUP + lane) = x;
            }
        }
        t += n;
    }
}

/// `N` activation rows against row group `g`, results into `out[j][lane]`.
#[inline(always)]
unsafe fn tile<D: Dot4, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    out: &mut [[f32; GROUP]; N],
) {
    let mut acc = [zero8(); N];
    match w.kind {
        WeightKind::Q4_1 => q4_tile::<D, NIB_Q4_1, N>(w, g, xq, t, &mut acc),
        WeightKind::Q4_0 => q4_tile::<D, NIB_Q4_0, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(QuantType::Q4K) => q4_tile::<D, NIB_Q4K, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(qt) => match qt.form_class() {
            FormClass::SubScaled => wide_tile::<D, FORM_SUB_SCALED, N>(w, g, xq, t, &mut acc),
            FormClass::SubAffine => wide_tile::<D, FORM_SUB_AFFINE, N>(w, g, xq, t, &mut acc),
            // Q5_0 (the only scaled type among them) has a kind of its own at load.
            FormClass::Affine | FormClass::Scaled => {
                wide_tile::<D, FORM_AFFINE, N>(w, g, xq, t, &mut acc)
            }
        },
        WeightKind::Q5_0 => bytes_tile::<D, true, N>(w, g, xq, t, &mut acc),
        _ => bytes_tile::<D, false, N>(w, g, xq, t, &mut acc),
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        vst1q_f32(o.as_mut_ptr(), a[0]);
        vst1q_f32(o.as_mut_ptr().add(4), a[1]);
    }
}

/// A nibble-layout row group (Q4_0, Q4_1 or Q4_K, by `K`) against `N` activation rows. Chunk `c`
/// (32 bytes) holds four bytes of each of the eight rows; their low nibbles are elements
/// `4c..4c+4`, their high nibbles `16+4c..16+4c+4` (nibbles are at most 15, so they are signed
/// bytes as they are).
#[inline(always)]
unsafe fn q4_tile<D: Dot4, const K: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let m4 = vdupq_n_u8(0x0f);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let (dw, mw, qoff) = match K {
            NIB_Q4_0 => (f16x8(p), zero8(), 16),
            NIB_Q4_1 => (f16x8(p), f16x8(p.add(16)), 32),
            _ => (f32x8(p), f32x8(p.add(32)), NIB_Q),
        };
        let mut s = [[D::zero(); 2]; N];
        for c in 0..4 {
            for half in 0..2 {
                let v = vld1q_u8(p.add(qoff + c * CHUNK + 16 * half));
                let lo = vreinterpretq_s8_u8(vandq_u8(v, m4));
                let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[half] = D::add(sj[half], lo, bcast4(x.add(4 * c)));
                    sj[half] = D::add(sj[half], hi, bcast4(x.add(16 + 4 * c)));
                }
            }
        }
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = vdupq_n_f32(*xq.d.get_unchecked(xb));
            for h in 0..2 {
                let isum = D::finish(s[j][h]);
                a[h] = if K == NIB_Q4_0 {
                    let off = vdupq_n_s32(8 * *xq.qsum.get_unchecked(xb));
                    vaddq_f32(a[h], scaled(dw[h], dx, vsubq_s32(isum, off)))
                } else {
                    let u = vmulq_f32(mw[h], vdupq_n_f32(*xq.s.get_unchecked(xb)));
                    vaddq_f32(a[h], vaddq_f32(scaled(dw[h], dx, isum), u))
                };
            }
        }
    }
}

/// A Q8_0 row group (signed bytes) or, with `UNSIGNED_Q5`, a Q5_0 one (bytes `q + 16` in 0..=31,
/// `16 * sum(x)` subtracted from the exact sum to give Q8_0's) against `N` activation rows.
#[inline(always)]
unsafe fn bytes_tile<D: Dot4, const UNSIGNED_Q5: bool, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let mut s = [[D::zero(); 2]; N];
        for c in 0..8 {
            for half in 0..2 {
                let v = vld1q_s8(p.add(16 + c * CHUNK + 16 * half) as *const i8);
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[half] = D::add(sj[half], v, bcast4(x.add(4 * c)));
                }
            }
        }
        let dw = f16x8(p);
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = vdupq_n_f32(*xq.d.get_unchecked(xb));
            for h in 0..2 {
                let mut isum = D::finish(s[j][h]);
                if UNSIGNED_Q5 {
                    isum = vsubq_s32(isum, vdupq_n_s32(16 * *xq.qsum.get_unchecked(xb)));
                }
                a[h] = vaddq_f32(a[h], scaled(dw[h], dx, isum));
            }
        }
    }
}

/// A byte-layout row group (Q5_1 and the K-quants but Q4_K; spec §1.4, form `F`) against `N`
/// activation rows: the integer sums of the two halves of 16 (chunks 0-3 and 4-7) kept apart for
/// the sub-scaled forms, then each form's float steps per lane in the order of
/// [`crate::quant::Piece::term`] (see `QMatrix::piece` for the field offsets).
#[inline(always)]
unsafe fn wide_tile<D: Dot4, const F: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        // s[j][part][rows]: part 0/1 the two halves of the block, rows 0-3 / 4-7.
        let mut s = [[[D::zero(); 2]; 2]; N];
        for c in 0..8 {
            for half in 0..2 {
                let v = vld1q_s8(p.add(WIDE_Q + c * CHUNK + 16 * half) as *const i8);
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[c / 4][half] = D::add(sj[c / 4][half], v, bcast4(x.add(4 * c)));
                }
            }
        }
        let (dw, m2) = (f32x8(p), f32x8(p.add(32)));
        let (s0, s1) = (i8x8(p.add(64)), i8x8(p.add(72)));
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = vdupq_n_f32(*xq.d.get_unchecked(xb));
            let (x0, x1) = if F == FORM_SUB_AFFINE {
                let xh = std::slice::from_raw_parts(xbase.add(xb * QK), QK);
                let sum = |r: &[i8]| r.iter().map(|&v| v as i32).sum::<i32>();
                (sum(&xh[..16]), sum(&xh[16..]))
            } else {
                (0, 0)
            };
            for h in 0..2 {
                let (h0, h1) = (D::finish(s[j][0][h]), D::finish(s[j][1][h]));
                let isum = if F == FORM_AFFINE {
                    vaddq_s32(h0, h1)
                } else {
                    vaddq_s32(vmulq_s32(s0[h], h0), vmulq_s32(s1[h], h1))
                };
                let tt = scaled(dw[h], dx, isum);
                let term = match F {
                    FORM_AFFINE => {
                        vaddq_f32(tt, vmulq_f32(m2[h], vdupq_n_f32(*xq.s.get_unchecked(xb))))
                    }
                    FORM_SUB_SCALED => tt,
                    _ => {
                        let (m0, m1) = (i8x8(p.add(80)), i8x8(p.add(88)));
                        let msum = vaddq_s32(
                            vmulq_s32(m0[h], vdupq_n_s32(x0)),
                            vmulq_s32(m1[h], vdupq_n_s32(x1)),
                        );
                        vsubq_f32(tt, scaled(m2[h], dx, msum))
                    }
                };
                a[h] = vaddq_f32(a[h], term);
            }
        }
    }
}

/// The spec's tree over eight lanes, `((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))`, of lanes 0-3 in `lo`
/// and 4-7 in `hi` (`faddp` adds neighbours; IEEE addition is commutative).
#[inline(always)]
unsafe fn tree8(lo: float32x4_t, hi: float32x4_t) -> f32 {
    let p = vpaddq_f32(lo, hi); // a0+a1, a2+a3, a4+a5, a6+a7
    let q = vpaddq_f32(p, p); // (a0+a1)+(a2+a3), (a4+a5)+(a6+a7), ...
    vgetq_lane_f32::<0>(q) + vgetq_lane_f32::<1>(q)
}

/// The spec's f32 dot product: lanes 0-3 of `lo` and 0-3 of `hi` are its eight accumulators.
///
/// # Safety
/// `b` is at least as long as `a`, whose length is a multiple of 8.
#[inline]
pub unsafe fn dot8_f32(a: &[f32], b: &[f32]) -> f32 {
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    for i in (0..a.len()).step_by(8) {
        lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i))));
        hi = vaddq_f32(
            hi,
            vmulq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4))),
        );
    }
    tree8(lo, hi)
}

/// `if a > m { a } else { m }` per lane: the scalar maximum's treatment of NaN (never taken).
#[inline(always)]
unsafe fn max_if_greater(a: float32x4_t, m: float32x4_t) -> float32x4_t {
    vbslq_f32(vcgtq_f32(a, m), a, m)
}

/// `x.max(lo).min(hi)` per lane, as `f32::max`/`f32::min` do it (a NaN `x` gives `lo`).
#[inline(always)]
unsafe fn clamp(x: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
    let x = vbslq_f32(vcgtq_f32(x, lo), x, lo);
    vbslq_f32(vcltq_f32(x, hi), x, hi)
}

/// Block quantization of `x` (spec §1.1), as `scalar::quantize_blocks`.
///
/// # Safety
/// `out` has room for every block of `x`.
pub unsafe fn quantize_blocks(x: &[f32], out: QBlocksMut) {
    let (lo, hi) = (vdupq_n_f32(-127.0), vdupq_n_f32(127.0));
    for (i, xb) in x.chunks_exact(QK).enumerate() {
        let p = xb.as_ptr();
        let v: [float32x4_t; 8] = std::array::from_fn(|k| vld1q_f32(p.add(4 * k)));
        // The largest magnitude, NaN never taken: the maximum of a set is the same in any order.
        let mut m = vdupq_n_f32(0.0);
        for vv in v {
            m = max_if_greater(vabsq_f32(vv), m);
        }
        let mut lanes = [0f32; 4];
        vst1q_f32(lanes.as_mut_ptr(), m);
        let amax = lanes.iter().fold(0f32, |a, &b| if b > a { b } else { a });
        let q = &mut out.q[i * QK..][..QK];
        if amax == 0.0 {
            q.fill(0);
            out.d[i] = 0.0;
            out.qsum[i] = 0;
            out.s[i] = 0.0;
            continue;
        }
        let (d, id) = crate::canon::quant::block_scale(amax);
        let inv = vdupq_n_f32(id);
        let mut sum = vdupq_n_s32(0);
        let mut ints = [vdupq_n_s32(0); 8];
        for k in 0..8 {
            let r = clamp(vrndnq_f32(vmulq_f32(v[k], inv)), lo, hi);
            ints[k] = vcvtq_s32_f32(r); // integral, so exact
            sum = vaddq_s32(sum, ints[k]);
        }
        for k in 0..4 {
            let h = vcombine_s16(vmovn_s32(ints[2 * k]), vmovn_s32(ints[2 * k + 1]));
            vst1_s8(q.as_mut_ptr().add(8 * k), vmovn_s16(h));
        }
        let qsum = vaddvq_s32(sum);
        out.d[i] = crate::canon::quant::round_f16(d);
        out.qsum[i] = qsum;
        out.s[i] = crate::canon::quant::round_f16(qsum as f32 * d);
    }
}

/// Four lanes of the canonical `exp` (spec §2.1), operation for operation as `math::exp_f32`.
#[inline(always)]
unsafe fn exp4(x: float32x4_t) -> float32x4_t {
    let x = clamp(x, vdupq_n_f32(EXP_MIN), vdupq_n_f32(EXP_MAX));
    let k = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(std::f32::consts::LOG2_E)));
    let r = vsubq_f32(x, vmulq_f32(k, vdupq_n_f32(LN2_HI_F32)));
    let r = vsubq_f32(r, vmulq_f32(k, vdupq_n_f32(LN2_LO_F32)));
    let mut p = vdupq_n_f32(EXP_F32_COEFFS[7]);
    for &c in EXP_F32_COEFFS[..7].iter().rev() {
        p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(c));
    }
    let ki = vcvtq_s32_f32(k);
    let scale = vshlq_n_s32::<23>(vaddq_s32(ki, vdupq_n_s32(127)));
    vmulq_f32(p, vreinterpretq_f32_s32(scale))
}

/// `h = silu(g) * u`, as `scalar::silu_mul`.
///
/// # Safety
/// `g.len()` is a multiple of 4; `u` and `h` are at least as long.
pub unsafe fn silu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    let one = vdupq_n_f32(1.0);
    for i in (0..g.len()).step_by(4) {
        let gv = vld1q_f32(g.as_ptr().add(i));
        let s = vdivq_f32(gv, vaddq_f32(one, exp4(vnegq_f32(gv))));
        let uv = vld1q_f32(u.as_ptr().add(i));
        vst1q_f32(h.as_mut_ptr().add(i), vmulq_f32(s, uv));
    }
}

/// `h = gelu(g) * u`, as `scalar::gelu_mul` (spec §2.4-2.5: tanh from the canonical `exp`).
///
/// # Safety
/// `g.len()` is a multiple of 4; `u` and `h` are at least as long.
pub unsafe fn gelu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    let (one, two, half) = (vdupq_n_f32(1.0), vdupq_n_f32(2.0), vdupq_n_f32(0.5));
    for i in (0..g.len()).step_by(4) {
        let x = vld1q_f32(g.as_ptr().add(i));
        let x2 = vmulq_f32(x, x);
        let inner = vaddq_f32(one, vmulq_f32(vdupq_n_f32(GELU_COEF_A), x2));
        let v = vmulq_f32(vdupq_n_f32(SQRT_2_OVER_PI), vmulq_f32(x, inner));
        let e = exp4(vaddq_f32(v, v));
        let tanh = vsubq_f32(one, vdivq_f32(two, vaddq_f32(e, one)));
        let gelu = vmulq_f32(vmulq_f32(half, x), vaddq_f32(one, tanh));
        let uv = vld1q_f32(u.as_ptr().add(i));
        vst1q_f32(h.as_mut_ptr().add(i), vmulq_f32(gelu, uv));
    }
}

/// RMSNorm of one row, as `scalar::rmsnorm_row`.
///
/// # Safety
/// `x.len()` is a multiple of 8; `w` and `y` are at least as long.
pub unsafe fn rmsnorm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let ss = dot8_f32(x, x);
    let r = vdupq_n_f32(1.0 / (ss / x.len() as f32 + eps).sqrt());
    for i in (0..x.len()).step_by(4) {
        let xv = vld1q_f32(x.as_ptr().add(i));
        let wv = vld1q_f32(w.as_ptr().add(i));
        vst1q_f32(y.as_mut_ptr().add(i), vmulq_f32(vmulq_f32(xv, r), wv));
    }
}

/// One attention head for one query, as `scalar::attend`: scores by the spec's dot product,
/// maximum and sum as left folds in order of key, exp four keys at a time, and each output
/// element's weighted sum of values in order of key (elements are the lanes).
///
/// # Safety
/// `q.len()` is a multiple of 8; `keys` and `values` hold `n` rows of `stride` floats with the
/// head at `off` (`(n - 1) * stride + off + q.len()` floats), `scores` at least `n`, `out` at
/// least `q.len()`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn attend(
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
    let mut m = f32::NEG_INFINITY;
    for j in 0..n {
        let k = std::slice::from_raw_parts(keys.as_ptr().add(j * stride + off), hd);
        let s = dot8_f32(q, k) * scale;
        *scores.get_unchecked_mut(j) = s;
        if s > m {
            m = s;
        }
    }
    let row = &mut scores[..n];
    let mv = vdupq_n_f32(m);
    let mut j = 0;
    while j + 4 <= n {
        let p = row.as_mut_ptr().add(j);
        vst1q_f32(p, exp4(vsubq_f32(vld1q_f32(p), mv)));
        j += 4;
    }
    for s in row[j..].iter_mut() {
        *s = exp_f32(*s - m);
    }
    let mut sum = 0f32;
    for &e in row.iter() {
        sum += e;
    }
    let o = out.as_mut_ptr();
    for c in (0..hd).step_by(4) {
        let mut a = vdupq_n_f32(0.0);
        for (j, &e) in row.iter().enumerate() {
            let v = vld1q_f32(values.as_ptr().add(j * stride + off + c));
            a = vaddq_f32(a, vmulq_f32(vdupq_n_f32(e), v));
        }
        vst1q_f32(o.add(c), vdivq_f32(a, vdupq_n_f32(sum)));
    }
}
