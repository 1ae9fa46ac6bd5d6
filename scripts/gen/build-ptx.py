#!/usr/bin/env python3
"""Compiles sworn's CUDA kernels (engine/cuda/kernels.cu) to PTX with NVRTC (compute_80; the driver
JIT-compiles it for 8.0 and every later GPU).

The engine embeds the file (engine/cuda/ptx/sm_80.ptx), so a GPU run needs only the NVIDIA
driver, and `cargo build --features cuda` needs no CUDA toolkit. CI runs this with the pinned
NVRTC wheel (nvidia-cuda-nvrtc-cu12==12.9.86, whose libnvrtc runs without a GPU) and fails if the
committed PTX differs from what it produces (`--check`).

Usage: build-ptx.py LIBNVRTC [--check]   (scripts/ci/test-cuda.sh fetches the pinned NVRTC)
"""
import ctypes
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "engine" / "cuda" / "kernels.cu"
OUT = ROOT / "engine" / "cuda" / "ptx"
# compute capability -> file; PTX for 8.0 also JIT-compiles on later GPUs.
# One target: the driver JIT-compiles compute_80 PTX for any later GPU, and a compute_90 file
# differed from it in its `.target` line alone.
TARGETS = ["80"]
# The canonical arithmetic: no contraction, IEEE division and square root, no flush-to-zero.
OPTIONS = ["--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false", "-std=c++17",
           "-I" + str(SRC.parent), "--restrict"]


def compile_one(nvrtc, arch):
    prog = ctypes.c_void_p()
    src = SRC.read_bytes()
    check(nvrtc, nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, b"kernels.cu", 0, None, None), None)
    opts = OPTIONS + ["--gpu-architecture=compute_" + arch]
    arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    if rc != 0:
        sys.exit(f"NVRTC failed for compute_{arch}:\n{text}")
    if text:
        # Warnings fail the build too: the kernels are meant to compile cleanly.
        sys.exit(f"NVRTC warnings for compute_{arch}:\n{text}")
    nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    check(nvrtc, nvrtc.nvrtcGetPTX(prog, ptx), prog)
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value


def check(nvrtc, rc, prog):
    if rc != 0:
        nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
        sys.exit("NVRTC: " + nvrtc.nvrtcGetErrorString(rc).decode())


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    nvrtc = ctypes.CDLL(sys.argv[1])
    major, minor = ctypes.c_int(), ctypes.c_int()
    nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    print(f"NVRTC {major.value}.{minor.value}")
    checking = "--check" in sys.argv[2:]
    OUT.mkdir(exist_ok=True)
    stale = []
    for arch in TARGETS:
        ptx = compile_one(nvrtc, arch)
        text = ptx.decode()
        kernels = sum(1 for line in text.splitlines() if line.startswith(".visible .entry"))
        # The canonical arithmetic in the PTX itself: no fused multiply-adds, explicit rounding
        # on every f32 operation (so ptxas may not contract them), nothing approximate.
        for bad in ["fma.", "mad.f32", ".approx", ".ftz", " add.f32", " mul.f32", " sub.f32"]:
            if bad in text:
                sys.exit(f"compute_{arch}: the PTX contains {bad.strip()!r}")
        path = OUT / f"sm_{arch}.ptx"
        print(f"compute_{arch}: {len(ptx)} bytes of PTX, {kernels} kernels")
        if checking:
            if not path.exists() or path.read_bytes() != ptx:
                stale.append(path.name)
        else:
            path.write_bytes(ptx)
    if stale:
        sys.exit("committed PTX is stale (run scripts/gen/build-ptx.py LIBNVRTC): " + ", ".join(stale))


if __name__ == "__main__":
    main()
