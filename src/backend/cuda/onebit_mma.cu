// 1-bit quantized matmul (transpose = true) with int8 activations on the tensor cores' binary
// mode, for decode and small batches.
//
// An int8 activation is x = -128 b7 + sum_{p<7} 2^p b_p over its bit planes b_p, so
//   sum_k q[n,k] xq[m,k] = sum_p c_p popc(q[n,:] AND plane_p[m,:]),   c_p = 2^p, c_7 = -128.
// mma.sync m16n8k128 .b1 .and.popc computes exactly these popcounts for 16 weight rows (A, the
// packed weight words as stored: no bit expansion) against 8 columns (B), which hold the 8 planes
// of one activation row. A prep kernel quantizes each activation group to int8
// (quant::quantize_activations_int8's arithmetic) and writes its planes as bit words laid out
// like the weights (bit i of word w is k = 32 w + i), plus dx and the group sums of x.
//
// Per group: isum (exact integers) * (scale * dx) + bias * xsum, accumulated in float32: the
// numerics of quant::qmm_t_int8_ref up to float32 rounding. A warp owns 16 rows and strides over
// 128-k tiles; the 8 warps of a block split K and are summed in a fixed order. A tile spanning
// several groups (g = 32, 64) runs one MMA per group with B zeroed outside it. Each activation
// row's arithmetic is the same whatever M is (batch invariant).
#include <type_traits>

#include "backend/cuda/onebit_common.cuh"

namespace onebit::cuda {

namespace {

constexpr int kWarps = 8;

// Warp per (activation row m, group G): dx, xsum and the 8 planes of each word of the group.
// planes: [M, K / 32, 8] uint32.
template <int WORDS>
__global__ void prep_planes_kernel(const void* x, DType xdt, int64_t K, uint32_t* planes,
                                   float* dx, float* xsum) {
    constexpr int g = 32 * WORDS;
    const int lane = threadIdx.x & 31;
    const int64_t ng = K / g, G = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    const int64_t m = blockIdx.y;
    if (G >= ng) return;
    float v[WORDS];
#pragma unroll
    for (int j = 0; j < WORDS; ++j) v[j] = load_as_float(xdt, x, m * K + G * g + 32 * j + lane);
    float d, sum;
    quantize_group_planes(v, lane, d, sum, [&](int j, int p, uint32_t word) {
        planes[(m * (K / 32) + G * WORDS + j) * 8 + p] = word;
    });
    if (lane == 0) dx[m * ng + G] = d, xsum[m * ng + G] = sum;
}

// Block: kWarps warps on rows [16 blockIdx.x, +16), activation rows [MB blockIdx.y, +MB).
// Fragment roles (PTX m16n8k128 .b1): lane = 4 gid + tig; A rows gid and gid + 8, k-word tig of
// the tile; B column gid (plane gid), k-word tig; C[0..1] row gid, columns 2 tig and 2 tig + 1,
// C[2..3] row gid + 8. A warp takes chunks of U consecutive tiles: the 4 U words of a row lie in
// one contiguous 16 U-byte span, and the chunk's weight and plane loads are issued before its
// first MMA.
template <int MB, int U, int G>
__global__ void __launch_bounds__(kWarps * 32, MB <= 2 ? 4 : 2)
    qmm_t_1bit_mma_kernel(quant::QmmArgs a, const uint32_t* planes, const float* dx,
                          const float* xsum) {
    constexpr int SUB = 128 / G;  // groups per tile: 1, 2 or 4
    __shared__ float part[kWarps][MB][16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, gid = lane >> 2, tig = lane & 3;
    const int W = int(a.K / 32), ng = int(a.K / G);
    const int64_t n_lo = blockIdx.x * 16 + gid, n_hi = n_lo + 8, m0 = blockIdx.y * int64_t(MB);
    const bool lo_ok = n_lo < a.N, hi_ok = n_hi < a.N;
    // rows past N read row N - 1 and are never stored
    const int64_t r_lo = lo_ok ? n_lo : a.N - 1, r_hi = hi_ok ? n_hi : a.N - 1;
    const uint32_t* w_lo = a.w + r_lo * a.w_stride();
    const uint32_t* w_hi = a.w + r_hi * a.w_stride();
    const int64_t s_lo_at = r_lo * a.s_stride(), s_hi_at = r_hi * a.s_stride();
    const int mb = int(min(int64_t(MB), a.M - m0));
    const uint32_t* pl = planes + m0 * W * 8 + gid;
    const float* dxm = dx + m0 * ng;
    const float* xsm = xsum + m0 * ng;
    int c0, c1;
    plane_weights(tig, c0, c1);
    const int my_sub = tig * 32 / G;  // the group of this thread's k-word within a tile
    float acc_lo[MB], acc_hi[MB];
#pragma unroll
    for (int i = 0; i < MB; ++i) acc_lo[i] = acc_hi[i] = 0.0f;
    const int tiles = (W + 3) / 4, chunks = (tiles + U - 1) / U;
    for (int ch = warp; ch < chunks; ch += kWarps) {
        uint32_t a0[U], a1[U], b[U][MB];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int wi = (ch * U + u) * 4 + tig;
            const bool valid = wi < W;
            a0[u] = valid ? __ldg(w_lo + wi) : 0u;
            a1[u] = valid ? __ldg(w_hi + wi) : 0u;
#pragma unroll
            for (int i = 0; i < MB; ++i) b[u][i] = i < mb && valid ? __ldg(pl + (i * W + wi) * 8) : 0u;
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
            for (int s = 0; s < SUB; ++s) {
                const int g = (ch * U + u) * SUB + s;
                if (g >= ng) break;
                const float sl = load_as_float(a.sdt, a.scales, s_lo_at + g);
                const float sh = load_as_float(a.sdt, a.scales, s_hi_at + g);
                const float bl = a.biases ? load_as_float(a.sdt, a.biases, s_lo_at + g) : -0.5f * sl;
                const float bh = a.biases ? load_as_float(a.sdt, a.biases, s_hi_at + g) : -0.5f * sh;
#pragma unroll
                for (int i = 0; i < MB; ++i) {
                    if (i >= mb) break;
                    int c[4];
                    mma_b1(c, a0[u], a1[u], my_sub == s ? b[u][i] : 0u);
                    const int p_lo = c[0] * c0 + c[1] * c1, p_hi = c[2] * c0 + c[3] * c1;
                    const float d = dxm[i * ng + g];
                    acc_lo[i] = __fmaf_rn(__fmul_rn(sl, d), float(p_lo), acc_lo[i]);
                    acc_hi[i] = __fmaf_rn(__fmul_rn(sh, d), float(p_hi), acc_hi[i]);
                    if (tig == 0) {
                        const float xs = xsm[i * ng + g];
                        acc_lo[i] = __fmaf_rn(bl, xs, acc_lo[i]);
                        acc_hi[i] = __fmaf_rn(bh, xs, acc_hi[i]);
                    }
                }
            }
    }
    store_rows<MB, kWarps>(part, acc_lo, acc_hi, mb, blockIdx.x * 16, a.N,
                           [&](int i, int64_t n, float v) {
                               store_from_float(a.ydt, a.y, (m0 + i) * a.y_stride() + n, v);
                           });
}

}  // namespace

void qmm_t_1bit_mma_i8(const quant::QmmArgs& a) {
    if (a.M == 0 || a.N == 0) return;
    const int64_t W = a.K / 32, ng = a.K / a.group_size;
    auto* planes = static_cast<uint32_t*>(workspace(2, size_t(a.M * W * 8) * 4));
    auto* dx = static_cast<float*>(workspace(3, size_t(a.M * ng) * 4));
    auto* xsum = static_cast<float*>(workspace(4, size_t(a.M * ng) * 4));
    const dim3 pgrid(static_cast<unsigned>((ng + 3) / 4), static_cast<unsigned>(a.M));
    if (a.group_size == 32)
        prep_planes_kernel<1><<<pgrid, 128, 0, stream()>>>(a.x, a.xdt, a.K, planes, dx, xsum);
    else if (a.group_size == 64)
        prep_planes_kernel<2><<<pgrid, 128, 0, stream()>>>(a.x, a.xdt, a.K, planes, dx, xsum);
    else
        prep_planes_kernel<4><<<pgrid, 128, 0, stream()>>>(a.x, a.xdt, a.K, planes, dx, xsum);
    check_launch("qmm_t_1bit_mma_i8 (activation planes)");
    // the activation rows of one block: 1, 2, 4 or 8 (same arithmetic per row for every choice)
    const int mb = a.M > 4 ? 8 : a.M > 2 ? 4 : a.M > 1 ? 2 : 1;
    const dim3 grid(static_cast<unsigned>((a.N + 15) / 16), static_cast<unsigned>((a.M + mb - 1) / mb));
    // 4 tiles (2 KiB of a row) per warp step when K gives every warp one, else 2
    const bool wide = (W + 3) / 4 >= 4 * kWarps;
    auto launch = [&](auto MB) {
        auto go = [&](auto U, auto G) {
            qmm_t_1bit_mma_kernel<MB.value, U.value, G.value>
                <<<grid, kWarps * 32, 0, stream()>>>(a, planes, dx, xsum);
        };
        auto by_group = [&](auto U) {
            if (a.group_size == 32) go(U, std::integral_constant<int, 32>{});
            else if (a.group_size == 64) go(U, std::integral_constant<int, 64>{});
            else go(U, std::integral_constant<int, 128>{});
        };
        if (wide) by_group(std::integral_constant<int, 4>{});
        else by_group(std::integral_constant<int, 2>{});
    };
    switch (mb) {
        case 1: launch(std::integral_constant<int, 1>{}); break;
        case 2: launch(std::integral_constant<int, 2>{}); break;
        case 4: launch(std::integral_constant<int, 4>{}); break;
        default: launch(std::integral_constant<int, 8>{}); break;
    }
    check_launch("qmm_t_1bit_mma_i8");
}

}  // namespace onebit::cuda
