//! aarch64 NEON: the 4-lane operations of [`simd4`](super::simd4) in Advanced SIMD (in every
//! aarch64 CPU), and the integer dot products two ways: widening multiplies with pairwise adds
//! ([`Plain`]), or the `dotprod` extension's `sdot` ([`DotProd`], Armv8.2 and later, detected at
//! run time). The kernels themselves are `simd4`'s; this file gives their entry points.
//!
//! `dotprod`'s intrinsics are not stable in Rust 1.95, so `sdot` is inline assembly; f16 vectors
//! (`float16x4_t`) are not stable either, so the exact f16 -> f32 widening `fcvtl` is too.

use std::arch::aarch64::*;
use std::arch::asm;

use super::simd4::{self, Dot4, Simd4};
use crate::canon::quant::QActs;
use crate::qmatrix::QMatrix;

/// Advanced SIMD.
pub struct Neon;

// SAFETY: NEON is part of the aarch64 base architecture (and of the Rust target); every pointer
// method reads or writes exactly the bytes its documentation names.
unsafe impl Simd4 for Neon {
    type F = float32x4_t;
    type I = int32x4_t;
    type B = int8x16_t;

    #[inline(always)]
    unsafe fn f_splat(x: f32) -> Self::F {
        vdupq_n_f32(x)
    }
    #[inline(always)]
    unsafe fn f_load(p: *const f32) -> Self::F {
        vld1q_f32(p)
    }
    #[inline(always)]
    unsafe fn f_store(p: *mut f32, v: Self::F) {
        vst1q_f32(p, v)
    }
    #[inline(always)]
    unsafe fn f_load_f16(p: *const u8) -> Self::F {
        let h = vld1_u16(p as *const u16);
        let f: float32x4_t;
        asm!(
            "fcvtl {f:v}.4s, {h:v}.4h",
            h = in(vreg) h,
            f = out(vreg) f,
            options(pure, nomem, nostack, preserves_flags),
        );
        f
    }
    #[inline(always)]
    unsafe fn f_add(a: Self::F, b: Self::F) -> Self::F {
        vaddq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn f_sub(a: Self::F, b: Self::F) -> Self::F {
        vsubq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn f_mul(a: Self::F, b: Self::F) -> Self::F {
        vmulq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn f_div(a: Self::F, b: Self::F) -> Self::F {
        vdivq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn f_abs(a: Self::F) -> Self::F {
        vabsq_f32(a)
    }
    #[inline(always)]
    unsafe fn f_neg(a: Self::F) -> Self::F {
        vnegq_f32(a)
    }
    #[inline(always)]
    unsafe fn f_gt_select(a: Self::F, b: Self::F) -> Self::F {
        vbslq_f32(vcgtq_f32(a, b), a, b)
    }
    #[inline(always)]
    unsafe fn f_lt_select(a: Self::F, b: Self::F) -> Self::F {
        vbslq_f32(vcltq_f32(a, b), a, b)
    }
    #[inline(always)]
    unsafe fn f_round_even(a: Self::F) -> Self::F {
        vrndnq_f32(a)
    }
    #[inline(always)]
    unsafe fn f_to_i32(a: Self::F) -> Self::I {
        vcvtq_s32_f32(a)
    }
    #[inline(always)]
    unsafe fn f_from_i32(a: Self::I) -> Self::F {
        vcvtq_f32_s32(a)
    }
    #[inline(always)]
    unsafe fn f_from_bits(a: Self::I) -> Self::F {
        vreinterpretq_f32_s32(a)
    }
    #[inline(always)]
    unsafe fn f_lanes(a: Self::F) -> [f32; 4] {
        let mut l = [0f32; 4];
        vst1q_f32(l.as_mut_ptr(), a);
        l
    }
    #[inline(always)]
    unsafe fn i_splat(x: i32) -> Self::I {
        vdupq_n_s32(x)
    }
    #[inline(always)]
    unsafe fn i_add(a: Self::I, b: Self::I) -> Self::I {
        vaddq_s32(a, b)
    }
    #[inline(always)]
    unsafe fn i_sub(a: Self::I, b: Self::I) -> Self::I {
        vsubq_s32(a, b)
    }
    #[inline(always)]
    unsafe fn i_mul(a: Self::I, b: Self::I) -> Self::I {
        vmulq_s32(a, b)
    }
    #[inline(always)]
    unsafe fn i_shl23(a: Self::I) -> Self::I {
        vshlq_n_s32::<23>(a)
    }
    #[inline(always)]
    unsafe fn i_sum(a: Self::I) -> i32 {
        vaddvq_s32(a)
    }
    #[inline(always)]
    unsafe fn i_load_i8(p: *const u8) -> Self::I {
        let b = vreinterpret_s8_s32(vdup_n_s32((p as *const i32).read_unaligned()));
        vmovl_s16(vget_low_s16(vmovl_s8(b)))
    }
    #[inline(always)]
    unsafe fn i_store_i8x32(p: *mut i8, v: &[Self::I; 8]) {
        for k in 0..4 {
            let h = vcombine_s16(vmovn_s32(v[2 * k]), vmovn_s32(v[2 * k + 1]));
            vst1_s8(p.add(8 * k), vmovn_s16(h));
        }
    }
    #[inline(always)]
    unsafe fn b_load(p: *const u8) -> Self::B {
        vld1q_s8(p as *const i8)
    }
    #[inline(always)]
    unsafe fn b_nibbles(v: Self::B) -> (Self::B, Self::B) {
        let u = vreinterpretq_u8_s8(v);
        (
            vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(0x0f))),
            vreinterpretq_s8_u8(vshrq_n_u8::<4>(u)),
        )
    }
    #[inline(always)]
    unsafe fn b_bcast4(p: *const i8) -> Self::B {
        vreinterpretq_s8_s32(vdupq_n_s32((p as *const i32).read_unaligned()))
    }
}

/// Plain NEON: 8x8 -> 16-bit widening multiplies (exact: |product| <= 2^14), pairwise widened
/// into 32-bit sums, the last pairing at [`Dot4::finish`].
pub struct Plain;

// SAFETY: base NEON only.
unsafe impl Dot4<Neon> for Plain {
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

// SAFETY: `sdot` needs `dotprod`; only `matmul_group_dotprod` instantiates this, and its
// callers check the extension (`Runner::new`).
unsafe impl Dot4<Neon> for DotProd {
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

/// [`simd4::matmul_group`] with `sdot`: its own function, so that `dotprod` is enabled for
/// the code it inlines.
///
/// # Safety
/// As [`simd4::matmul_group`], and the CPU has the `dotprod` extension.
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
    simd4::matmul_group::<Neon, DotProd>(w, g, xq, xf, t0, t1, out, stride)
}
