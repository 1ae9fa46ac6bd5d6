// sworn's CUDA kernels (docs/cuda.md). Every output's sequence of float operations is the one
// docs/canonical-arithmetic.md fixes; threads, warps and blocks split work only by output, or
// share exact integer sums, so the bits cannot depend on scheduling. The same file runs on the
// GPU (PTX from NVRTC) and on the host (shim/host.h), where the tests compare it with the CPU
// engine bit for bit.
#include "common.cuh"
#include "quant.cuh"

// ---- activation quantization (spec 1.1): one warp per block of 32 ----------------------------
// grid: ceil(nblocks / 8), block: 256.
extern "C" __global__ void quantize_q8(const float* __restrict__ x, int nblocks, i8* __restrict__ q,
                                       float* __restrict__ d, int* __restrict__ qsum, float* __restrict__ s) {
    int lane = threadIdx.x % 32;
    int blk = blockIdx.x * 8 + threadIdx.x / 32;
    if (blk >= nblocks) return;  // whole warps leave together
    float v = x[(long long)blk * 32 + lane];
    float a = fabsf(v);
    // The largest |x|; NaN never wins (spec: `if |x| > amax`), so a NaN lane offers 0.
    float amax = a > 0.0f ? a : 0.0f;
    for (int o = 16; o > 0; o /= 2) {
        float other = __shfl_xor_sync(0xffffffffu, amax, o);
        amax = other > amax ? other : amax;
    }
    if (amax == 0.0f) {
        q[(long long)blk * 32 + lane] = 0;
        if (lane == 0) { d[blk] = 0.0f; qsum[blk] = 0; s[blk] = 0.0f; }
        return;
    }
    float d0 = amax / 127.0f;
    float id = 1.0f / d0;
    float r = rintf(v * id);
    r = (r > -127.0f) ? r : -127.0f;  // NaN -> -127, as Rust's max
    r = (r < 127.0f) ? r : 127.0f;
    int qi = (int)r;
    q[(long long)blk * 32 + lane] = (i8)qi;
    int sum = qi;
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);  // exact
    if (lane == 0) {
        d[blk] = round_f16(d0);
        qsum[blk] = sum;
        s[blk] = round_f16((float)sum * d0);
    }
}

// ---- quantized products ------------------------------------------------------------------------
// Decode (few tokens): one warp per (row, token). Lane l takes the pieces b = l, l + 32, ...:
// decodes them, computes their terms from exact integer sums (dp4a), and leaves them in shared
// memory, from where lane 0 folds each run of 32 in order: the spec's left fold over blocks.
// grid: (ceil(rows / 4), tokens), block: 128.
extern "C" __global__ void qmatvec(const u8* __restrict__ w, int type, int rows, int cols, const i8* __restrict__ xq,
                                   const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ out) {
    __shared__ float terms[4][32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int r = blockIdx.x * 4 + warp, t = blockIdx.y;
    if (r >= rows) return;  // whole warps
    int nb = cols / QK;
    const u8* row = w + (long long)r * row_bytes(type, cols);
    const i8* xrow = xq + (long long)t * cols;
    const float* dx = xd + (long long)t * nb;
    const float* sx = xs + (long long)t * nb;
    float acc = 0.0f;
    for (int b0 = 0; b0 < nb; b0 += 32) {
        int b = b0 + lane;
        if (b < nb) {
            alignas(16) i8 q[32];
            Form f;
            decode_piece(row, type, b, q, &f);
            terms[warp][lane] = piece_term(&f, q, xrow + b * QK, dx[b], sx[b]);
        }
        __syncwarp();
        if (lane == 0) {
            int n = nb - b0 < 32 ? nb - b0 : 32;
            for (int i = 0; i < n; i++) acc = acc + terms[warp][i];
        }
        __syncwarp();
    }
    if (lane == 0) out[(long long)t * rows + r] = acc;
}

// Prefill and batches: a tile of 32 rows x 8 tokens per block of 256 threads, one output per
// thread, each folding its own terms in block order. Per piece, the block decodes the tile's 32
// weight pieces and loads the 8 activation blocks into shared memory once.
// grid: (ceil(rows / 32), ceil(tokens / 8)), block: 256.
#define TR 32
#define TT 8
extern "C" __global__ void qmatmul(const u8* __restrict__ w, int type, int rows, int cols, const i8* __restrict__ xq,
                                   const float* __restrict__ xd, const float* __restrict__ xs, int tokens,
                                   float* __restrict__ out) {
    // int-typed, so that the bytes are aligned for the 4-byte loads of `piece_sums`.
    __shared__ int wq[TR][8];
    __shared__ Form wf[TR];
    __shared__ int xqs[TT][8];
    __shared__ float xds[TT], xss[TT];
    int tid = threadIdx.x;
    int lr = tid % TR, lt = tid / TR;
    int r = blockIdx.x * TR + lr, t = blockIdx.y * TT + lt;
    int nb = cols / QK;
    long long rb = row_bytes(type, cols);
    float acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        if (tid < TR) {
            int rr = blockIdx.x * TR + tid;
            if (rr < rows) decode_piece(w + (long long)rr * rb, type, b, (i8*)wq[tid], &wf[tid]);
        }
        {
            int tt = tid / 32, j = tid % 32;
            int tk = blockIdx.y * TT + tt;
            ((i8*)xqs[tt])[j] = tk < tokens ? xq[(long long)tk * cols + b * QK + j] : 0;
            if (j == 0) {
                xds[tt] = tk < tokens ? xd[(long long)tk * nb + b] : 0.0f;
                xss[tt] = tk < tokens ? xs[(long long)tk * nb + b] : 0.0f;
            }
        }
        __syncthreads();
        if (r < rows && t < tokens) acc = acc + piece_term(&wf[lr], (const i8*)wq[lr], (const i8*)xqs[lt], xds[lt], xss[lt]);
        __syncthreads();
    }
    if (r < rows && t < tokens) out[(long long)t * rows + r] = acc;
}

// f32 weights (GGUF F32, F16 and BF16, widened exactly on upload; spec 1.3): one thread per
// output. grid: (ceil(rows / 128), tokens), block: 128.
extern "C" __global__ void f32matmul(const float* __restrict__ w, int rows, int cols, const float* __restrict__ x,
                                     float* __restrict__ out) {
    int r = blockIdx.x * 128 + threadIdx.x, t = blockIdx.y;
    if (r >= rows) return;
    out[(long long)t * rows + r] = dot8(w + (long long)r * cols, x + (long long)t * cols, cols);
}

// ---- embedding (spec 3.1, 3.8): one thread per element ------------------------------------------
// grid: (ceil(cols / 128), tokens), block: 128. `type` T_F32 reads f32 rows.
extern "C" __global__ void embed(const u8* __restrict__ w, int type, int cols, const u32* __restrict__ toks,
                                 float* __restrict__ x) {
    int i = blockIdx.x * 128 + threadIdx.x, t = blockIdx.y;
    if (i >= cols) return;
    u32 tok = toks[t];
    float v;
    if (type == T_F32) {
        v = ((const float*)w)[(long long)tok * cols + i];
    } else {
        alignas(16) i8 q[32];
        Form f;
        decode_piece(w + (long long)tok * row_bytes(type, cols), type, i / QK, q, &f);
        v = piece_value(&f, q, i % QK);
    }
    x[(long long)t * cols + i] = v;
}

// ---- RMSNorm (spec 3.2): one block per row -------------------------------------------------------
// Threads 0..7 keep the eight running sums of 1.3, thread 0 combines them; every thread then
// scales its elements. In place (y == x) is allowed. grid: rows, block: 256.
extern "C" __global__ void rmsnorm(const float* x, const float* __restrict__ wt, int n, float eps, float* y) {
    __shared__ float part[8];
    __shared__ float rs;
    const float* xr = x + (long long)blockIdx.x * n;
    float* yr = y + (long long)blockIdx.x * n;
    int tid = threadIdx.x;
    if (tid < 8) {
        float a = 0.0f;
        for (int c = 0; c < n; c += 8) a = a + xr[c + tid] * xr[c + tid];
        part[tid] = a;
    }
    __syncthreads();
    if (tid == 0) {
        float ss = tree8(part);
        rs = 1.0f / sqrtf(ss / (float)n + eps);
    }
    __syncthreads();
    float r = rs;
    for (int i = tid; i < n; i += blockDim.x) yr[i] = (xr[i] * r) * wt[i];
}

// ---- RoPE (spec 3.4, 3.9): one thread per pair --------------------------------------------------
// `cs`/`sn` hold each token's table row (hd / 2 values). grid: (ceil(heads * hd/2 / 128), tokens).
extern "C" __global__ void rope(float* x, int heads, int hd, int stride, const float* __restrict__ cs,
                                const float* __restrict__ sn, int neox) {
    int half = hd / 2;
    int k = blockIdx.x * 128 + threadIdx.x, t = blockIdx.y;
    if (k >= heads * half) return;
    int h = k / half, i = k % half;
    float* v = x + (long long)t * stride + h * hd;
    float c = cs[(long long)t * half + i], s = sn[(long long)t * half + i];
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

// ---- attention (spec 3.5): one block per (query head, token) ------------------------------------
// `kv` holds, per token, the device address of its sequence's key and value caches (rows of
// `kvd`), the first key it sees and how many. Scores go through `scratch` (`nmax` per block).
// Each score is one thread's dot in 1.3's order; the maximum and the sum of exponentials are
// left folds in thread 0; each output dimension is one thread's fold over the keys in order.
// grid: (n_head, tokens), block: 256.
extern "C" __global__ void attention(const float* __restrict__ q, int qd, int hd, int group, int kvd,
                                     const u64* __restrict__ kv, const int* __restrict__ first,
                                     const int* __restrict__ count, float scale, float* __restrict__ scratch,
                                     int nmax, float* __restrict__ out) {
    __shared__ float mx, total;
    int h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    int g = h / group;
    const float* keys = (const float*)kv[2 * t] + (long long)first[t] * kvd + g * hd;
    const float* vals = (const float*)kv[2 * t + 1] + (long long)first[t] * kvd + g * hd;
    const float* qh = q + (long long)t * qd + h * hd;
    int n = count[t];
    float* sc = scratch + ((long long)t * gridDim.x + h) * nmax;
    for (int j = tid; j < n; j += blockDim.x) sc[j] = dot8(qh, keys + (long long)j * kvd, hd) * scale;
    __syncthreads();
    if (tid == 0) {
        float m = -__int_as_float(0x7f800000);
        for (int j = 0; j < n; j++)
            if (sc[j] > m) m = sc[j];
        mx = m;
    }
    __syncthreads();
    for (int j = tid; j < n; j += blockDim.x) sc[j] = sworn_exp(sc[j] - mx);
    __syncthreads();
    if (tid == 0) {
        float s = 0.0f;
        for (int j = 0; j < n; j++) s = s + sc[j];
        total = s;
    }
    __syncthreads();
    for (int dd = tid; dd < hd; dd += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++) acc = acc + sc[j] * vals[(long long)j * kvd + dd];
        out[(long long)t * qd + h * hd + dd] = acc / total;
    }
}

// ---- elementwise --------------------------------------------------------------------------------
// grid: ceil(n / 256), block: 256.
extern "C" __global__ void silu_mul(const float* __restrict__ g, const float* __restrict__ u, float* __restrict__ h, int n) {
    int i = blockIdx.x * 256 + threadIdx.x;
    if (i < n) h[i] = sworn_silu(g[i]) * u[i];
}

extern "C" __global__ void gelu_mul(const float* __restrict__ g, const float* __restrict__ u, float* __restrict__ h, int n) {
    int i = blockIdx.x * 256 + threadIdx.x;
    if (i < n) h[i] = sworn_gelu(g[i]) * u[i];
}

// x += y.
extern "C" __global__ void add(float* __restrict__ x, const float* __restrict__ y, int n) {
    int i = blockIdx.x * 256 + threadIdx.x;
    if (i < n) x[i] = x[i] + y[i];
}

// x *= s.
extern "C" __global__ void scale(float* x, float s, int n) {
    int i = blockIdx.x * 256 + threadIdx.x;
    if (i < n) x[i] = x[i] * s;
}

// Each row of `cols` plus `b` (Qwen 2's projection biases).
extern "C" __global__ void add_rows(float* __restrict__ x, const float* __restrict__ b, int cols, int n) {
    int i = blockIdx.x * 256 + threadIdx.x;
    if (i < n) x[i] = x[i] + b[i % cols];
}

// Appends each token's key and value rows to its sequence's caches: `dst` holds, per token, the
// device addresses of the destination rows. grid: (ceil(kvd / 256), tokens), block: 256.
extern "C" __global__ void store_kv(const float* __restrict__ k, const float* __restrict__ v, int kvd,
                                    const u64* __restrict__ dst) {
    int i = blockIdx.x * 256 + threadIdx.x, t = blockIdx.y;
    if (i >= kvd) return;
    ((float*)dst[2 * t])[i] = k[(long long)t * kvd + i];
    ((float*)dst[2 * t + 1])[i] = v[(long long)t * kvd + i];
}
