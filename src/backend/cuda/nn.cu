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
