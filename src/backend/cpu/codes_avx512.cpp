// Kernel for repacked 2-, 4- and 8-bit weights (packed.h), int8 activations, AVX-512 VNNI.
//
// A 64-byte line of a group record holds 16 rows x 4 bytes (row r in dword lane r) with
// 8 / BITS codes per byte: masking the line to part q (bits [BITS q, BITS q + BITS) of each byte)
// leaves, in byte t of every lane, the code of the line's weight 4q + t (times 2^BITS for odd q),
// so one vpdpbusd against the broadcast activations 4q .. 4q+3 adds four code x activation
// products into each of the 16 rows' int32 sums. No bits are expanded into memory and nothing
// is reduced across lanes; the broadcasts of a line serve four 16-row blocks. The integer group sums are exact (at most 128 x 255 x 127 in
// magnitude) and the float epilogue is the 1-bit kernels' (tmac_avx512.cpp): acc += float(sum) *
// (scale * dx), accb += bias * xsum (or -scale / 2 * xsum), y = acc + accb; so results match
// quant::qmm_t_int8_ref up to float32 rounding, and each (m, n) is computed the same way
// whatever M is (batch invariant). The loop frame is the lookup-table kernel's, written out in
// each: sharing it through a callback measured 3-5% slower in cache (one thread, 4096 x 2048).
//
// Loads are whole blocks of the packed buffers (padded to 16 rows), never past their ends.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/packed_avx512.h"

namespace onebit::cpu {

namespace {

// Blocks b .. b+NB-1 for every activation row.
template <int G, int BITS, int NB>
void blocks_rows(const PackedWeights& p, const int8_t* xq, const float* dx, const float* xsum,
                 int64_t M, int64_t b, void* y, DType ydt) {
    constexpr int kParts = 8 / BITS;        // codes per byte
    constexpr int kLines = G * BITS / 32;   // 64-byte lines per group record
    constexpr int kPerLine = 4 * kParts;    // weights of a row per line
    const int64_t ng = p.K / G;
    // Codes 4q + t of a line sit at bits [BITS q, BITS q + BITS) of byte t. Even parts are
    // masked in place (low), odd parts masked in place too and so read as 2^BITS times the
    // code (high, summed apart and divided exactly at the group's end); 2-bit parts 2 and 3 are
    // parts 0 and 1 of the line shifted right by 4. No shift per part: 2 bits cost 1 shift,
    // 4 ands and 4 dot products a line, 4 bits 2 ands and 2, 8 bits 1.
    const __m512i lo_mask = _mm512_set1_epi8(static_cast<char>((1 << BITS) - 1));
    const __m512i hi_mask = _mm512_set1_epi8(static_cast<char>(((1 << BITS) - 1) << BITS));
    const std::array<Block, NB> blk = blocks_from<NB>(p, b, G, std::make_index_sequence<NB>());
    for (int64_t m = 0; m < M; ++m) {
        const int8_t* xm = xq + m * p.K;
        const float* dxm = dx + m * ng;
        const float* xsm = xsum + m * ng;
        __m512 acc[NB], accb[NB];
        for (int j = 0; j < NB; ++j) acc[j] = accb[j] = _mm512_setzero_ps();
        for (int64_t gi = 0; gi < ng; ++gi) {
            __m512i lo[NB], hi[NB];
            for (int j = 0; j < NB; ++j) lo[j] = hi[j] = _mm512_setzero_si512();
            for (int l = 0; l < kLines; ++l) {
                __m512i xb[kParts];
                for (int q = 0; q < kParts; ++q) xb[q] = bcast4(xm + gi * G + l * kPerLine + 4 * q);
                for (int j = 0; j < NB; ++j) {
                    if (m == 0) _mm_prefetch(blk[j].ahead(gi, l * 64, NB), _MM_HINT_T0);
                    const __m512i w = _mm512_loadu_si512(blk[j].bits(gi) + l * 64);
                    if constexpr (BITS == 8) {
                        lo[j] = _mm512_dpbusd_epi32(lo[j], w, xb[0]);
                    } else {
                        for (int q = 0; q < kParts; q += 2) {
                            const __m512i v = q ? _mm512_srli_epi32(w, 4) : w;
                            lo[j] = _mm512_dpbusd_epi32(lo[j], _mm512_and_si512(v, lo_mask), xb[q]);
                            hi[j] = _mm512_dpbusd_epi32(hi[j], _mm512_and_si512(v, hi_mask), xb[q + 1]);
                        }
                    }
                }
            }
            const __m512 dxg = _mm512_set1_ps(dxm[gi]);
            for (int j = 0; j < NB; ++j) {
                const __m512 s = blk[j].scale(p.sdt, gi);
                const __m512i sum = _mm512_add_epi32(lo[j], _mm512_srai_epi32(hi[j], BITS));
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s, dxg), acc[j]);
                accb[j] = blk[j].add_bias(p.sdt, gi, s, xsm[gi], accb[j]);
            }
        }
        for (int j = 0; j < NB; ++j)
            blk[j].store(p, b + j, m, _mm512_add_ps(acc[j], accb[j]), y, ydt);
    }
}

template <int G, int BITS>
void run_blocks(const PackedWeights& p, const int8_t* xq, const float* dx, const float* xsum,
                int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) {
    int64_t b = b0;
    for (; b + 4 <= b1; b += 4) blocks_rows<G, BITS, 4>(p, xq, dx, xsum, M, b, y, ydt);
    switch (b1 - b) {
        case 3: blocks_rows<G, BITS, 3>(p, xq, dx, xsum, M, b, y, ydt); break;
        case 2: blocks_rows<G, BITS, 2>(p, xq, dx, xsum, M, b, y, ydt); break;
        case 1: blocks_rows<G, BITS, 1>(p, xq, dx, xsum, M, b, y, ydt); break;
        default: break;
    }
}

template <int G>
struct Blocks {
    static void run(const PackedWeights& p, const int8_t* xq, const float* dx, const float* xsum,
                    int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) {
        if (p.bits == 2)
            run_blocks<G, 2>(p, xq, dx, xsum, M, b0, b1, y, ydt);
        else if (p.bits == 4)
            run_blocks<G, 4>(p, xq, dx, xsum, M, b0, b1, y, ydt);
        else
            run_blocks<G, 8>(p, xq, dx, xsum, M, b0, b1, y, ydt);
    }
};

}  // namespace

void qmm_codes_avx512vnni(const PackedWeights& p, const int8_t* xq, const float* dx,
                          const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                          DType ydt) noexcept {
    by_group<Blocks>(p.group_size, p, xq, dx, xsum, M, b0, b1, y, ydt);
}

}  // namespace onebit::cpu
