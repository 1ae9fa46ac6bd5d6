// The host shim: just enough of CUDA's execution model for sworn's kernels to run, unchanged, as
// host C++ (see host.cpp). Each CUDA thread of a block is a fiber; `__syncthreads`, `__syncwarp`
// and the warp shuffles are points where a fiber waits for the others (its block, or its warp),
// so shared memory and shuffles behave as on the GPU. Threads run in a chosen order between
// those points (ascending, descending, shuffled): a kernel whose result depended on that order
// would be caught by the tests, which run every order.
//
// Compiled with -ffp-contract=off: every float operation is rounded on its own, as the GPU does
// with --fmad=false.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

struct dim3 {
    unsigned x, y, z;
};

namespace sworn_shim {
struct Fiber;
extern thread_local Fiber* current;
extern thread_local dim3 block_idx, block_dim, grid_dim;
const dim3& thread_idx();
void sync_block();
uint64_t shuffle(uint64_t v, int src_lane_xor, int mode);
void sync_warp();
}  // namespace sworn_shim

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static thread_local
#define threadIdx (sworn_shim::thread_idx())
#define blockIdx (sworn_shim::block_idx)
#define blockDim (sworn_shim::block_dim)
#define gridDim (sworn_shim::grid_dim)

inline void __syncthreads() { sworn_shim::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { sworn_shim::sync_warp(); }

inline float __uint_as_float(unsigned b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned b;
    std::memcpy(&b, &f, 4);
    return b;
}
inline float __int_as_float(int b) { return __uint_as_float((unsigned)b); }

// Lane `lane ^ m` (mode 0) or lane `m` (mode 1) of the calling warp.
inline int __shfl_xor_sync(unsigned, int v, int m) { return (int)(uint32_t)sworn_shim::shuffle((uint32_t)v, m, 0); }
inline float __shfl_xor_sync(unsigned, float v, int m) {
    return __uint_as_float((uint32_t)sworn_shim::shuffle(__float_as_uint(v), m, 0));
}
inline int __shfl_sync(unsigned, int v, int src) { return (int)(uint32_t)sworn_shim::shuffle((uint32_t)v, src, 1); }
inline float __shfl_sync(unsigned, float v, int src) {
    return __uint_as_float((uint32_t)sworn_shim::shuffle(__float_as_uint(v), src, 1));
}

// Four signed byte products added to c, as the GPU's dp4a (exact integer arithmetic).
inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
}

// fabsf, rintf (ties to even in the default rounding mode) and sqrtf (correctly rounded) are
// the C library's, from <cmath>: exact IEEE operations, not approximations.
