//! With the `cuda` feature, compiles the CUDA kernels' host shim (`cuda/shim/host.cpp`, which
//! includes `cuda/kernels.cu`) with the host's C++ compiler, floating-point contraction off.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "cuda")]
    shim();
}

#[cfg(feature = "cuda")]
fn shim() {
    for f in [
        "cuda/kernels.cu",
        "cuda/common.cuh",
        "cuda/quant.cuh",
        "cuda/shim/host.h",
        "cuda/shim/host.cpp",
    ] {
        println!("cargo::rerun-if-changed={f}");
    }
    cc::Build::new()
        .cpp(true)
        .file("cuda/shim/host.cpp")
        .std("c++17")
        .opt_level(2)
        // The canonical arithmetic: each operation rounded on its own, IEEE semantics.
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag("-fno-strict-aliasing")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("sworn_cuda_shim");
}
