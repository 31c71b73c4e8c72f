// Device pieces the two 1-bit tensor-core kernels share (onebit_mma.cu over the MLX layout,
// packed_mma.cu over the repacked one): the binary MMA, the int8 quantization of one activation
// group into bit planes, and the block epilogue that sums a row's partials in a fixed order.
#pragma once

#include "backend/cuda/internal.h"

namespace onebit::cuda {

// c = popcounts of (16 rows of a0 / a1) AND (8 columns of b0) over 128 k (PTX m16n8k128 .b1):
// lane = 4 gid + tig holds A rows gid (a0) and gid + 8 (a1), k-word tig; B column gid, k-word
// tig; c[0..1] row gid, columns 2 tig and 2 tig + 1; c[2..3] row gid + 8.
__device__ __forceinline__ void mma_b1(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    c[0] = c[1] = c[2] = c[3] = 0;
    asm("mma.sync.aligned.m16n8k128.row.col.s32.b1.b1.s32.and.popc "
        "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(b0));
}

// The weights of bit planes 2 tig and 2 tig + 1 of an int8 (two's complement: plane 7 is -128).
__device__ __forceinline__ void plane_weights(int tig, int& c0, int& c1) {
    c0 = 1 << (2 * tig);
    c1 = tig == 3 ? -128 : 1 << (2 * tig + 1);
}

// One warp quantizes a group of 32 * WORDS activations (v[j] = x[32 j + lane]) with
// quant::quantize_activations_int8's arithmetic, returning dx and the group's sum of x (a fixed
// warp tree), and calls put(j, p, word) on lane p < 8 for the plane-p bit word of word j (unless
// planes is false: no planes are made); with q8 (not null) also writes the int8 values,
// q8[32 j + lane].
template <int WORDS, typename Put>
__device__ __forceinline__ void quantize_group_planes(const float (&v)[WORDS], int lane, float& d,
                                                      float& sum, Put put, int8_t* q8 = nullptr,
                                                      bool planes = true) {
    float amax = 0.0f;
    sum = 0.0f;
#pragma unroll
    for (int j = 0; j < WORDS; ++j) amax = fmaxf(amax, fabsf(v[j])), sum = __fadd_rn(sum, v[j]);
    for (int o = 16; o; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    for (int o = 16; o; o >>= 1) sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, o));
    d = __fdiv_rn(amax, 127.0f);
    const float inv = d > 0.0f ? __fdiv_rn(1.0f, d) : 0.0f;
#pragma unroll
    for (int j = 0; j < WORDS; ++j) {
        const float q = fminf(fmaxf(rintf(__fmul_rn(v[j], inv)), -127.0f), 127.0f);
        const uint32_t byte = static_cast<uint32_t>(static_cast<int32_t>(q)) & 0xffu;
        if (q8) q8[32 * j + lane] = static_cast<int8_t>(static_cast<int32_t>(q));
        if (!planes) continue;  // the same for the whole warp
        uint32_t mine = 0;
#pragma unroll
        for (int p = 0; p < 8; ++p) {
            const uint32_t word = __ballot_sync(0xffffffffu, (byte >> p) & 1u);
            if (lane == p) mine = word;
        }
        if (lane < 8) put(j, lane, mine);
    }
}

// A row's partial summed over the row's four lanes (4 gid + tig): an xor-1 then an xor-2 step.
__device__ __forceinline__ float quad_sum(float v) {
    v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

// Block epilogue: each lane's partials for rows gid / gid + 8 of activation rows i < mb are
// summed over the row's four lanes, then over the block's WARPS warps in order, and handed to
// store(i, n, value) for the tile's rows n = n0 + r < N. part: __shared__ [WARPS][MB][16].
template <int MB, int WARPS, typename Store>
__device__ __forceinline__ void store_rows(float (&part)[WARPS][MB][16], const float (&lo)[MB],
                                           const float (&hi)[MB], int mb, int64_t n0, int64_t N,
                                           Store store) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, gid = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int i = 0; i < MB; ++i) {
        const float l = quad_sum(lo[i]), h = quad_sum(hi[i]);
        if (tig == 0) part[warp][i][gid] = l, part[warp][i][gid + 8] = h;
    }
    __syncthreads();
    if (threadIdx.x < 16 * MB) {
        const int i = threadIdx.x / 16, r = threadIdx.x % 16;
        const int64_t n = n0 + r;
        if (i < mb && n < N) {
            float v = part[0][i][r];
            for (int w = 1; w < WARPS; ++w) v = __fadd_rn(v, part[w][i][r]);
            store(i, n, v);
        }
    }
}

}  // namespace onebit::cuda
