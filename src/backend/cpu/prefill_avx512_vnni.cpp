// Prefill kernel for repacked 1-bit weights (packed.h), int8 activations, AVX-512 VNNI + VBMI.
//
// For each pair of 16-row blocks, the weight bits are expanded once into bytes 0 / 1 in the VNNI
// layout ([K/4][16 rows][4 k], 16*K bytes per block in a per-thread scratch that stays in L2) and
// then reused by every activation row: a tile of kRowsPerTile activation rows accumulates, per
// group, one vpdpbusd per row, block and 4 k-steps (the activation dword broadcast once for both
// blocks) into int32 sums of 16 output rows. The integer group sums are exact and the float epilogue is the lookup-table kernel's
// (tmac_avx512.cpp), operation for operation: acc += float(sum) * (scale * dx), accb += bias * xsum
// (or -scale/2 * xsum), y = acc + accb. So both kernels give bit-identical results, and which one
// runs for a given M never changes a row's value (batch invariance for every M).
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/packed_avx512.h"

namespace onebit::cpu {

namespace {

constexpr int kRowsPerTile = 8;

// Bits of block blk -> out [K/4][16][4] bytes of 0 / 1. Byte t of a chunk's dword lane r holds
// k = 8(4c+t) .. 8(4c+t)+7 of row r (bit i = k 8(4c+t)+i): its low nibble is one 4-k step, its
// high nibble the next.
void expand_block(const Block& blk, int64_t ng, int g, uint8_t* out) {
    alignas(64) uint8_t rep_idx[4][64];  // byte t of each lane, repeated over the lane
    for (int t = 0; t < 4; ++t)
        for (int i = 0; i < 64; ++i) rep_idx[t][i] = static_cast<uint8_t>(4 * (i / 4) + t);
    const __m512i low = _mm512_set1_epi32(0x08040201), high = _mm512_set1_epi32(0x80402010);
    const __m512i one = _mm512_set1_epi8(1);
    for (int64_t gi = 0; gi < ng; ++gi) {
        const uint8_t* rec = blk.bits(gi);
        for (int c = 0; c < g / 32; ++c) {
            const __m512i chunk = _mm512_loadu_si512(rec + c * 64);
            for (int t = 0; t < 4; ++t) {
                const __m512i v = _mm512_permutexvar_epi8(_mm512_load_si512(rep_idx[t]), chunk);
                uint8_t* dst = out + (gi * (g / 8) + 4 * c + t) * 128;
                _mm512_store_si512(dst, _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(v, low), one));
                _mm512_store_si512(dst + 64,
                                   _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(v, high), one));
            }
        }
    }
}

// Rows m0 .. m0+T-1 of y for blocks b .. b+NB-1 (NB = 1 or 2), from their expanded bits w (NB
// consecutive [K/4][64] arrays): each activation broadcast feeds NB dot products.
template <int G, int T, int NB>
void tile(const PackedWeights& p, const uint8_t* w, const int8_t* xq, const float* dx,
          const float* xsum, int64_t m0, int64_t b, void* y, DType ydt) {
    const int64_t K = p.K;
    const Block blk[2] = {Block(p, b, G), Block(p, NB > 1 ? b + 1 : b, G)};
    const int64_t ng = blk[0].ng;
    __m512 acc[NB][T], accb[NB][T];
    for (int j = 0; j < NB; ++j)
        for (int t = 0; t < T; ++t) acc[j][t] = accb[j][t] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < ng; ++gi) {
        __m512i sum[NB][T];
        for (int j = 0; j < NB; ++j)
            for (int t = 0; t < T; ++t) sum[j][t] = _mm512_setzero_si512();
        const uint8_t* wg = w + gi * G * 16;
        const int8_t* xg = xq + m0 * K + gi * G;
        for (int s = 0; s < G / 4; ++s) {
            __m512i ws[NB];
            for (int j = 0; j < NB; ++j) ws[j] = _mm512_load_si512(wg + j * K * 16 + s * 64);
            for (int t = 0; t < T; ++t) {
                const __m512i xb = bcast4(xg + t * K + s * 4);
                for (int j = 0; j < NB; ++j) sum[j][t] = _mm512_dpbusd_epi32(sum[j][t], ws[j], xb);
            }
        }
        for (int j = 0; j < NB; ++j) {
            const __m512 sc = blk[j].scale(p.sdt, gi);
            for (int t = 0; t < T; ++t) {
                const int64_t i = (m0 + t) * ng + gi;
                acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[j][t]),
                                            _mm512_mul_ps(sc, _mm512_set1_ps(dx[i])), acc[j][t]);
                accb[j][t] = blk[j].add_bias(p.sdt, gi, sc, xsum[i], accb[j][t]);
            }
        }
    }
    for (int j = 0; j < NB; ++j)
        for (int t = 0; t < T; ++t)
            blk[j].store(p, b + j, m0 + t, _mm512_add_ps(acc[j][t], accb[j][t]), y, ydt);
}

template <int G, int T, int NB>
void tail_tiles(int64_t rest, const PackedWeights& p, const uint8_t* w, const int8_t* xq,
                const float* dx, const float* xsum, int64_t m0, int64_t b, void* y, DType ydt) {
    if constexpr (T > 0) {
        if (rest == T)
            tile<G, T, NB>(p, w, xq, dx, xsum, m0, b, y, ydt);
        else
            tail_tiles<G, T - 1, NB>(rest, p, w, xq, dx, xsum, m0, b, y, ydt);
    }
}

template <int G, int NB>
void blocks_rows(const PackedWeights& p, const int8_t* xq, const float* dx, const float* xsum,
                 int64_t M, int64_t b, void* y, DType ydt, uint8_t* scratch) {
    for (int j = 0; j < NB; ++j) {
        const Block blk(p, b + j, G);
        expand_block(blk, blk.ng, G, scratch + j * p.K * 16);
    }
    int64_t m = 0;
    for (; m + kRowsPerTile <= M; m += kRowsPerTile)
        tile<G, kRowsPerTile, NB>(p, scratch, xq, dx, xsum, m, b, y, ydt);
    tail_tiles<G, kRowsPerTile - 1, NB>(M - m, p, scratch, xq, dx, xsum, m, b, y, ydt);
}

template <int G>
struct Blocks {
    static void run(const PackedWeights& p, const int8_t* xq, const float* dx, const float* xsum,
                    int64_t M, int64_t b0, int64_t b1, void* y, DType ydt, uint8_t* scratch) {
        int64_t b = b0;
        for (; b + 2 <= b1; b += 2) blocks_rows<G, 2>(p, xq, dx, xsum, M, b, y, ydt, scratch);
        if (b < b1) blocks_rows<G, 1>(p, xq, dx, xsum, M, b, y, ydt, scratch);
    }
};

}  // namespace

void prefill_one_bit_avx512vnni(const PackedWeights& p, const int8_t* xq, const float* dx,
                                const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                                DType ydt, uint8_t* scratch) noexcept {
    by_group<Blocks>(p.group_size, p, xq, dx, xsum, M, b0, b1, y, ydt, scratch);
}

}  // namespace onebit::cpu
