//! The IEEE binary64 vectors shared with `contracts/src/SwornF64.sol` and
//! `SwornRopeTable.sol`: the f64 operations the RoPE table is built from (spec §2.3, §3.4),
//! 10,000 cases each, random and adversarial (NaNs, infinities, signed zeros, subnormals, the
//! largest finite values, exact ties, cancellations, huge angles), with the result this platform
//! computes, every NaN canonical (`0x7FF8000000000000`; binary32 `0x7FC00000`).
//!
//! Records of big-endian 32-bit words, a binary64 value as two (high, then low): `a b result`
//! for `f64_add`, `f64_sub`, `f64_mul` and `f64_div`; `a result` for `f64_round` (to an
//! integer, ties to even), `f64_to_i64` (the result as a two's-complement 64-bit integer),
//! `f64_ln` and `f64_exp`; `a result32` for `f64_to_f32`; `a sin cos` for `f64_sincos`; and
//! `base dim i scaled factor pos cos sin` (binary32 bits and integers, one word each) for
//! `rope_table`, each word as [`RopeTable::entry`] computes it.

use super::{canonical, put, CASES};
use crate::canon::math::{exp_f64, ln_f64, sin_cos_f64};
use crate::canon::rope::RopeTable;
use crate::synthetic::Rng;

/// The canonical binary64 NaN.
pub const NAN64: u64 = 0x7FF8_0000_0000_0000;

fn canonical64(x: f64) -> u64 {
    if x.is_nan() {
        NAN64
    } else {
        x.to_bits()
    }
}

fn put64(out: &mut Vec<u8>, values: impl IntoIterator<Item = u64>) {
    for v in values {
        put(out, [(v >> 32) as u32, v as u32]);
    }
}

/// Values every operation meets: signed zeros, infinities, NaNs (quiet, signalling, negative),
/// the subnormal and normal extremes, one and its neighbours, ties of rounding to an integer,
/// the exp clamp's bounds, the sine's range, and binary32's extremes widened.
fn specials() -> Vec<u64> {
    let mut v: Vec<u64> = vec![
        0,
        0x7FF0_0000_0000_0000,
        NAN64,
        0x7FF0_0000_0000_0001,
        0x7FF7_FFFF_FFFF_FFFF,
        1,
        0x000F_FFFF_FFFF_FFFF,
        0x0010_0000_0000_0000,
        0x0010_0000_0000_0001,
        0x7FEF_FFFF_FFFF_FFFF,
        0x3FF0_0000_0000_0001,
        0x3FEF_FFFF_FFFF_FFFF,
    ];
    v.extend(
        [
            1.0,
            0.5,
            1.5,
            2.5,
            0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_223_372_036_854_775_808.0, // 2^63
            1e300,
            1e-300,
            700.0,
            700.000_000_000_000_1,
            745.0,
            1.6e6,
            std::f64::consts::FRAC_PI_2,
            std::f64::consts::FRAC_PI_4,
            std::f64::consts::SQRT_2,
            10_000.0,
            1e6,
            f64::from(f32::MAX),
            f64::from(f32::MIN_POSITIVE),
            f64::from(f32::from_bits(1)),
        ]
        .map(f64::to_bits),
    );
    v.extend(v.clone().iter().map(|x| x ^ (1 << 63)));
    v.sort_unstable();
    v.dedup();
    v
}

/// One input by one of several recipes, chosen by the draw.
fn draw(rng: &mut Rng) -> u64 {
    let bits = rng.next_u64();
    let sign = bits & (1 << 63);
    let man = bits & ((1 << 52) - 1);
    match rng.next_u64() % 8 {
        0 | 1 => bits,
        // Around one.
        2 => sign | ((1013 + rng.next_u64() % 20) << 52) | man,
        // Subnormal, or just above.
        3 => sign | ((rng.next_u64() % 3) << 52) | man,
        // Near overflow.
        4 => sign | ((2040 + rng.next_u64() % 7) << 52) | man,
        // Short significands: exact products and quotients, exact ties.
        5 => sign | ((900 + rng.next_u64() % 250) << 52) | (man & 0x000F_FFFF_0000_0000),
        // A binary32 value widened: what the RoPE table starts from (a NaN canonical: x86 and
        // ARM widen a signalling NaN's payload alike, but the inputs stay portable so).
        6 => canonical64(f64::from(f32::from_bits(super::draw(rng)))),
        _ => {
            let s = specials();
            s[(rng.next_u64() % s.len() as u64) as usize]
        }
    }
}

/// A second operand related to `a`: the same binade (cancellation), half an ulp of it (an
/// exact tie of the sum), far below it, or independent.
fn partner(rng: &mut Rng, a: u64) -> u64 {
    let e = (a >> 52) & 0x7FF;
    let sign = rng.next_u64() & (1 << 63);
    match rng.next_u64() % 6 {
        0 => (a & 0xFFF0_0000_0000_0000) ^ sign | (rng.next_u64() & ((1 << 52) - 1)),
        1 if e > 53 => sign | ((e - 53) << 52),
        2 if e > 53 => sign | ((e - 53) << 52) | ((rng.next_u64() % 2) << 51),
        3 if e > 120 => sign | ((e - 120) << 52) | (rng.next_u64() & ((1 << 52) - 1)),
        _ => draw(rng),
    }
}

fn binary(rng: &mut Rng, f: impl Fn(f64, f64) -> f64) -> Vec<u8> {
    let s = specials();
    let mut out = Vec::with_capacity(CASES * 24);
    let mut case = |a: u64, b: u64| {
        let r = canonical64(f(f64::from_bits(a), f64::from_bits(b)));
        put64(&mut out, [a, b, r]);
    };
    let pairs = s.len() * s.len();
    for &a in &s {
        for &b in &s {
            case(a, b);
        }
    }
    for _ in pairs..CASES {
        let a = draw(rng);
        let b = partner(rng, a);
        if rng.next_u64().is_multiple_of(2) {
            case(a, b)
        } else {
            case(b, a)
        }
    }
    out
}

/// `n` inputs: the specials, then draws mixed with uniform values of `range` (half each).
fn inputs(rng: &mut Rng, range: (f64, f64)) -> Vec<u64> {
    let mut v = specials();
    while v.len() < CASES {
        v.push(if rng.next_u64().is_multiple_of(2) {
            draw(rng)
        } else {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            (range.0 + u * (range.1 - range.0)).to_bits()
        });
    }
    v
}

fn unary(inputs: &[u64], f: impl Fn(f64) -> u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(CASES * 16);
    for &a in inputs {
        put64(&mut out, [a, f(f64::from_bits(a))]);
    }
    out
}

/// RoPE table words (spec §3.4) for drawn bases, head widths, pairs, positions and Llama 3
/// factors, as the engine's table holds them.
fn tables(rng: &mut Rng) -> Vec<u8> {
    let bases = [
        10_000.0f32,
        1e6,
        500_000.0,
        1_000.0,
        1.0,
        0.0,
        -1.0,
        f32::INFINITY,
    ];
    let mut out = Vec::with_capacity(CASES * 32);
    for n in 0..CASES {
        let base = match rng.next_u64() % 4 {
            0 | 1 => bases[(rng.next_u64() % 4) as usize],
            2 => (1.0 + (rng.next_u64() % 10_000_000) as f32).max(1.5),
            _ if n % 8 == 0 => f32::from_bits(super::draw(rng)),
            _ => bases[(rng.next_u64() % bases.len() as u64) as usize],
        };
        let dim = 2 * (1 + (rng.next_u64() % 128) as usize);
        let i = (rng.next_u64() % (dim as u64 / 2)) as usize;
        let scaled = rng.next_u64().is_multiple_of(2);
        let factor = match rng.next_u64() % 8 {
            0 => f32::from_bits(super::draw(rng)),
            1 => 1.0,
            _ => 0.5 + (rng.next_u64() % 64_000) as f32 / 1000.0,
        };
        let pos = match rng.next_u64() % 4 {
            0 => rng.next_u64() % 64,
            1 | 2 => rng.next_u64() % 131_072,
            _ => rng.next_u64() % (1 << 32),
        } as usize;
        let factors = vec![factor; dim / 2];
        let table = RopeTable::with_factors(dim, base, scaled.then_some(&factors[..]), 0);
        let (c, s) = table.entry(pos, i);
        put(
            &mut out,
            [
                base.to_bits(),
                dim as u32,
                i as u32,
                u32::from(scaled),
                factor.to_bits(),
                pos as u32,
                canonical(c),
                canonical(s),
            ],
        );
    }
    out
}

/// Every binary64 file: its name (without `.bin`) and its bytes.
pub fn generate(rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("f64_add", binary(rng, |a, b| a + b)),
        ("f64_sub", binary(rng, |a, b| a - b)),
        ("f64_mul", binary(rng, |a, b| a * b)),
        ("f64_div", binary(rng, |a, b| a / b)),
    ];
    let wide = inputs(rng, (-1e20, 1e20));
    files.push((
        "f64_round",
        unary(&wide, |x| canonical64(x.round_ties_even())),
    ));
    files.push(("f64_to_i64", unary(&wide, |x| (x as i64) as u64)));
    let mut out = Vec::with_capacity(CASES * 12);
    for &a in &wide {
        put64(&mut out, [a]);
        put(&mut out, [canonical(f64::from_bits(a) as f32)]);
    }
    files.push(("f64_to_f32", out));
    let positive = inputs(rng, (0.0, 1e7));
    files.push(("f64_ln", unary(&positive, |x| canonical64(ln_f64(x)))));
    let exps = inputs(rng, (-760.0, 760.0));
    files.push(("f64_exp", unary(&exps, |x| canonical64(exp_f64(x)))));
    let angles = inputs(rng, (-2e6, 2e6));
    let mut out = Vec::with_capacity(CASES * 24);
    for &a in &angles {
        let (s, c) = sin_cos_f64(f64::from_bits(a));
        put64(&mut out, [a, canonical64(s), canonical64(c)]);
    }
    files.push(("f64_sincos", out));
    files.push(("rope_table", tables(rng)));
    files
}
