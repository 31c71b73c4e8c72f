// Causal grouped-query attention of one sequence's prompt on the tensor cores, flash style
// (nn.h: attention_prefill with AttentionMath::flash): the scores never leave the SM.
//
// A block of 4 warps takes 64 query rows of one head (16 a warp); key tiles of 64 positions
// (keys, then values) come into shared memory by asynchronous copies, the next tile's keys while
// the current values are used, and are rounded to TF32 there (as the queries, once). Per tile
// each warp computes its 16 x 64 scores with mma.sync m16n8k8 (TF32 in, float32 out; queries and
// keys read by ldmatrix), masks the keys past each row's position, updates its rows' running
// maximum and sum (online softmax, base 2), and adds P . V to its 16 x d accumulators (P rounded
// to TF32). The scores' tiles take their keys in the order 0 4 1 5 2 6 3 7 within each 8, so that
// a thread's scores are exactly its fragment of P for the second product: no shuffles between
// the two.
//
//   q [t][n_head][d], k / v [keys][n_kv][d] (a layer of the cache), out [t][n_head][d]
//   query s (position p0 + s) sees keys 0 .. p0 + s
#include <cmath>

#include "backend/cuda/internal.h"
#include "backend/cuda/nn.h"
#include "core/error.h"

namespace onebit::cuda {

bool flash_prefill_supports(int64_t d) { return d == 64 || d == 128; }

namespace nn {

namespace {

constexpr int kRows = 64, kKeys = 64, kWarps = 4;

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// 16 bytes from global to shared memory, asynchronously; zeros when !valid.
__device__ __forceinline__ void copy16(uint32_t* dst, const float* src, bool valid) {
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void copies_commit() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void copies_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// rows [0, kKeys) of a key tile from rows j0 .. of x (stride ld floats; head offset folded in)
// into dst [kKeys][stride]; rows at or past `keys` zero
template <int D>
__device__ __forceinline__ void load_tile(uint32_t* dst, int stride, const float* x, int64_t ld,
                                          int j0, int keys) {
#pragma unroll
    for (int u = 0; u < kKeys * D / 4 / (kWarps * 32); ++u) {
        const int i = u * kWarps * 32 + threadIdx.x;
        const int r = i / (D / 4), c = (i % (D / 4)) * 4;
        const bool valid = j0 + r < keys;
        copy16(dst + r * stride + c, x + (valid ? int64_t(j0 + r) * ld + c : 0), valid);
    }
}

// Four 8 x 4-word matrices from shared memory, lane l giving the address of row l % 8 of matrix
// l / 8: r[j] of lane l is word l % 4 of row l / 4 of matrix j.
__device__ __forceinline__ void load_matrices(uint32_t (&r)[4], const uint32_t* row) {
    const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// The 16-byte pieces this thread copied with load_tile (rows of `rows`), rounded to TF32 in
// place once they have landed.
template <int D, int ROWS>
__device__ __forceinline__ void round_tile(uint32_t* dst, int stride) {
#pragma unroll
    for (int u = 0; u < ROWS * D / 4 / (kWarps * 32); ++u) {
        const int i = u * kWarps * 32 + threadIdx.x;
        uint4* p = reinterpret_cast<uint4*>(dst + (i / (D / 4)) * stride + (i % (D / 4)) * 4);
        const uint4 x = *p;
        *p = make_uint4(to_tf32(__uint_as_float(x.x)), to_tf32(__uint_as_float(x.y)),
                        to_tf32(__uint_as_float(x.z)), to_tf32(__uint_as_float(x.w)));
    }
}

// c (16 x 8, float32) += a (16 x 8, TF32) . b (8 x 8, TF32)
__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The scores' key order within each 8: 0 4 1 5 2 6 3 7 (so that a thread's scores, keys 2 tig
// and 2 tig + 1 of the tile's columns, are keys tig and tig + 4: its A fragment of P).
__device__ __forceinline__ int perm_of(int g) { return (g >> 1) + ((g & 1) << 2); }

template <int D>
constexpr int smem_bytes() {
    return (kKeys * ((D + 4) + (D + 8)) + kRows * (D + 4)) * 4;
}

// A block per (query tile, head).
template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    flash_prefill_kernel(const float* q, int t, int n_head, int n_kv, const float* k,
                         const float* v, int p0, float* out, float scale_log2) {
    constexpr int KS = D + 4, VS = D + 8;  // row strides: conflict-free fragment reads
    extern __shared__ uint32_t smem[];
    uint32_t* ks = smem;             // [kKeys][KS] keys
    uint32_t* vs = ks + kKeys * KS;  // [kKeys][VS] values
    uint32_t* qs = vs + kKeys * VS;  // [kRows][KS] queries
    // blocks by work: the first half heaviest first, the second half lightest first, so that
    // the two blocks an SM holds at once (b and about b + SMs) take about the same keys together
    const int total = static_cast<int>(gridDim.x), half = (total + 1) / 2, b = blockIdx.x;
    const int rank = b < half ? b : total - 1 - (b - half);  // 0: the most keys
    const int tiles = total / n_head, tile = tiles - 1 - rank / n_head, h = rank % n_head;
    const int kvh = h / (n_head / n_kv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tig = lane % 4;
    const int r0 = tile * kRows + warp * 16 + g, r1 = r0 + 8;  // this thread's two query rows
    const int64_t ld = int64_t(n_kv) * D;
    wait_for_prior_grids();

    // the block's 64 query rows into shared memory (zeros past t), with the first keys and values
    const float* qh = q + int64_t(h) * D;
#pragma unroll
    for (int u = 0; u < kRows * D / 4 / (kWarps * 32); ++u) {
        const int i = u * kWarps * 32 + threadIdx.x;
        const int r = i / (D / 4), c = (i % (D / 4)) * 4, row = tile * kRows + r;
        const bool valid = row < t;
        copy16(qs + r * KS + c, qh + (valid ? int64_t(row) * n_head * D + c : 0), valid);
    }
    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const int pos0 = p0 + r0, pos1 = p0 + r1;
    const int keys = p0 + min((tile + 1) * kRows, t);  // the block's last row sees keys < this
    const int warp_last = p0 + tile * kRows + warp * 16 + 15;  // the warp's last row's position

    const float* kh = k + int64_t(kvh) * D;
    const float* vh = v + int64_t(kvh) * D;
    load_tile<D>(ks, KS, kh, ld, 0, keys);
    copies_commit();  // with the queries
    load_tile<D>(vs, VS, vh, ld, 0, keys);
    copies_commit();
    for (int j0 = 0; j0 < keys; j0 += kKeys) {
        const bool more = j0 + kKeys < keys;
        copies_wait<1>();  // this tile's keys (its values may still be on the way)
        if (j0 == 0) round_tile<D, kRows>(qs, KS);
        round_tile<D, kKeys>(ks, KS);
        __syncthreads();
        const bool live = j0 <= warp_last;  // else every key of the tile is past the warp's rows
        float s[kKeys / 8][4];  // scores: s[n][0..1] row r0, keys j0 + 8n + tig and + tig + 4
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
        if (live)
#pragma unroll
            for (int kk = 0; kk < D / 8; kk += 2) {
                // a of steps kk and kk + 1: rows g, g + 8 of the warp's 16, k = 8 kk + tig (+ 4)
                uint32_t qa[2][4];
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    load_matrices(qa[e], qs + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * KS +
                                             (kk + e) * 8 + (lane / 16) * 4);
#pragma unroll
                for (int n = 0; n < kKeys / 8; ++n) {
                    // b of steps kk and kk + 1: key n * 8 + perm(g), k = 8 kk + tig (+ 4, + 8, +
                    // 12)
                    uint32_t b[4];
                    load_matrices(b,
                                  ks + (n * 8 + perm_of(lane % 8)) * KS + kk * 8 + (lane / 8) * 4);
                    mma_tf32(s[n], qa[0], b[0], b[1]);
                    mma_tf32(s[n], qa[1], b[2], b[3]);
                }
            }
        __syncthreads();  // every warp is done with the keys: the next tile's may come in
        if (more) {
            load_tile<D>(ks, KS, kh, ld, j0 + kKeys, keys);
            copies_commit();
        }
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int key = j0 + n * 8 + tig + 4 * e;
                s[n][e] = key <= pos0 ? s[n][e] * scale_log2 : -INFINITY;
                s[n][2 + e] = key <= pos1 ? s[n][2 + e] * scale_log2 : -INFINITY;
                mx0 = fmaxf(mx0, s[n][e]);
                mx1 = fmaxf(mx1, s[n][2 + e]);
            }
#pragma unroll
        for (int x = 1; x <= 2; x <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
        }
        // every row sees key 0, in the first tile: the maxima are finite from it on
        const float f0 = exp2f(m0 - mx0), f1 = exp2f(m1 - mx1);  // 0 at the first tile
        m0 = mx0, m1 = mx1;
        uint32_t pa[kKeys / 8][4];  // P as A fragments: (row, key tig) and (row, key tig + 4)
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int n = 0; n < kKeys / 8; ++n) {
            const float a = exp2f(s[n][0] - mx0), b = exp2f(s[n][1] - mx0);
            const float c = exp2f(s[n][2] - mx1), d = exp2f(s[n][3] - mx1);
            rs0 += a + b, rs1 += c + d;
            pa[n][0] = to_tf32(a), pa[n][2] = to_tf32(b), pa[n][1] = to_tf32(c),
            pa[n][3] = to_tf32(d);
        }
        l0 = l0 * f0 + rs0, l1 = l1 * f1 + rs1;  // this thread's share of the rows' sums
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd)
            o[nd][0] *= f0, o[nd][1] *= f0, o[nd][2] *= f1, o[nd][3] *= f1;
        if (more)
            copies_wait<1>();  // the values (the next keys may still be on the way)
        else
            copies_wait<0>();
        round_tile<D, kKeys>(vs, VS);
        __syncthreads();
        if (live)
#pragma unroll
            for (int kk = 0; kk < kKeys / 8; ++kk)
#pragma unroll
                for (int nd = 0; nd < D / 8; ++nd) {
                    const uint32_t* vr = vs + (kk * 8 + tig) * VS + nd * 8 + g;
                    mma_tf32(o[nd], pa[kk], vr[0], vr[4 * VS]);
                }
        __syncthreads();  // every warp is done with the values
        if (more) {
            load_tile<D>(vs, VS, vh, ld, j0 + kKeys, keys);
            copies_commit();
        }
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, x);
        l1 += __shfl_xor_sync(0xffffffffu, l1, x);
    }
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
        const int c = nd * 8 + 2 * tig;
        if (r0 < t)
            *reinterpret_cast<float2*>(out + (int64_t(r0) * n_head + h) * D + c) =
                make_float2(o[nd][0] * i0, o[nd][1] * i0);
        if (r1 < t)
            *reinterpret_cast<float2*>(out + (int64_t(r1) * n_head + h) * D + c) =
                make_float2(o[nd][2] * i1, o[nd][3] * i1);
    }
}

template <int D>
void launch_flash(const float* q, int64_t t, int64_t n_head, int64_t n_kv, const float* k,
                  const float* v, int64_t p0, float* out, float scale) {
    static const bool configured = [] {
        check(cudaFuncSetAttribute(flash_prefill_kernel<D>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<D>()),
              "cudaFuncSetAttribute");
        return true;
    }();
    (void)configured;
    const dim3 grid(static_cast<unsigned>((t + kRows - 1) / kRows * n_head));
    launch_dependent(flash_prefill_kernel<D>, grid, dim3(kWarps * 32), smem_bytes<D>(), q, int(t),
                     int(n_head), int(n_kv), k, v, int(p0), out,
                     scale * 1.4426950408889634f);  // scores in base 2
    check_launch("flash_prefill_kernel");
}

}  // namespace

void attention_prefill_flash(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                             const float* k_layer, const float* v_layer, int64_t p0, float* out,
                             float scale) {
    if (t <= 0) return;
    if (!flash_prefill_supports(d))
        fail("cuda", "the flash prefill attention takes head size 64 or 128, got ", d);
    if (p0 + t >= (int64_t(1) << 30) || t * n_head * d >= (int64_t(1) << 31) ||
        (t + kRows - 1) / kRows * n_head >= (int64_t(1) << 31))
        fail("cuda", "the flash prefill attention takes under 2^30 positions, got ", p0 + t);
    const auto misaligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 != 0; };
    if (misaligned(q) || misaligned(k_layer) || misaligned(v_layer) || misaligned(out) ||
        n_kv <= 0 || n_head % n_kv)
        fail("cuda",
             "the flash prefill attention takes 16-byte aligned q, k, v and out and a head "
             "count that is a multiple of the KV heads'");
    if (d == 128)
        launch_flash<128>(q, t, n_head, n_kv, k_layer, v_layer, p0, out, scale);
    else
        launch_flash<64>(q, t, n_head, n_kv, k_layer, v_layer, p0, out, scale);
}

}  // namespace nn

bool flash_prefill_fills(int64_t t, int64_t n_head) {
    const int64_t blocks = (t + nn::kRows - 1) / nn::kRows * n_head;
    return 2 * blocks >= 3 * int64_t(device_info().sm_count);
}

}  // namespace onebit::cuda
