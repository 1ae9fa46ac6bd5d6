//! The shared float vectors (`sworn_engine::float_vectors`, which the Solidity executors are
//! checked on) reach the cases they are for.

use sworn_engine::float_vectors::{generate, CASES, NAN};

#[test]
fn every_file_has_its_cases() {
    let files = generate();
    assert_eq!(files.len(), 19);
    for (name, bytes) in &files {
        assert!(bytes.len() >= CASES * 8, "{name}: {} bytes", bytes.len());
    }
    // Deterministic: the same bytes every time.
    assert!(files == generate());
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
