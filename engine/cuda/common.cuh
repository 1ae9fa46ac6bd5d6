// sworn's CUDA kernels: shared definitions.
//
// These files are compiled two ways: by NVRTC to PTX for the GPU (scripts/gen/build-ptx.py, with
// --fmad=false, IEEE division and square root, no flush-to-zero), and by the host C++ compiler
// under `shim/host.h`, which runs the same kernels on the CPU for the tests (with
// -ffp-contract=off). Nothing here may use a header: NVRTC has no C library.
//
// Everything follows docs/canonical-arithmetic.md: every float operation is written separately
// (so rounded separately), every float reduction runs in the spec's order, and exp/tanh are the
// spec's own (section 2), built from + - * / only.
#pragma once

typedef signed char i8;
typedef unsigned char u8;
typedef unsigned short u16;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

#define QK 32

// ggml's type ids, which the engine passes as `type`.
#define T_F32 0
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q2_K 10
#define T_Q3_K 11
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14

__device__ __forceinline__ float f_bits(u32 b) { return __uint_as_float(b); }
__device__ __forceinline__ u32 bits_f(float f) { return __float_as_uint(f); }

// IEEE binary16 bits to f32, exactly (the `half` crate's rules, NaN payloads included).
__device__ __forceinline__ float h2f(u16 h) {
    u32 sign = ((u32)(h & 0x8000u)) << 16;
    u32 e = h & 0x7C00u, m = h & 0x03FFu;
    if ((h & 0x7FFFu) == 0) return f_bits(sign);
    if (e == 0x7C00u) return f_bits(m == 0 ? (sign | 0x7F800000u) : (sign | 0x7FC00000u | (m << 13)));
    if (e == 0) {
        // Subnormal: normalize.
        int shift = 0;
        while ((m & 0x0400u) == 0) { m <<= 1; shift++; }
        m &= 0x03FFu;
        return f_bits(sign | ((u32)(127 - 15 + 1 - shift) << 23) | (m << 13));
    }
    return f_bits(sign | ((u32)((e >> 10) - 15 + 127) << 23) | (m << 13));
}

// f32 to the nearest binary16 (ties to even), as bits (the `half` crate's rules).
__device__ __forceinline__ u16 f2h(float v) {
    u32 x = bits_f(v);
    u32 sign = x & 0x80000000u, exp = x & 0x7F800000u, man = x & 0x007FFFFFu;
    if (exp == 0x7F800000u) {
        u32 nan_bit = man == 0 ? 0 : 0x0200u;
        return (u16)((sign >> 16) | 0x7C00u | nan_bit | (man >> 13));
    }
    u32 half_sign = sign >> 16;
    int half_exp = (int)(exp >> 23) - 127 + 15;
    if (half_exp >= 0x1F) return (u16)(half_sign | 0x7C00u);
    if (half_exp <= 0) {
        if (14 - half_exp > 24) return (u16)half_sign;
        man = man | 0x00800000u;
        u32 half_man = man >> (14 - half_exp);
        u32 round_bit = 1u << (13 - half_exp);
        if ((man & round_bit) != 0 && (man & (3 * round_bit - 1)) != 0) half_man += 1;
        return (u16)(half_sign | half_man);
    }
    u32 he = ((u32)half_exp) << 10, hm = man >> 13;
    u32 round_bit = 0x00001000u;
    if ((man & round_bit) != 0 && (man & (3 * round_bit - 1)) != 0) return (u16)((half_sign | he | hm) + 1);
    return (u16)(half_sign | he | hm);
}

__device__ __forceinline__ float round_f16(float x) { return h2f(f2h(x)); }

__device__ __forceinline__ float ld_f16(const u8* p) { return h2f((u16)(p[0] | (p[1] << 8))); }

// Rust's f32::max / f32::min (the non-NaN operand), written as compare-and-select.
__device__ __forceinline__ float max_nn(float a, float b) { return (a != a) ? b : ((b != b) ? a : (a > b ? a : b)); }
__device__ __forceinline__ float min_nn(float a, float b) { return (a != a) ? b : ((b != b) ? a : (a < b ? a : b)); }

// Spec 2.1.
__device__ __forceinline__ float sworn_exp(float x) {
    x = min_nn(max_nn(x, -87.0f), 88.0f);
    float k = rintf(x * 1.44269504f);
    float r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-6f;
    const float c[8] = {1.0f, 1.0f, 0.5f, 1.0f / 6.0f, 1.0f / 24.0f, 1.0f / 120.0f, 1.0f / 720.0f, 1.0f / 5040.0f};
    float p = c[7];
    for (int i = 6; i >= 0; i--) p = p * r + c[i];
    return p * f_bits((u32)((int)k + 127) << 23);
}

__device__ __forceinline__ float sworn_silu(float x) { return x / (1.0f + sworn_exp(-x)); }

__device__ __forceinline__ float sworn_tanh(float x) {
    float e = sworn_exp(x + x);
    return 1.0f - 2.0f / (e + 1.0f);
}

__device__ __forceinline__ float sworn_gelu(float x) {
    float u = 0.7978846f * (x * (1.0f + 0.044715f * (x * x)));
    return (0.5f * x) * (1.0f + sworn_tanh(u));
}

__device__ __forceinline__ float tree8(const float* a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// Spec 1.3: eight running sums over lanes of 8, then tree8.
__device__ __forceinline__ float dot8(const float* x, const float* y, int n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int c = 0; c < n; c += 8)
        for (int l = 0; l < 8; l++) a[l] = a[l] + x[c + l] * y[c + l];
    return tree8(a);
}
