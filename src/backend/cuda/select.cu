// Candidate selection for sampling on the GPU: the sampler's penalties applied to single logits,
// then each row's k best logits, so that only they, not the whole row (600 KB for a Qwen3
// vocabulary), go back to the host.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/internal.h"
#include "backend/cuda/nn.h"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

constexpr int kSelectThreads = 1024;

// A key whose unsigned order is ops' nn::ranks_before order of logits: -0 and +0 share one key,
// every NaN gets the largest.
__device__ __forceinline__ uint32_t rank_key(float f) {
    if (isnan(f)) return 0xffffffffu;
    uint32_t u = __float_as_uint(f);
    if (u == 0x80000000u) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A block reads its row in chunks of kChunk: kUnroll coalesced loads a thread, all issued before
// any is used (one load at a time leaves a single block waiting on L2 latency: 8x slower).
constexpr int kUnroll = 8;
constexpr int64_t kChunk = int64_t(kSelectThreads) * kUnroll;

__device__ __forceinline__ void load_chunk(const float* r, int64_t n, int64_t c0, int tid,
                                           float (&v)[kUnroll]) {
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
        const int64_t i = c0 + j * kSelectThreads + tid;
        v[j] = i < n ? r[i] : 0.0f;
    }
}

// f(i, x[i]) for every i < n of a block's row, in no particular order: 16-byte loads where the
// row allows them, several in flight a thread.
template <typename F>
__device__ __forceinline__ void for_each_value(const float* r, int64_t n, int tid, F&& f) {
    if (n % 4 == 0 && (reinterpret_cast<uintptr_t>(r) & 15) == 0) {
        const auto* r4 = reinterpret_cast<const float4*>(r);
        const int64_t n4 = n / 4;
        constexpr int kUnroll4 = kUnroll / 2;  // twice the bytes in flight, within 64 registers
        for (int64_t c0 = 0; c0 < n4; c0 += int64_t(kSelectThreads) * kUnroll4) {
            float4 v[kUnroll4];
#pragma unroll
            for (int j = 0; j < kUnroll4; ++j) {
                const int64_t i = c0 + j * kSelectThreads + tid;
                v[j] = i < n4 ? r4[i] : make_float4(0, 0, 0, 0);
            }
#pragma unroll
            for (int j = 0; j < kUnroll4; ++j) {
                const int64_t i = c0 + j * kSelectThreads + tid;
                if (i < n4) f(4 * i, v[j].x), f(4 * i + 1, v[j].y), f(4 * i + 2, v[j].z), f(4 * i + 3, v[j].w);
            }
        }
        return;
    }
    for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
        float v[kUnroll];
        load_chunk(r, n, c0, tid, v);
#pragma unroll
        for (int j = 0; j < kUnroll; ++j) {
            const int64_t i = c0 + j * kSelectThreads + tid;
            if (i < n) f(i, v[j]);
        }
    }
}

// Block per slice of a row (blockIdx.x: the slice, blockIdx.y: the row): values slice * s ..
// slice * s + slice - 1 (fewer in the last slice) of row y of x [rows, row_len]; their ids are
// their indices in the row, or id_map's entries at the same places. A radix select over the
// keys, 8 bits a pass from the top, finds the key T of the slice's k-th best and how many of the
// k best have key T (`need`); a last pass takes every value at or above T when all of those at T
// are taken (in any order), else every value above T (to the first k - need slots, in any order)
// and the first `need` values at T by place (after them, in place order). Each pass reads the
// slice from L2, where the LM head left it. The k taken go to block (x, y)'s k slots of
// vals / ids [rows, slices, k]: as taken, or with SORTED in nn::ranks_before order (value, then
// id), so that a second selection over the slices' lists in place order breaks ties by id.
template <bool SORTED>
__global__ void __launch_bounds__(kSelectThreads)
    top_k_kernel(const float* x, int64_t row_len, int64_t slice, const int32_t* id_map, int k,
                 float* vals, int32_t* ids) {
    wait_for_prior_grids();
    constexpr int kWarps = kSelectThreads / 32;
    __shared__ uint32_t warp_hist[kWarps][256];  // a histogram a warp: fewer atomic collisions
    __shared__ uint32_t hist[256];
    __shared__ uint32_t warp_ties[kWarps];
    __shared__ uint32_t s_digit, s_need, s_at_digit, s_above;
    // SORTED: the k taken (k <= kSelectThreads), then sorted in place
    __shared__ float sorted_v[SORTED ? kSelectThreads : 1];
    __shared__ int32_t sorted_i[SORTED ? kSelectThreads : 1];
    const int64_t lo = int64_t(blockIdx.x) * slice, row = blockIdx.y;
    const int64_t n = min(slice, row_len - lo);
    const float* r = x + row * row_len + lo;
    const int32_t* idm = id_map ? id_map + row * row_len + lo : nullptr;
    const int64_t out = (row * gridDim.x + blockIdx.x) * int64_t(k);
    auto take = [&](uint32_t slot, int64_t i, float v) {
        const int32_t id = idm ? idm[i] : int32_t(lo + i);
        if constexpr (SORTED) sorted_v[slot] = v, sorted_i[slot] = id;
        else vals[out + slot] = v, ids[out + slot] = id;
    };
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    uint32_t prefix = 0, mask = 0, need = uint32_t(k);
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < kWarps * 256; i += kSelectThreads) warp_hist[i / 256][i % 256] = 0;
        __syncthreads();
        // the keys that share the prefix found so far, counted by their next digit
        for_each_value(r, n, tid, [&](int64_t, float v) {
            const uint32_t key = rank_key(v);
            if ((key & mask) == prefix) atomicAdd(&warp_hist[warp][(key >> shift) & 255u], 1u);
        });
        __syncthreads();
        for (int b = tid; b < 256; b += kSelectThreads) {
            uint32_t c = 0;
            for (int w = 0; w < kWarps; ++w) c += warp_hist[w][b];
            hist[b] = c;
        }
        __syncthreads();
        if (warp == 0) {
            // lane l sums bins 255 - 8l down to 248 - 8l; a scan over lanes gives the count of
            // keys in the bins above each lane's; the lane where `need` is reached finds the digit
            uint32_t c[8], sum = 0;
            for (int j = 0; j < 8; ++j) sum += c[j] = hist[255 - 8 * lane - j];
            uint32_t incl = sum;
            for (int o = 1; o < 32; o <<= 1) {
                const uint32_t t = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += t;
            }
            uint32_t acc = incl - sum;
            if (acc < need && incl >= need) {
                for (int j = 0; j < 8; ++j) {
                    if (acc + c[j] >= need) {
                        s_digit = 255u - 8u * lane - j;
                        s_need = need - acc;
                        s_at_digit = c[j];
                        break;
                    }
                    acc += c[j];
                }
            }
        }
        __syncthreads();
        prefix |= s_digit << shift;
        mask |= 255u << shift;
        need = s_need;
    }
    if (tid == 0) s_above = 0;
    __syncthreads();
    if (need == s_at_digit) {  // every value at T is taken (the usual case): no order needed
        for_each_value(r, n, tid, [&](int64_t i, float v) {
            if (rank_key(v) >= prefix) take(atomicAdd(&s_above, 1u), i, v);
        });
    } else {
        const uint32_t first_tie = uint32_t(k) - need;
        uint32_t ties_before = 0;  // ties at lower places, the same in every thread
        for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
            float vs[kUnroll];
            load_chunk(r, n, c0, tid, vs);
#pragma unroll
            for (int j = 0; j < kUnroll; ++j) {  // a span of kSelectThreads in place order
                const int64_t i = c0 + j * kSelectThreads + tid;
                const float v = vs[j];
                const uint32_t key = i < n ? rank_key(v) : 0;
                if (i < n && key > prefix) take(atomicAdd(&s_above, 1u), i, v);
                const bool tie = i < n && key == prefix;
                if (ties_before < need && __syncthreads_or(tie)) {
                    const unsigned b = __ballot_sync(0xffffffffu, tie);
                    if (lane == 0) warp_ties[warp] = __popc(b);
                    __syncthreads();
                    uint32_t rank = ties_before + __popc(b & ((1u << lane) - 1u)), total = 0;
                    for (int w = 0; w < kSelectThreads / 32; ++w) {
                        rank += w < warp ? warp_ties[w] : 0u;
                        total += warp_ties[w];
                    }
                    if (tie && rank < need) take(first_tie + rank, i, v);
                    ties_before += total;
                    __syncthreads();  // warp_ties is rewritten by the next span with ties
                }
            }
        }
    }
    if constexpr (SORTED) {
        // bitonic sort of the k taken (padded to a power of two with a key no value has: the
        // pattern 0xffffffff is a NaN, which rank_key maps to the top) by key down, id up
        int p = 1;
        while (p < k) p <<= 1;
        if (tid >= k && tid < p) sorted_v[tid] = __uint_as_float(0xffffffffu), sorted_i[tid] = INT32_MAX;
        __syncthreads();
        auto key_of = [&](int i) { return sorted_i[i] == INT32_MAX ? 0u : rank_key(sorted_v[i]); };
        for (int size = 2; size <= p; size <<= 1)
            for (int stride = size / 2; stride > 0; stride >>= 1) {
                const int j = tid ^ stride;
                if (tid < p && j > tid) {
                    const uint32_t ka = key_of(tid), kb = key_of(j);
                    const bool a_first = ka > kb || (ka == kb && sorted_i[tid] < sorted_i[j]);
                    // ascending in "rank" (best first) where tid & size is 0, else descending
                    if (a_first == bool(tid & size)) {
                        const float tv = sorted_v[tid];
                        const int32_t ti = sorted_i[tid];
                        sorted_v[tid] = sorted_v[j], sorted_i[tid] = sorted_i[j];
                        sorted_v[j] = tv, sorted_i[j] = ti;
                    }
                }
                __syncthreads();
            }
        if (tid < k) vals[out + tid] = sorted_v[tid], ids[out + tid] = sorted_i[tid];
    }
}

__global__ void apply_edits_kernel(float* x, int64_t n, const RowEdit* edits, int64_t count) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= count) return;
    const RowEdit e = edits[i];
    float& l = x[e.row * n + e.id];
    // explicit roundings: the compiler may not contract them otherwise than the host does
    if (e.repeat == 1.0f) l = __fsub_rn(l, e.minus);
    else l = l > 0 ? __fsub_rn(__fdiv_rn(l, e.repeat), e.minus) : __fmaf_rn(l, e.repeat, -e.minus);
}

}  // namespace

void apply_edits(float* x, int64_t n, const RowEdit* edits, int64_t count) {
    if (count == 0) return;
    const int threads = 256;
    launch_dependent(apply_edits_kernel, dim3(static_cast<unsigned>((count + threads - 1) / threads)),
                     threads, 0, x, n, edits, count);
    check_launch("apply_edits");
}

void top_k_rows(const float* x, int64_t rows, int64_t n, int64_t k, float* vals, int32_t* ids) {
    if (rows == 0) return;
    if (n <= 0 || n > INT32_MAX) fail("cuda", "top-k over ", n, " values per row");
    if (k < 1 || k > n) fail("cuda", "top-k of ", k, " out of ", n, " values");
    if (rows > 65535) fail("cuda", "top-k over ", rows, " rows (at most 65535 a call)");
    // A long row is split into slices of at least kMinSlice values (a multiple of 4: 16-byte
    // loads), a block each, which select their own k best in rank order; one block a row then
    // selects over those lists. One block reading a 151,936-value row alone is latency-bound.
    constexpr int64_t kMinSlice = 4096, kMaxSlices = 64;
    const int64_t want = k <= kSelectThreads ? std::min(kMaxSlices, n / kMinSlice) : 1;
    if (want < 2) {
        launch_dependent(top_k_kernel<false>, dim3(1, static_cast<unsigned>(rows)), kSelectThreads,
                         0, x, n, n, static_cast<const int32_t*>(nullptr), static_cast<int>(k),
                         vals, ids);
        check_launch("top_k_rows");
        return;
    }
    const int64_t slice = ((n + want - 1) / want + 3) / 4 * 4, slices = (n + slice - 1) / slice;
    const int64_t m = slices * k;  // candidates a row
    auto* cand_v = static_cast<float*>(workspace(6, size_t(rows * m) * 8));
    auto* cand_i = reinterpret_cast<int32_t*>(cand_v + rows * m);
    launch_dependent(top_k_kernel<true>, dim3(static_cast<unsigned>(slices), static_cast<unsigned>(rows)),
                     kSelectThreads, 0, x, n, slice, static_cast<const int32_t*>(nullptr),
                     static_cast<int>(k), cand_v, cand_i);
    check_launch("top_k_rows (slices)");
    launch_dependent(top_k_kernel<false>, dim3(1, static_cast<unsigned>(rows)), kSelectThreads, 0,
                     static_cast<const float*>(cand_v), m, m, static_cast<const int32_t*>(cand_i),
                     static_cast<int>(k), vals, ids);
    check_launch("top_k_rows (merge)");
}

}  // namespace onebit::cuda::nn
