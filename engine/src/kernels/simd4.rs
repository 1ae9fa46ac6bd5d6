//! The kernels of the 128-bit instruction sets (aarch64 NEON, WebAssembly SIMD128), written once
//! over a small trait of 4-lane operations that each instruction set implements (`neon.rs`,
//! `simd128.rs`). As in the AVX2 kernels, SIMD lanes run *independent* outputs (the eight rows
//! of a row group as two vectors of four, the elements of a vector, the spec's eight dot-product
//! accumulators), never a reordered float reduction; integer sums inside a block are exact, so
//! how an instruction set forms them ([`Dot4`]) cannot show in the result.
//!
//! Every float operation of the trait is one IEEE operation, rounded on its own (no FMA), and
//! the NaN-sensitive maxima and clamps are compare-and-select, so that they do what the scalar
//! `if a > m` and `f32::max` do for every NaN (the IEEE `maxNum` of NEON's `fmaxnm`, or wasm's
//! NaN-propagating `f32x4.max`, would not).

use crate::canon::math::{
    exp_f32, tree8, EXP_F32_COEFFS, EXP_MAX, EXP_MIN, GELU_COEF_A, LN2_HI_F32, LN2_LO_F32,
    SQRT_2_OVER_PI,
};
use crate::canon::quant::{QActs, QBlocksMut, QK};
use crate::qmatrix::{QMatrix, WeightKind, CHUNK, GROUP, NIB_Q, WIDE_Q};
use crate::quant::{FormClass, QuantType};

/// Four-lane vector operations of one instruction set.
///
/// # Safety
/// Every method requires the instruction set (compiled in or detected); pointers are valid for
/// the bytes each method reads or writes, unaligned.
#[allow(clippy::missing_safety_doc)] // the trait's section covers every method
pub unsafe trait Simd4 {
    /// Four f32.
    type F: Copy;
    /// Four i32.
    type I: Copy;
    /// Sixteen bytes.
    type B: Copy;

    unsafe fn f_splat(x: f32) -> Self::F;
    unsafe fn f_load(p: *const f32) -> Self::F;
    unsafe fn f_store(p: *mut f32, v: Self::F);
    /// Four f16 values at `p`, widened exactly.
    unsafe fn f_load_f16(p: *const u8) -> Self::F;
    unsafe fn f_add(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn f_sub(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn f_mul(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn f_div(a: Self::F, b: Self::F) -> Self::F;
    /// `|a|` (the sign bit cleared).
    unsafe fn f_abs(a: Self::F) -> Self::F;
    /// `-a` (the sign bit flipped).
    unsafe fn f_neg(a: Self::F) -> Self::F;
    /// `if a > b { a } else { b }` per lane.
    unsafe fn f_gt_select(a: Self::F, b: Self::F) -> Self::F;
    /// `if a < b { a } else { b }` per lane.
    unsafe fn f_lt_select(a: Self::F, b: Self::F) -> Self::F;
    /// Rounds to the nearest integer, ties to even.
    unsafe fn f_round_even(a: Self::F) -> Self::F;
    /// The integer value of integral lanes.
    unsafe fn f_to_i32(a: Self::F) -> Self::I;
    /// Each lane rounded to the nearest f32 (exact below 2^24).
    unsafe fn f_from_i32(a: Self::I) -> Self::F;
    /// The lanes' bits as f32.
    unsafe fn f_from_bits(a: Self::I) -> Self::F;
    unsafe fn f_lanes(a: Self::F) -> [f32; 4];

    unsafe fn i_splat(x: i32) -> Self::I;
    unsafe fn i_add(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn i_sub(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn i_mul(a: Self::I, b: Self::I) -> Self::I;
    /// Each lane shifted left by 23 (into an f32's exponent field).
    unsafe fn i_shl23(a: Self::I) -> Self::I;
    /// The sum of the four lanes (exact in the callers' ranges).
    unsafe fn i_sum(a: Self::I) -> i32;
    /// Four i8 values at `p`, sign-extended.
    unsafe fn i_load_i8(p: *const u8) -> Self::I;
    /// Stores the 32 values of `v` (each in -128..=127) as bytes at `p`.
    unsafe fn i_store_i8x32(p: *mut i8, v: &[Self::I; 8]);

    unsafe fn b_load(p: *const u8) -> Self::B;
    /// The low and high nibbles of each byte.
    unsafe fn b_nibbles(v: Self::B) -> (Self::B, Self::B);
    /// The four bytes at `p` in each of the vector's four words.
    unsafe fn b_bcast4(p: *const i8) -> Self::B;
}

/// Four rows' integer dot products of four signed bytes each: the ways an instruction set forms
/// them.
///
/// # Safety
/// As [`Simd4`], and the CPU features of the implementation (NEON's `sdot`: `dotprod`).
#[allow(clippy::missing_safety_doc)] // the trait's section covers every method
pub unsafe trait Dot4<S: Simd4> {
    /// Partial sums of four rows.
    type Acc: Copy;
    unsafe fn zero() -> Self::Acc;
    /// Adds, for each row `r` of four, `sum_{i<4} w[4r + i] * x[4r + i]`.
    unsafe fn add(acc: Self::Acc, w: S::B, x: S::B) -> Self::Acc;
    /// Each row's sum.
    unsafe fn finish(acc: Self::Acc) -> S::I;
}

/// Eight lanes of f32: rows 0-3 and rows 4-7 of a row group.
type F8<S> = [<S as Simd4>::F; 2];

#[inline(always)]
unsafe fn zero8<S: Simd4>() -> F8<S> {
    [S::f_splat(0.0), S::f_splat(0.0)]
}

#[inline(always)]
unsafe fn f16x8<S: Simd4>(p: *const u8) -> F8<S> {
    [S::f_load_f16(p), S::f_load_f16(p.add(8))]
}

#[inline(always)]
unsafe fn f32x8<S: Simd4>(p: *const u8) -> F8<S> {
    let p = p as *const f32;
    [S::f_load(p), S::f_load(p.add(4))]
}

#[inline(always)]
unsafe fn i8x8<S: Simd4>(p: *const u8) -> [S::I; 2] {
    [S::i_load_i8(p), S::i_load_i8(p.add(4))]
}

/// `(d * dx) * isum` per lane: the spec's block step, rounded as the scalar reference rounds it.
#[inline(always)]
unsafe fn scaled<S: Simd4>(d: S::F, dx: S::F, isum: S::I) -> S::F {
    S::f_mul(S::f_mul(d, dx), S::f_from_i32(isum))
}

/// `x.max(lo).min(hi)` per lane, as `f32::max`/`f32::min` do it (a NaN `x` gives `lo`).
#[inline(always)]
unsafe fn clamp<S: Simd4>(x: S::F, lo: S::F, hi: S::F) -> S::F {
    S::f_lt_select(S::f_gt_select(x, lo), hi)
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

/// Computes the outputs of row group `g` for activation rows `t0..t1` into `out[t * stride + r]`.
///
/// # Safety
/// As [`Dot4`]; `out` is valid for every written index; `xq` holds rows `t0..t1` of `w.cols`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn matmul_group<S: Simd4, D: Dot4<S>>(
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
                let v = dot8_f32::<S>(&w.f32s[r * w.cols..][..w.cols], &xf[t * w.cols..][..w.cols]);
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
            tile::<S, D, TILE>(w, g, xq, t, &mut v);
        } else {
            tile::<S, D, 1>(w, g, xq, t, (&mut v[..1]).try_into().expect("one row"));
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
unsafe fn tile<S: Simd4, D: Dot4<S>, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    out: &mut [[f32; GROUP]; N],
) {
    let mut acc = [zero8::<S>(); N];
    match w.kind {
        WeightKind::Q4_1 => q4_tile::<S, D, NIB_Q4_1, N>(w, g, xq, t, &mut acc),
        WeightKind::Q4_0 => q4_tile::<S, D, NIB_Q4_0, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(QuantType::Q4K) => q4_tile::<S, D, NIB_Q4K, N>(w, g, xq, t, &mut acc),
        WeightKind::Blocks(qt) => match qt.form_class() {
            FormClass::SubScaled => wide_tile::<S, D, FORM_SUB_SCALED, N>(w, g, xq, t, &mut acc),
            FormClass::SubAffine => wide_tile::<S, D, FORM_SUB_AFFINE, N>(w, g, xq, t, &mut acc),
            // Q5_0 (the only scaled type among them) has a kind of its own at load.
            FormClass::Affine | FormClass::Scaled => {
                wide_tile::<S, D, FORM_AFFINE, N>(w, g, xq, t, &mut acc)
            }
        },
        WeightKind::Q5_0 => bytes_tile::<S, D, true, N>(w, g, xq, t, &mut acc),
        _ => bytes_tile::<S, D, false, N>(w, g, xq, t, &mut acc),
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        S::f_store(o.as_mut_ptr(), a[0]);
        S::f_store(o.as_mut_ptr().add(4), a[1]);
    }
}

/// A nibble-layout row group (Q4_0, Q4_1 or Q4_K, by `K`) against `N` activation rows. Chunk `c`
/// (32 bytes) holds four bytes of each of the eight rows; their low nibbles are elements
/// `4c..4c+4`, their high nibbles `16+4c..16+4c+4` (nibbles are at most 15, so they are signed
/// bytes as they are).
#[inline(always)]
unsafe fn q4_tile<S: Simd4, D: Dot4<S>, const K: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8<S>; N],
) {
    let nb = w.blocks();
    let gbb = w.gbb();
    let base = w.bytes.as_ptr().add(g * nb * gbb);
    let xbase = xq.q.as_ptr();
    for b in 0..nb {
        let p = base.add(b * gbb);
        let (dw, mw, qoff) = match K {
            NIB_Q4_0 => (f16x8::<S>(p), zero8::<S>(), 16),
            NIB_Q4_1 => (f16x8::<S>(p), f16x8::<S>(p.add(16)), 32),
            _ => (f32x8::<S>(p), f32x8::<S>(p.add(32)), NIB_Q),
        };
        let mut s = [[D::zero(); 2]; N];
        for c in 0..4 {
            for half in 0..2 {
                let (lo, hi) = S::b_nibbles(S::b_load(p.add(qoff + c * CHUNK + 16 * half)));
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[half] = D::add(sj[half], lo, S::b_bcast4(x.add(4 * c)));
                    sj[half] = D::add(sj[half], hi, S::b_bcast4(x.add(16 + 4 * c)));
                }
            }
        }
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = S::f_splat(*xq.d.get_unchecked(xb));
            for h in 0..2 {
                let isum = D::finish(s[j][h]);
                a[h] = if K == NIB_Q4_0 {
                    let off = S::i_splat(8 * *xq.qsum.get_unchecked(xb));
                    S::f_add(a[h], scaled::<S>(dw[h], dx, S::i_sub(isum, off)))
                } else {
                    let u = S::f_mul(mw[h], S::f_splat(*xq.s.get_unchecked(xb)));
                    S::f_add(a[h], S::f_add(scaled::<S>(dw[h], dx, isum), u))
                };
            }
        }
    }
}

/// A Q8_0 row group (signed bytes) or, with `UNSIGNED_Q5`, a Q5_0 one (bytes `q + 16` in 0..=31,
/// `16 * sum(x)` subtracted from the exact sum to give Q8_0's) against `N` activation rows.
#[inline(always)]
unsafe fn bytes_tile<S: Simd4, D: Dot4<S>, const UNSIGNED_Q5: bool, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8<S>; N],
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
                let v = S::b_load(p.add(16 + c * CHUNK + 16 * half));
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[half] = D::add(sj[half], v, S::b_bcast4(x.add(4 * c)));
                }
            }
        }
        let dw = f16x8::<S>(p);
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = S::f_splat(*xq.d.get_unchecked(xb));
            for h in 0..2 {
                let mut isum = D::finish(s[j][h]);
                if UNSIGNED_Q5 {
                    isum = S::i_sub(isum, S::i_splat(16 * *xq.qsum.get_unchecked(xb)));
                }
                a[h] = S::f_add(a[h], scaled::<S>(dw[h], dx, isum));
            }
        }
    }
}

/// A byte-layout row group (Q5_1 and the K-quants but Q4_K; spec §1.4, form `F`) against `N`
/// activation rows: the integer sums of the two halves of 16 (chunks 0-3 and 4-7) kept apart for
/// the sub-scaled forms, then each form's float steps per lane in the order of
/// [`crate::quant::Piece::term`] (see `QMatrix::piece` for the field offsets).
#[inline(always)]
unsafe fn wide_tile<S: Simd4, D: Dot4<S>, const F: u8, const N: usize>(
    w: &QMatrix,
    g: usize,
    xq: &QActs,
    t: usize,
    acc: &mut [F8<S>; N],
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
                let v = S::b_load(p.add(WIDE_Q + c * CHUNK + 16 * half));
                for (j, sj) in s.iter_mut().enumerate() {
                    let x = xbase.add(((t + j) * nb + b) * QK);
                    sj[c / 4][half] = D::add(sj[c / 4][half], v, S::b_bcast4(x.add(4 * c)));
                }
            }
        }
        let (dw, m2) = (f32x8::<S>(p), f32x8::<S>(p.add(32)));
        let (s0, s1) = (i8x8::<S>(p.add(64)), i8x8::<S>(p.add(72)));
        // The sub-mins (read by the sub-affine form only; the layout has them for every form).
        let (m0, m1) = (i8x8::<S>(p.add(80)), i8x8::<S>(p.add(88)));
        for (j, a) in acc.iter_mut().enumerate() {
            let xb = (t + j) * nb + b;
            let dx = S::f_splat(*xq.d.get_unchecked(xb));
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
                    S::i_add(h0, h1)
                } else {
                    S::i_add(S::i_mul(s0[h], h0), S::i_mul(s1[h], h1))
                };
                let tt = scaled::<S>(dw[h], dx, isum);
                let term = match F {
                    FORM_AFFINE => {
                        S::f_add(tt, S::f_mul(m2[h], S::f_splat(*xq.s.get_unchecked(xb))))
                    }
                    FORM_SUB_SCALED => tt,
                    _ => {
                        let msum = S::i_add(
                            S::i_mul(m0[h], S::i_splat(x0)),
                            S::i_mul(m1[h], S::i_splat(x1)),
                        );
                        S::f_sub(tt, scaled::<S>(m2[h], dx, msum))
                    }
                };
                a[h] = S::f_add(a[h], term);
            }
        }
    }
}

/// The spec's f32 dot product: lanes 0-3 of `lo` and 0-3 of `hi` are its eight accumulators,
/// combined by the spec's tree.
///
/// # Safety
/// As [`Simd4`]; `b` is at least as long as `a`, whose length is a multiple of 8.
#[inline(always)]
pub unsafe fn dot8_f32<S: Simd4>(a: &[f32], b: &[f32]) -> f32 {
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut lo, mut hi) = (S::f_splat(0.0), S::f_splat(0.0));
    for i in (0..a.len()).step_by(8) {
        lo = S::f_add(lo, S::f_mul(S::f_load(pa.add(i)), S::f_load(pb.add(i))));
        hi = S::f_add(
            hi,
            S::f_mul(S::f_load(pa.add(i + 4)), S::f_load(pb.add(i + 4))),
        );
    }
    let (l, h) = (S::f_lanes(lo), S::f_lanes(hi));
    tree8([l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]])
}

/// Block quantization of `x` (spec §1.1), as `scalar::quantize_blocks`.
///
/// # Safety
/// As [`Simd4`].
#[inline(always)]
pub unsafe fn quantize_blocks<S: Simd4>(x: &[f32], out: QBlocksMut) {
    let (lo, hi) = (S::f_splat(-127.0), S::f_splat(127.0));
    for (i, xb) in x.chunks_exact(QK).enumerate() {
        let p = xb.as_ptr();
        let v: [S::F; 8] = std::array::from_fn(|k| S::f_load(p.add(4 * k)));
        // The largest magnitude, NaN never taken: the maximum of a set is the same in any order.
        let mut m = S::f_splat(0.0);
        for vv in v {
            m = S::f_gt_select(S::f_abs(vv), m);
        }
        let amax = S::f_lanes(m)
            .iter()
            .fold(0f32, |a, &b| if b > a { b } else { a });
        let q = &mut out.q[i * QK..][..QK];
        if amax == 0.0 {
            q.fill(0);
            out.d[i] = 0.0;
            out.qsum[i] = 0;
            out.s[i] = 0.0;
            continue;
        }
        let (d, id) = crate::canon::quant::block_scale(amax);
        let inv = S::f_splat(id);
        let ints: [S::I; 8] = std::array::from_fn(|k| {
            S::f_to_i32(clamp::<S>(S::f_round_even(S::f_mul(v[k], inv)), lo, hi))
        });
        let mut sum = S::i_splat(0);
        for &k in &ints {
            sum = S::i_add(sum, k);
        }
        S::i_store_i8x32(q.as_mut_ptr(), &ints);
        let qsum = S::i_sum(sum);
        out.d[i] = crate::canon::quant::round_f16(d);
        out.qsum[i] = qsum;
        out.s[i] = crate::canon::quant::round_f16(qsum as f32 * d);
    }
}

/// Four lanes of the canonical `exp` (spec §2.1), operation for operation as `math::exp_f32`.
#[inline(always)]
unsafe fn exp4<S: Simd4>(x: S::F) -> S::F {
    let x = clamp::<S>(x, S::f_splat(EXP_MIN), S::f_splat(EXP_MAX));
    let k = S::f_round_even(S::f_mul(x, S::f_splat(std::f32::consts::LOG2_E)));
    let r = S::f_sub(x, S::f_mul(k, S::f_splat(LN2_HI_F32)));
    let r = S::f_sub(r, S::f_mul(k, S::f_splat(LN2_LO_F32)));
    let mut p = S::f_splat(EXP_F32_COEFFS[7]);
    for &c in EXP_F32_COEFFS[..7].iter().rev() {
        p = S::f_add(S::f_mul(p, r), S::f_splat(c));
    }
    let scale = S::i_shl23(S::i_add(S::f_to_i32(k), S::i_splat(127)));
    S::f_mul(p, S::f_from_bits(scale))
}

/// `h = silu(g) * u`, as `scalar::silu_mul`.
///
/// # Safety
/// As [`Simd4`]; `g.len()` is a multiple of 4; `u` and `h` are at least as long.
#[inline(always)]
pub unsafe fn silu_mul<S: Simd4>(g: &[f32], u: &[f32], h: &mut [f32]) {
    let one = S::f_splat(1.0);
    for i in (0..g.len()).step_by(4) {
        let gv = S::f_load(g.as_ptr().add(i));
        let s = S::f_div(gv, S::f_add(one, exp4::<S>(S::f_neg(gv))));
        S::f_store(
            h.as_mut_ptr().add(i),
            S::f_mul(s, S::f_load(u.as_ptr().add(i))),
        );
    }
}

/// `h = gelu(g) * u`, as `scalar::gelu_mul` (spec §2.4-2.5: tanh from the canonical `exp`).
///
/// # Safety
/// As [`silu_mul`].
#[inline(always)]
pub unsafe fn gelu_mul<S: Simd4>(g: &[f32], u: &[f32], h: &mut [f32]) {
    let (one, two, half) = (S::f_splat(1.0), S::f_splat(2.0), S::f_splat(0.5));
    for i in (0..g.len()).step_by(4) {
        let x = S::f_load(g.as_ptr().add(i));
        let inner = S::f_add(one, S::f_mul(S::f_splat(GELU_COEF_A), S::f_mul(x, x)));
        let v = S::f_mul(S::f_splat(SQRT_2_OVER_PI), S::f_mul(x, inner));
        let e = exp4::<S>(S::f_add(v, v));
        let tanh = S::f_sub(one, S::f_div(two, S::f_add(e, one)));
        let gelu = S::f_mul(S::f_mul(half, x), S::f_add(one, tanh));
        S::f_store(
            h.as_mut_ptr().add(i),
            S::f_mul(gelu, S::f_load(u.as_ptr().add(i))),
        );
    }
}

/// RMSNorm of one row, as `scalar::rmsnorm_row`.
///
/// # Safety
/// As [`Simd4`]; `x.len()` is a multiple of 8; `w` and `y` are at least as long.
#[inline(always)]
pub unsafe fn rmsnorm_row<S: Simd4>(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let ss = dot8_f32::<S>(x, x);
    let r = S::f_splat(1.0 / (ss / x.len() as f32 + eps).sqrt());
    for i in (0..x.len()).step_by(4) {
        let xv = S::f_load(x.as_ptr().add(i));
        let wv = S::f_load(w.as_ptr().add(i));
        S::f_store(y.as_mut_ptr().add(i), S::f_mul(S::f_mul(xv, r), wv));
    }
}

/// One attention head for one query, as `scalar::attend`: scores by the spec's dot product,
/// maximum and sum as left folds in order of key, exp four keys at a time, and each output
/// element's weighted sum of values in order of key (elements are the lanes).
///
/// # Safety
/// As [`Simd4`]; `q.len()` is a multiple of 8; `keys` and `values` hold `n` rows of `stride`
/// floats with the head at `off` (`(n - 1) * stride + off + q.len()` floats), `scores` at least
/// `n`, `out` at least `q.len()`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn attend<S: Simd4>(
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
        let s = dot8_f32::<S>(q, k) * scale;
        *scores.get_unchecked_mut(j) = s;
        if s > m {
            m = s;
        }
    }
    let row = &mut scores[..n];
    let mv = S::f_splat(m);
    let mut j = 0;
    while j + 4 <= n {
        let p = row.as_mut_ptr().add(j);
        S::f_store(p, exp4::<S>(S::f_sub(S::f_load(p), mv)));
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
        let mut a = S::f_splat(0.0);
        for (j, &e) in row.iter().enumerate() {
            let v = S::f_load(values.as_ptr().add(j * stride + off + c));
            a = S::f_add(a, S::f_mul(S::f_splat(e), v));
        }
        S::f_store(o.add(c), S::f_div(a, S::f_splat(sum)));
    }
}
