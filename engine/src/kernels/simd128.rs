//! WebAssembly SIMD128: the 4-lane operations of [`simd4`](super::simd4), compiled in when the
//! module is built with `-C target-feature=+simd128` (WebAssembly has no run-time feature
//! detection: a runtime without SIMD refuses to load such a module, so a build without it runs
//! the portable kernels). Every float operation is one IEEE operation of the wasm spec (wasm has
//! no FMA outside the relaxed-SIMD proposal, which is not used); the f16 scales are widened by
//! the `half` crate, as in the scalar reference, since wasm has no f16 conversion.

use std::arch::wasm32::*;

use super::simd4::{Dot4, Simd4};

/// WebAssembly SIMD128.
pub struct Simd128;

#[inline(always)]
fn f16(p: *const u8, i: usize) -> f32 {
    // SAFETY: the caller's pointer covers four f16 values.
    let b = unsafe { [*p.add(2 * i), *p.add(2 * i + 1)] };
    half::f16::from_bits(u16::from_le_bytes(b)).to_f32()
}

// SAFETY: compiled only with `simd128` enabled; every pointer method reads or writes exactly the
// bytes its documentation names.
unsafe impl Simd4 for Simd128 {
    type F = v128;
    type I = v128;
    type B = v128;

    #[inline(always)]
    unsafe fn f_splat(x: f32) -> Self::F {
        f32x4_splat(x)
    }
    #[inline(always)]
    unsafe fn f_load(p: *const f32) -> Self::F {
        v128_load(p as *const v128)
    }
    #[inline(always)]
    unsafe fn f_store(p: *mut f32, v: Self::F) {
        v128_store(p as *mut v128, v)
    }
    #[inline(always)]
    unsafe fn f_load_f16(p: *const u8) -> Self::F {
        f32x4(f16(p, 0), f16(p, 1), f16(p, 2), f16(p, 3))
    }
    #[inline(always)]
    unsafe fn f_add(a: Self::F, b: Self::F) -> Self::F {
        f32x4_add(a, b)
    }
    #[inline(always)]
    unsafe fn f_sub(a: Self::F, b: Self::F) -> Self::F {
        f32x4_sub(a, b)
    }
    #[inline(always)]
    unsafe fn f_mul(a: Self::F, b: Self::F) -> Self::F {
        f32x4_mul(a, b)
    }
    #[inline(always)]
    unsafe fn f_div(a: Self::F, b: Self::F) -> Self::F {
        f32x4_div(a, b)
    }
    #[inline(always)]
    unsafe fn f_abs(a: Self::F) -> Self::F {
        f32x4_abs(a)
    }
    #[inline(always)]
    unsafe fn f_neg(a: Self::F) -> Self::F {
        f32x4_neg(a)
    }
    #[inline(always)]
    unsafe fn f_gt_select(a: Self::F, b: Self::F) -> Self::F {
        v128_bitselect(a, b, f32x4_gt(a, b))
    }
    #[inline(always)]
    unsafe fn f_lt_select(a: Self::F, b: Self::F) -> Self::F {
        v128_bitselect(a, b, f32x4_lt(a, b))
    }
    #[inline(always)]
    unsafe fn f_round_even(a: Self::F) -> Self::F {
        f32x4_nearest(a)
    }
    #[inline(always)]
    unsafe fn f_to_i32(a: Self::F) -> Self::I {
        i32x4_trunc_sat_f32x4(a)
    }
    #[inline(always)]
    unsafe fn f_from_i32(a: Self::I) -> Self::F {
        f32x4_convert_i32x4(a)
    }
    #[inline(always)]
    unsafe fn f_from_bits(a: Self::I) -> Self::F {
        a
    }
    #[inline(always)]
    unsafe fn f_lanes(a: Self::F) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(a),
            f32x4_extract_lane::<1>(a),
            f32x4_extract_lane::<2>(a),
            f32x4_extract_lane::<3>(a),
        ]
    }
    #[inline(always)]
    unsafe fn i_splat(x: i32) -> Self::I {
        i32x4_splat(x)
    }
    #[inline(always)]
    unsafe fn i_add(a: Self::I, b: Self::I) -> Self::I {
        i32x4_add(a, b)
    }
    #[inline(always)]
    unsafe fn i_sub(a: Self::I, b: Self::I) -> Self::I {
        i32x4_sub(a, b)
    }
    #[inline(always)]
    unsafe fn i_mul(a: Self::I, b: Self::I) -> Self::I {
        i32x4_mul(a, b)
    }
    #[inline(always)]
    unsafe fn i_shl23(a: Self::I) -> Self::I {
        i32x4_shl(a, 23)
    }
    #[inline(always)]
    unsafe fn i_sum(a: Self::I) -> i32 {
        i32x4_extract_lane::<0>(a)
            + i32x4_extract_lane::<1>(a)
            + i32x4_extract_lane::<2>(a)
            + i32x4_extract_lane::<3>(a)
    }
    #[inline(always)]
    unsafe fn i_load_i8(p: *const u8) -> Self::I {
        let b = v128_load32_zero(p as *const u32);
        i32x4_extend_low_i16x8(i16x8_extend_low_i8x16(b))
    }
    #[inline(always)]
    unsafe fn i_store_i8x32(p: *mut i8, v: &[Self::I; 8]) {
        for k in 0..2 {
            let lo = i16x8_narrow_i32x4(v[4 * k], v[4 * k + 1]);
            let hi = i16x8_narrow_i32x4(v[4 * k + 2], v[4 * k + 3]);
            v128_store(p.add(16 * k) as *mut v128, i8x16_narrow_i16x8(lo, hi));
        }
    }
    #[inline(always)]
    unsafe fn b_load(p: *const u8) -> Self::B {
        v128_load(p as *const v128)
    }
    #[inline(always)]
    unsafe fn b_nibbles(v: Self::B) -> (Self::B, Self::B) {
        (v128_and(v, u8x16_splat(0x0f)), u8x16_shr(v, 4))
    }
    #[inline(always)]
    unsafe fn b_bcast4(p: *const i8) -> Self::B {
        i32x4_splat((p as *const i32).read_unaligned())
    }
}

/// Widened to 16 bits, then `i32x4.dot_i16x8_s` (exact), two partial sums per row, paired up
/// at [`Dot4::finish`].
pub struct Dot16;

// SAFETY: SIMD128 only.
unsafe impl Dot4<Simd128> for Dot16 {
    /// Rows 0-1 and rows 2-3, two partial sums per row: `[r0, r0, r1, r1]`, `[r2, r2, r3, r3]`.
    type Acc = (v128, v128);
    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        (i32x4_splat(0), i32x4_splat(0))
    }
    #[inline(always)]
    unsafe fn add(acc: Self::Acc, w: v128, x: v128) -> Self::Acc {
        // `x` repeats its four bytes, so its low half widened serves both halves of `w`.
        let xl = i16x8_extend_low_i8x16(x);
        (
            i32x4_add(acc.0, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), xl)),
            i32x4_add(acc.1, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), xl)),
        )
    }
    #[inline(always)]
    unsafe fn finish(acc: Self::Acc) -> v128 {
        i32x4_add(
            i32x4_shuffle::<0, 2, 4, 6>(acc.0, acc.1),
            i32x4_shuffle::<1, 3, 5, 7>(acc.0, acc.1),
        )
    }
}
