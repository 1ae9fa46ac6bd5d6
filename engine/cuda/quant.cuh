// GGUF block formats read into 32-element pieces (spec 1.4; engine/src/quant/ is the reference):
// integer weights q[32] and a form. Reading never rounds.
#pragma once
#include "common.cuh"

#define F_AFFINE 0
#define F_SCALED 1
#define F_SUBSCALED 2
#define F_SUBAFFINE 3

struct Form {
    int cls;
    float dw, m2;  // m2: the offset `mw` (affine) or `dmin` (sub-affine)
    int s0, s1, m0, m1;
};

__device__ __forceinline__ int block_elems(int type) { return type >= T_Q2_K ? 256 : 32; }

__device__ __forceinline__ int block_bytes(int type) {
    switch (type) {
    case T_Q4_0: return 18;
    case T_Q4_1: return 20;
    case T_Q5_0: return 22;
    case T_Q5_1: return 24;
    case T_Q8_0: return 34;
    case T_Q2_K: return 84;
    case T_Q3_K: return 110;
    case T_Q4_K: return 144;
    case T_Q5_K: return 176;
    default: return 210;  // T_Q6_K
    }
}

// Bytes of one row of `cols` elements.
__device__ __forceinline__ long long row_bytes(int type, int cols) {
    return (long long)(cols / block_elems(type)) * block_bytes(type);
}

__device__ __forceinline__ u32 ld_u32(const u8* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((u32)p[3] << 24); }

__device__ __forceinline__ void scale_min_k4(int k, const u8* q, int* sc, int* m) {
    if (k < 4) {
        *sc = q[k] & 63;
        *m = q[k + 4] & 63;
    } else {
        *sc = (q[k + 4] & 0x0f) | ((q[k - 4] >> 6) << 4);
        *m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
    }
}

// Piece `b` (the b-th run of 32 elements) of a row whose GGUF bytes start at `row`.
__device__ void decode_piece(const u8* row, int type, int b, i8* q, Form* f) {
    f->s0 = f->s1 = f->m0 = f->m1 = 0;
    f->m2 = 0.0f;
    if (type < T_Q2_K) {
        const u8* blk = row + (long long)b * block_bytes(type);
        f->dw = ld_f16(blk);
        switch (type) {
        case T_Q4_0:
            f->cls = F_SCALED;
            for (int j = 0; j < 16; j++) {
                q[j] = (i8)((blk[2 + j] & 15) - 8);
                q[j + 16] = (i8)((blk[2 + j] >> 4) - 8);
            }
            break;
        case T_Q4_1:
            f->cls = F_AFFINE;
            f->m2 = ld_f16(blk + 2);
            for (int j = 0; j < 16; j++) {
                q[j] = (i8)(blk[4 + j] & 15);
                q[j + 16] = (i8)(blk[4 + j] >> 4);
            }
            break;
        case T_Q5_0:
        case T_Q5_1: {
            int o = type == T_Q5_0 ? 2 : 4;
            u32 high = ld_u32(blk + o);
            int minus = type == T_Q5_0 ? 16 : 0;
            f->cls = type == T_Q5_0 ? F_SCALED : F_AFFINE;
            if (type == T_Q5_1) f->m2 = ld_f16(blk + 2);
            for (int j = 0; j < 16; j++) {
                int lo = blk[o + 4 + j] & 15, hi = blk[o + 4 + j] >> 4;
                q[j] = (i8)((lo | (((high >> j) & 1) << 4)) - minus);
                q[j + 16] = (i8)((hi | (((high >> (j + 16)) & 1) << 4)) - minus);
            }
            break;
        }
        default:  // T_Q8_0
            f->cls = F_SCALED;
            for (int j = 0; j < 32; j++) q[j] = (i8)blk[2 + j];
        }
        return;
    }
    const u8* blk = row + (long long)(b / 8) * block_bytes(type);
    int k = b % 8;
    switch (type) {
    case T_Q2_K: {
        // Elements 32k..32k+32 sit in quant bytes 32*(k/4).., bits 2*(k%4).
        f->cls = F_SUBAFFINE;
        f->dw = ld_f16(blk + 80);
        f->m2 = ld_f16(blk + 82);
        f->s0 = blk[2 * k] & 15;
        f->s1 = blk[2 * k + 1] & 15;
        f->m0 = blk[2 * k] >> 4;
        f->m1 = blk[2 * k + 1] >> 4;
        int n = k / 4, j = k % 4;
        for (int l = 0; l < 32; l++) q[l] = (i8)((blk[16 + 32 * n + l] >> (2 * j)) & 3);
        break;
    }
    case T_Q3_K: {
        f->cls = F_SUBSCALED;
        f->dw = ld_f16(blk + 108);
        const u8* packed = blk + 96;
        u32 a0 = ld_u32(packed), a1 = ld_u32(packed + 4), tmp = ld_u32(packed + 8);
        const u32 LOW4 = 0x0f0f0f0fu, LOW2 = 0x03030303u;
        u32 aux[4] = {(a0 & LOW4) | ((tmp & LOW2) << 4), (a1 & LOW4) | (((tmp >> 2) & LOW2) << 4),
                      ((a0 >> 4) & LOW4) | (((tmp >> 4) & LOW2) << 4), ((a1 >> 4) & LOW4) | (((tmp >> 6) & LOW2) << 4)};
        int i0 = 2 * k, i1 = 2 * k + 1;
        f->s0 = (int)((aux[i0 / 4] >> (8 * (i0 % 4))) & 0xff) - 32;
        f->s1 = (int)((aux[i1 / 4] >> (8 * (i1 % 4))) & 0xff) - 32;
        int n = k / 4, j = k % 4;
        u8 bit = (u8)(1u << (4 * n + j));
        for (int l = 0; l < 32; l++) {
            int low = (blk[32 + 32 * n + l] >> (2 * j)) & 3;
            q[l] = (i8)((blk[l] & bit) ? low : low - 4);
        }
        break;
    }
    case T_Q4_K:
    case T_Q5_K: {
        f->cls = F_AFFINE;
        float d = ld_f16(blk), dmin = ld_f16(blk + 2);
        int sc, m;
        scale_min_k4(k, blk + 4, &sc, &m);
        f->dw = d * (float)sc;
        f->m2 = -(dmin * (float)m);
        int c = k / 2, hi = k % 2;
        if (type == T_Q4_K) {
            for (int l = 0; l < 32; l++) {
                u8 v = blk[16 + 32 * c + l];
                q[l] = (i8)(hi ? (v >> 4) : (v & 15));
            }
        } else {
            for (int l = 0; l < 32; l++) {
                u8 v = blk[48 + 32 * c + l];
                int lo = hi ? (v >> 4) : (v & 15);
                q[l] = (i8)(lo | (((blk[16 + l] >> k) & 1) << 4));
            }
        }
        break;
    }
    default: {  // T_Q6_K
        f->cls = F_SUBSCALED;
        f->dw = ld_f16(blk + 208);
        f->s0 = (int)(i8)blk[192 + 2 * k];
        f->s1 = (int)(i8)blk[192 + 2 * k + 1];
        // Element e = 128n + 32p + l: p 0/1 take the low nibbles of ql[l] / ql[l+32], p 2/3 the
        // high ones; the two high bits come from qh[l] at shift 2p.
        int n = k / 4, p = k % 4;
        const u8* ql = blk + 64 * n;
        const u8* qh = blk + 128 + 32 * n;
        for (int l = 0; l < 32; l++) {
            u8 low = (p == 0) ? (ql[l] & 15) : (p == 1) ? (ql[l + 32] & 15) : (p == 2) ? (ql[l] >> 4) : (ql[l + 32] >> 4);
            q[l] = (i8)((int)(low | (((qh[l] >> (2 * p)) & 3) << 4)) - 32);
        }
    }
    }
}

// The piece's value `j` (spec 1.4's `w_j`), as an embedding row is read.
__device__ __forceinline__ float piece_value(const Form* f, const i8* q, int j) {
    float v = (float)q[j];
    int h = j / 16;
    switch (f->cls) {
    case F_AFFINE: return f->dw * v + f->m2;
    case F_SCALED: return f->dw * v;
    case F_SUBSCALED: return (f->dw * (float)(h ? f->s1 : f->s0)) * v;
    default: return (f->dw * (float)(h ? f->s1 : f->s0)) * v - f->m2 * (float)(h ? f->m1 : f->m0);
    }
}

// Four signed bytes at a time (`__dp4a`), over the 16-element halves.
__device__ __forceinline__ void piece_sums(const i8* w, const i8* x, int* dot0, int* dot1, int* sum0, int* sum1) {
    int d0 = 0, d1 = 0, s0 = 0, s1 = 0;
    const int* wi = (const int*)w;
    const int* xi = (const int*)x;
    for (int c = 0; c < 4; c++) {
        d0 = __dp4a(wi[c], xi[c], d0);
        s0 = __dp4a(0x01010101, xi[c], s0);
        d1 = __dp4a(wi[c + 4], xi[c + 4], d1);
        s1 = __dp4a(0x01010101, xi[c + 4], s1);
    }
    *dot0 = d0; *dot1 = d1; *sum0 = s0; *sum1 = s1;
}

// The piece's term in the fold (spec 1.2 / 1.4), for activation block (q x, scale dx, sum sx).
__device__ __forceinline__ float piece_term(const Form* f, const i8* w, const i8* x, float dx, float sx) {
    int dot0, dot1, sum0, sum1;
    piece_sums(w, x, &dot0, &dot1, &sum0, &sum1);
    switch (f->cls) {
    case F_AFFINE: {
        float t = (f->dw * dx) * (float)(dot0 + dot1);
        float u = f->m2 * sx;
        return t + u;
    }
    case F_SCALED: return (f->dw * dx) * (float)(dot0 + dot1);
    case F_SUBSCALED: return (f->dw * dx) * (float)(f->s0 * dot0 + f->s1 * dot1);
    default: {
        float a = (f->dw * dx) * (float)(f->s0 * dot0 + f->s1 * dot1);
        float b = (f->m2 * dx) * (float)(f->m0 * sum0 + f->m1 * sum1);
        return a - b;
    }
    }
}
