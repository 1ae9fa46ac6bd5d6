//! x86-64 AVX2 fast paths. Each function computes exactly what its twin in `scalar.rs` computes:
//! SIMD lanes run *independent* outputs (eight rows of a row group, eight elements of a vector,
//! the eight accumulators of the spec's dot product), never a reordered reduction. FMA is not
//! enabled, so every multiply and add is rounded on its own as in the scalar code.
//!
//! All functions are `unsafe` because they require AVX2 and F16C; `Isa::detect` checks both at
//! run time before any of them is reachable.

use std::arch::x86_64::*;

use crate::canon::math::{EXP_F32_COEFFS, EXP_MAX, EXP_MIN, LN2_HI_F32, LN2_LO_F32};
use crate::canon::quant::{QActs, QBlocksMut, QK};
use crate::qmatrix::{QMatrix, WeightKind, CHUNK, GROUP, WIDE_Q};
use crate::quant::{FormClass, QuantType};

/// The nibble layouts, as the const parameter `K` of the Q4 kernels: Q4_0 (f16 `d`), Q4_1 (f16
/// `d` and `m`) and Q4_K (Q4_1's term with exact f32 `dw` and `mw`, spec §1.4).
const NIB_Q4_0: u8 = 0;
const NIB_Q4_1: u8 = 1;
const NIB_Q4K: u8 = 2;

/// The forms of the byte-layout block kernel, as its const parameter `F` (spec §1.4).
const FORM_AFFINE: u8 = 0;
const FORM_SUB_SCALED: u8 = 1;
const FORM_SUB_AFFINE: u8 = 2;

/// A row group's scale vectors for one block of a nibble layout (`mw` is zero for Q4_0), and
/// where its interleaved nibbles start.
#[inline(always)]
unsafe fn q4_scales<const K: u8>(p: *const u8) -> (__m256, __m256, usize) {
    match K {
        NIB_Q4_0 => (
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
            _mm256_setzero_ps(),
            16,
        ),
        NIB_Q4_1 => (
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
            _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i)),
            32,
        ),
        _ => (
            _mm256_loadu_ps(p as *const f32),
            _mm256_loadu_ps(p.add(32) as *const f32),
            crate::qmatrix::NIB_Q,
        ),
    }
}

/// Tokens processed together per pass over a row group's weights.
const TILE: usize = 4;

/// The spec's tree over eight lanes: `((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))`.
#[inline(always)]
unsafe fn tree8_ps(v: __m256) -> f32 {
    let mut a = [0f32; 8];
    _mm256_storeu_ps(a.as_mut_ptr(), v);
    crate::canon::math::tree8(a)
}

/// Computes the outputs of row group `g` for activation rows `t0..t1` into `out[t * stride + r]`.
///
/// # Safety
/// Requires AVX2 and F16C; `out` must be valid for every written index.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,f16c")]
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
    let nibbles = matches!(
        w.kind,
        WeightKind::Q4_0 | WeightKind::Q4_1 | WeightKind::Blocks(QuantType::Q4K)
    );
    if nibbles && t1 - t0 >= SPAN_MIN {
        let mut t = t0;
        while t < t1 {
            let n = (t1 - t).min(SPAN);
            let mut acc = [_mm256_setzero_ps(); SPAN];
            match w.kind {
                WeightKind::Q4_1 => q4_span::<NIB_Q4_1>(w, g, xq, t, n, &mut acc),
                WeightKind::Q4_0 => q4_span::<NIB_Q4_0>(w, g, xq, t, n, &mut acc),
                _ => q4_span::<NIB_Q4K>(w, g, xq, t, n, &mut acc),
            }
            for (j, a) in acc.iter().enumerate().take(n) {
                let o = out.add((t + j) * stride + g * GROUP);
                if rows_here == GROUP {
                    _mm256_storeu_ps(o, *a);
                } else {
                    let mut v = [0f32; GROUP];
                    _mm256_storeu_ps(v.as_mut_ptr(), *a);
                    for (lane, &x) in v.iter().enumerate().take(rows_here) {
                        *o.add(lane) = x;
                    }
                }
            }
            t += n;
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
            tile::<TILE>(w, g, xq, t, &mut v);
        } else {
            tile::<1>(w, g, xq, t, (&mut v[..1]).try_into().expect("one row"));
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
unsafe fn tile<const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    out: &mut [[f32; GROUP]; N],
) {
    let mut acc = [_mm256_setzero_ps(); N];
    match w.kind {
        WeightKind::Q4_1 => q4_tile::<NIB_Q4_1, N>(w, g, xq, t, &mut acc),
        WeightKind::Q4_0 => q4_tile::<NIB_Q4_0, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(QuantType::Q4K) => q4_tile::<NIB_Q4K, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(qt) => match qt.form_class() {
            FormClass::SubScaled => wide_tile::<FORM_SUB_SCALED, N>(w, g, xq, t, &mut acc),
            FormClass::SubAffine => wide_tile::<FORM_SUB_AFFINE, N>(w, g, xq, t, &mut acc),
            // Q5_0 (the only scaled type among them) has a kind of its own at load.
            FormClass::Affine | FormClass::Scaled => {
                wide_tile::<FORM_AFFINE, N>(w, g, xq, t, &mut acc)
            }
        },
        WeightKind::Q5_0 => q5_tile::<N>(w, g, xq, t, &mut acc),
        _ => q8_tile::<N>(w, g, xq, t, &mut acc),
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        _mm256_storeu_ps(o.as_mut_ptr(), *a);
    }
}

/// A nibble-layout row group (Q4_0, Q4_1 or Q4_K, by `K`) against `N` activation rows.
///
/// Each 32-byte chunk of the interleaved quants holds four bytes of each row; its low nibbles are
/// elements `4c..4c+4` and its high nibbles elements `16+4c..16+4c+4` of every row. `pmaddubsw`
/// against the matching four activation bytes, broadcast, leaves each row's partial sums in that
/// row's lane. The eight products of a block are added in 16 bits: each is at most
/// `2 * 15 * 128 = 3840` in magnitude, so the sum of eight fits (30720 < 32768), and integer
/// sums are exact whatever their order.
#[inline(always)]
unsafe fn q4_tile<const K: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [__m256; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let m4 = _mm256_set1_epi8(0x0f);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let (dw, mw, qoff) = q4_scales::<K>(p);
        let mut s16 = [_mm256_setzero_si256(); N];
        for c in 0..4 {
            let v = _mm256_loadu_si256(p.add(qoff + c * CHUNK) as *const __m256i);
            let lo = _mm256_and_si256(v, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            for (j, s) in s16.iter_mut().enumerate() {
                let x = xbase.add(((t + j) * nb + b) * QK) as *const i32;
                let xl = _mm256_set1_epi32(x.add(c).read_unaligned());
                let xh = _mm256_set1_epi32(x.add(c + 4).read_unaligned());
                *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(lo, xl));
                *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(hi, xh));
            }
        }
        for (j, a) in acc.iter_mut().enumerate() {
            q4_block_end::<K>(s16[j], dw, mw, xq, (t + j) * nb + b, a);
        }
    }
}

/// Activation rows per pass of the block-major Q4 kernel (its accumulators live on the stack).
const SPAN: usize = 64;

/// Fewest activation rows for which the block-major Q4 kernel beats the token tiles: below it,
/// decoding a block's nibbles once per token tile costs less than the accumulators' round trips
/// through memory (measured at 4, 8, 16 and 32 rows).
const SPAN_MIN: usize = 8;

/// A nibble-layout row group (Q4_0, Q4_1 or Q4_K, by `K`) against activation rows
/// `t..t + n`, block-major: each block's nibbles are decoded into registers once and applied to
/// every row of the span, whose accumulators `acc[j]` wait in memory between blocks. Prefill and
/// replay take this path: it needs fewer instructions per multiply-add (38 per 256, against
/// ~45 for [`q4_tile`], which decodes every block again for each tile of four tokens). Each
/// accumulator still adds its blocks in order `0, 1, ...` (spec §1.2); only the interleaving of
/// independent outputs differs.
#[inline(always)]
unsafe fn q4_span<const K: u8>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    n: usize,
    acc: &mut [__m256; SPAN],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let m4 = _mm256_set1_epi8(0x0f);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    for b in 0..nb {
        let p = base.add(b * gbb);
        let (dw, mw, qoff) = q4_scales::<K>(p);
        let mut lo = [_mm256_setzero_si256(); 4];
        let mut hi = [_mm256_setzero_si256(); 4];
        for c in 0..4 {
            let v = _mm256_loadu_si256(p.add(qoff + c * CHUNK) as *const __m256i);
            lo[c] = _mm256_and_si256(v, m4);
            hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        for (j, a) in acc.iter_mut().enumerate().take(n) {
            q4_block_token::<K>(&lo, &hi, dw, mw, xq, (t + j) * nb + b, a);
        }
    }
}

/// Adds activation block `xb`'s contribution to a row group's eight accumulators, given the
/// group's decoded nibbles of that block (see [`q4_tile`] for the layout and why 16-bit sums
/// are exact).
#[inline(always)]
unsafe fn q4_block_token<const K: u8>(
    lo: &[__m256i; 4],
    hi: &[__m256i; 4],
    dw: __m256,
    mw: __m256,
    xq: &QActs,
    xb: usize,
    a: &mut __m256,
) {
    let x = xq.q.as_ptr().add(xb * QK) as *const i32;
    let m = |c: usize| {
        _mm256_add_epi16(
            _mm256_maddubs_epi16(lo[c], _mm256_set1_epi32(x.add(c).read_unaligned())),
            _mm256_maddubs_epi16(hi[c], _mm256_set1_epi32(x.add(c + 4).read_unaligned())),
        )
    };
    let s = _mm256_add_epi16(_mm256_add_epi16(m(0), m(1)), _mm256_add_epi16(m(2), m(3)));
    q4_block_end::<K>(s, dw, mw, xq, xb, a);
}

/// The end of a Q4 block for one activation block `xb` (spec §1.2): the row group's 16-bit
/// partial sums `s16` (two per row) become each row's integer sum, scaled and added to its
/// accumulator in the spec's order.
#[inline(always)]
unsafe fn q4_block_end<const K: u8>(
    s16: __m256i,
    dw: __m256,
    mw: __m256,
    xq: &QActs,
    xb: usize,
    a: &mut __m256,
) {
    let mut isum = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    let dx = _mm256_set1_ps(*xq.d.get_unchecked(xb));
    if K != NIB_Q4_0 {
        let tt = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum));
        let u = _mm256_mul_ps(mw, _mm256_set1_ps(*xq.s.get_unchecked(xb)));
        *a = _mm256_add_ps(*a, _mm256_add_ps(tt, u));
    } else {
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * *xq.qsum.get_unchecked(xb)));
        let tt = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum));
        *a = _mm256_add_ps(*a, tt);
    }
}

/// Q8_0 row group against `N` activation rows (signed x signed via the sign trick: `|w|` times
/// `x` with `w`'s sign; activations are in -127..=127, so nothing saturates). Each product pair
/// can reach 32512, so products are widened to 32 bits before they are added.
#[inline(always)]
unsafe fn q8_tile<const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [__m256; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let ones = _mm256_set1_epi16(1);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let mut s32 = [_mm256_setzero_si256(); N];
        for c in 0..8 {
            let v = _mm256_loadu_si256(p.add(16 + c * CHUNK) as *const __m256i);
            let a = _mm256_sign_epi8(v, v);
            for (j, s) in s32.iter_mut().enumerate() {
                let x = xbase.add(((t + j) * nb + b) * QK) as *const i32;
                let xs = _mm256_sign_epi8(_mm256_set1_epi32(x.add(c).read_unaligned()), v);
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_maddubs_epi16(a, xs), ones));
            }
        }
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = _mm256_set1_ps(*xq.d.get_unchecked(xb));
            let tt = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(s32[j]));
            *a = _mm256_add_ps(*a, tt);
        }
    }
}

/// Q5_0 row group (bytes `q + 16` in 0..=31) against `N` activation rows. The bytes are
/// unsigned, so `pmaddubsw` takes them as they are: each pair is at most `2 * 31 * 127 = 7874`
/// in magnitude, so the four chunks of a half add exactly in 16 bits (31496 < 32768) before
/// widening; `16 * sum(x)` is then subtracted from the exact sum, which gives Q8_0's integer
/// sum of the signed values, and the term is Q8_0's.
#[inline(always)]
unsafe fn q5_tile<const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [__m256; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let ones = _mm256_set1_epi16(1);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let mut s32 = [_mm256_setzero_si256(); N];
        for half in 0..2 {
            let mut s16 = [_mm256_setzero_si256(); N];
            for c in 4 * half..4 * half + 4 {
                let v = _mm256_loadu_si256(p.add(16 + c * CHUNK) as *const __m256i);
                for (j, s) in s16.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK) as *const i32;
                    let xv = _mm256_set1_epi32(x.add(c).read_unaligned());
                    *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(v, xv));
                }
            }
            for (s, h) in s32.iter_mut().zip(&s16) {
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(*h, ones));
            }
        }
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = _mm256_set1_ps(*xq.d.get_unchecked(xb));
            let isum = _mm256_sub_epi32(s32[j], _mm256_set1_epi32(16 * *xq.qsum.get_unchecked(xb)));
            let tt = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum));
            *a = _mm256_add_ps(*a, tt);
        }
    }
}

/// A byte-layout row group (Q5_1 and the K-quants but Q4_K; spec §1.4, form `F`) against `N`
/// activation rows. The integer products are Q8_0's (sign trick, 32-bit sums), kept apart for
/// the two halves of 16 (chunks 0-3 and 4-7) that the sub-scaled forms weigh with their
/// per-row sub-scales; every integer is exact, then each form's float steps run per lane in
/// the scalar reference's order ([`crate::quant::Piece::term`]).
#[inline(always)]
unsafe fn wide_tile<const F: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [__m256; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let ones = _mm256_set1_epi16(1);
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    let bytes8 = |p: *const u8| _mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i));
    for b in 0..nb {
        let p = base.add(b * gbb);
        let mut h = [[_mm256_setzero_si256(); N]; 2];
        for c in 0..8 {
            let v = _mm256_loadu_si256(p.add(WIDE_Q + c * CHUNK) as *const __m256i);
            let a = _mm256_sign_epi8(v, v);
            for (j, s) in h[c / 4].iter_mut().enumerate() {
                let x = xbase.add(((t + j) * nb + b) * QK) as *const i32;
                let xs = _mm256_sign_epi8(_mm256_set1_epi32(x.add(c).read_unaligned()), v);
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_maddubs_epi16(a, xs), ones));
            }
        }
        let dw = _mm256_loadu_ps(p as *const f32);
        let m2 = _mm256_loadu_ps(p.add(32) as *const f32);
        let (s0, s1) = (bytes8(p.add(64)), bytes8(p.add(72)));
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = _mm256_set1_ps(*xq.d.get_unchecked(xb));
            let isum = if F == FORM_AFFINE {
                _mm256_add_epi32(h[0][j], h[1][j])
            } else {
                _mm256_add_epi32(
                    _mm256_mullo_epi32(s0, h[0][j]),
                    _mm256_mullo_epi32(s1, h[1][j]),
                )
            };
            let tt = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum));
            let term = match F {
                FORM_AFFINE => {
                    let u = _mm256_mul_ps(m2, _mm256_set1_ps(*xq.s.get_unchecked(xb)));
                    _mm256_add_ps(tt, u)
                }
                FORM_SUB_SCALED => tt,
                _ => {
                    let xh = std::slice::from_raw_parts(xbase.add(xb * QK), QK);
                    let sum = |r: &[i8]| r.iter().map(|&v| v as i32).sum::<i32>();
                    let (x0, x1) = (sum(&xh[..16]), sum(&xh[16..]));
                    let msum = _mm256_add_epi32(
                        _mm256_mullo_epi32(bytes8(p.add(80)), _mm256_set1_epi32(x0)),
                        _mm256_mullo_epi32(bytes8(p.add(88)), _mm256_set1_epi32(x1)),
                    );
                    let u = _mm256_mul_ps(_mm256_mul_ps(m2, dx), _mm256_cvtepi32_ps(msum));
                    _mm256_sub_ps(tt, u)
                }
            };
            *a = _mm256_add_ps(*a, term);
        }
    }
}

/// Eight of the spec's f32 dot products at once: `a` against the eight vectors at `b + j * stride`
/// (`len` a multiple of 8). Vector `j`'s eight lane accumulators are those of [`dot8_f32`]; the
/// final tree runs for all eight together: two rounds of `hadd` give each vector's
/// `(a0+a1)+(a2+a3)` and `(a4+a5)+(a6+a7)` in the low and high halves, and one add joins them,
/// which is the spec's `tree8` (IEEE addition is commutative, so `hadd`'s operand order is moot).
#[inline(always)]
unsafe fn dot8_f32_x8(a: *const f32, b: *const f32, stride: usize, len: usize) -> __m256 {
    let mut acc = [_mm256_setzero_ps(); 8];
    for i in (0..len).step_by(8) {
        let va = _mm256_loadu_ps(a.add(i));
        for (j, c) in acc.iter_mut().enumerate() {
            *c = _mm256_add_ps(
                *c,
                _mm256_mul_ps(va, _mm256_loadu_ps(b.add(j * stride + i))),
            );
        }
    }
    let h01 = _mm256_hadd_ps(acc[0], acc[1]);
    let h23 = _mm256_hadd_ps(acc[2], acc[3]);
    let h45 = _mm256_hadd_ps(acc[4], acc[5]);
    let h67 = _mm256_hadd_ps(acc[6], acc[7]);
    let q0 = _mm256_hadd_ps(h01, h23);
    let q1 = _mm256_hadd_ps(h45, h67);
    let lo = _mm256_permute2f128_ps(q0, q1, 0x20);
    let hi = _mm256_permute2f128_ps(q0, q1, 0x31);
    _mm256_add_ps(lo, hi)
}

/// The spec's f32 dot product: lane `l` of the accumulator is the spec's accumulator `l`.
///
/// # Safety
/// Requires AVX2; `b` is at least as long as `a`, whose length is a multiple of 8.
#[target_feature(enable = "avx2")]
pub unsafe fn dot8_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for i in (0..a.len()).step_by(8) {
        let va = _mm256_loadu_ps(a.as_ptr().add(i));
        let vb = _mm256_loadu_ps(b.as_ptr().add(i));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(va, vb));
    }
    tree8_ps(acc)
}

/// Block quantization of `x` (spec §1.1), as `scalar::quantize_blocks`.
///
/// # Safety
/// Requires AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn quantize_blocks(x: &[f32], out: QBlocksMut) {
    let sign = _mm256_set1_ps(-0.0);
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    for (i, xb) in x.chunks_exact(QK).enumerate() {
        let p = xb.as_ptr();
        let v = [
            _mm256_loadu_ps(p),
            _mm256_loadu_ps(p.add(8)),
            _mm256_loadu_ps(p.add(16)),
            _mm256_loadu_ps(p.add(24)),
        ];
        // max(|v|, acc) with |v| first: a NaN element yields acc, as the scalar `if a > amax`.
        let mut m = _mm256_setzero_ps();
        for vv in v {
            m = _mm256_max_ps(_mm256_andnot_ps(sign, vv), m);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), m);
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
        let inv = _mm256_set1_ps(id);
        let mut ints = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let r = _mm256_round_ps(
                _mm256_mul_ps(v[k], inv),
                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
            );
            // max(r, -127) then min(., 127): NaN becomes -127, as `f32::max` does in the reference.
            let r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
            ints[k] = _mm256_cvtps_epi32(r);
        }
        let s01 = _mm256_packs_epi32(ints[0], ints[1]);
        let s23 = _mm256_packs_epi32(ints[2], ints[3]);
        let bytes = _mm256_packs_epi16(s01, s23);
        // packs interleaves 128-bit lanes: restore element order.
        let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(q.as_mut_ptr() as *mut __m256i, bytes);
        let sum_v = _mm256_add_epi32(
            _mm256_add_epi32(ints[0], ints[1]),
            _mm256_add_epi32(ints[2], ints[3]),
        );
        let mut s = [0i32; 8];
        _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, sum_v);
        let qsum: i32 = s.iter().sum();
        out.d[i] = crate::canon::quant::round_f16(d);
        out.qsum[i] = qsum;
        out.s[i] = crate::canon::quant::round_f16(qsum as f32 * d);
    }
}

/// Eight lanes of the canonical `exp` (spec §2.1), operation for operation as `math::exp_f32`.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)),
        _mm256_set1_ps(EXP_MAX),
    );
    let k = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    let r = _mm256_sub_ps(x, _mm256_mul_ps(k, _mm256_set1_ps(LN2_HI_F32)));
    let r = _mm256_sub_ps(r, _mm256_mul_ps(k, _mm256_set1_ps(LN2_LO_F32)));
    let mut p = _mm256_set1_ps(EXP_F32_COEFFS[7]);
    for &c in EXP_F32_COEFFS[..7].iter().rev() {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
    }
    let ki = _mm256_cvtps_epi32(k);
    let scale = _mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23);
    _mm256_mul_ps(p, _mm256_castsi256_ps(scale))
}

/// `h = silu(g) * u`, as `scalar::silu_mul`. Lengths are multiples of 8.
///
/// # Safety
/// Requires AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn silu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    let one = _mm256_set1_ps(1.0);
    let neg = _mm256_set1_ps(-0.0);
    for i in (0..g.len()).step_by(8) {
        let gv = _mm256_loadu_ps(g.as_ptr().add(i));
        let e = exp8(_mm256_xor_ps(gv, neg));
        let s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        let uv = _mm256_loadu_ps(u.as_ptr().add(i));
        _mm256_storeu_ps(h.as_mut_ptr().add(i), _mm256_mul_ps(s, uv));
    }
}

/// `h = gelu(g) * u`, as `scalar::gelu_mul` (spec §2.4-2.5: tanh from the canonical `exp`).
/// Lengths are multiples of 8.
///
/// # Safety
/// Requires AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn gelu_mul(g: &[f32], u: &[f32], h: &mut [f32]) {
    use crate::canon::math::{GELU_COEF_A, SQRT_2_OVER_PI};
    let one = _mm256_set1_ps(1.0);
    let two = _mm256_set1_ps(2.0);
    let half = _mm256_set1_ps(0.5);
    for i in (0..g.len()).step_by(8) {
        let x = _mm256_loadu_ps(g.as_ptr().add(i));
        let x2 = _mm256_mul_ps(x, x);
        let inner = _mm256_add_ps(one, _mm256_mul_ps(_mm256_set1_ps(GELU_COEF_A), x2));
        let v = _mm256_mul_ps(_mm256_set1_ps(SQRT_2_OVER_PI), _mm256_mul_ps(x, inner));
        let e = exp8(_mm256_add_ps(v, v));
        let tanh = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        let gelu = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, tanh));
        let uv = _mm256_loadu_ps(u.as_ptr().add(i));
        _mm256_storeu_ps(h.as_mut_ptr().add(i), _mm256_mul_ps(gelu, uv));
    }
}

/// RMSNorm of one row, as `scalar::rmsnorm_row`.
///
/// # Safety
/// Requires AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn rmsnorm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let ss = dot8_f32(x, x);
    let r = _mm256_set1_ps(1.0 / (ss / x.len() as f32 + eps).sqrt());
    for i in (0..x.len()).step_by(8) {
        let xv = _mm256_loadu_ps(x.as_ptr().add(i));
        let wv = _mm256_loadu_ps(w.as_ptr().add(i));
        _mm256_storeu_ps(
            y.as_mut_ptr().add(i),
            _mm256_mul_ps(_mm256_mul_ps(xv, r), wv),
        );
    }
}

/// One attention head for one query, as `scalar::attend`: [`attend_many`] with one query.
/// `q.len()` is a multiple of 8.
///
/// # Safety
/// Requires AVX2; `keys` and `values` hold `n` rows of `stride` floats with the head at `off`
/// (`(n - 1) * stride + off + q.len()` floats), `scores` at least `n`, `out` at least `q.len()`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
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
    let mut acc = vec![0f32; hd];
    attend_many(
        &[q.as_ptr()],
        &[n],
        &[out.as_mut_ptr()],
        hd,
        keys,
        values,
        stride,
        off,
        scale,
        scores,
        &mut acc,
    );
}

/// Keys (and values) per block of [`attend_many`]: 32 rows of a 64-wide head are 8 KiB each, so
/// a block of both stays in L1 while every query of the tile uses it.
const KEY_BLOCK: usize = 32;

/// Several queries of one KV head at once, each exactly as `scalar::attend` computes it alone.
///
/// One query at a time reads all its keys and values from L2, and at prefill lengths that
/// bandwidth, not arithmetic, bounded attention. Here the keys and values go by in blocks of
/// [`KEY_BLOCK`] rows, each block used by every query of the tile while it is in L1. Per query
/// nothing changes: each score is the same dot product (spec §1.3), the maximum and the sum are
/// the same left folds over `j = 0, 1, ...`, and each output element adds `e_j * v_j` in order of
/// `j` (its running value waits in `acc` between blocks, stored exactly).
///
/// # Safety
/// Requires AVX2. At most [`MAX_TILE`] queries; each `queries[i]` is `hd` floats (`hd` a multiple
/// of 8) attending to keys `0..ns[i]` (with none, its output is 0/0, NaN, as in the reference);
/// `keys` and `values` hold `max(ns)` rows of `stride` floats with the head at `off`; `outs[i]`
/// has room for `hd` floats and no two overlap; `scores` holds at least `queries.len() * max(ns)`
/// floats and `acc` at least `queries.len() * hd`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub unsafe fn attend_many(
    queries: &[*const f32],
    ns: &[usize],
    outs: &[*mut f32],
    hd: usize,
    keys: &[f32],
    values: &[f32],
    stride: usize,
    off: usize,
    scale: f32,
    scores: &mut [f32],
    acc: &mut [f32],
) {
    let nmax = ns.iter().copied().max().unwrap_or(0);
    // Wrapping: with no keys at all (`max(ns) == 0`) the offset may lie past the slices.
    let (kp, vp) = (
        keys.as_ptr().wrapping_add(off),
        values.as_ptr().wrapping_add(off),
    );
    let sc = _mm256_set1_ps(scale);
    // Scores, key block by key block. Each key's score is the same bits whether it is computed
    // in a group of eight or alone (see `dot8_f32_x8`).
    for kb in (0..nmax).step_by(KEY_BLOCK) {
        for (i, (&q, &n)) in queries.iter().zip(ns).enumerate() {
            let end = n.min(kb + KEY_BLOCK);
            let srow = scores.as_mut_ptr().add(i * nmax);
            let mut j = kb;
            while j + 8 <= end {
                let d = dot8_f32_x8(q, kp.add(j * stride), stride, hd);
                _mm256_storeu_ps(srow.add(j), _mm256_mul_ps(d, sc));
                j += 8;
            }
            while j < end {
                let k = std::slice::from_raw_parts(kp.add(j * stride), hd);
                *srow.add(j) = dot8_f32(std::slice::from_raw_parts(q, hd), k) * scale;
                j += 1;
            }
        }
    }
    // Softmax weights of each query: the maximum, exp, and the sum, each in order of j.
    let mut sums = [0f32; MAX_TILE];
    for (i, &n) in ns.iter().enumerate() {
        let row = &mut scores[i * nmax..][..n];
        let mut m = f32::NEG_INFINITY;
        for &s in row.iter() {
            if s > m {
                m = s;
            }
        }
        let mv = _mm256_set1_ps(m);
        let mut j = 0;
        while j + 8 <= n {
            let p = row.as_mut_ptr().add(j);
            _mm256_storeu_ps(p, exp8(_mm256_sub_ps(_mm256_loadu_ps(p), mv)));
            j += 8;
        }
        for s in row[j..].iter_mut() {
            *s = crate::canon::math::exp_f32(*s - m);
        }
        let mut sum = 0f32;
        for &e in row.iter() {
            sum += e;
        }
        sums[i] = sum;
    }
    // Weighted sums of the values, value block by value block.
    acc[..queries.len() * hd].fill(0.0);
    for kb in (0..nmax).step_by(KEY_BLOCK) {
        for (i, &n) in ns.iter().enumerate() {
            if kb >= n {
                continue;
            }
            let e = &scores[i * nmax + kb..i * nmax + n.min(kb + KEY_BLOCK)];
            let (v, a) = (vp.add(kb * stride), acc.as_mut_ptr().add(i * hd));
            let mut c = 0;
            let chunks = hd / 8;
            while c < chunks {
                let (v, a) = (v.add(c * 8), a.add(c * 8));
                c += match chunks - c {
                    8.. => accumulate::<8>(e, v, stride, a),
                    4..=7 => accumulate::<4>(e, v, stride, a),
                    2..=3 => accumulate::<2>(e, v, stride, a),
                    _ => accumulate::<1>(e, v, stride, a),
                };
            }
        }
    }
    for (i, &o) in outs.iter().enumerate() {
        let sv = _mm256_set1_ps(sums[i]);
        for c in (0..hd).step_by(8) {
            let a = _mm256_loadu_ps(acc.as_ptr().add(i * hd + c));
            _mm256_storeu_ps(o.add(c), _mm256_div_ps(a, sv));
        }
    }
}

/// Most queries one [`attend_many`] call takes.
pub const MAX_TILE: usize = 64;

/// `acc[0..8W] += sum_j e[j] * v[j * stride + ..]`, over `j` in order; returns `W`.
#[inline(always)]
unsafe fn accumulate<const W: usize>(
    e: &[f32],
    v: *const f32,
    stride: usize,
    acc: *mut f32,
) -> usize {
    let mut a = [_mm256_setzero_ps(); W];
    for (c, x) in a.iter_mut().enumerate() {
        *x = _mm256_loadu_ps(acc.add(c * 8));
    }
    for (j, &ej) in e.iter().enumerate() {
        let ev = _mm256_set1_ps(ej);
        let row = v.add(j * stride);
        for (c, x) in a.iter_mut().enumerate() {
            *x = _mm256_add_ps(*x, _mm256_mul_ps(ev, _mm256_loadu_ps(row.add(c * 8))));
        }
    }
    for (c, x) in a.iter().enumerate() {
        _mm256_storeu_ps(acc.add(c * 8), *x);
    }
    W
}
