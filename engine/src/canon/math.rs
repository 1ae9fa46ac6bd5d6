//! Elementary functions of the canonical arithmetic, built only from IEEE-754 add, sub, mul, div
//! and sqrt with round-to-nearest-even, so that every implementation (scalar, SIMD, CUDA) computes
//! the same bits. Platform `exp`/`sin`/`cos` differ between libms and are never used here.
//!
//! Rust never contracts `a * b + c` into an FMA, so each operation below is rounded on its own,
//! exactly as `docs/canonical-arithmetic.md` writes it. The f32 functions are the ones used per
//! token (softmax, SiLU); the f64 ones only build tables (RoPE) once per model.

// The constants are written as their published (fdlibm) decimal expansions, longer than needed.
#![allow(clippy::excessive_precision)]

/// Lower clamp of [`exp_f32`]'s argument: keeps `2^k` a normal number.
pub const EXP_MIN: f32 = -87.0;
/// Upper clamp of [`exp_f32`]'s argument: keeps the result finite.
pub const EXP_MAX: f32 = 88.0;
const LOG2E_F32: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two: the high part has few enough bits that `k * LN2_HI_F32` is exact for |k| <= 128.
pub const LN2_HI_F32: f32 = 0.693_145_751_953_125;
pub const LN2_LO_F32: f32 = 1.428_606_765_330_187e-6;
/// Taylor coefficients 1/n!, n = 0..=7, as f32 (Horner from the highest).
pub const EXP_F32_COEFFS: [f32; 8] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
];

/// Canonical `exp` in f32 (spec §2.1). Relative error below 2 ulp on the clamped range.
///
/// NaN is treated as `EXP_MIN` (the behaviour of `f32::max`, and of x86 `maxps` with the constant
/// second), so that the SIMD path has no special case to match.
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; the spec maps it to EXP_MIN
pub fn exp_f32(x: f32) -> f32 {
    let x = x.max(EXP_MIN).min(EXP_MAX);
    let k = (x * LOG2E_F32).round_ties_even();
    let r = (x - k * LN2_HI_F32) - k * LN2_LO_F32;
    let mut p = EXP_F32_COEFFS[7];
    for &c in EXP_F32_COEFFS[..7].iter().rev() {
        p = p * r + c;
    }
    p * pow2_f32(k as i32)
}

/// `2^k` for k in [-126, 127], built from its bits.
#[inline]
pub fn pow2_f32(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// Canonical SiLU: `x / (1 + exp(-x))` (spec §2.2).
#[inline]
pub fn silu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// Canonical tanh (spec §2.4): `e = exp(2x)` (§2.1, so clamped), then `1 - 2 / (e + 1)`.
/// Saturates to exactly ±1 far from 0; near 0 its absolute error is about one ulp of 1, which
/// is what GELU's `1 + tanh` needs.
#[inline]
pub fn tanh_f32(x: f32) -> f32 {
    let e = exp_f32(x + x);
    1.0 - 2.0 / (e + 1.0)
}

/// `sqrt(2 / pi)` and the cubic coefficient of GELU's tanh approximation, as ggml writes them.
pub const SQRT_2_OVER_PI: f32 = 0.797_884_6;
pub const GELU_COEF_A: f32 = 0.044715;

/// Canonical GELU, tanh approximation (spec §2.5):
/// `u = SQRT_2_OVER_PI * (x * (1 + GELU_COEF_A * (x * x)))`, `(0.5 * x) * (1 + tanh(u))`.
#[inline]
pub fn gelu_tanh_f32(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x * (1.0 + GELU_COEF_A * (x * x)));
    (0.5 * x) * (1.0 + tanh_f32(u))
}

/// Fixed-order f32 dot product (spec §1.3): eight accumulators, lane `l` takes elements
/// `l, l+8, l+16, ...` in order (each product rounded, then added), then the tree
/// `((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))`. `a.len()` must be a multiple of 8.
#[inline]
pub fn dot8_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    debug_assert_eq!(a.len() % 8, 0);
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += ca[l] * cb[l];
        }
    }
    tree8(acc)
}

/// Fixed-order sum of squares, same lane and tree order as [`dot8_f32`].
#[inline]
pub fn sumsq8_f32(a: &[f32]) -> f32 {
    dot8_f32(a, a)
}

/// The spec's eight-lane combining tree.
#[inline]
pub fn tree8(a: [f32; 8]) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

// ---------------------------------------------------------------------------------------------
// f64 functions for tables (RoPE). Accuracy is close to 1 ulp; what matters is that they are
// written from IEEE operations only, so every implementation builds the same table.

const LN2_F64: f64 = std::f64::consts::LN_2;
/// fdlibm's split of ln 2: `k * LN2_HI_F64` is exact for |k| < 2^20.
const LN2_HI_F64: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO_F64: f64 = 1.908_214_929_270_587_700_02e-10;
/// fdlibm's three-part split of pi/2 (33 + 33 + 53 bits): `k * PIO2_1` and `k * PIO2_2` are exact
/// for |k| < 2^20, which covers every angle below 1.6e6 radians.
const PIO2_1: f64 = 1.570_796_326_734_125_614_17;
const PIO2_2: f64 = 6.077_100_506_303_965_976_60e-11;
const PIO2_3: f64 = 2.022_266_248_795_950_631_54e-21;
const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;

/// Canonical natural logarithm for finite x > 0 (spec §2.3). Other inputs return NaN.
pub fn ln_f64(x: f64) -> f64 {
    if !(x > 0.0 && x.is_finite()) {
        return f64::NAN;
    }
    let (mut m, mut e) = frexp_normalised(x);
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    // ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: 2 * sum s^(2j+1)/(2j+1), j = 0..=15.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut t = 1.0 / 31.0;
    for j in (0..15).rev() {
        t = t * s2 + 1.0 / (2 * j + 1) as f64;
    }
    (e as f64) * LN2_F64 + 2.0 * s * t
}

/// `x = m * 2^e` with m in [1, 2), for finite positive normal or subnormal x.
fn frexp_normalised(x: f64) -> (f64, i32) {
    let mut x = x;
    let mut bias = 0;
    if x < f64::MIN_POSITIVE {
        x *= 2f64.powi(54); // exact: scaling by a power of two
        bias = -54;
    }
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1023u64 << 52));
    (m, e + bias)
}

/// Canonical `exp` in f64 (spec §2.3), for |x| < 700.
pub fn exp_f64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN2_F64).round_ties_even();
    let r = (x - k * LN2_HI_F64) - k * LN2_LO_F64;
    // Taylor to degree 20 on |r| <= 0.35.
    let mut p = 1.0 / factorial(20);
    for n in (0..20).rev() {
        p = p * r + 1.0 / factorial(n);
    }
    p * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// n! as an f64 (exact for n <= 22).
fn factorial(n: u32) -> f64 {
    (1..=n).fold(1.0, |acc, i| acc * i as f64)
}

/// Canonical `(sin x, cos x)` in f64 (spec §2.3), for 0 <= |x| < 1.6e6.
pub fn sin_cos_f64(x: f64) -> (f64, f64) {
    let k = (x * TWO_OVER_PI).round_ties_even();
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let (s, c) = (sin_poly(r), cos_poly(r));
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// sin on |r| <= pi/4: Taylor to degree 23, Horner in r^2 from the highest term.
fn sin_poly(r: f64) -> f64 {
    r * taylor_even_odd(r * r, 1)
}

/// cos on |r| <= pi/4: Taylor to degree 22, Horner in r^2 from the highest term.
fn cos_poly(r: f64) -> f64 {
    taylor_even_odd(r * r, 0)
}

/// `sum_{j=0..=11} (-1)^j r2^j / (2j + odd)!`, evaluated by Horner from j = 11 down.
fn taylor_even_odd(r2: f64, odd: u32) -> f64 {
    let coeff = |j: u32| {
        let c = 1.0 / factorial(2 * j + odd);
        if j.is_multiple_of(2) {
            c
        } else {
            -c
        }
    };
    let mut p = coeff(11);
    for j in (0..11).rev() {
        p = p * r2 + coeff(j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(
            worst < 3.0 * f32::EPSILON as f64,
            "worst relative error {worst}"
        );
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NAN), exp_f32(EXP_MIN));
        assert_eq!(exp_f32(-1e30), exp_f32(EXP_MIN));
        assert!(exp_f32(1e30).is_finite());
    }

    /// tanh and GELU (spec §2.4, §2.5) against f64 references: tanh within 2e-7 absolute,
    /// GELU within 1e-6 relative to max(1, |x|); exact saturation far from 0.
    #[test]
    fn tanh_and_gelu_are_accurate() {
        for i in -4000..=4000 {
            let x = i as f32 * 0.005;
            let t = tanh_f32(x);
            assert!(
                (t as f64 - (x as f64).tanh()).abs() < 2e-7,
                "tanh({x}) = {t}"
            );
            let g = gelu_tanh_f32(x) as f64;
            let xf = x as f64;
            let u = (2.0f64 / std::f64::consts::PI).sqrt() * (xf + 0.044715 * xf * xf * xf);
            let want = 0.5 * xf * (1.0 + u.tanh());
            assert!(
                (g - want).abs() < 1e-6 * xf.abs().max(1.0),
                "gelu({x}) = {g} vs {want}"
            );
        }
        assert_eq!(tanh_f32(50.0), 1.0);
        assert_eq!(tanh_f32(-50.0), -1.0);
        assert_eq!(gelu_tanh_f32(0.0), 0.0);
        assert_eq!(SQRT_2_OVER_PI.to_bits(), 0x3f4c_422a);
    }

    #[test]
    fn f64_functions_are_accurate() {
        for &x in &[
            1e-300, 1e-5, 0.5, 1.0, 1.5, 2.0, 10.0, 1e5, 123456.789, 1e300,
        ] {
            let (got, want) = (ln_f64(x), x.ln());
            assert!(
                (got - want).abs() <= 4e-16 * want.abs().max(1.0),
                "ln {x}: {got} {want}"
            );
        }
        for i in -200..200 {
            let x = i as f64 * 0.173;
            let (got, want) = (exp_f64(x), x.exp());
            assert!(((got - want) / want).abs() < 4e-16, "exp {x}: {got} {want}");
        }
        for i in 0..20000 {
            let x = i as f64 * 7.31;
            let (s, c) = sin_cos_f64(x);
            assert!((s - x.sin()).abs() < 1e-12, "sin {x}: {s} {}", x.sin());
            assert!((c - x.cos()).abs() < 1e-12, "cos {x}: {c} {}", x.cos());
        }
        assert!(ln_f64(-1.0).is_nan() && ln_f64(0.0).is_nan());
    }

    #[test]
    fn dot8_order_is_the_spec_order() {
        // Values chosen so that a different summation order gives a different result.
        let a: Vec<f32> = (0..16)
            .map(|i| if i % 3 == 0 { 1e8 } else { 1.0 + i as f32 })
            .collect();
        let b = vec![1.0f32; 16];
        let mut lanes = [0f32; 8];
        for l in 0..8 {
            lanes[l] = a[l] + a[l + 8];
        }
        let want = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
            + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        assert_eq!(dot8_f32(&a, &b).to_bits(), want.to_bits());
    }
}
