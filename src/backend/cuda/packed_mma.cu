// 1-bit decode over weights repacked in the tensor cores' fragment order (cuda.h: PackedOneBit),
// int8 activations, mma.sync m16n8k128 .b1 AND-popc as in onebit_mma.cu (see there for the
// bit-plane identity). Bonsai's form only: group size 128, float16 / bfloat16 scales.
//
// Record of 16-row tile t, 512-k chunk c (4 tiles of 128 k, i.e. 4 groups), lane = 4 gid + tig:
//   words   [2][32 lanes][4] uint32: [0][lane][u] = row gid, k-word 16 c + 4 u + tig;
//                                    [1][lane][u] = row gid + 8, same word
//   scales  [32 lanes][4] 16-bit: scale and bias of rows gid and gid + 8, group 4 c + tig
//           (symmetric: [32 lanes][2], the two scales)
// so a warp reads a whole record with one 16-byte load per lane per half, and its scales with
// one 8- (4-) byte load. MMA u covers group 4 c + u; its popcount partials are summed over the
// four lanes of a row with a reduce-scatter that leaves lane tig the integer sum of group
// 4 c + tig, which that lane then scales: integer sums exact, float work once per group.
// Activation planes are written by the prep kernel in the same order:
//   planes [M][chunks][32 lanes][4] uint32: [m][c][lane][u] = plane gid of word 16 c + 4 u + tig
//   dxs    [M][chunks][4] float2 (dx, xsum) of group 4 c + u (zero for padding groups)
#include <cstring>
#include <type_traits>
#include <vector>

#include "backend/cuda/packed_decode.cuh"
#include "backend/cuda/packed_layout.cuh"
#include "core/error.h"

namespace onebit::cuda {

namespace {

constexpr int kWarps = kDecodeWarps;

// Where result rows go: rows [begin[s], begin[s + 1]) to y[s] ([M, rows of s]).
struct Segments {
    void* y[kMaxSegments];
    int64_t begin[kMaxSegments + 1];
    int count;
};

__global__ void prep_packed_kernel(const void* x, DType xdt, int64_t K, int64_t C,
                                   ActivationOut o) {
    wait_for_prior_grids();
    const int lane = threadIdx.x & 31;
    const int64_t G = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32, m = blockIdx.y;
    if (G >= C * 4) return;
    // groups past K (padding up to the chunk) get zero planes, dx and sum
    pack_group_of(K, lane, m, C, G, o,
                  [&](int64_t i) { return load_as_float(xdt, x, m * K + i); });
}

// y[m, n] = v into the segment that holds result row n, with constant indices (a run-time index
// would put the parameter struct in local memory).
__device__ __forceinline__ void store_segment(const Segments& out, DType ydt, int64_t m, int64_t n,
                                              float v) {
    void* yp = out.y[0];
    int64_t base = 0, rows = out.begin[1];
#pragma unroll
    for (int s = 1; s < kMaxSegments; ++s)
        if (s < out.count && n >= out.begin[s])
            yp = out.y[s], base = out.begin[s], rows = out.begin[s + 1] - out.begin[s];
    store_from_float(ydt, yp, m * rows + (n - base), v);
}

template <int MB, bool SYM, typename ST>
__global__ void __launch_bounds__(kWarps * 32, MB <= 2 ? 8 : 4)
    qmm_packed_kernel(const uint8_t* data, int64_t N, int C, const uint32_t* planes,
                      const float2* dxs, int64_t M, Segments out, DType ydt) {
    __shared__ float part[kWarps][MB][16];
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int64_t rt = blockIdx.x, m0 = blockIdx.y * int64_t(MB);
    const int mb = int(min(int64_t(MB), M - m0));
    const int64_t R = record_bytes(SYM);
    float acc_lo[MB], acc_hi[MB];
#pragma unroll
    for (int i = 0; i < MB; ++i) acc_lo[i] = acc_hi[i] = 0.0f;
    // software pipeline: the next chunk's weights and scales are in flight while this one computes
    const uint8_t* rec = data + rt * C * R;
    // The weights are constant, so they need not wait for the kernel that made the activations:
    // this warp's first record is loaded, and its later ones prefetched into L2, while that
    // kernel may still run (programmatic dependent launch); only then the wait.
    DecodeChunk next = warp < C ? load_chunk<SYM>(rec, R, warp, lane) : DecodeChunk{};
    for (int c = warp + kWarps; c < C; c += kWarps) prefetch_chunk(rec, R, c, lane);
    wait_for_prior_grids();
    for (int c = warp; c < C; c += kWarps) {
        const DecodeChunk cur = next;
        if (c + kWarps < C) next = load_chunk<SYM>(rec, R, c + kWarps, lane);
        chunk_step<MB, SYM, ST>(cur, planes, dxs, m0, mb, C, c, lane, acc_lo, acc_hi);
    }
    store_rows<MB, kWarps>(part, acc_lo, acc_hi, mb, rt * 16, N, [&](int i, int64_t n, float v) {
        store_segment(out, ydt, m0 + i, n, v);
    });
}

// int8 MMA of 16 rows x 8 columns over 32 k (PTX m16n8k32 .s8): a0 / a2 hold row gid, a1 / a3 row
// gid + 8 (k 4 tig .. 4 tig + 3, then 16 + 4 tig ..), b0 / b1 column gid (the same k); c[0..1] row
// gid, columns 2 tig and 2 tig + 1; c[2..3] row gid + 8.
__device__ __forceinline__ void mma_s8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                       uint32_t a3, uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Bits 0..3 of n as bytes 0 / 1 (bit j to byte j): n times 1 + 2^7 + 2^14 + 2^21 puts bit j at
// bit 9 j among other copies that never collide, and the mask keeps bits 0, 8, 16, 24.
__device__ __forceinline__ uint32_t nibble_bytes(uint32_t n) {
    return ((n & 0xfu) * 0x00204081u) & 0x01010101u;
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

constexpr int kPrefillWarps = 4;  // per block: four 16-row tiles (a warp each), one column tile
constexpr int kPrefillCols = 32;  // activation rows per block: four 8-column MMA tiles

// Prefill (M > kDecodeMaxM, PrefillMode::exact) over the same packed weights: a group's integer sum comes from four
// int8 MMAs (weight bits expanded to bytes 0 / 1 against the activations' int8 values, which the
// packing kernels also wrote), and everything after it is the decode kernel's arithmetic in its
// order: group 4c + u adds into partial u of "warp" c % 4 (its chunks in order), the partials of a
// "warp" are summed (0 + 1) + (2 + 3), and the four results in order. So each (m, n) has the bits
// qmm_packed_kernel gives it, whatever M is. Within a group the MMA k order is permuted (the
// integer sum does not care): thread tig's k slots cover the group's bits 32 tig .. 32 tig + 31,
// which is the packed word that lane already holds and 32 contiguous activation bytes.
template <bool SYM, typename ST>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    qmm_prefill_kernel(const uint8_t* data, int64_t N, int C, const int8_t* q8, const float2* dxs,
                       int64_t M, Segments out, DType ydt) {
    wait_for_prior_grids();
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, gid = lane >> 2, tig = lane & 3;
    const int64_t rt = blockIdx.x * int64_t(kPrefillWarps) + warp;
    if (rt * 16 >= N) return;
    const int64_t m0 = blockIdx.y * int64_t(kPrefillCols), ld = int64_t(C) * 512;
    const int64_t R = record_bytes(SYM);
    // element e = 4 nt + r: row gid (+ 8 for r >= 2), activation row m0 + 8 nt + 2 tig + (r & 1)
    float total[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) total[e] = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
        float p[4][16];
#pragma unroll
        for (int u = 0; u < 4; ++u)
#pragma unroll
            for (int e = 0; e < 16; ++e) p[u][e] = 0.0f;
        for (int c = w; c < C; c += kWarps) {
            const uint8_t* rec = data + (rt * C + c) * R;
            const uint4 wl = __ldg(reinterpret_cast<const uint4*>(rec) + lane);
            const uint4 wh = __ldg(reinterpret_cast<const uint4*>(rec + 512) + lane);
            // scales (and biases) of rows gid and gid + 8 for the chunk's groups: lanes 4 gid + u
            float s_lo[4], s_hi[4], b_lo[4], b_hi[4];
            if constexpr (SYM) {
                const uint4 sv = __ldg(reinterpret_cast<const uint4*>(rec + kWordBytes) + gid);
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const uint32_t x = word_of(sv, u);
                    s_lo[u] = to_f<ST>(x), s_hi[u] = to_f<ST>(x >> 16);
                    b_lo[u] = -0.5f * s_lo[u], b_hi[u] = -0.5f * s_hi[u];
                }
            } else {
                const uint4 sv0 = __ldg(reinterpret_cast<const uint4*>(rec + kWordBytes) + 2 * gid);
                const uint4 sv1 = __ldg(reinterpret_cast<const uint4*>(rec + kWordBytes) + 2 * gid + 1);
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const uint4& sv = u < 2 ? sv0 : sv1;
                    const uint32_t x = word_of(sv, 2 * (u % 2)), y = word_of(sv, 2 * (u % 2) + 1);
                    s_lo[u] = to_f<ST>(x), b_lo[u] = to_f<ST>(x >> 16);
                    s_hi[u] = to_f<ST>(y), b_hi[u] = to_f<ST>(y >> 16);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const int64_t G = 4 * int64_t(c) + u;
                const uint32_t w0 = word_of(wl, u), w1 = word_of(wh, u);
                uint4 bq[4][2];
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) {
                    const int64_t mr = m0 + 8 * nt + gid;
                    if (mr < M) {
                        const auto* src = reinterpret_cast<const uint4*>(q8 + mr * ld + G * 128 + 32 * tig);
                        bq[nt][0] = __ldg(src), bq[nt][1] = __ldg(src + 1);
                    } else {
                        bq[nt][0] = bq[nt][1] = make_uint4(0, 0, 0, 0);
                    }
                }
                int acc[4][4];
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0;
#pragma unroll
                for (int s = 0; s < 4; ++s) {
                    const uint32_t a0 = nibble_bytes(w0 >> (8 * s)), a2 = nibble_bytes(w0 >> (8 * s + 4));
                    const uint32_t a1 = nibble_bytes(w1 >> (8 * s)), a3 = nibble_bytes(w1 >> (8 * s + 4));
#pragma unroll
                    for (int nt = 0; nt < 4; ++nt) {
                        const uint4& b = bq[nt][s / 2];
                        mma_s8(acc[nt], a0, a1, a2, a3, word_of(b, 2 * (s % 2)),
                               word_of(b, 2 * (s % 2) + 1));
                    }
                }
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int64_t mr = m0 + 8 * nt + 2 * tig + (r & 1);
                        const float2 d = mr < M ? __ldg(dxs + (mr * C + c) * 4 + u) : make_float2(0.0f, 0.0f);
                        const float s = r < 2 ? s_lo[u] : s_hi[u], b = r < 2 ? b_lo[u] : b_hi[u];
                        float& pe = p[u][4 * nt + r];
                        pe = __fmaf_rn(__fmul_rn(s, d.x), float(acc[nt][r]), __fmaf_rn(b, d.y, pe));
                    }
            }
        }
#pragma unroll
        for (int e = 0; e < 16; ++e) {
            const float q = __fadd_rn(__fadd_rn(p[0][e], p[1][e]), __fadd_rn(p[2][e], p[3][e]));
            total[e] = w ? __fadd_rn(total[e], q) : q;
        }
    }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int64_t n = rt * 16 + gid + (r >= 2 ? 8 : 0), mr = m0 + 8 * nt + 2 * tig + (r & 1);
            if (n >= N || mr >= M) continue;
            store_segment(out, ydt, mr, n, total[4 * nt + r]);
        }
}

}  // namespace

bool packable_one_bit(int bits, int g, DType sdt) {
    return bits == 1 && g == 128 && (sdt == DType::float16 || sdt == DType::bfloat16);
}

PackedOneBit pack_one_bit(const uint32_t* w, const void* scales, const void* biases, DType sdt,
                          int64_t N, int64_t K, int g) {
    if (!packable_one_bit(1, g, sdt))
        fail("cuda", "the packed 1-bit layout needs group size 128 and float16 / bfloat16 scales, "
                     "got group size ", g, " and ", dtype_name(sdt), " scales");
    PackedOneBit p;
    p.N = N, p.K = K, p.sdt = sdt, p.symmetric = biases == nullptr;
    const int64_t T = p.tiles(), C = p.chunks(), R = record_bytes(p.symmetric), W = K / 32,
                  ng = K / 128;
    std::vector<uint8_t> host(size_t(T * C * R), 0);
    const auto* s16 = static_cast<const uint16_t*>(scales);
    const auto* b16 = static_cast<const uint16_t*>(biases);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
            uint8_t* rec = host.data() + (t * C + c) * R;
            auto* words = reinterpret_cast<uint32_t*>(rec);
            auto* sc = reinterpret_cast<uint16_t*>(rec + kWordBytes);
            for (int lane = 0; lane < 32; ++lane) {
                const int gid = lane >> 2, tig = lane & 3;
                for (int half = 0; half < 2; ++half) {
                    const int64_t n = t * 16 + gid + 8 * half;
                    if (n >= N) continue;
                    for (int u = 0; u < 4; ++u) {
                        const int64_t wi = 16 * c + 4 * u + tig;
                        if (wi < W) words[(half * 32 + lane) * 4 + u] = w[n * W + wi];
                    }
                    const int64_t G = 4 * c + tig;
                    if (G >= ng) continue;
                    if (p.symmetric) {
                        sc[lane * 2 + half] = s16[n * ng + G];
                    } else {
                        sc[lane * 4 + 2 * half] = s16[n * ng + G];
                        sc[lane * 4 + 2 * half + 1] = b16[n * ng + G];
                    }
                }
            }
        }
    p.data = Buffer(host.size());
    p.data.upload(host.data(), host.size());
    return p;
}

PackedActivations pack_activations(const void* x, DType xdt, int64_t M, int64_t K) {
    PackedActivations xa;
    xa.M = M, xa.K = K;
    if (M == 0 || K == 0) return xa;
    const int64_t C = (K + 511) / 512;
    const ActivationOut o = activation_buffers(M, K);
    const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(M));
    launch_dependent(prep_packed_kernel, grid, 128, 0, x, xdt, K, C, o);
    check_launch("pack_activations");
    return packed_activations(M, K, o);
}

void qmm_packed_one_bit(const PackedOneBit& p, const void* x, DType xdt, int64_t M, void* y,
                        DType ydt) {
    qmm_packed_one_bit(p, pack_activations(x, xdt, M, p.K), y, ydt);
}

void qmm_packed_one_bit(const PackedOneBit& p, const PackedActivations& xa, void* y, DType ydt) {
    const OutSegment all{y, p.N};
    qmm_packed_one_bit(p, xa, &all, 1, ydt);
}

void qmm_packed_one_bit(const PackedOneBit& p, const PackedActivations& xa,
                        const OutSegment* out, int segments, DType ydt) {
    if (xa.K != p.K) fail("cuda", "packed activations have K = ", xa.K, ", the weights ", p.K);
    if (segments < 1 || segments > kMaxSegments)
        fail("cuda", "the packed matmul takes 1 to ", kMaxSegments, " output segments, got ",
             segments);
    Segments seg{};
    seg.count = segments;
    seg.begin[0] = 0;
    for (int s = 0; s < segments; ++s)
        seg.y[s] = out[s].y, seg.begin[s + 1] = seg.begin[s] + out[s].rows;
    if (seg.begin[segments] != p.N)
        fail("cuda", "output segments cover ", seg.begin[segments], " rows of ", p.N);
    const int64_t M = xa.M, C = p.chunks();
    if (M == 0 || p.N == 0) return;
    const auto* planes = static_cast<const uint32_t*>(xa.planes);
    const auto* dxs = static_cast<const float2*>(xa.scales);
    const auto* data = static_cast<const uint8_t*>(p.data.data());
    const PrefillMode mode = M > kDecodeMaxM && xa.q8 ? prefill_mode() : PrefillMode::decode;
    if (mode == PrefillMode::gemm) return qmm_packed_gemm(p, xa, out, segments, ydt);
    if (mode == PrefillMode::exact) {  // int8 tensor-core MMAs, the decode kernel's bits
        const dim3 grid(static_cast<unsigned>((p.tiles() + kPrefillWarps - 1) / kPrefillWarps),
                        static_cast<unsigned>((M + kPrefillCols - 1) / kPrefillCols));
        const auto* q8 = static_cast<const int8_t*>(xa.q8);
        by_form(p, [&](auto SYM, auto ST) {
            launch_dependent(qmm_prefill_kernel<SYM.value, typename decltype(ST)::type>, grid,
                             dim3(kPrefillWarps * 32), 0, data, p.N, int(C), q8, dxs, M, seg, ydt);
        });
        check_launch("qmm_packed_one_bit (prefill)");
        return;
    }
    const int mb = M > 4 ? 8 : M > 2 ? 4 : M > 1 ? 2 : 1;
    const dim3 grid(static_cast<unsigned>(p.tiles()), static_cast<unsigned>((M + mb - 1) / mb));
    auto launch = [&](auto MB) {
        by_form(p, [&](auto SYM, auto ST) {
            launch_dependent(qmm_packed_kernel<decltype(MB)::value, SYM.value,
                                               typename decltype(ST)::type>,
                             grid, dim3(kWarps * 32), 0, data, p.N, int(C), planes, dxs, M, seg, ydt);
        });
    };
    switch (mb) {
        case 1: launch(std::integral_constant<int, 1>{}); break;
        case 2: launch(std::integral_constant<int, 2>{}); break;
        case 4: launch(std::integral_constant<int, 4>{}); break;
        default: launch(std::integral_constant<int, 8>{}); break;
    }
    check_launch("qmm_packed_one_bit");
}

}  // namespace onebit::cuda
