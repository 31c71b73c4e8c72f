// transpose = true for decode batches (M <= kDecodeMaxM), every bits value, float32 arithmetic:
// the quantized matrix-vector product that a multi-bit model's decode step streams its weights
// through. Within FORMAT.md's float32 bound and batch invariant (each activation row's arithmetic
// is the same whatever M is).
//
// A warp owns kRows weight rows, in steps of 1024 codes: in a step lane j takes the 32 codes
// [32j, 32j + 32), BITS words of each row (one 16-byte load for 4 bits: a warp reads 128 * BITS
// contiguous bytes of a row), one scale and bias (a group holds whole chunks) and 32 activations
// that serve all the rows. When N is small, 2 or 4 warps of a block share rows and take every
// 2nd / 4th step (gemv_splits: a function of N and the device, never of M). The weights of a
// warp's next steps are in flight in a ring of registers while a step is used. A code becomes a
// float as (2^23 | q) - 2^23 (no conversion instruction). Per lane, row and activation row: over
// each 8 codes qx = sum(q x) and sx = sum(x), the four partials added in order, then
// acc += s * qx + b * sx; then a fixed warp tree and the splits' sums in split order. M > 1 runs
// tiles of MT activation rows (blockIdx.y) through the same code, so a row's result does not
// depend on M.
//
// Measured (H100, 2026-12-06; BENCHMARKS.md): M = 1 1.4-2.3x the previous kernel (8 codes a lane,
// gathered with shuffles) and still latency-bound at about 4-46% of the read bandwidth: ncu saw
// 3.8 warps a scheduler, 0.5 of them eligible, two thirds of the stalls on L1TEX scoreboards.
// A byte-permute code extraction (one PRMT a code) gave wrong codes in the M-tile instantiation
// only (correct at M = 1, same source): not used.
#include <cstdlib>

#include "backend/cuda/internal.h"
#include "core/error.h"

namespace onebit::cuda {

namespace {

constexpr int kWarps = 4;   // warps a block (sharing rows in groups of gemv_splits)
constexpr int kRows = 4;    // weight rows a warp
constexpr int kMTile = 4;   // activation rows a tile when M > 1
constexpr int kChunk = 32;  // codes a lane a step
constexpr int kStep = 32 * kChunk;

__device__ __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 h) { return __bfloat1622float2(h); }

// Eight 16-bit floats of a 16-byte word as float.
template <typename T2>
__device__ __forceinline__ void unpack8(const uint4& u, float* v) {
    const T2* h = reinterpret_cast<const T2*>(&u);
#pragma unroll
    for (int p = 0; p < 4; ++p) {
        const float2 f = to_float2(h[p]);
        v[2 * p] = f.x, v[2 * p + 1] = f.y;
    }
}

// Activations [i, i + 8) as float (x 16-byte aligned where `vec`).
__device__ __forceinline__ void load_x8(DType dt, const void* x, int64_t i, bool vec, float* v) {
    if (vec && dt == DType::float32) {
        const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(x) + i);
        const float4 a = __ldg(p), b = __ldg(p + 1);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z,
        v[7] = b.w;
    } else if (vec && dt == DType::float16) {
        unpack8<__half2>(__ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(x) + i)),
                         v);
    } else if (vec && dt == DType::bfloat16) {
        unpack8<__nv_bfloat162>(
            __ldg(reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(x) + i)), v);
    } else {
#pragma unroll
        for (int p = 0; p < 8; ++p) v[p] = load_as_float(dt, x, i + p);
    }
}

// Bytes a lane's BITS words are aligned to when the row is 16-byte aligned (the lane's offset in
// a row is a multiple of 4 * BITS bytes).
template <int BITS>
constexpr int word_alignment() {
    return BITS % 4 == 0 ? 16 : BITS % 2 == 0 ? 8 : 4;
}

// A lane's BITS words at p (aligned to word_alignment<BITS>() bytes where `vec`).
template <int BITS>
__device__ __forceinline__ void load_chunk(const uint32_t* p, bool vec, uint32_t* w) {
    if (vec && word_alignment<BITS>() == 16) {
#pragma unroll
        for (int v = 0; v < BITS / 4; ++v) {
            const uint4 u = __ldg(reinterpret_cast<const uint4*>(p) + v);
            w[4 * v] = u.x, w[4 * v + 1] = u.y, w[4 * v + 2] = u.z, w[4 * v + 3] = u.w;
        }
    } else if (vec && word_alignment<BITS>() == 8) {
#pragma unroll
        for (int v = 0; v < BITS / 2; ++v) {
            const uint2 u = __ldg(reinterpret_cast<const uint2*>(p) + v);
            w[2 * v] = u.x, w[2 * v + 1] = u.y;
        }
    } else {
#pragma unroll
        for (int v = 0; v < BITS; ++v) w[v] = __ldg(p + v);
    }
}

// Codes [8c, 8c + 8) of a lane's chunk (BITS words w) as exact floats.
template <int BITS>
__device__ __forceinline__ void codes8(const uint32_t* w, int c, float* q) {
#pragma unroll
    for (int p = 0; p < 8; ++p)
        q[p] = __fsub_rn(__uint_as_float(0x4B000000u | chunk_code<BITS>(w, 8 * c + p)), 8388608.0f);
}

// Steps in flight a warp (the current one included): 2 KB to 8 KB of weights, 128 * BITS bytes
// a row a step.
template <int BITS>
constexpr int depth() {
    const int d = 32 / (BITS * kRows);
    return d < 2 ? 2 : d > 4 ? 4 : d;
}

// One step of a lane: its 32 codes [k0, k0 + 32) of each row (words w, group G) against
// activation rows [m0, m0 + mb), added to acc.
template <int BITS, int MT>
__device__ __forceinline__ void step_update(const quant::QmmArgs& a,
                                            const uint32_t (&w)[kRows][BITS], const int64_t* sr,
                                            int G, int64_t m0, int mb, int K, int k0, bool xvec,
                                            float (&acc)[MT][kRows]) {
    float sc[kRows], bi[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
        sc[r] = load_as_float(a.sdt, a.scales, sr[r] + G);
        bi[r] = a.biases ? load_as_float(a.sdt, a.biases, sr[r] + G) : -0.5f * sc[r];
    }
    float qx[MT][kRows], sx[MT];
#pragma unroll
    for (int c = 0; c < kChunk / 8; ++c) {
        float xv[MT][8];
#pragma unroll
        for (int i = 0; i < MT; ++i)
            if (i < mb) load_x8(a.xdt, a.x, (m0 + i) * K + k0 + 8 * c, xvec, xv[i]);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (i >= mb) continue;
            float t = xv[i][0];
#pragma unroll
            for (int p = 1; p < 8; ++p) t = __fadd_rn(t, xv[i][p]);
            sx[i] = c == 0 ? t : __fadd_rn(sx[i], t);
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            float q[8];
            codes8<BITS>(w[r], c, q);
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (i >= mb) continue;
                float d = __fmul_rn(xv[i][0], q[0]);
#pragma unroll
                for (int p = 1; p < 8; ++p) d = __fmaf_rn(xv[i][p], q[p], d);
                qx[i][r] = c == 0 ? d : __fadd_rn(qx[i][r], d);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < kRows; ++r)
            if (i < mb) acc[i][r] = __fmaf_rn(sc[r], qx[i][r], __fmaf_rn(bi[r], sx[i], acc[i][r]));
}

template <int BITS, int MT>
__global__ void __launch_bounds__(kWarps * 32)
    qmm_t_gemv_kernel(quant::QmmArgs a, int group_shift, int splits) {
    // `splits` (1, 2 or 4) warps of the block share rows, warp `split` of them taking the steps
    // split, split + splits, ...; their partial sums are added in split order
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, split = warp % splits;
    const int64_t n0 = (int64_t(blockIdx.x) * (kWarps / splits) + warp / splits) * kRows;
    const int rows = int(min(int64_t(kRows), a.N - n0));  // may be <= 0: the last block's warps
    const int K = int(a.K);                               // < 2^30 (the launcher checks)
    // K is a multiple of 32: every row's, and every lane's, activations are as aligned as x
    const bool xvec = (reinterpret_cast<uintptr_t>(a.x) & 15) == 0;
    constexpr int kAlign = word_alignment<BITS>();
    const int64_t ldw = a.w_stride();
    const bool wvec = (reinterpret_cast<uintptr_t>(a.w) % kAlign) == 0 && (ldw * 4) % kAlign == 0;
    const uint32_t* wr[kRows];  // the warp's rows (the last one repeated past N: never used)
    int64_t sr[kRows];          // their first scale's index
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
        const int64_t n = n0 + max(0, min(r, rows - 1));
        wr[r] = a.w + n * ldw, sr[r] = n * a.s_stride();
    }
    // The weights are constant: the warp's share of its rows is requested into L2 (a line a
    // lane) before waiting for the kernel that writes x.
    const int row_words = K / 32 * BITS;
    for (int r = 0; r < rows; ++r)
        for (int o = (split * 32 + lane) * 32; o < row_words; o += splits * 32 * 32)
            prefetch_l2(wr[r] + o);
    wait_for_prior_grids();

    const int64_t m0 = int64_t(blockIdx.y) * MT;  // this block's tile of activation rows
    const int mb = int(min(int64_t(MT), a.M - m0));
    float acc[MT][kRows];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[i][r] = 0.0f;
    if (rows > 0) {
        // K is a multiple of 32: a lane's chunk is all in or all out, and in one group. The
        // weights of the warp's next kDepth steps are in flight in a ring of registers: the
        // slot of its step j is refilled with step j + kDepth's as soon as step j is used.
        constexpr int kDepth = depth<BITS>();
        uint32_t ring[kDepth][kRows][BITS];
        auto k_of = [&](int j) { return (split + splits * j) * kStep + kChunk * lane; };
        auto fetch = [&](int j, uint32_t(&slot)[kRows][BITS]) {
            const int k = k_of(j);
#pragma unroll
            for (int r = 0; r < kRows; ++r)
                if (k < K) load_chunk<BITS>(wr[r] + k / 32 * BITS, wvec, slot[r]);
        };
#pragma unroll
        for (int u = 0; u < kDepth; ++u) fetch(u, ring[u]);
        for (int j0 = 0; (split + splits * j0) * kStep < K; j0 += kDepth) {
#pragma unroll
            for (int u = 0; u < kDepth; ++u) {
                const int k0 = k_of(j0 + u);
                if (k0 < K)
                    step_update<BITS, MT>(a, ring[u], sr, k0 >> group_shift, m0, mb, K, k0, xvec,
                                          acc);
                fetch(j0 + u + kDepth, ring[u]);
            }
        }
    }
    // a fixed tree over the lanes, then the splits' sums in split order
    __shared__ float part[kWarps][MT][kRows];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            float v = acc[i][r];
#pragma unroll
            for (int o = 16; o; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
            if (lane == 0) part[warp][i][r] = v;
        }
    __syncthreads();
    // thread t of a row group's first warp writes (i, r) = (t / kRows, t % kRows)
    if (split == 0 && lane < MT * kRows) {
        const int i = lane / kRows, r = lane % kRows;
        if (i >= mb || r >= rows) return;
        float v = part[warp][i][r];
        for (int s = 1; s < splits; ++s) v = __fadd_rn(v, part[warp + s][i][r]);
        store_from_float(a.ydt, a.y, (m0 + i) * a.y_stride() + n0 + r, v);
    }
}

// Warps sharing rows: enough that the grid has about 8 warps an SM (1, 2 or 4; a function of N
// and the device only, so a row's arithmetic does not depend on M). ONEBIT_CUDA_GEMV_SPLIT
// (1, 2, 4) forces it, for the tests.
int gemv_splits(int64_t N) {
    if (const char* e = std::getenv("ONEBIT_CUDA_GEMV_SPLIT")) {
        const int v = std::atoi(e);
        if (v != 1 && v != 2 && v != 4)
            fail("cuda", "ONEBIT_CUDA_GEMV_SPLIT takes 1, 2 or 4, got '", e, "'");
        return v;
    }
    static const int64_t target = 8 * int64_t(device_info().sm_count);
    const int64_t groups = (N + kRows - 1) / kRows;
    int s = 1;
    while (s < kWarps && groups * s < target) s *= 2;
    return s;
}

}  // namespace

void qmm_t_gemv(const quant::QmmArgs& a) {
    if (a.M == 0 || a.N == 0) return;
    if (a.K >= (int64_t(1) << 30) || (a.group_size & (a.group_size - 1)))
        fail("cuda", "qmm_t_gemv: K (", a.K, ") must be below 2^30 and the group size (",
             a.group_size, ") a power of two");
    const int splits = gemv_splits(a.N);
    const int64_t per_block = int64_t(kWarps / splits) * kRows;
    const unsigned blocks = static_cast<unsigned>((a.N + per_block - 1) / per_block);
    const int shift = __builtin_ctz(unsigned(a.group_size));
    // M = 1 on its own instantiation (fewer registers); its per-row arithmetic is the M-tile's
    with_bits(a.bits, [&](auto B) {
        if (a.M == 1)
            launch_dependent(qmm_t_gemv_kernel<B.value, 1>, dim3(blocks), dim3(kWarps * 32), 0, a,
                             shift, splits);
        else
            launch_dependent(qmm_t_gemv_kernel<B.value, kMTile>,
                             dim3(blocks, static_cast<unsigned>((a.M + kMTile - 1) / kMTile)),
                             dim3(kWarps * 32), 0, a, shift, splits);
    });
    check_launch("qmm_t_gemv");
}

}  // namespace onebit::cuda
