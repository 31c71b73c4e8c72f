// Attention over the KV cache for decode steps and short prompts (nn.h: attention,
// attention_pack, attention_qk_pack): a block per (token, group of heads sharing a KV head,
// chunk of positions), split over chunks for long contexts (flash-decoding).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/internal.h"
#include "backend/cuda/nn.h"
#include "backend/cuda/packed_layout.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rope.cuh"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

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
// attention_qk_pack's head size (a head is one packed group).
constexpr int kPrepDim = 128;

// attention_qk_pack's work before the attention (k null: none; the queries are read as they are).
struct QkPrep {
    const float* k = nullptr;  // [t, n_kv, d]: keys and values as the q / k / v matmul wrote them
    const float* v = nullptr;
    const float* q_w = nullptr;  // per-head RMSNorm weights [d] (null: no norm, as Llama)
    const float* k_w = nullptr;
    const float* inv_freq = nullptr;  // [d / 2]
    float eps = 0.0f, factor = 1.0f;
};

// qk_norm_rope_store's arithmetic (fused.cu) for the block's G query heads of token s, into qs
// [G][kPrepDim], and, with newest, for its KV head's key, stored with the value row at the
// cache rows k_row / v_row. rot: cos and sin [2][kPrepDim / 2] of the token's position. A head's
// sum of squares is that kernel's block_sum over kPrepDim threads: each warp's 32 values are one
// quarter of a head, summed by the same xor tree, and the quarters added in order.
template <int G>
__device__ __forceinline__ void qk_prep(const QkPrep& prep, const float* q, int64_t s,
                                        int64_t n_head, int64_t n_kv, int64_t h0, int64_t kvh,
                                        bool newest, const float (&rot)[2][kPrepDim / 2], float* qs,
                                        float* k_row, float* v_row) {
    constexpr int d = kPrepDim, half = d / 2, quarters = d / 32;
    __shared__ float knew[d];
    __shared__ float wsum[(G + 1) * quarters];
    const int heads = G + (newest ? 1 : 0);
    const float* kr = prep.k + (s * n_kv + kvh) * d;
    auto row = [&](int hh) { return hh < G ? qs + hh * d : knew; };
    for (int e = threadIdx.x; e < heads * d; e += blockDim.x) {  // whole warps a head's quarter
        const int hh = e / d, i = e % d;
        const float val = hh < G ? q[(s * n_head + h0 + hh) * d + i] : kr[i];
        row(hh)[i] = val;
        const float sq = warp_sum(__fmaf_rn(val, val, 0.0f));
        if ((threadIdx.x & 31) == 0) wsum[e / 32] = sq;
    }
    if (newest)
        for (int i = threadIdx.x; i < d; i += blockDim.x) v_row[i] = prep.v[(s * n_kv + kvh) * d + i];
    __syncthreads();
    for (int e = threadIdx.x; e < heads * d; e += blockDim.x) {
        const int hh = e / d, i = e % d;
        const float* w = hh < G ? prep.q_w : prep.k_w;
        if (!w) continue;
        float ss = 0.0f;
        for (int u = 0; u < quarters; ++u) ss += wsum[hh * quarters + u];
        row(hh)[i] = row(hh)[i] * (1.0f / sqrtf(ss / float(d) + prep.eps)) * w[i];
    }
    __syncthreads();
    for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
        const int hh = p / half, i = p % half;
        float* r = row(hh);
        float lo, hi;
        rope_pair(r[i], r[i + half], rot[0][i], rot[1][i], lo, hi);
        r[i] = lo, r[i + half] = hi;
        if (hh == G) k_row[i] = lo, k_row[i + half] = hi;
    }
}

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
                 SplitArgs sp, int64_t score_slots, QkPrep prep) {
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
    // with prep: the rotation of the token's position (the inverse frequencies are constant)
    __shared__ float rot[2][kPrepDim / 2];
    if (prep.k)
        for (int i = threadIdx.x; i < kPrepDim / 2; i += blockDim.x)
            rope_angle(len - 1, prep.inv_freq[i], prep.factor, rot[0][i], rot[1][i]);
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
    if (prep.k) {
        // the block holding the newest position stores its key and value rows (every head of a KV
        // head computes the same bits; each block reads what it wrote after the barrier below)
        const int64_t at = cache.offset + ((len - 1) * n_kv + kvh) * d;
        qk_prep<G>(prep, q, s, n_head, n_kv, h0, kvh, !SPLIT || z == P - 1, rot, qs,
                   cache.k[s] + at, cache.v[s] + at);
    } else {
        for (int64_t i = threadIdx.x; i < G * d; i += blockDim.x) qs[i] = q[(s * n_head + h0) * d + i];
    }
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
                      int64_t slots, const QkPrep& prep) {
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
                     cache, positions, out, scale, o, C, sp, slots, prep);
}

template <int G>
void launch_attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                      CacheRows cache, const int32_t* positions, size_t smem, float* out,
                      float scale, ActivationOut o, int64_t C, const SplitArgs& sp,
                      int64_t slots, const QkPrep& prep) {
    if (sp.chunk)
        launch_attention<G, true>(q, t, n_head, n_kv, d, cache, positions, smem, out, scale, o, C,
                                  sp, slots, prep);
    else
        launch_attention<G, false>(q, t, n_head, n_kv, d, cache, positions, smem, out, scale, o, C,
                                   sp, slots, prep);
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
                   float scale, ActivationOut o, int64_t C, const AttentionSplit& split,
                   const QkPrep& prep = {}) {
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
                                             scale, o, C, sp, rows, prep);
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

PackedActivations attention_qk_pack(float* q, float* k, const float* v,
                                    const float* q_norm, const float* k_norm, int64_t t,
                                    int64_t n_head, int64_t n_kv, int64_t d, float eps,
                                    const int32_t* positions, const float* inv_freq,
                                    float attention_factor, CacheRows cache, int64_t capacity,
                                    float* out, float scale, AttentionSplit split) {
    if (d != kPrepDim)
        fail("cuda", "attention_qk_pack needs head_dim ", kPrepDim, " (a head per group), got ", d);
    if (switched_off("ONEBIT_CUDA_FUSED_ATTENTION")) {
        qk_norm_rope_store(q, k, v, q_norm, k_norm, t, n_head, n_kv, d, eps, positions, inv_freq,
                           attention_factor, cache);
        return attention_pack(q, t, n_head, n_kv, d, cache, positions, capacity, out, scale, split);
    }
    const int64_t K = n_head * d, C = (K + 511) / 512;
    const ActivationOut o = activation_buffers(t, K);
    QkPrep prep;
    prep.k = k, prep.v = v, prep.q_w = q_norm, prep.k_w = k_norm, prep.inv_freq = inv_freq;
    prep.eps = eps, prep.factor = attention_factor;
    if (t > 0)
        run_attention(q, t, n_head, n_kv, d, cache, positions, capacity, out, scale, o, C, split,
                      prep);
    return packed_activations(t, K, o);
}

}  // namespace onebit::cuda::nn
