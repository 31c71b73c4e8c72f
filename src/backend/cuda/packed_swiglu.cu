// A batch-1 decode step's gate / up matmul with SwiGLU and the packing of the down projection's
// input in one kernel (nn.h: gate_up_silu_pack). A block owns one 128-group of the SwiGLU
// output: the 8 gate tiles of its rows and the 8 up tiles of the same rows, a warp each, so the
// group's 128 values meet in shared memory and one warp quantizes them. Every value has the bits
// qmm_packed_one_bit then silu_pack give it: each warp runs the decode kernel's chunk step
// (packed_decode.cuh) over all of K, keeping apart the partials that kernel's four warps would
// hold (chunks c with c % 4 = w), and sums them in that kernel's order.
#include "backend/cuda/nn.h"
#include "backend/cuda/packed_decode.cuh"
#include "backend/cuda/packed_layout.cuh"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

constexpr int kGroupTiles = 8;            // 128 rows of gate (and of up): one packed group
constexpr int kSwigluWarps = 2 * kGroupTiles;
constexpr int kRing = 4;                  // chunks a warp holds in registers ahead of use
constexpr int kParts = kDecodeWarps;      // the decode kernel's partials a tile
static_assert(kRing == kParts, "chunk c of a ring pass goes to partial c % kParts");

// Block (kSwigluWarps) per (group G of the ff SwiGLU values, activation row m).
template <bool SYM, typename ST>
__global__ void __launch_bounds__(kSwigluWarps * 32, 1)
    swiglu_pack_kernel(const uint8_t* data, int C, int64_t up_tile0, const uint32_t* planes,
                       const float2* dxs, int64_t C_out, ActivationOut o) {
    __shared__ float part[kSwigluWarps][kParts][16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, gid = lane >> 2, tig = lane & 3;
    const int64_t G = blockIdx.x, m = blockIdx.y, R = record_bytes(SYM);
    const int64_t tile = warp < kGroupTiles ? G * kGroupTiles + warp
                                            : up_tile0 + G * kGroupTiles + (warp - kGroupTiles);
    const uint8_t* rec = data + tile * C * R;
    // the weights do not wait for the kernel that packed x: the first kRing chunks in registers,
    // the rest prefetched into L2
    DecodeChunk ring[kRing];
#pragma unroll
    for (int i = 0; i < kRing; ++i) ring[i] = i < C ? load_chunk<SYM>(rec, R, i, lane) : DecodeChunk{};
    for (int c = kRing; c < C; ++c) prefetch_chunk(rec, R, c, lane);
    wait_for_prior_grids();
    float lo[kParts][1], hi[kParts][1];
#pragma unroll
    for (int w = 0; w < kParts; ++w) lo[w][0] = hi[w][0] = 0.0f;
    for (int c0 = 0; c0 < C; c0 += kRing) {
#pragma unroll
        for (int i = 0; i < kRing; ++i) {
            const int c = c0 + i;
            if (c >= C) break;
            const DecodeChunk cur = ring[i];
            if (c + kRing < C) ring[i] = load_chunk<SYM>(rec, R, c + kRing, lane);
            chunk_step<1, SYM, ST>(cur, planes, dxs, m, 1, C, c, lane, lo[i], hi[i]);
        }
    }
    // store_rows' sums: over a row's four lanes, then the partials in order
#pragma unroll
    for (int w = 0; w < kParts; ++w) {
        const float l = quad_sum(lo[w][0]), h = quad_sum(hi[w][0]);
        if (tig == 0) part[warp][w][gid] = l, part[warp][w][gid + 8] = h;
    }
    __syncthreads();
    if (warp) return;
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int r = 32 * j + lane, t = r / 16, e = r % 16;  // value r of the group
        float g = part[t][0][e], u = part[kGroupTiles + t][0][e];
#pragma unroll
        for (int w = 1; w < kParts; ++w)
            g = __fadd_rn(g, part[t][w][e]), u = __fadd_rn(u, part[kGroupTiles + t][w][e]);
        v[j] = swiglu(g, u);
    }
    pack_group(v, lane, m, C_out, G, o);
}

}  // namespace

PackedActivations gate_up_silu_pack(const PackedOneBit& gate_up, const PackedActivations& xa,
                                    int64_t ff, float* g, float* u) {
    if (gate_up.N != 2 * ff)
        fail("cuda", "gate_up_silu_pack: the matrix has ", gate_up.N, " rows, not 2 x ", ff);
    const int64_t M = xa.M;
    if (M != 1 || ff % 512 || !xa.planes || switched_off("ONEBIT_CUDA_FUSED_SWIGLU")) {
        const OutSegment gu[2] = {{g, ff}, {u, ff}};
        qmm_packed_one_bit(gate_up, xa, gu, 2, DType::float32);
        return silu_pack(g, u, M, ff);
    }
    if (xa.K != gate_up.K)
        fail("cuda", "packed activations have K = ", xa.K, ", the weights ", gate_up.K);
    // its own scratch: the input's planes are read while the output's are written
    const int64_t C_out = ff / 512;
    ActivationOut o;
    o.planes = static_cast<uint32_t*>(workspace(15, size_t(M * C_out * 128) * 4));
    o.dxs = static_cast<float2*>(workspace(16, size_t(M * C_out * 4) * sizeof(float2)));
    o.q8 = nullptr;
    const dim3 grid(static_cast<unsigned>(ff / 128), static_cast<unsigned>(M));
    const auto* data = static_cast<const uint8_t*>(gate_up.data.data());
    const auto* planes = static_cast<const uint32_t*>(xa.planes);
    const auto* dxs = static_cast<const float2*>(xa.scales);
    by_form(gate_up, [&](auto SYM, auto ST) {
        launch_dependent(swiglu_pack_kernel<SYM.value, typename decltype(ST)::type>, grid,
                         dim3(kSwigluWarps * 32), 0, data, int(gate_up.chunks()), ff / 16, planes,
                         dxs, C_out, o);
    });
    check_launch("gate_up_silu_pack");
    return packed_activations(M, ff, o);
}

}  // namespace onebit::cuda::nn
