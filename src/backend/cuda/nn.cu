// The forward pass's other kernels (nn.h): plain and correct first; each follows ops/nn.cpp's
// arithmetic in float32, with block-level reductions in a fixed order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/internal.h"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/nn.h"
#include "backend/cuda/packed_layout.cuh"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__global__ void embed_dense_kernel(const void* table, DType dt, const int32_t* ids, int64_t t,
                                   int64_t d, float* out) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= t * d) return;
    out[i] = load_as_float(dt, table, int64_t(ids[i / d]) * d + i % d);
}

__global__ void embed_quantized_kernel(const uint32_t* w, const void* scales, const void* biases,
                                       DType sdt, const int32_t* ids, int64_t t, int64_t d, int g,
                                       int bits, float* out) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= t * d) return;
    const int64_t row = ids[i / d], k = i % d, G = row * (d / g) + k / g;
    const auto* bytes = reinterpret_cast<const uint8_t*>(w + row * (d * bits / 32));
    const int64_t bit = k * bits;
    uint32_t v = uint32_t(bytes[bit >> 3]) >> (bit & 7);
    if ((bit & 7) + bits > 8) v |= uint32_t(bytes[(bit >> 3) + 1]) << (8 - (bit & 7));
    const float q = float(v & ((1u << bits) - 1u));
    const float sq = round_as(sdt, __fmul_rn(load_as_float(sdt, scales, G), q));
    out[i] = round_as(sdt, __fadd_rn(sq, load_as_float(sdt, biases, G)));
}

__global__ void rms_norm_kernel(const float* x, const float* weight, int64_t n, float eps,
                                float* out) {
    wait_for_prior_grids();
    __shared__ float scratch[32];
    const float* xr = x + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss = __fmaf_rn(xr[i], xr[i], ss);
    ss = block_sum(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / float(n) + eps);
    float* o = out + blockIdx.x * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * inv * weight[i];
}

// One thread per (token, head, pair j).
__global__ void rope_kernel(float* x, int64_t t, int64_t heads, int64_t head_dim,
                            const int32_t* positions, const float* inv_freq, float factor) {
    const int64_t half = head_dim / 2, i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= t * heads * half) return;
    const int64_t j = i % half, h = (i / half) % heads, s = i / (half * heads);
    const float angle = float(positions[s]) * inv_freq[j];
    const float cs = cosf(angle) * factor, sn = sinf(angle) * factor;
    float* v = x + (s * heads + h) * head_dim;
    const float a = v[j], b = v[j + half];
    v[j] = a * cs - b * sn;
    v[j + half] = b * cs + a * sn;
}

// How a decode step splits long contexts (AttentionSplit): partials of (row, head, chunk).
struct SplitArgs {
    int64_t chunk = 0;   // positions a block (0: one block takes all of a row's)
    int64_t splits = 1;  // gridDim.z
    float* part = nullptr;  // [t, n_head, splits, d + 2]: max, sum, unnormalized output [d]
    int* count = nullptr;   // [t, n_head / G] blocks done, zero between calls
};

// Threads of an attention block: 8 warps, so a decode step's few blocks keep many loads in flight.
constexpr int kAttentionThreads = 256;
// Rows a warp has in flight in each phase.
constexpr int kAttentionRows = 8;

// Block per (query token s, group of G heads sharing KV head kvh, chunk z): per head, scores over
// the chunk's cache rows in shared memory (a warp per 8 consecutive rows, lane l reading float4 l,
// l + 32, ... of each; the loads shared by the G heads), softmax (max subtracted), then the output:
// warp w sums rows w, w + warps, ... (8 in flight, lane l owning float4 l, l + 32, ... of the
// output), and the warps' partial sums are added in warp order. Every head's arithmetic is the
// same whatever G is (the same per-lane order, trees and warp split), so G = 1 and G > 1 give the
// same bits. Without a split (sp.chunk 0, or a row of at most one chunk) the chunk is the whole row
// 0 .. positions[s] and the result is written directly. Split (flash-decoding), each chunk's block
// writes its (max m, sum Z, unnormalized output) and the last of the row's blocks to finish
// merges them in chunk order: M = max m, out = (sum_c acc_c e^(m_c - M)) / (sum_c Z_c e^(m_c - M)),
// so a row's bits depend only on its length. With o (its dxs not null; head_dim 128: a head's
// output is one group of the packed layout), the block that writes a head's output also packs it
// as pack_activations would, and the last head's block zeroes the padding groups up to the
// 512-k chunk. d is a multiple of 4 (run_attention checks).
// SPLIT: the kernel built for split steps (the other one has none of its work).
template <int G, bool SPLIT>
__global__ void __launch_bounds__(kAttentionThreads)
attention_kernel(const float* q, int64_t n_head, int64_t n_kv, int64_t d, CacheRows cache,
                 const int32_t* positions, float* out, float scale, ActivationOut o, int64_t C,
                 SplitArgs sp, int64_t score_slots) {
    // [G][d] queries, then [G][score_slots] scores, then [warps][G][d] the warps' output sums
    extern __shared__ float smem[];
    __shared__ float scratch[32];
    __shared__ int s_last;
    const int64_t s = blockIdx.x, h0 = blockIdx.y * int64_t(G), kvh = h0 / (n_head / n_kv);
    // Before the wait for the kernel before (programmatic launch), only what no kernel of a step
    // writes: the position and the cache pointers (uploaded with the step), and L2 prefetches of
    // the chunk's key and value rows (the newest row may still be being written: a prefetch moves
    // a line into L2, where that write lands, and writes no register). Then the queries.
    const float* k_base = cache.k[s];
    const float* v_base = cache.v[s];
    const int64_t len = int64_t(positions[s]) + 1;
    const int64_t P = SPLIT ? (len + sp.chunk - 1) / sp.chunk : 1, z = SPLIT ? blockIdx.z : 0;
    const int64_t j0 = SPLIT && P > 1 ? z * sp.chunk : 0;
    const int64_t rows = SPLIT && P > 1 ? min(sp.chunk, len - j0) : len;
    if (!SPLIT || z < P) {
        const int64_t lines = (d * 4 + 127) / 128, per = rows * lines;  // 128-byte lines a row
        for (int64_t e = threadIdx.x; e < 2 * per; e += blockDim.x) {
            const int64_t j = e % per / lines, l = e % lines;
            const float* base = e < per ? k_base : v_base;
            const float* row = base + cache.offset + ((j0 + j) * n_kv + kvh) * d;
            prefetch_l2(reinterpret_cast<const char*>(row) + l * 128);
        }
    }
    wait_for_prior_grids();
    if (SPLIT && z >= P) return;  // the whole block: this row has fewer chunks
    float* qs = smem;
    for (int64_t i = threadIdx.x; i < G * d; i += blockDim.x) qs[i] = q[(s * n_head + h0) * d + i];
    const int64_t d4 = d / 4, row4 = n_kv * d4;  // float4s a head row, a cache row
    const float4* k4 =
        reinterpret_cast<const float4*>(k_base + cache.offset + j0 * n_kv * d) + kvh * d4;
    const float4* v4 =
        reinterpret_cast<const float4*>(v_base + cache.offset + j0 * n_kv * d) + kvh * d4;
    const float4* q4 = reinterpret_cast<const float4*>(qs);
    float* sc = smem + G * d;
    float* part = sc + G * score_slots;
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    constexpr int R = kAttentionRows;
    float mx[G];
#pragma unroll
    for (int g = 0; g < G; ++g) mx[g] = -INFINITY;
    // scores: warp w takes rows [w R, w R + R), then R warps later; lane l sums float4s l, l + 32,
    // ... (components x, y, z, w in order), then a fixed warp tree
    for (int64_t jb = warp * R; jb < rows; jb += int64_t(R) * warps) {
        float dot[R][G];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int g = 0; g < G; ++g) dot[r][g] = 0.0f;
        for (int64_t c = lane; c < d4; c += 32) {
            float4 kv[R];
#pragma unroll
            for (int r = 0; r < R; ++r) kv[r] = k4[min(jb + r, rows - 1) * row4 + c];
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const float4 qq = q4[g * d4 + c];
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    float a = dot[r][g];
                    a = __fmaf_rn(qq.x, kv[r].x, a);
                    a = __fmaf_rn(qq.y, kv[r].y, a);
                    a = __fmaf_rn(qq.z, kv[r].z, a);
                    dot[r][g] = __fmaf_rn(qq.w, kv[r].w, a);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int64_t j = jb + r;
            if (j >= rows) break;  // the same for the whole warp
#pragma unroll
            for (int g = 0; g < G; ++g) {
                float v = dot[r][g];
                for (int o = 16; o; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
                if (lane == 0) sc[g * score_slots + j] = v * scale;
                mx[g] = fmaxf(mx[g], v * scale);
            }
        }
    }
    float inv[G], mg[G], zg[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        const float m = block_max(mx[g], scratch);  // its barrier also publishes the scores
        float sum = 0.0f;
        for (int64_t j = threadIdx.x; j < rows; j += blockDim.x) {
            sc[g * score_slots + j] = expf(sc[g * score_slots + j] - m);
            sum += sc[g * score_slots + j];
        }
        mg[g] = m;
        zg[g] = block_sum(sum, scratch);  // ends with a barrier: every score is written
        inv[g] = 1.0f / zg[g];
    }
    // the output: warp w sums rows w, w + warps, ... (R loads in flight), lane l float4s l, l + 32
    for (int64_t c = lane; c < d4; c += 32) {
        float4 acc[G];
#pragma unroll
        for (int g = 0; g < G; ++g) acc[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        int64_t j = warp;
        for (; j + int64_t(R - 1) * warps < rows; j += int64_t(R) * warps) {
            float4 v[R];
#pragma unroll
            for (int u = 0; u < R; ++u) v[u] = v4[(j + u * warps) * row4 + c];
#pragma unroll
            for (int u = 0; u < R; ++u)
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    const float p = sc[g * score_slots + j + u * warps];
                    acc[g].x = __fmaf_rn(p, v[u].x, acc[g].x);
                    acc[g].y = __fmaf_rn(p, v[u].y, acc[g].y);
                    acc[g].z = __fmaf_rn(p, v[u].z, acc[g].z);
                    acc[g].w = __fmaf_rn(p, v[u].w, acc[g].w);
                }
        }
        for (; j < rows; j += warps) {
            const float4 v = v4[j * row4 + c];
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const float p = sc[g * score_slots + j];
                acc[g].x = __fmaf_rn(p, v.x, acc[g].x);
                acc[g].y = __fmaf_rn(p, v.y, acc[g].y);
                acc[g].z = __fmaf_rn(p, v.z, acc[g].z);
                acc[g].w = __fmaf_rn(p, v.w, acc[g].w);
            }
        }
#pragma unroll
        for (int g = 0; g < G; ++g)
            reinterpret_cast<float4*>(part + (warp * G + g) * d)[c] = acc[g];
    }
    __syncthreads();
    const int64_t stride = d + 2;  // a partial: m, Z, then the output
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        float acc[G];
#pragma unroll
        for (int g = 0; g < G; ++g) {
            acc[g] = part[g * d + i];
            for (int w = 1; w < warps; ++w) acc[g] = __fadd_rn(acc[g], part[(w * G + g) * d + i]);
        }
#pragma unroll
        for (int g = 0; g < G; ++g) {
            if (SPLIT && P > 1) {
                float* pt = sp.part + ((s * n_head + h0 + g) * sp.splits + z) * stride;
                pt[2 + i] = acc[g];
                if (i == 0) pt[0] = mg[g], pt[1] = zg[g];
                continue;
            }
            out[(s * n_head + h0 + g) * d + i] = acc[g] * inv[g];
            if (o.dxs) qs[g * d + i] = acc[g] * inv[g];  // the queries are no longer read
        }
    }
    if (SPLIT && P > 1) {  // the row's last block to finish merges its chunks
        __threadfence();
        __syncthreads();
        int* count = sp.count + s * gridDim.y + blockIdx.y;
        if (threadIdx.x == 0) s_last = atomicAdd(count, 1) == int(P - 1);
        __syncthreads();
        if (!s_last) return;
        __threadfence();
        if (threadIdx.x == 0) *count = 0;  // for the next call
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const float* pt = sp.part + (s * n_head + h0 + g) * sp.splits * stride;
            float M = -INFINITY, Z = 0.0f;
            for (int64_t c = 0; c < P; ++c) M = fmaxf(M, __ldcg(pt + c * stride));
            for (int64_t c = 0; c < P; ++c)
                Z = __fmaf_rn(__ldcg(pt + c * stride + 1), expf(__ldcg(pt + c * stride) - M), Z);
            const float iz = 1.0f / Z;
            for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
                float a = 0.0f;
                for (int64_t c = 0; c < P; ++c)
                    a = __fmaf_rn(__ldcg(pt + c * stride + 2 + i), expf(__ldcg(pt + c * stride) - M), a);
                out[(s * n_head + h0 + g) * d + i] = a * iz;
                if (o.dxs) qs[g * d + i] = a * iz;
            }
        }
    }
    if (!o.dxs) return;  // not packing (planes may be absent: a prefill)
    __syncthreads();
    const int64_t K = n_head * d;
    for (int g = threadIdx.x / 32; g < G; g += warps) {
        const int64_t h = h0 + g;
        pack_group_of(K, lane, s, C, h, o, [&](int64_t i) { return qs[i - h0 * d]; });
    }
    if (h0 + G == n_head && threadIdx.x < 32)
        for (int64_t Gi = n_head; Gi < 4 * C; ++Gi)
            pack_group_of(K, lane, s, C, Gi, o, [](int64_t) { return 0.0f; });
}

// Row s of k / v ([t, width]) into row positions[s] of its caches.
__global__ void kv_store_kernel(const float* k, const float* v, CacheRows cache,
                                const int32_t* positions, int64_t t, int64_t width) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= t * width) return;
    const int64_t s = i / width, dst = cache.offset + int64_t(positions[s]) * width + i % width;
    cache.k[s][dst] = k[i];
    cache.v[s][dst] = v[i];
}

__global__ void silu_mul_kernel(const float* g, const float* u, int64_t n, float* out) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) x[i] += y[i];
}

// (value, index) of the better candidate: larger value, then smaller index; index -1 is none.
__device__ __forceinline__ void better_of(float& v, int& i, float ov, int oi) {
    if (oi >= 0 && (i < 0 || ov > v || (ov == v && oi < i))) v = ov, i = oi;
}

// Block (1024 threads) per (slice blockIdx.x of `slice` values, row blockIdx.y) of x [rows, n]:
// each thread keeps the first largest non-NaN value of its stride (eight loads in flight), then
// a warp and a block reduction of (value, index) pairs. One slice a row (gridDim.x 1): the row's
// choice into out[row]; else the slice's pair (index -1: none) into best_v / best_i [rows, slices]
// for argmax_merge_kernel.
__global__ void argmax_kernel(const float* x, int64_t n, int64_t slice, float* best_v,
                              int32_t* best_i, int32_t* out) {
    wait_for_prior_grids();
    __shared__ float sv[32];
    __shared__ int si[32];
    const int64_t row = blockIdx.y, lo = int64_t(blockIdx.x) * slice, hi = min(n, lo + slice);
    const float* r = x + row * n;
    float v = 0.0f;
    int idx = -1;
    constexpr int kUnroll = 8;
    const int64_t step = int64_t(blockDim.x) * kUnroll;
    for (int64_t j0 = lo + threadIdx.x; j0 < hi; j0 += step) {
        float c[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t j = j0 + int64_t(u) * blockDim.x;
            c[u] = j < hi ? r[j] : NAN;
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)  // this thread's indices in increasing order
            if (!isnan(c[u]) && (idx < 0 || c[u] > v)) v = c[u], idx = int(j0 + int64_t(u) * blockDim.x);
    }
    for (int o = 16; o; o >>= 1)
        better_of(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    if (lane == 0) sv[warp] = v, si[warp] = idx;
    __syncthreads();
    if (warp) return;
    const int warps = blockDim.x / 32;
    v = lane < warps ? sv[lane] : 0.0f;
    idx = lane < warps ? si[lane] : -1;
    for (int o = 16; o; o >>= 1)
        better_of(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    if (lane) return;
    if (gridDim.x == 1) {
        out[row] = idx < 0 || isnan(r[0]) ? 0 : idx;
    } else {
        best_v[row * gridDim.x + blockIdx.x] = v;
        best_i[row * gridDim.x + blockIdx.x] = idx;
    }
}

// Warp per row: the best of its slices' pairs (at most 32 a row), then ops' rule for the row.
__global__ void argmax_merge_kernel(const float* x, int64_t n, int slices, const float* best_v,
                                    const int32_t* best_i, int32_t* out) {
    wait_for_prior_grids();
    const int64_t row = blockIdx.x;
    const int lane = threadIdx.x;
    float v = lane < slices ? best_v[row * slices + lane] : 0.0f;
    int idx = lane < slices ? best_i[row * slices + lane] : -1;
    for (int o = 16; o; o >>= 1)
        better_of(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    if (lane == 0) out[row] = idx < 0 || isnan(x[row * n]) ? 0 : idx;
}

// Warp per (output n, activation row m): lanes stride over k, a fixed warp-tree reduction.
__global__ void linear_dense_kernel(const float* x, int64_t m, int64_t k, const void* w, DType wdt,
                                    int64_t n, float* y) {
    const int lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32, mi = blockIdx.y;
    if (row >= n) return;
    const float* xr = x + mi * k;
    float acc = 0.0f;
    for (int64_t i = lane; i < k; i += 32) acc = __fmaf_rn(xr[i], load_as_float(wdt, w, row * k + i), acc);
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) y[mi * n + row] = acc;
}

}  // namespace

void embed_dense(const void* table, DType dt, const int32_t* ids, int64_t t, int64_t d, float* out) {
    if (t * d == 0) return;
    launch_dependent(embed_dense_kernel, blocks_for(t * d), kThreads, 0, table, dt, ids, t, d, out);
    check_launch("embed_dense");
}

void embed_quantized(const uint32_t* w, const void* scales, const void* biases, DType sdt,
                     const int32_t* ids, int64_t t, int64_t d, int g, int bits, float* out) {
    if (t * d == 0) return;
    launch_dependent(embed_quantized_kernel, blocks_for(t * d), kThreads, 0, w, scales, biases, sdt, ids, t, d, g, bits, out);
    check_launch("embed_quantized");
}

void rms_norm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
    if (rows == 0) return;
    launch_dependent(rms_norm_kernel, static_cast<unsigned>(rows), kThreads, 0, x, weight, n, eps, out);
    check_launch("rms_norm");
}

void rope(float* x, int64_t t, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq, float attention_factor) {
    const int64_t n = t * heads * (head_dim / 2);
    if (n == 0) return;
    rope_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, t, heads, head_dim, positions, inv_freq,
                                             attention_factor);
    check_launch("rope");
}

namespace {

// The largest dynamic shared memory a block may ask for on this device.
size_t shared_memory_optin() {
    static const size_t optin = [] {
        int dev = 0, v = 0;
        check(cudaGetDevice(&dev), "cudaGetDevice");
        check(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
              "cudaDeviceGetAttribute");
        return size_t(v);
    }();
    return optin;
}

template <int G, bool SPLIT>
void launch_attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                      CacheRows cache, const int32_t* positions, size_t smem, float* out,
                      float scale, ActivationOut o, int64_t C, const SplitArgs& sp,
                      int64_t slots) {
    static size_t raised = 48 << 10;  // the default dynamic shared-memory limit
    if (smem > raised) {
        check(cudaFuncSetAttribute(attention_kernel<G, SPLIT>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "cudaFuncSetAttribute");
        raised = smem;
    }
    const dim3 grid(static_cast<unsigned>(t), static_cast<unsigned>(n_head / G),
                    static_cast<unsigned>(sp.splits));
    launch_dependent(attention_kernel<G, SPLIT>, grid, kAttentionThreads, smem, q, n_head, n_kv, d,
                     cache, positions, out, scale, o, C, sp, slots);
}

template <int G>
void launch_attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                      CacheRows cache, const int32_t* positions, size_t smem, float* out,
                      float scale, ActivationOut o, int64_t C, const SplitArgs& sp,
                      int64_t slots) {
    if (sp.chunk)
        launch_attention<G, true>(q, t, n_head, n_kv, d, cache, positions, smem, out, scale, o, C,
                                  sp, slots);
    else
        launch_attention<G, false>(q, t, n_head, n_kv, d, cache, positions, smem, out, scale, o, C,
                                   sp, slots);
}

// The split's counters (workspace slot 8), zeroed when (re)allocated; the merging blocks leave
// them zero.
int* split_counters(size_t n) {
    static void* zeroed = nullptr;
    void* p = workspace(8, n * sizeof(int));
    if (p != zeroed) {
        check(cudaMemsetAsync(p, 0, n * sizeof(int), stream()), "cudaMemset");
        zeroed = p;
    }
    return static_cast<int*>(p);
}

// The heads of a KV head share a block (their key and value rows read once) when they are 2, 4
// or 8, their scores fit in shared memory and the grid keeps at least two blocks an SM (decode
// steps of a few tokens need the blocks more than the shared reads); else a block per head.
// Same bits either way. split.longest > 0 (a decode step): rows longer than kAttentionChunk are
// split over blocks of kAttentionChunk positions.
void run_attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                   CacheRows cache, const int32_t* positions, int64_t capacity, float* out,
                   float scale, ActivationOut o, int64_t C, const AttentionSplit& split) {
    if (d % 4) fail("cuda", "attention needs head_dim a multiple of 4, got ", d);
    if (split.longest > capacity)
        fail("cuda", "attention: a row of ", split.longest, " positions in a cache of ", capacity);
    SplitArgs sp;
    sp.splits = split.longest > kAttentionChunk ? (split.longest + kAttentionChunk - 1) / kAttentionChunk : 1;
    if (sp.splits > 65535) fail("cuda", "attention over ", split.longest, " positions in one step");
    if (sp.splits > 1) sp.chunk = kAttentionChunk;
    // score slots a block, a multiple of 4 (the warps' float4 sums follow them)
    const int64_t rows = ((sp.chunk ? sp.chunk : capacity) + 3) / 4 * 4;
    const size_t optin = shared_memory_optin();
    // a head's queries, scores and warps' output sums
    const size_t one = size_t(d + rows + kAttentionThreads / 32 * d) * sizeof(float);
    if (one > optin)
        fail("cuda", "attention over ", capacity, " positions needs ", one,
             " bytes of shared memory; ", device_info().name, " gives a block ", optin);
    const int64_t per_kv = n_head / n_kv;
    static const int64_t min_blocks = 2 * int64_t(device_info().sm_count);
    int G = 1;
    for (int g : {8, 4, 2})
        if (per_kv % g == 0 && size_t(g) * one <= optin && t * n_head / g >= min_blocks) {
            G = g;
            break;
        }
    if (sp.chunk) {
        sp.part = static_cast<float*>(workspace(7, size_t(t * n_head * sp.splits * (d + 2)) * sizeof(float)));
        sp.count = split_counters(size_t(t * n_head / G));
    }
    const size_t smem = size_t(G) * one;
    const auto go = [&](auto g) {
        launch_attention<decltype(g)::value>(q, t, n_head, n_kv, d, cache, positions, smem, out,
                                             scale, o, C, sp, rows);
    };
    switch (G) {
        case 8: go(std::integral_constant<int, 8>{}); break;
        case 4: go(std::integral_constant<int, 4>{}); break;
        case 2: go(std::integral_constant<int, 2>{}); break;
        default: go(std::integral_constant<int, 1>{}); break;
    }
    check_launch("attention");
}

}  // namespace

void attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d, CacheRows cache,
               const int32_t* positions, int64_t capacity, float* out, float scale,
               AttentionSplit split) {
    if (t == 0) return;
    run_attention(q, t, n_head, n_kv, d, cache, positions, capacity, out, scale,
                  ActivationOut{nullptr, nullptr, nullptr}, 0, split);
}

PackedActivations attention_pack(const float* q, int64_t t, int64_t n_head, int64_t n_kv,
                                 int64_t d, CacheRows cache, const int32_t* positions,
                                 int64_t capacity, float* out, float scale, AttentionSplit split) {
    if (d != 128) fail("cuda", "attention_pack needs head_dim 128 (a head per group), got ", d);
    const int64_t K = n_head * d, C = (K + 511) / 512;
    const ActivationOut o = activation_buffers(t, K);
    if (t > 0) run_attention(q, t, n_head, n_kv, d, cache, positions, capacity, out, scale, o, C, split);
    return packed_activations(t, K, o);
}

void kv_store(const float* k, const float* v, CacheRows cache, const int32_t* positions, int64_t t,
              int64_t width) {
    if (t * width == 0) return;
    kv_store_kernel<<<blocks_for(t * width), kThreads, 0, stream()>>>(k, v, cache, positions, t, width);
    check_launch("kv_store");
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
    if (n == 0) return;
    silu_mul_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(gate, up, n, out);
    check_launch("silu_mul");
}

void add(float* x, const float* y, int64_t n) {
    if (n == 0) return;
    launch_dependent(add_kernel, blocks_for(n), kThreads, 0, x, y, n);
    check_launch("add");
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out) {
    if (rows == 0) return;
    if (n <= 0 || n > INT32_MAX) fail("cuda", "argmax over ", n, " values per row");
    if (rows > 65535) fail("cuda", "argmax over ", rows, " rows (at most 65535 a call)");
    // A long row is split into slices of at least 4096 values, a block each (one block reading a
    // 151,936-value row alone is latency-bound), merged by a warp a row.
    const int64_t want = std::min<int64_t>(32, n / 4096);
    if (want < 2) {
        launch_dependent(argmax_kernel, dim3(1, static_cast<unsigned>(rows)), 1024, 0, x, n, n,
                         static_cast<float*>(nullptr), static_cast<int32_t*>(nullptr), out);
        check_launch("argmax_rows");
        return;
    }
    const int64_t slice = (n + want - 1) / want, slices = (n + slice - 1) / slice;
    auto* best_v = static_cast<float*>(workspace(6, size_t(rows * slices) * 8));
    auto* best_i = reinterpret_cast<int32_t*>(best_v + rows * slices);
    launch_dependent(argmax_kernel, dim3(static_cast<unsigned>(slices), static_cast<unsigned>(rows)),
                     1024, 0, x, n, slice, best_v, best_i, static_cast<int32_t*>(nullptr));
    check_launch("argmax_rows (slices)");
    launch_dependent(argmax_merge_kernel, dim3(static_cast<unsigned>(rows)), 32, 0, x, n,
                     static_cast<int>(slices), static_cast<const float*>(best_v),
                     static_cast<const int32_t*>(best_i), out);
    check_launch("argmax_rows (merge)");
}

void linear_dense(const float* x, int64_t m, int64_t k, const void* w, DType wdt, int64_t n,
                  float* y) {
    if (m * n == 0) return;
    const int warps = kThreads / 32;
    const dim3 grid(static_cast<unsigned>((n + warps - 1) / warps), static_cast<unsigned>(m));
    linear_dense_kernel<<<grid, kThreads, 0, stream()>>>(x, m, k, w, wdt, n, y);
    check_launch("linear_dense");
}

}  // namespace onebit::cuda::nn
