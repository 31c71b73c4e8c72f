// The packed 1-bit decode kernel's step over one 512-k chunk (layout in packed_mma.cu's header
// comment), shared by the kernels that must give its bits: qmm_packed_kernel (packed_mma.cu) and
// the gate / up matmul with SwiGLU and packing (packed_swiglu.cu).
#pragma once

#include "backend/cuda/onebit_common.cuh"
#include "backend/cuda/packed_record.cuh"

namespace onebit::cuda {

// Warps of a packed decode block, one 16-row tile: warp w takes chunks c with c % kDecodeWarps = w
// and the block sums the warps' partials in order. 8 blocks fit an SM, so a 12288-row matrix runs
// in one wave. The fused gate / up kernel keeps these partials apart to give the same bits.
inline constexpr int kDecodeWarps = 4;

// A warp's share of one record: the words of rows gid / gid + 8, and their scales (and biases).
struct DecodeChunk {
    uint4 wl, wh;
    uint2 sv;
};

// Chunk c of the record run starting at rec (R bytes a record), as lane `lane` holds it.
template <bool SYM>
__device__ __forceinline__ DecodeChunk load_chunk(const uint8_t* rec, int64_t R, int c, int lane) {
    const uint8_t* r = rec + int64_t(c) * R;
    DecodeChunk k;
    k.wl = __ldg(reinterpret_cast<const uint4*>(r) + lane);
    k.wh = __ldg(reinterpret_cast<const uint4*>(r + 512) + lane);
    if constexpr (SYM)
        k.sv.x = __ldg(reinterpret_cast<const uint32_t*>(r + kWordBytes) + lane), k.sv.y = 0;
    else
        k.sv = __ldg(reinterpret_cast<const uint2*>(r + kWordBytes) + lane);
    return k;
}

// The L2 prefetch of chunk c's record (nothing waited for).
__device__ __forceinline__ void prefetch_chunk(const uint8_t* rec, int64_t R, int c, int lane) {
    for (int64_t off = lane * 128; off < R; off += 32 * 128) prefetch_l2(rec + c * R + off);
}

// p[u] summed over the four lanes of a row; lane tig gets the sum of element tig.
__device__ __forceinline__ int reduce_scatter4(const int (&p)[4], int tig) {
    const bool hi2 = tig & 2, hi1 = tig & 1;
    int v0 = hi2 ? p[2] : p[0], v1 = hi2 ? p[3] : p[1];
    const int s0 = hi2 ? p[0] : p[2], s1 = hi2 ? p[1] : p[3];
    v0 += __shfl_xor_sync(0xffffffffu, s0, 2);
    v1 += __shfl_xor_sync(0xffffffffu, s1, 2);
    const int mine = hi1 ? v1 : v0, send = hi1 ? v0 : v1;
    return mine + __shfl_xor_sync(0xffffffffu, send, 1);
}

// Chunk c (held in cur) against activation rows m0 .. m0 + mb - 1 of the bit planes / (dx, sum)
// [M][C]...: lane tig adds group 4 c + tig's scaled sums into acc_lo / acc_hi (rows gid / gid + 8).
template <int MB, bool SYM, typename ST>
__device__ __forceinline__ void chunk_step(const DecodeChunk& cur, const uint32_t* planes,
                                           const float2* dxs, int64_t m0, int mb, int C, int c,
                                           int lane, float (&acc_lo)[MB], float (&acc_hi)[MB]) {
    const int tig = lane & 3;
    int c0, c1;
    plane_weights(tig, c0, c1);
    float s_lo, s_hi, b_lo, b_hi;
    if constexpr (SYM) {
        s_lo = to_f<ST>(cur.sv.x), s_hi = to_f<ST>(cur.sv.x >> 16);
        b_lo = -0.5f * s_lo, b_hi = -0.5f * s_hi;
    } else {
        s_lo = to_f<ST>(cur.sv.x), b_lo = to_f<ST>(cur.sv.x >> 16);
        s_hi = to_f<ST>(cur.sv.y), b_hi = to_f<ST>(cur.sv.y >> 16);
    }
    const uint32_t a0[4] = {cur.wl.x, cur.wl.y, cur.wl.z, cur.wl.w};
    const uint32_t a1[4] = {cur.wh.x, cur.wh.y, cur.wh.z, cur.wh.w};
#pragma unroll
    for (int i = 0; i < MB; ++i) {
        if (i >= mb) break;
        const int64_t at = (m0 + i) * C + c;
        const uint4 pv = __ldg(reinterpret_cast<const uint4*>(planes) + at * 32 + lane);
        const float2 d = __ldg(dxs + at * 4 + tig);
        const uint32_t b[4] = {pv.x, pv.y, pv.z, pv.w};
        int p_lo[4], p_hi[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            int cc[4];
            mma_b1(cc, a0[u], a1[u], b[u]);
            p_lo[u] = cc[0] * c0 + cc[1] * c1;
            p_hi[u] = cc[2] * c0 + cc[3] * c1;
        }
        const int g_lo = reduce_scatter4(p_lo, tig), g_hi = reduce_scatter4(p_hi, tig);
        acc_lo[i] = __fmaf_rn(__fmul_rn(s_lo, d.x), float(g_lo), __fmaf_rn(b_lo, d.y, acc_lo[i]));
        acc_hi[i] = __fmaf_rn(__fmul_rn(s_hi, d.x), float(g_hi), __fmaf_rn(b_hi, d.y, acc_hi[i]));
    }
}

}  // namespace onebit::cuda
