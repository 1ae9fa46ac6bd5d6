//! The shared float vectors (`sworn_engine::float_vectors`, which the Solidity executors are
//! checked on) reach the cases they are for.

use sworn_engine::float_vectors::{generate, piece_file, CASES, NAN};
use sworn_engine::quant::QuantType;

#[test]
fn every_file_has_its_cases() {
    let files = generate();
    assert_eq!(files.len(), 43);
    for (name, bytes) in &files {
        assert!(bytes.len() >= CASES * 8, "{name}: {} bytes", bytes.len());
    }
    // Deterministic: the same bytes every time.
    assert!(files == generate());
}

/// The sampling order's pairs reach what they are for: equal values (the id decides, both
/// ways round), NaNs, and signed zeros.
#[test]
fn the_order_vectors_cover_ties_and_nans() {
    let files = generate();
    let order = &files.iter().find(|(n, _)| *n == "order").unwrap().1;
    let (mut ties, mut by_higher_id, mut nan, mut zeros) = (0, 0, 0, 0);
    for rec in order.chunks_exact(28) {
        let w = |i: usize| u32::from_be_bytes(rec[i * 4..i * 4 + 4].try_into().unwrap());
        let (a, b) = (w(0), w(1));
        if a == b {
            ties += 1;
            by_higher_id += usize::from(w(2) > w(3));
        }
        nan += usize::from(f32::from_bits(a).is_nan() || f32::from_bits(b).is_nan());
        zeros += usize::from(a & 0x7FFF_FFFF == 0 && b & 0x7FFF_FFFF == 0 && a != b);
    }
    assert!(
        ties > 2000 && by_higher_id > 500,
        "{ties} ties, {by_higher_id} by the higher id"
    );
    assert!(
        nan > 300 && zeros >= 2,
        "{nan} with NaN, {zeros} of opposite zeros"
    );
}

/// The drawn cases reach what they are for: ties, subnormal results, overflow, NaN.
#[test]
fn the_vectors_cover_the_hard_cases() {
    let files = generate();
    let add = &files[0].1;
    let (mut subnormal, mut inf, mut nan, mut ties) = (0, 0, 0, 0);
    for rec in add.chunks_exact(12) {
        let w = |i: usize| u32::from_be_bytes(rec[i * 4..i * 4 + 4].try_into().unwrap());
        let (a, b, r) = (w(0), w(1), w(2));
        let e = (r >> 23) & 0xFF;
        subnormal += usize::from(e == 0 && r & 0x7F_FFFF != 0);
        inf += usize::from(r & 0x7FFF_FFFF == 0x7F80_0000);
        nan += usize::from(r == NAN);
        // An exact tie: the sum in f64 (exact for these) lies halfway between two floats.
        let exact = f64::from(f32::from_bits(a)) + f64::from(f32::from_bits(b));
        let rf = f64::from(f32::from_bits(r));
        if exact.is_finite() && rf.is_finite() && exact != rf {
            let other = if exact > rf {
                f32::from_bits(r).next_up()
            } else {
                f32::from_bits(r).next_down()
            };
            ties += usize::from((exact - rf).abs() == (f64::from(other) - exact).abs());
        }
    }
    assert!(
        subnormal > 100 && inf > 100 && nan > 100 && ties > 300,
        "subnormal {subnormal}, inf {inf}, nan {nan}, ties {ties}"
    );
}

/// The binary64 sums (the RoPE table's arithmetic) reach exact ties, subnormal results,
/// overflow and NaN too. A tie is found by the error-free sum (TwoSum: `a + b = s + e`
/// exactly): `e` is half the distance from `s` to its neighbour on `e`'s side.
#[test]
fn the_binary64_vectors_cover_the_hard_cases() {
    let files = generate();
    let add = &files
        .iter()
        .find(|(n, _)| *n == "f64_add")
        .expect("f64_add")
        .1;
    let (mut subnormal, mut inf, mut nan, mut ties) = (0, 0, 0, 0);
    for rec in add.chunks_exact(24) {
        let v = |i: usize| {
            f64::from_bits(u64::from_be_bytes(
                rec[i * 8..i * 8 + 8].try_into().unwrap(),
            ))
        };
        let (a, b, r) = (v(0), v(1), v(2));
        subnormal += usize::from(r.is_subnormal());
        inf += usize::from(r.is_infinite());
        nan += usize::from(r.is_nan());
        if r.is_finite() && a.is_finite() && b.is_finite() {
            let bb = r - a;
            let e = (a - (r - bb)) + (b - bb);
            let other = if e > 0.0 { r.next_up() } else { r.next_down() };
            ties +=
                usize::from(e != 0.0 && other.is_finite() && (other - r).abs() == 2.0 * e.abs());
        }
    }
    assert!(
        subnormal > 100 && inf > 100 && nan > 100 && ties > 300,
        "subnormal {subnormal}, inf {inf}, nan {nan}, ties {ties}"
    );
}

/// Every piece of a K-quant super-block is drawn, and the fold steps meet special results.
#[test]
fn the_piece_vectors_reach_every_piece() {
    let files = generate();
    for qt in QuantType::ALL {
        let name = piece_file(qt);
        let bytes = &files.iter().find(|(n, _)| *n == name).expect("a file").1;
        let size = 4 * (2 + 10 + qt.block_bytes().div_ceil(4) + 1);
        assert_eq!(bytes.len(), CASES * size, "{name}");
        let per = qt.block_elements() / 32;
        let (mut seen, mut special) = (vec![0usize; per], 0);
        for rec in bytes.chunks_exact(size) {
            let w = |i: usize| u32::from_be_bytes(rec[i * 4..i * 4 + 4].try_into().unwrap());
            seen[w(0) as usize] += 1;
            special += usize::from(!f32::from_bits(w(size / 4 - 1)).is_finite());
        }
        assert!(
            seen.iter().all(|&n| n > CASES / per / 2),
            "{name}: {seen:?}"
        );
        assert!(special > 100, "{name}: {special} non-finite results");
    }
}
