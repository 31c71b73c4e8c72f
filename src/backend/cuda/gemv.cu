// transpose = true for decode batches (M <= kDecodeMaxM), every bits value, float32 arithmetic:
// the quantized matrix-vector product that a multi-bit model's decode step streams its weights
// through. Within FORMAT.md's float32 bound and batch invariant (each activation row's arithmetic
// is the same whatever M is).
//
// A block owns kRows weight rows; its kWarps warps split K, each stepping through its steps of
// 256 codes kUnroll at a time (every load of those steps issued before any is used: a decode
// matrix is latency-bound unless many loads are in flight). In a step lane j takes codes
// [8j, 8j + 8), so its activations are 32 contiguous bytes (coalesced) and one load of x serves
// kRows rows; a row's 8 * bits words of the step are loaded by the warp's lanes (coalesced) and
// each lane gathers its 8 * bits bits with shuffles; a code becomes a float as (2^23 | q) - 2^23
// (no integer conversion instruction). Per lane and row: acc += s * sum(q x) + b * sum(x) over its
// 8 codes; then a fixed warp tree and the warps' partial sums added in warp order.
#include "backend/cuda/internal.h"

namespace onebit::cuda {

namespace {

constexpr int kWarps = 4;   // warps a block, splitting K
constexpr int kRows = 4;    // weight rows a block
constexpr int kUnroll = 2;  // steps a warp loads at once
constexpr int kMTile = 4;   // activation rows a block when M > 1 (blockIdx.y tiles M)
constexpr int kStep = 256;  // codes a warp step (8 a lane)

// Code i (0..7) of a lane's 8 * BITS bits as an exact float.
template <int BITS>
__device__ __forceinline__ float code_at(uint64_t bits, int i) {
    const uint32_t q = static_cast<uint32_t>(bits >> (i * BITS)) & ((1u << BITS) - 1u);
    return __fsub_rn(__uint_as_float(0x4B000000u | q), 8388608.0f);
}

// Activations [i, i + 8) as float (x 16-byte aligned where `vec`).
__device__ __forceinline__ void load_x8(DType dt, const void* x, int64_t i, bool vec, float* v) {
    if (vec && dt == DType::float32) {
        const float4 a = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(x) + i));
        const float4 b = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(x) + i) + 1);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else if (vec && dt == DType::float16) {
        const uint4 u = __ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(x) + i));
        const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const float2 f = __half22float2(h[p]);
            v[2 * p] = f.x, v[2 * p + 1] = f.y;
        }
    } else if (vec && dt == DType::bfloat16) {
        const uint4 u = __ldg(reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(x) + i));
        const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const float2 f = __bfloat1622float2(h[p]);
            v[2 * p] = f.x, v[2 * p + 1] = f.y;
        }
    } else {
#pragma unroll
        for (int p = 0; p < 8; ++p) v[p] = load_as_float(dt, x, i + p);
    }
}

template <int BITS, int MT>
__global__ void __launch_bounds__(kWarps * 32) qmm_t_gemv_kernel(quant::QmmArgs a) {
    constexpr int kWords = 8 * BITS;  // a row's words a step (8..64)
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t n0 = blockIdx.x * int64_t(kRows), m0 = blockIdx.y * int64_t(MT);
    const int mb = int(min(int64_t(MT), a.M - m0));
    const int rows = int(min(int64_t(kRows), a.N - n0));  // >= 1: the grid covers N exactly
    const int64_t ldw = a.w_stride(), lds = a.s_stride(), row_words = a.K * BITS / 32;
    // K is a multiple of 32: every row's, and every lane's, activations are as aligned as x
    const bool vec = (reinterpret_cast<uintptr_t>(a.x) & 15) == 0;
    // The weights are constant: the block's rows are requested into L2 (a line a thread) before
    // waiting for the kernel that writes x.
    for (int r = 0; r < rows; ++r)
        for (int64_t o = int64_t(threadIdx.x) * 32; o < row_words; o += kWarps * 32 * 32)
            prefetch_l2(a.w + (n0 + r) * ldw + o);
    wait_for_prior_grids();

    float acc[MT][kRows];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[i][r] = 0.0f;
    // this lane's bits of a step: words w0, w0 + 1 of the step's row words (w0 + 1 may be past
    // them only when the lane needs w0 alone)
    const int bit0 = 8 * BITS * lane, w0 = bit0 >> 5, off = bit0 & 31;

    for (int64_t it = int64_t(warp) * kUnroll * kStep; it < a.K; it += int64_t(kWarps) * kUnroll * kStep) {
        // every load of the kUnroll steps first
        uint32_t lo[kUnroll][kRows], hi[kUnroll][kRows];
        float sc[kUnroll][kRows], bi[kUnroll][kRows], xv[kUnroll][MT][8];
        bool active[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t base = it + u * kStep, k0 = base + 8 * lane, wb = base * BITS / 32;
            active[u] = k0 < a.K;  // K is a multiple of 32: a lane's 8 codes are all in or all out
            const int64_t G = active[u] ? k0 / a.group_size : 0;
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                lo[u][r] = hi[u][r] = 0;
                sc[u][r] = bi[u][r] = 0.0f;
                if (r >= rows) continue;
                const uint32_t* wr = a.w + (n0 + r) * ldw + wb;
                if (lane < kWords && wb + lane < row_words) lo[u][r] = __ldg(wr + lane);
                if (kWords > 32 && 32 + lane < kWords && wb + 32 + lane < row_words) hi[u][r] = __ldg(wr + 32 + lane);
                if (!active[u]) continue;
                sc[u][r] = load_as_float(a.sdt, a.scales, (n0 + r) * lds + G);
                bi[u][r] = a.biases ? load_as_float(a.sdt, a.biases, (n0 + r) * lds + G) : -0.5f * sc[u][r];
            }
#pragma unroll
            for (int i = 0; i < MT; ++i)
                if (i < mb && active[u]) load_x8(a.xdt, a.x, (m0 + i) * a.K + k0, vec, xv[u][i]);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            float sx[MT];
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                sx[i] = 0.0f;
                if (i >= mb || !active[u]) continue;
#pragma unroll
                for (int p = 0; p < 8; ++p) sx[i] = __fadd_rn(sx[i], xv[u][i][p]);
            }
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                // every lane shuffles (full mask); inactive lanes' values are unused
                const uint32_t a0 = __shfl_sync(0xffffffffu, lo[u][r], w0 & 31);
                const uint32_t a1 = __shfl_sync(0xffffffffu, lo[u][r], (w0 + 1) & 31);
                uint32_t first = a0, second = a1;
                if (kWords > 32) {
                    const uint32_t b0 = __shfl_sync(0xffffffffu, hi[u][r], w0 & 31);
                    const uint32_t b1 = __shfl_sync(0xffffffffu, hi[u][r], (w0 + 1) & 31);
                    first = w0 < 32 ? a0 : b0, second = w0 + 1 < 32 ? a1 : b1;
                } else if (w0 + 1 >= 32) {
                    second = 0;
                }
                if (r >= rows || !active[u]) continue;
                const uint64_t bits = ((uint64_t(second) << 32) | first) >> off;
                float q[8];
#pragma unroll
                for (int p = 0; p < 8; ++p) q[p] = code_at<BITS>(bits, p);
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    if (i >= mb) continue;
                    float qx = 0.0f;
#pragma unroll
                    for (int p = 0; p < 8; ++p) qx = __fmaf_rn(xv[u][i][p], q[p], qx);
                    acc[i][r] = __fmaf_rn(sc[u][r], qx, __fmaf_rn(bi[u][r], sx[i], acc[i][r]));
                }
            }
        }
    }
    __shared__ float part[kWarps][MT][kRows];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            float v = acc[i][r];
            for (int o = 16; o; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
            if (lane == 0) part[warp][i][r] = v;
        }
    __syncthreads();
    if (threadIdx.x < MT * kRows) {
        const int i = threadIdx.x / kRows, r = threadIdx.x % kRows;
        if (i >= mb || r >= rows) return;
        float v = part[0][i][r];
#pragma unroll
        for (int w = 1; w < kWarps; ++w) v = __fadd_rn(v, part[w][i][r]);
        store_from_float(a.ydt, a.y, (m0 + i) * a.y_stride() + n0 + r, v);
    }
}

}  // namespace

void qmm_t_gemv(const quant::QmmArgs& a) {
    if (a.M == 0 || a.N == 0) return;
    const unsigned blocks = static_cast<unsigned>((a.N + kRows - 1) / kRows);
    // M = 1 on its own instantiation (fewer registers); its per-row arithmetic is the M-tile's
    with_bits(a.bits, [&](auto B) {
        if (a.M == 1)
            launch_dependent(qmm_t_gemv_kernel<B.value, 1>, dim3(blocks), dim3(kWarps * 32), 0, a);
        else
            launch_dependent(qmm_t_gemv_kernel<B.value, kMTile>,
                             dim3(blocks, static_cast<unsigned>((a.M + kMTile - 1) / kMTile)),
                             dim3(kWarps * 32), 0, a);
    });
    check_launch("qmm_t_gemv");
}

}  // namespace onebit::cuda
