//! The IEEE binary32 vectors shared with the Solidity float code (`contracts/src/SwornF32.sol`,
//! `SwornMath.sol`, `SwornPhilox.sol`, `SwornQuant.sol` and `SwornProducts.sol`, checked by the
//! tests beside them): for each operation the engine's arithmetic uses (add, sub, mul, div, sqrt,
//! the binary16 and bfloat16 conversions, the elementary functions of spec §2, the dot product
//! of §1.3, activation quantization of §1.1, the row products of §1.2-§1.4 for every tensor type
//! sworn loads, RMSNorm of §3.2, RoPE's rotation of §3.4, attention of §3.5, and the sampling
//! draw of §4), 10,000 inputs, random and adversarial (NaN, infinities, zeros, subnormals, the
//! largest finite values, 1e30, exact ties, cancellations, f16 overflow and underflow edges),
//! with the result this platform computes (every NaN canonical: `0x7FC00000`, binary16
//! `0x7E00`; `docs/dispute.md` §1).
//!
//! Each file is records of big-endian 32-bit words: `a b result` for the two-operand
//! operations, `n a[n] b[n] result` for `dot8`, `seed step philox[4] uniform` for `philox`,
//! `a b ida idb before ge gt` for `order` (the sampled steps' comparisons),
//! `x[32] q[32] d qsum s` for `quant`, `type row-bytes (q[32] d qsum s)[2] result` for
//! `products`, `k acc q[8] d s block result` for `pieces_*` (one file per quantized type; `q`
//! is 32 signed bytes), `type from to acc row-bytes (q[8] d s)[8] result` for `folds`, `type n
//! row-bytes x[n] result` for `float_rows`, `n eps x[n] w[n] y[n]` for `rmsnorm`, `hd n scale
//! q[hd] keys[n hd] values[n hd] out[hd]` for `attention`, `pos c[8] s[8] x[16] adjacent[16]
//! neox[16]` for `rope`, `a result` for the others (binary16 and bfloat16 values in the low
//! half); bytes are padded with zeros to whole words. The binary64 files of the RoPE table's
//! arithmetic are described in `float_vectors/binary64.rs`. The files are generated, not committed:
//! `scripts/contracts.sh` writes them with the `float-vectors` example before the Solidity tests
//! run, and the aarch64 leg checks that ARM writes the same bytes.

use crate::canon::math::{dot8_f32, exp_f32, gelu_tanh_f32, silu_f32, tanh_f32};
use crate::canon::quant::{quantize_block_ref, round_f16};
use crate::quant::{ActBlock, QuantType};
use crate::sampling::{philox4x32_10, uniform};
use crate::synthetic::Rng;
use half::{bf16, f16};

mod binary64;

/// Cases per operation.
pub const CASES: usize = 10_000;
/// The canonical NaN every NaN result is replaced by.
pub const NAN: u32 = 0x7FC0_0000;

/// `x`'s bits, with any NaN replaced by [`NAN`].
pub fn canonical(x: f32) -> u32 {
    if x.is_nan() {
        NAN
    } else {
        x.to_bits()
    }
}

/// Appends `words` to `out`, big-endian.
fn put(out: &mut Vec<u8>, words: impl IntoIterator<Item = u32>) {
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// Values every operation meets: signed zeros, infinities, NaNs (quiet, signalling, negative),
/// the subnormal and normal extremes, one, 1e30, and neighbours of those.
fn specials() -> Vec<u32> {
    let mut v = vec![
        0x0000_0000,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0xFFC0_0000,
        0x7F80_0001,
        0x7FBF_FFFF,
        0x0000_0001,
        0x8000_0001,
        0x007F_FFFF,
        0x0080_0000,
        0x0080_0001,
        0x7F7F_FFFF,
        0xFF7F_FFFF,
        0x3F80_0000,
        0xBF80_0000,
        0x3F80_0001,
        0x3F7F_FFFF,
        1e30f32.to_bits(),
        (-1e30f32).to_bits(),
        1e-30f32.to_bits(),
        65504f32.to_bits(),
        65520f32.to_bits(),
        5.960_464_5e-8f32.to_bits(),
        2.980_232_2e-8f32.to_bits(),
        0x4000_0000,
        0x3400_0000,
    ];
    v.extend(v.clone().iter().map(|x| x ^ 0x8000_0000));
    v.sort_unstable();
    v.dedup();
    v
}

/// One input by one of several recipes, chosen by the draw.
fn draw(rng: &mut Rng) -> u32 {
    let bits = rng.next_u64() as u32;
    let sign = bits & 0x8000_0000;
    let man = bits & 0x007F_FFFF;
    match rng.next_u64() % 8 {
        // Any pattern: every exponent alike.
        0 | 1 => bits,
        // Around one: most arithmetic lives here.
        2 => sign | ((120 + (rng.next_u64() % 16) as u32) << 23) | man,
        // Subnormal, or just above.
        3 => sign | (((rng.next_u64() % 3) as u32) << 23) | man,
        // Near overflow.
        4 => sign | ((250 + (rng.next_u64() % 5) as u32) << 23) | man,
        // Short significands: products and quotients that are exact, or exact ties.
        5 => sign | ((100 + (rng.next_u64() % 56) as u32) << 23) | (man & 0x007F_F000),
        // The f16 range's edges (its overflow at 65520, its subnormals below 2^-14).
        6 => sign | ((100 + (rng.next_u64() % 45) as u32) << 23) | man,
        _ => {
            let s = specials();
            s[(rng.next_u64() % s.len() as u64) as usize]
        }
    }
}

/// A second operand related to `a`: the same binade (cancellation), half an ulp of it (an
/// exact tie of the sum), far below it, or independent.
fn partner(rng: &mut Rng, a: u32) -> u32 {
    let e = (a >> 23) & 0xFF;
    let sign = (rng.next_u64() as u32) & 0x8000_0000;
    match rng.next_u64() % 6 {
        0 => (a & 0xFF80_0000) ^ sign | (rng.next_u64() as u32 & 0x007F_FFFF),
        1 if e > 24 => sign | ((e - 24) << 23),
        2 if e > 24 => sign | ((e - 24) << 23) | (0x0040_0000 * (rng.next_u64() % 2) as u32),
        3 if e > 70 => sign | ((e - 70) << 23) | (rng.next_u64() as u32 & 0x007F_FFFF),
        _ => draw(rng),
    }
}

fn binary(rng: &mut Rng, f: impl Fn(f32, f32) -> f32) -> Vec<u8> {
    let s = specials();
    let mut out = Vec::with_capacity(CASES * 12);
    let mut case = |a: u32, b: u32| {
        let r = canonical(f(f32::from_bits(a), f32::from_bits(b)));
        put(&mut out, [a, b, r]);
    };
    // Every pair of specials, then drawn pairs.
    for &a in &s {
        for &b in &s {
            case(a, b);
        }
    }
    for _ in s.len() * s.len()..CASES {
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

fn unary(inputs: impl Iterator<Item = u32>, f: impl Fn(u32) -> u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(CASES * 8);
    for a in inputs.take(CASES) {
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&f(a).to_be_bytes());
    }
    out
}

/// Dot products (spec §1.3) of 8 and 16 elements (one lane pass, and two): records
/// `n, a[n], b[n], result`.
fn dots(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..CASES {
        let n = 8 * (1 + i % 2);
        // Mostly ordinary magnitudes (where the order of additions shows), some wild.
        let value = |rng: &mut Rng| {
            if rng.next_u64().is_multiple_of(8) {
                draw(rng)
            } else {
                (rng.wild() * 4.0).to_bits()
            }
        };
        let a: Vec<u32> = (0..n).map(|_| value(rng)).collect();
        let b: Vec<u32> = (0..n).map(|_| value(rng)).collect();
        let fa: Vec<f32> = a.iter().map(|&x| f32::from_bits(x)).collect();
        let fb: Vec<f32> = b.iter().map(|&x| f32::from_bits(x)).collect();
        let r = canonical(dot8_f32(&fa, &fb));
        put(
            &mut out,
            std::iter::once(n as u32).chain(a).chain(b).chain([r]),
        );
    }
    out
}

/// The sampled steps' comparisons (`docs/dispute.md` §5.6): records `a b ida idb before ge
/// gt`, `before` whether candidate `ida` (scaled logit `a`) comes before `idb` (`b`) in the
/// total order (`sampling::candidate_order`, which the sampler and the trace's sort share), `ge` and `gt` IEEE's
/// `a >= b` and `a > b` (false with a NaN). Every pair of specials both ways round, equal
/// values (the id decides), neighbours one ulp apart, and random bits.
fn orders(rng: &mut Rng) -> Vec<u8> {
    let s = specials();
    let mut pairs: Vec<(u32, u32, bool)> = Vec::with_capacity(CASES);
    for (i, &a) in s.iter().enumerate() {
        pairs.extend(s.iter().map(|&b| (a, b, i % 2 == 1)));
    }
    while pairs.len() < CASES {
        let (a, n) = (rng.next_u64() as u32, pairs.len());
        let b = match n % 4 {
            0 => a,
            1 => a.wrapping_add(1),
            2 => a ^ 0x8000_0000,
            _ => rng.next_u64() as u32,
        };
        pairs.push((a, b, n % 8 < 4));
    }
    let mut out = Vec::with_capacity(CASES * 28);
    for (a, b, swap) in pairs.into_iter().take(CASES) {
        let (ida, idb) = if swap { (1u32, 0u32) } else { (0, 1) };
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        let before = crate::sampling::candidate_order(x, ida, y, idb).is_lt();
        put(
            &mut out,
            [
                a,
                b,
                ida,
                idb,
                u32::from(before),
                u32::from(x >= y),
                u32::from(x > y),
            ],
        );
    }
    out
}

/// The sampler's randomness (spec §4): records `seed (2 words), step (2 words), Philox's four
/// output words, uniform(seed, step)`, over small and huge seeds and steps.
fn draws(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..CASES as u64 {
        let (seed, step) = match i % 4 {
            0 => (i, i / 4),
            1 => (rng.next_u64(), i),
            2 => (rng.next_u64(), rng.next_u64()),
            _ => (u64::MAX - i, u64::MAX - rng.next_u64() % 1000),
        };
        let words = philox4x32_10(
            [step as u32, (step >> 32) as u32, 0, 0],
            [seed as u32, (seed >> 32) as u32],
        );
        let u = uniform(seed, step).to_bits();
        let head = [
            (seed >> 32) as u32,
            seed as u32,
            (step >> 32) as u32,
            step as u32,
        ];
        put(&mut out, head.into_iter().chain(words).chain([u]));
    }
    out
}

/// Activation quantization (spec §1.1) of blocks of 32: records `x[32], q[32] (as i32), d, qsum,
/// s`. Blocks of ordinary values at many scales, with NaN, infinities, a zero block, subnormal
/// maxima (whose scale's inverse overflows) and values at exact half steps.
fn blocks(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..CASES {
        let scale = f32::from_bits(((100 + rng.next_u64() % 56) as u32) << 23);
        let mut x: Vec<f32> = (0..32).map(|_| rng.wild() * scale).collect();
        match i % 8 {
            0 => x[(rng.next_u64() % 32) as usize] = f32::from_bits(draw(rng)),
            1 => x.iter_mut().for_each(|v| *v = 0.0),
            2 => x
                .iter_mut()
                .for_each(|v| *v = f32::from_bits(rng.next_u64() as u32 & 0x807F_FFFF)),
            3 => {
                // Multiples of amax / 254: many land on exact half steps of the scale.
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                for v in x.iter_mut() {
                    *v = amax / 254.0 * ((rng.next_u64() % 509) as f32 - 254.0);
                }
            }
            _ => {}
        }
        let mut q = [0i8; 32];
        let (d, qsum, s) = quantize_block_ref(&x, &mut q);
        let words = x
            .iter()
            .map(|v| v.to_bits())
            .chain(q.iter().map(|&v| i32::from(v) as u32))
            .chain([canonical(d), qsum as u32, canonical(s)]);
        put(&mut out, words);
    }
    out
}

/// Quantized matrix rows times quantized activations (spec §1.2), by the scalar reference
/// kernel: rows of two blocks of Q4_0, Q4_1 and Q8_0 (in turn), GGUF bytes as the file has them,
/// with f16 scales from subnormal to the largest finite (the engine refuses others at load),
/// and activations with the odd NaN or infinity. Records: the ggml type code, the
/// row's bytes zero-padded to whole words, per block `q[32] d qsum s` of the activations, then
/// the output.
fn products(rng: &mut Rng) -> Vec<u8> {
    use crate::canon::quant::QActs;
    use crate::qmatrix::{GgufKind, QMatrix};
    let mut out = Vec::new();
    for i in 0..CASES {
        let kind = [GgufKind::Q4_0, GgufKind::Q4_1, GgufKind::Q8_0][i % 3];
        let qt = kind.quant().expect("a block format");
        let nb = 2;
        let raw = random_blocks(rng, qt, nb);
        let w = QMatrix::from_gguf(kind, 1, nb * 32, &raw).expect("a well-formed row");
        let x: Vec<f32> = (0..nb * 32)
            .map(|_| {
                if rng.next_u64().is_multiple_of(50) {
                    f32::from_bits(draw(rng))
                } else {
                    rng.wild()
                }
            })
            .collect();
        let mut acts = QActs::default();
        acts.resize(1, nb * 32);
        crate::kernels::scalar::quantize_blocks(&x, acts.blocks_mut());
        let r = crate::kernels::scalar::dot_row(&w, 0, &acts, &x, 0);
        let mut words = vec![kind.ggml_code()];
        let mut padded = raw.clone();
        padded.resize(raw.len().div_ceil(4) * 4, 0);
        words.extend(
            padded
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap())),
        );
        for b in 0..nb {
            words.extend(acts.q[b * 32..][..32].iter().map(|&q| i32::from(q) as u32));
            words.extend([
                canonical(acts.d[b]),
                acts.qsum[b] as u32,
                canonical(acts.s[b]),
            ]);
        }
        words.push(canonical(r));
        put(&mut out, words);
    }
    out
}

/// RMSNorm rows (spec §3.2) of 8 and 16 elements by the scalar reference kernel: records
/// `n, eps, x[n], w[n], y[n]`. Ordinary rows at many scales, some with a NaN, an infinity, all
/// zeros, or values whose squares overflow.
fn norms(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..CASES {
        let n = 8 * (1 + i % 2);
        let eps = [1e-5f32, 1e-6, 0.0][i % 3];
        let scale = f32::from_bits(((90 + rng.next_u64() % 80) as u32) << 23);
        let mut x: Vec<f32> = (0..n).map(|_| rng.wild() * scale).collect();
        let w: Vec<f32> = (0..n).map(|_| 1.0 + rng.wild()).collect();
        match i % 16 {
            0 => x[(rng.next_u64() % n as u64) as usize] = f32::from_bits(draw(rng)),
            1 => x.iter_mut().for_each(|v| *v = 0.0),
            _ => {}
        }
        let mut y = vec![0f32; n];
        crate::kernels::scalar::rmsnorm_row(&x, &w, eps, &mut y);
        let words = [n as u32, eps.to_bits()]
            .into_iter()
            .chain(x.iter().map(|v| v.to_bits()))
            .chain(w.iter().map(|v| v.to_bits()))
            .chain(y.iter().map(|&v| canonical(v)));
        put(&mut out, words);
    }
    out
}

/// One attention head for one query (spec §3.5) by the scalar reference kernel, over 1 to 4
/// keys of 8 dimensions (longer dot products are `dot8`'s vectors): records `hd, n, scale, q[hd], keys[n hd], values[n hd],
/// out[hd]`. Ordinary values, some with a NaN or an infinity, some with scores far apart (whose
/// weights underflow).
fn heads(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..CASES {
        let hd = 8;
        let n = 1 + (rng.next_u64() % 4) as usize;
        let scale = 1.0 / (hd as f32).sqrt();
        let spread = [1.0f32, 8.0, 64.0][i % 3];
        let mut q: Vec<f32> = (0..hd).map(|_| rng.wild() * spread).collect();
        let keys: Vec<f32> = (0..n * hd).map(|_| rng.wild() * spread).collect();
        let values: Vec<f32> = (0..n * hd).map(|_| rng.wild()).collect();
        if i % 32 == 0 {
            q[(rng.next_u64() % hd as u64) as usize] = f32::from_bits(draw(rng));
        }
        let mut scores = vec![0f32; n];
        let mut o = vec![0f32; hd];
        crate::kernels::scalar::attend(&q, &keys, &values, n, hd, 0, scale, &mut scores, &mut o);
        let words = [hd as u32, n as u32, scale.to_bits()]
            .into_iter()
            .chain(q.iter().map(|v| v.to_bits()))
            .chain(keys.iter().map(|v| v.to_bits()))
            .chain(values.iter().map(|v| v.to_bits()))
            .chain(o.iter().map(|&v| canonical(v)));
        put(&mut out, words);
    }
    out
}

/// RoPE (spec §3.4) of one 16-wide head at a random position of a base-10000 table, in both
/// pairings: records `pos, c[8], s[8], x[16], adjacent[16], neox[16]`, with the table's `(c, s)`
/// (built in f64, §2.3: an input to the rotation).
fn rotations(rng: &mut Rng) -> Vec<u8> {
    use crate::canon::rope::RopeTable;
    let table = RopeTable::new(16, 10000.0, 4096);
    let mut out = Vec::new();
    for i in 0..CASES {
        let pos = (rng.next_u64() % 4096) as usize;
        let mut x: Vec<f32> = (0..16).map(|_| rng.wild() * 4.0).collect();
        if i % 32 == 0 {
            x[(rng.next_u64() % 16) as usize] = f32::from_bits(draw(rng));
        }
        let (c, s) = table.row(pos);
        let (mut adjacent, mut neox) = (x.clone(), x.clone());
        table.apply(&mut adjacent, pos);
        table.apply_neox(&mut neox, pos);
        let words = [pos as u32]
            .into_iter()
            .chain(c.iter().chain(s).chain(&x).map(|v| v.to_bits()))
            .chain(adjacent.iter().chain(&neox).map(|&v| canonical(v)));
        put(&mut out, words);
    }
    out
}

/// Every file: its name (without `.bin`) and its bytes.
pub fn generate() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Rng(0x1EEE_754F);
    let mut files = vec![
        ("add", binary(&mut rng, |a, b| a + b)),
        ("sub", binary(&mut rng, |a, b| a - b)),
        ("mul", binary(&mut rng, |a, b| a * b)),
        ("div", binary(&mut rng, |a, b| a / b)),
    ];
    let mut drawn: Vec<u32> = specials();
    while drawn.len() < CASES {
        drawn.push(draw(&mut rng));
    }
    files.push((
        "sqrt",
        unary(drawn.iter().copied(), |a| {
            canonical(f32::from_bits(a).sqrt())
        }),
    ));
    files.push((
        "f32_to_f16",
        unary(drawn.iter().copied(), |a| {
            let h = f16::from_f32(f32::from_bits(a));
            // The engine's rounding (round_f16) is this conversion and back.
            let back = round_f16(f32::from_bits(a));
            assert!(h.is_nan() || h.to_f32().to_bits() == back.to_bits());
            if h.is_nan() {
                0x7E00
            } else {
                u32::from(h.to_bits())
            }
        }),
    ));
    // The elementary functions (spec §2), on the same inputs and on their working range.
    let mut near: Vec<u32> = specials();
    while near.len() < CASES {
        near.push(if rng.next_u64().is_multiple_of(2) {
            draw(&mut rng)
        } else {
            // Uniform in [-100, 100): both clamps of exp, and everything between.
            ((rng.next_u64() % 200_000) as f32 / 1000.0 - 100.0).to_bits()
        });
    }
    // Their NaN inputs are the canonical one, as in every commitment (docs/dispute.md §1): on
    // aarch64, `f32::max` (FMAXNM) turns a signalling NaN into a quiet one where x86 returns the
    // other operand, so exp's clamp of a signalling NaN differs between them (the engine never
    // meets one: arithmetic only makes quiet NaNs).
    let near: Vec<u32> = near
        .into_iter()
        .map(|x| if f32::from_bits(x).is_nan() { NAN } else { x })
        .collect();
    let f = |g: fn(f32) -> f32| move |a: u32| canonical(g(f32::from_bits(a)));
    files.push(("exp", unary(near.iter().copied(), f(exp_f32))));
    files.push(("silu", unary(near.iter().copied(), f(silu_f32))));
    files.push(("tanh", unary(near.iter().copied(), f(tanh_f32))));
    files.push(("gelu", unary(near.iter().copied(), f(gelu_tanh_f32))));
    files.push(("dot8", dots(&mut rng)));
    files.push(("philox", draws(&mut rng)));
    files.push(("order", orders(&mut rng)));
    files.push(("quant", blocks(&mut rng)));
    files.push(("products", products(&mut rng)));
    files.push(("rmsnorm", norms(&mut rng)));
    files.push(("attention", heads(&mut rng)));
    files.push(("rope", rotations(&mut rng)));
    // Half-precision inputs: every special pattern, then random ones.
    let halves: Vec<u32> = [
        0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00,
    ]
    .into_iter()
    .chain([0x7E00, 0x7C01, 0xFE00, 0x3C00, 0xBC00])
    .chain((0..).map(|_| rng.next_u64() as u32 & 0xFFFF))
    .take(CASES)
    .collect();
    files.push((
        "f16_to_f32",
        unary(halves.iter().copied(), |h| {
            canonical(f16::from_bits(h as u16).to_f32())
        }),
    ));
    files.push((
        "bf16_to_f32",
        unary(halves.iter().copied(), |h| {
            canonical(bf16::from_bits(h as u16).to_f32())
        }),
    ));
    for qt in QuantType::ALL {
        files.push((piece_file(qt), pieces(&mut rng, qt)));
    }
    files.push(("folds", folds(&mut rng)));
    files.push(("float_rows", float_rows(&mut rng)));
    files.extend(binary64::generate(&mut rng));
    files
}

/// The file of one quantized type's piece terms: `pieces_q4_0`, …, `pieces_q6_k`.
pub fn piece_file(qt: QuantType) -> &'static str {
    match qt {
        QuantType::Q4_0 => "pieces_q4_0",
        QuantType::Q4_1 => "pieces_q4_1",
        QuantType::Q5_0 => "pieces_q5_0",
        QuantType::Q5_1 => "pieces_q5_1",
        QuantType::Q8_0 => "pieces_q8_0",
        QuantType::Q2K => "pieces_q2_k",
        QuantType::Q3K => "pieces_q3_k",
        QuantType::Q4K => "pieces_q4_k",
        QuantType::Q5K => "pieces_q5_k",
        QuantType::Q6K => "pieces_q6_k",
    }
}

/// Byte offsets of a block's f16 fields (`d`, and `m` or `dmin` where the type has one).
fn f16_fields(qt: QuantType) -> &'static [usize] {
    match qt {
        QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => &[0],
        QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4K | QuantType::Q5K => &[0, 2],
        QuantType::Q2K => &[80, 82],
        QuantType::Q3K => &[108],
        QuantType::Q6K => &[208],
    }
}

/// `n` blocks of type `qt` of random bytes whose f16 fields are ordinary scales mostly, else
/// any finite pattern (subnormal to 65504): the engine refuses a non-finite scale at load.
fn random_blocks(rng: &mut Rng, qt: QuantType, n: usize) -> Vec<u8> {
    let bb = qt.block_bytes();
    let mut raw: Vec<u8> = (0..n * bb).map(|_| rng.byte()).collect();
    for b in 0..n {
        for &at in f16_fields(qt) {
            let h = if rng.next_u64().is_multiple_of(8) {
                let h = rng.next_u64() as u16;
                if h & 0x7C00 == 0x7C00 {
                    h & !0x4000
                } else {
                    h
                }
            } else {
                f16::from_f32(rng.wild() * 0.05).to_bits()
            };
            raw[b * bb + at..][..2].copy_from_slice(&h.to_le_bytes());
        }
    }
    raw
}

/// An activation block quantized (spec §1.1) from ordinary values, with the odd NaN, infinity
/// or extreme among them: `(q, d, s)`.
fn random_act(rng: &mut Rng) -> ([i8; 32], f32, f32) {
    let scale = f32::from_bits(((110 + rng.next_u64() % 30) as u32) << 23);
    // NaNs canonical, as every NaN the engine quantizes is an arithmetic result (quiet): a
    // signalling NaN's `max` differs between x86 and ARM (FMAXNM), docs/dispute.md §1.
    let x: Vec<f32> = (0..32)
        .map(|_| {
            if rng.next_u64().is_multiple_of(100) {
                f32::from_bits(canonical(f32::from_bits(draw(rng))))
            } else {
                rng.wild() * scale
            }
        })
        .collect();
    let mut q = [0i8; 32];
    let (d, _, s) = quantize_block_ref(&x, &mut q);
    (q, d, s)
}

/// Bytes as big-endian words, zero-padded to a whole word.
fn words_of(raw: &[u8]) -> impl Iterator<Item = u32> + '_ {
    raw.chunks(4).map(|c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        u32::from_be_bytes(w)
    })
}

/// The words of an activation block: `q` (32 signed bytes, 8 words), `d`, `s`.
fn act_words(q: &[i8; 32], d: f32, s: f32) -> Vec<u32> {
    let bytes: Vec<u8> = q.iter().map(|&v| v as u8).collect();
    words_of(&bytes)
        .chain([canonical(d), canonical(s)])
        .collect()
}

/// One fold step of a quantized product (spec §1.4), `acc + term`, by the engine's reference
/// reader and term (`quant::QuantType::read_block`, `Piece::term`): records `k, acc, q[8
/// words], d, s, block, result` with `k` the piece of the block (0, or 0..8 for K-quants) and
/// `acc` any value (a segment's committed running sum may be anything an output's prefix is).
fn pieces(rng: &mut Rng, qt: QuantType) -> Vec<u8> {
    let mut out = Vec::new();
    let mut read = Vec::new();
    for _ in 0..CASES {
        let raw = random_blocks(rng, qt, 1);
        read.clear();
        qt.read_block(&raw, &mut read);
        let k = (rng.next_u64() % read.len() as u64) as usize;
        let acc = if rng.next_u64().is_multiple_of(4) {
            draw(rng)
        } else {
            rng.wild().to_bits()
        };
        let (q, d, s) = random_act(rng);
        let term = read[k].term(ActBlock { q: &q, d, s });
        let r = canonical(f32::from_bits(acc) + term);
        let words = [k as u32, acc]
            .into_iter()
            .chain(act_words(&q, d, s))
            .chain(words_of(&raw))
            .chain([r]);
        put(&mut out, words);
    }
    out
}

/// Segments of quantized rows of eight pieces (eight blocks, or one K-quant super-block) of
/// every type in turn: pieces `from .. to` folded from `acc`, by the engine's reference; a
/// fifth of them whole rows from +0.0, which must be the engine's scalar kernel's output
/// (asserted here). Records `type, from, to, acc, row bytes, (q[8 words] d s)[8], result`.
fn folds(rng: &mut Rng) -> Vec<u8> {
    use crate::canon::quant::QActs;
    use crate::qmatrix::{GgufKind, QMatrix};
    let mut out = Vec::new();
    for i in 0..CASES / 10 {
        let qt = QuantType::ALL[i % QuantType::ALL.len()];
        let blocks = 8 / (qt.block_elements() / 32);
        let raw = random_blocks(rng, qt, blocks);
        let row = qt.read_row(&raw, 256);
        let acts: Vec<([i8; 32], f32, f32)> = (0..8).map(|_| random_act(rng)).collect();
        let whole = i % 5 == 0;
        let (from, to, acc) = if whole {
            (0, 8, 0f32)
        } else {
            let a = (rng.next_u64() % 9) as usize;
            let b = (rng.next_u64() % 9) as usize;
            (a.min(b), a.max(b), f32::from_bits(draw(rng)))
        };
        let mut r = acc;
        for k in from..to {
            let (q, d, s) = &acts[k];
            r += row[k].term(ActBlock { q, d: *d, s: *s });
        }
        if whole {
            let kind = match qt {
                QuantType::Q4_0 => GgufKind::Q4_0,
                QuantType::Q4_1 => GgufKind::Q4_1,
                QuantType::Q8_0 => GgufKind::Q8_0,
                other => GgufKind::Blocks(other),
            };
            let w = QMatrix::from_gguf(kind, 1, 256, &raw).expect("a well-formed row");
            let mut xq = QActs::default();
            xq.resize(1, 256);
            for (b, (q, d, s)) in acts.iter().enumerate() {
                xq.q[b * 32..][..32].copy_from_slice(q);
                xq.d[b] = *d;
                xq.s[b] = *s;
                xq.qsum[b] = q.iter().map(|&v| i32::from(v)).sum();
            }
            let kernel = crate::kernels::scalar::dot_row(&w, 0, &xq, &[0.0; 256], 0);
            assert_eq!(canonical(kernel), canonical(r), "{qt:?} row");
        }
        let mut words = vec![qt.ggml_code(), from as u32, to as u32, acc.to_bits()];
        words.extend(words_of(&raw));
        for (q, d, s) in &acts {
            words.extend(act_words(q, *d, *s));
        }
        words.push(canonical(r));
        put(&mut out, words);
    }
    out
}

/// F32, F16 and BF16 rows (in turn) of 8, 16 or 24 elements times f32 activations (spec §1.3),
/// by the engine's scalar kernel on the row as it loads it: records `type, n, row bytes, x[n],
/// result`. Weights and activations are ordinary values mostly, with the odd special one.
fn float_rows(rng: &mut Rng) -> Vec<u8> {
    use crate::qmatrix::{GgufKind, QMatrix};
    let mut out = Vec::new();
    for i in 0..CASES {
        let kind = [GgufKind::F32, GgufKind::F16, GgufKind::BF16][i % 3];
        let n = 8 * (1 + (i / 3) % 3);
        let value = |rng: &mut Rng| {
            if rng.next_u64().is_multiple_of(20) {
                f32::from_bits(draw(rng))
            } else {
                rng.wild() * 4.0
            }
        };
        let w: Vec<f32> = (0..n).map(|_| value(rng)).collect();
        let raw: Vec<u8> = match kind {
            GgufKind::F32 => w.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgufKind::F16 => w
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes())
                .collect(),
            _ => w
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_bits().to_le_bytes())
                .collect(),
        };
        let x: Vec<f32> = (0..n).map(|_| value(rng)).collect();
        let m = QMatrix::from_gguf(kind, 1, n, &raw).expect("a float row");
        let r = crate::kernels::scalar::dot_row(&m, 0, &Default::default(), &x, 0);
        let words = [kind.ggml_code(), n as u32]
            .into_iter()
            .chain(words_of(&raw))
            .chain(x.iter().map(|v| v.to_bits()))
            .chain([canonical(r)]);
        put(&mut out, words);
    }
    out
}
