// Kernels that fuse the decode step's small stages (nn.h, "fused"): residual add + RMSNorm +
// int8 packing of the normed row for the packed 1-bit matmuls; SwiGLU + packing; and Qwen3's
// q / k RMSNorm + RoPE + KV-cache store. Each is the composition of the unfused kernels'
// arithmetic (nn.cu, packed_mma.cu), without the intermediate trips through device memory and
// with a third of the launches.
#include "backend/cuda/nn.h"
#include "backend/cuda/packed_layout.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rope.cuh"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

constexpr int kThreads = 128;      // 4 warps: one 512-k chunk of packed activations
constexpr int kNormThreads = 512;  // norm_pack: 16 warps share the row's sum, 4 pack

// Block (kNormThreads) per (row m, 512-k chunk c) of x [rows, n]: z = x + y (y may be null) over
// the whole row for the RMS (every block of the row sums it the same way: for 16-byte aligned
// rows, thread t sums elements [4 i, 4 i + 4) for i = t, t + kNormThreads, ..., four such loads in
// flight), then warps 0-3 pack the chunk's four groups of z * inv_rms * weight, and write z to out
// (when not null) for the chunk. The chunk's weights are constant, so they are loaded before the
// wait for the kernel before (programmatic launch). With whole_rows (many rows: a prefill), one
// block takes the whole row (gridDim.y 1) and its 16 warps pack all of the row's groups: the row
// is summed once instead of once a chunk, with the same bits.
__global__ void norm_pack_kernel(const float* x, const float* y, float* out, const float* weight,
                                 int64_t n, float eps, int64_t C, ActivationOut o,
                                 bool whole_rows) {
    __shared__ float scratch[32];
    const int64_t m = blockIdx.x, c = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    float wv[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // chunked: this warp's group's weights
    if (!whole_rows && warp < 4)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int64_t i = (c * 4 + warp) * 128 + 32 * j + lane;
            if (i < n) wv[j] = weight[i];
        }
    wait_for_prior_grids();
    const float* xr = x + m * n;
    const float* yr = y ? y + m * n : nullptr;
    float ss = 0.0f;
    if (n % 4 == 0 &&
        (reinterpret_cast<uintptr_t>(xr) | reinterpret_cast<uintptr_t>(yr)) % 16 == 0) {
        const auto* x4 = reinterpret_cast<const float4*>(xr);
        const auto* y4 = reinterpret_cast<const float4*>(yr);
        const int64_t n4 = n / 4;
#pragma unroll 4
        for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 z = x4[i];
            if (y4) {
                const float4 b = y4[i];
                z.x += b.x, z.y += b.y, z.z += b.z, z.w += b.w;
            }
            ss = __fmaf_rn(z.x, z.x, ss);
            ss = __fmaf_rn(z.y, z.y, ss);
            ss = __fmaf_rn(z.z, z.z, ss);
            ss = __fmaf_rn(z.w, z.w, ss);
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            const float z = yr ? xr[i] + yr[i] : xr[i];
            ss = __fmaf_rn(z, z, ss);
        }
    }
    ss = block_sum(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / float(n) + eps);
    if (!whole_rows) {
        if (warp >= 4) return;
        const int64_t G = c * 4 + warp;
        float v[4];  // as pack_group_of gives them
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int64_t i = G * 128 + 32 * j + lane;
            v[j] = 0.0f;
            if (i >= n) continue;
            const float z = yr ? xr[i] + yr[i] : xr[i];
            if (out) out[m * n + i] = z;
            v[j] = z * inv * wv[j];
        }
        pack_group(v, lane, m, C, G, o);
        return;
    }
    for (int64_t G = warp; G < C * 4; G += blockDim.x / 32)
        pack_group_of(n, lane, m, C, G, o, [&](int64_t i) {
            const float z = yr ? xr[i] + yr[i] : xr[i];
            if (out) out[m * n + i] = z;
            return z * inv * weight[i];
        });
}

// Block (4 warps) per (row m, 512-k chunk c): the chunk's packed activations of silu(g) * u.
__global__ void silu_pack_kernel(const float* g, const float* u, int64_t n, int64_t C,
                                 ActivationOut o) {
    wait_for_prior_grids();
    const int64_t m = blockIdx.x, c = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    pack_group_of(n, lane, m, C, c * 4 + warp, o,
                  [&](int64_t i) { return swiglu(g[m * n + i], u[m * n + i]); });
}

// Block (kQkWarps warps) per (token s, kQkWarps * kQkHeads heads): warp w takes heads
// hh = (blockIdx.y * kQkWarps + w) * kQkHeads + u, u < kQkHeads, of [0, n_head) of q then
// [0, n_kv) of k; lane l holds elements l + 32 j (j < E) of a head. Optional RMSNorm with the
// head's weight (the sum of squares in block_sum's order over head_dim threads: each 32 in a
// butterfly, then the 32s in order), then RoPE at positions[s] (the lane's angles made once for
// its heads; the pairs meet in shared memory); k heads (and their v rows) go to the caches' row
// positions[s]. What no kernel of a step writes (the position, the rotation, the cache
// pointers) is read before the wait for the kernel before.
constexpr int kQkWarps = 4, kQkHeads = 2;
template <int E>
__global__ void __launch_bounds__(kQkWarps * 32)
    qk_norm_rope_store_kernel(float* q, float* k, const float* v, const float* q_w,
                              const float* k_w, int64_t n_head, int64_t n_kv, float eps,
                              const int32_t* positions, const float* inv_freq, float factor,
                              CacheRows cache) {
    constexpr int hd = 32 * E, half = hd / 2;
    __shared__ float rows[kQkWarps][hd];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t s = blockIdx.x;
    const int32_t pos = positions[s];
    float cs[E], sn[E];
#pragma unroll
    for (int j = 0; j < E; ++j) {
        cs[j] = sn[j] = 0.0f;
        if (lane + 32 * j < half) rope_angle(pos, inv_freq[lane + 32 * j], factor, cs[j], sn[j]);
    }
    float* const k_row = cache.k[s] + cache.offset + int64_t(pos) * n_kv * hd;
    float* const v_row = cache.v[s] + cache.offset + int64_t(pos) * n_kv * hd;
    float* row = rows[warp];
    wait_for_prior_grids();
    for (int u = 0; u < kQkHeads; ++u) {
        const int64_t hh = (int64_t(blockIdx.y) * kQkWarps + warp) * kQkHeads + u;
        if (hh >= n_head + n_kv) break;  // the same for the whole warp
        const bool is_k = hh >= n_head;
        const int64_t head = is_k ? hh - n_head : hh;
        const float* w = is_k ? k_w : q_w;
        float* r = is_k ? k + (s * n_kv + head) * hd : q + (s * n_head + head) * hd;
        float val[E];
#pragma unroll
        for (int j = 0; j < E; ++j) val[j] = r[lane + 32 * j];
        if (w) {
            float ss = 0.0f;
#pragma unroll
            for (int j = 0; j < E; ++j) {
                ss += warp_sum(__fmaf_rn(val[j], val[j], 0.0f));
            }
            const float inv = 1.0f / sqrtf(ss / float(hd) + eps);
#pragma unroll
            for (int j = 0; j < E; ++j) val[j] = val[j] * inv * w[lane + 32 * j];
        }
#pragma unroll
        for (int j = 0; j < E; ++j) row[lane + 32 * j] = val[j];
        __syncwarp();
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const int i = lane + 32 * j;
            if (i >= half) continue;
            float lo, hi;
            rope_pair(row[i], row[i + half], cs[j], sn[j], lo, hi);
            r[i] = lo, r[i + half] = hi;
            if (is_k) k_row[head * hd + i] = lo, k_row[head * hd + i + half] = hi;
        }
        if (is_k)
#pragma unroll
            for (int j = 0; j < E; ++j)
                v_row[head * hd + lane + 32 * j] = v[(s * n_kv + head) * hd + lane + 32 * j];
        __syncwarp();  // the row is the next head's
    }
}

}  // namespace

PackedActivations norm_pack(const float* x, const float* residual, float* out, const float* weight,
                            int64_t rows, int64_t n, float eps) {
    const ActivationOut o = activation_buffers(rows, n);
    if (rows == 0) return packed_activations(rows, n, o);
    const int64_t C = (n + 511) / 512;
    // a decode batch spreads each row over C blocks; past it rows alone fill the GPU
    const bool whole_rows = rows > kDecodeMaxM;
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(whole_rows ? 1 : C));
    launch_dependent(norm_pack_kernel, grid, kNormThreads, 0, x, residual, out, weight, n, eps, C,
                     o, whole_rows);
    check_launch("norm_pack");
    return packed_activations(rows, n, o);
}

PackedActivations silu_pack(const float* gate, const float* up, int64_t rows, int64_t n) {
    const ActivationOut o = activation_buffers(rows, n);
    if (rows == 0) return packed_activations(rows, n, o);
    const int64_t C = (n + 511) / 512;
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(C));
    launch_dependent(silu_pack_kernel, grid, kThreads, 0, gate, up, n, C, o);
    check_launch("silu_pack");
    return packed_activations(rows, n, o);
}

void qk_norm_rope_store(float* q, float* k, const float* v, const float* q_norm,
                        const float* k_norm, int64_t t, int64_t n_head, int64_t n_kv,
                        int64_t head_dim, float eps, const int32_t* positions,
                        const float* inv_freq, float attention_factor, CacheRows cache) {
    if (t == 0) return;
    if (head_dim % 32 || head_dim > 256)
        fail("cuda", "head_dim ", head_dim, " is not a multiple of 32 up to 256");
    const int64_t per_block = kQkWarps * kQkHeads;
    const dim3 grid(static_cast<unsigned>(t),
                    static_cast<unsigned>((n_head + n_kv + per_block - 1) / per_block));
    using Kernel = decltype(&qk_norm_rope_store_kernel<1>);
    constexpr Kernel kernels[] = {qk_norm_rope_store_kernel<1>, qk_norm_rope_store_kernel<2>,
                                  qk_norm_rope_store_kernel<3>, qk_norm_rope_store_kernel<4>,
                                  qk_norm_rope_store_kernel<5>, qk_norm_rope_store_kernel<6>,
                                  qk_norm_rope_store_kernel<7>, qk_norm_rope_store_kernel<8>};
    launch_dependent(kernels[head_dim / 32 - 1], grid, dim3(kQkWarps * 32), 0, q, k, v, q_norm,
                     k_norm, n_head, n_kv, eps, positions, inv_freq, attention_factor, cache);
    check_launch("qk_norm_rope_store");
}

}  // namespace onebit::cuda::nn
