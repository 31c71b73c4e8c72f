// Lookup-table kernels for repacked 1-bit weights (packed.h), AVX-512 VNNI + VBMI.
//
// int8 activations:
// For each quad of 4 activations the 16 possible sums of a subset (int16, split into a low-byte
// and a high-byte table) are precomputed once per activation row (tmac_tables_avx512). A 64-byte
// chunk of packed weights holds 32 weights of 16 rows, row r in dword lane r (byte t of the lane:
// 8 weights, low nibble one quad, high nibble the next). One vpermb looks up 64 nibbles at once in
// a 64-entry table that holds the 16-entry tables of the four quads the lane's bytes refer to (the
// index is the nibble plus 16 t), and one vpdpbusd against ones adds each row's four looked-up
// bytes into its int32 lane. 512 weights (16 rows x 32) cost one load, three index ops, four
// lookups and four dot products, with no bit expansion and no reduction across lanes; the four
// table registers of a chunk serve four blocks of 16 rows before the next are loaded. Integer
// sums are exact (low bytes unsigned, high bytes signed, combined as lo + 256 hi once per group),
// converted and scaled by scale * dx for the 16 rows at once: results match
// quant::qmm_t_int8_ref up to float32 rounding, and each (m, n) is computed the same way whatever
// M is (batch invariant).
//
// float32 activations: the tables hold the 16 subset sums of each quad as floats (one zmm per
// quad); the nibbles of 16 rows, shifted out of the chunk's dword lanes, index them through
// vpermps. Within FORMAT.md's float32 bound of the reference (test_backend_consistency), batch
// invariant.
//
// Loads are whole blocks of the packed buffers (padded to 16 rows), never past their ends.
#include <immintrin.h>

#include <array>
#include <utility>

#include "backend/cpu/avx512_common.h"
#include "backend/cpu/packed_avx512.h"

namespace onebit::cpu {

namespace {

// Blocks b .. b+NB-1 for every activation row. Table layout per row: chunk C (k = 32C .. 32C+31)
// has four 64-byte tables: [0] low and [1] high bytes of the subset sums of the even quads (quad
// 8C + 2t at entries 16t .. 16t+15), [2] and [3] those of the odd quads (8C + 2t + 1).
template <int G, int NB>
void blocks_rows(const PackedWeights& p, const uint8_t* tables, const float* dx, const float* xsum,
                 int64_t M, int64_t b, void* y, DType ydt) {
    constexpr int kChunks = G / 32;  // 64-byte chunks per group record
    const int64_t ng = p.K / G;
    const __m512i nib = _mm512_set1_epi8(0x0f);
    const __m512i quad = _mm512_set1_epi32(0x30201000);  // 16 t for byte t of each lane
    const __m512i ones = _mm512_set1_epi8(1);
    const std::array<Block, NB> blk = blocks_from<NB>(p, b, G, std::make_index_sequence<NB>());
    for (int64_t m = 0; m < M; ++m) {
        const uint8_t* tm = tables + m * p.K * 8;
        const float* dxm = dx + m * ng;
        const float* xsm = xsum + m * ng;
        __m512 acc[NB], accb[NB];
        for (int j = 0; j < NB; ++j) acc[j] = accb[j] = _mm512_setzero_ps();
        for (int64_t gi = 0; gi < ng; ++gi) {
            __m512i lo[NB], hi[NB];
            for (int j = 0; j < NB; ++j) lo[j] = hi[j] = _mm512_setzero_si512();
            for (int c = 0; c < kChunks; ++c) {
                const uint8_t* tc = tm + (gi * kChunks + c) * 256;
                const __m512i t0 = _mm512_loadu_si512(tc), t1 = _mm512_loadu_si512(tc + 64);
                const __m512i t2 = _mm512_loadu_si512(tc + 128), t3 = _mm512_loadu_si512(tc + 192);
                for (int j = 0; j < NB; ++j) {
                    if (m == 0) _mm_prefetch(blk[j].ahead(gi, c * 64, NB), _MM_HINT_T0);
                    const __m512i w = _mm512_loadu_si512(blk[j].bits(gi) + c * 64);
                    // (w & 0x0f) | 16 t, and the same for the high nibbles
                    const __m512i il = _mm512_ternarylogic_epi32(w, nib, quad, 0xea);
                    const __m512i ih =
                        _mm512_ternarylogic_epi32(_mm512_srli_epi16(w, 4), nib, quad, 0xea);
                    lo[j] = _mm512_dpbusd_epi32(lo[j], _mm512_permutexvar_epi8(il, t0), ones);
                    hi[j] = _mm512_dpbusd_epi32(hi[j], ones, _mm512_permutexvar_epi8(il, t1));
                    lo[j] = _mm512_dpbusd_epi32(lo[j], _mm512_permutexvar_epi8(ih, t2), ones);
                    hi[j] = _mm512_dpbusd_epi32(hi[j], ones, _mm512_permutexvar_epi8(ih, t3));
                }
            }
            const __m512 dxg = _mm512_set1_ps(dxm[gi]);
            for (int j = 0; j < NB; ++j) {
                const __m512i sum = _mm512_add_epi32(lo[j], _mm512_slli_epi32(hi[j], 8));
                const __m512 s = blk[j].scale(p.sdt, gi);
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(s, dxg), acc[j]);
                accb[j] = blk[j].add_bias(p.sdt, gi, s, xsm[gi], accb[j]);
            }
        }
        for (int j = 0; j < NB; ++j)
            blk[j].store(p, b + j, m, _mm512_add_ps(acc[j], accb[j]), y, ydt);
    }
}

// float32 activations: tables of float subset sums (16 per quad, one zmm), looked up with
// vpermps by the nibbles of 16 rows (dword lane r of a chunk is row r).
template <int G>
void block_rows_f32(const PackedWeights& p, const float* tables, const float* xsum, int64_t M,
                    int64_t b, void* y, DType ydt) {
    constexpr int kBytesPerGroup = G / 8;
    const Block blk(p, b, G);
    const int64_t K = p.K, ng = blk.ng;
    const __m512i nib = _mm512_set1_epi32(0x0f);
    for (int64_t m = 0; m < M; ++m) {
        const float* t = tables + m * (K / 4) * 16;
        const float* xsm = xsum + m * ng;
        __m512 acc = _mm512_setzero_ps(), accb = _mm512_setzero_ps();
        for (int64_t gi = 0; gi < ng; ++gi) {
            __m512 part[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                              _mm512_setzero_ps()};
            const uint8_t* wg = blk.bits(gi);
            if (m == 0) _mm_prefetch(blk.ahead(gi, G * 2), _MM_HINT_T0);
            __m512i chunk = _mm512_setzero_si512();
            for (int jj = 0; jj < kBytesPerGroup; ++jj) {
                const int64_t j = gi * kBytesPerGroup + jj;
                if (jj % 4 == 0) {  // 16 rows x 4 k-bytes, one per dword lane
                    if (m == 0) _mm_prefetch(blk.ahead(gi, jj * 16), _MM_HINT_T0);
                    chunk = _mm512_loadu_si512(wg + jj * 16);
                }
                const __m512i v = _mm512_srli_epi32(chunk, 8 * (jj % 4));
                const __m512i lo = _mm512_and_si512(v, nib);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), nib);
                const int a = 2 * (jj % 2);
                part[a] = _mm512_add_ps(part[a],
                                        _mm512_permutexvar_ps(lo, _mm512_loadu_ps(t + 2 * j * 16)));
                part[a + 1] = _mm512_add_ps(
                    part[a + 1], _mm512_permutexvar_ps(hi, _mm512_loadu_ps(t + (2 * j + 1) * 16)));
            }
            const __m512 sum =
                _mm512_add_ps(_mm512_add_ps(part[0], part[1]), _mm512_add_ps(part[2], part[3]));
            const __m512 s = blk.scale(p.sdt, gi);
            acc = _mm512_fmadd_ps(sum, s, acc);
            accb = blk.add_bias(p.sdt, gi, s, xsm[gi], accb);
        }
        blk.store(p, b, m, _mm512_add_ps(acc, accb), y, ydt);
    }
}

template <int G>
struct BlocksF32 {
    static void run(const PackedWeights& p, const float* tables, const float* xsum, int64_t M,
                    int64_t b0, int64_t b1, void* y, DType ydt) {
        for (int64_t b = b0; b < b1; ++b) block_rows_f32<G>(p, tables, xsum, M, b, y, ydt);
    }
};

template <int G>
struct Blocks {
    static void run(const PackedWeights& p, const uint8_t* tables, const float* dx,
                    const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) {
        int64_t b = b0;
        for (; b + 4 <= b1; b += 4) blocks_rows<G, 4>(p, tables, dx, xsum, M, b, y, ydt);
        switch (b1 - b) {
            case 3: blocks_rows<G, 3>(p, tables, dx, xsum, M, b, y, ydt); break;
            case 2: blocks_rows<G, 2>(p, tables, dx, xsum, M, b, y, ydt); break;
            case 1: blocks_rows<G, 1>(p, tables, dx, xsum, M, b, y, ydt); break;
            default: break;
        }
    }
};

// out[G] = sum of x[G*g .. G*g+g-1] added in order from 0.0f, as the reference sums (bit-identical),
// for 16 groups at a time: their next 16 values are transposed so lane G holds group G's.
void group_sums_serial(const float* x, int64_t ng, int g, float* out) {
    for (int64_t G = 0; G < ng; G += 16) {
        const int64_t live = ng - G < 16 ? ng - G : 16;
        __m512 s = _mm512_setzero_ps();
        for (int i = 0; i < g; i += 16) {
            __m512 r[16];
            for (int j = 0; j < 16; ++j)
                r[j] = j < live ? _mm512_loadu_ps(x + (G + j) * g + i) : _mm512_setzero_ps();
            transpose16(r);
            for (int k = 0; k < 16; ++k) s = _mm512_add_ps(s, r[k]);
        }
        _mm512_mask_storeu_ps(out + G, static_cast<__mmask16>((1u << live) - 1), s);
    }
}

}  // namespace

void quantize_activations_int8_avx512(const float* x, int64_t K, int g, int8_t* xq, float* dx,
                                      float* xsum) noexcept {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t G = 0; G < K / g; ++G) {
        const float* xg = x + G * g;
        __m512 amax = _mm512_setzero_ps();
        for (int i = 0; i < g; i += 16)
            amax = _mm512_max_ps(amax, _mm512_and_ps(_mm512_loadu_ps(xg + i), absmask));
        // the reference's arithmetic: d = amax / 127, inv = 1 / d, q = rint(x * inv), clamp
        const float d = _mm512_reduce_max_ps(amax) / 127.0f;
        const float inv = d > 0.0f ? 1.0f / d : 0.0f;
        dx[G] = d;
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        for (int i = 0; i < g; i += 16) {
            __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xg + i), vinv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + G * g + i),
                             _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q)));
        }
    }
    group_sums_serial(x, K / g, g, xsum);
}

void tmac_tables_f32_avx512(const float* x, int64_t q0, int64_t q1, float* t) noexcept {
    alignas(64) float masks[4][16];
    for (int b = 0; b < 4; ++b)
        for (int idx = 0; idx < 16; ++idx) masks[b][idx] = (idx >> b & 1) ? 1.0f : 0.0f;
    __m512 mb[4];
    for (int b = 0; b < 4; ++b) mb[b] = _mm512_load_ps(masks[b]);
    for (int64_t q = q0; q < q1; ++q) {
        const float* xs = x + 4 * (q - q0);
        __m512 e = _mm512_mul_ps(mb[0], _mm512_set1_ps(xs[0]));
        for (int b = 1; b < 4; ++b) e = _mm512_fmadd_ps(mb[b], _mm512_set1_ps(xs[b]), e);
        _mm512_storeu_ps(t + q * 16, e);
    }
}

void tmac_one_bit_f32_avx512(const PackedWeights& p, const float* tables, const float* xsum,
                             int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) noexcept {
    by_group<BlocksF32>(p.group_size, p, tables, xsum, M, b0, b1, y, ydt);
}

void tmac_tables_avx512(const int8_t* xq, int64_t q0, int64_t q1, uint8_t* t) noexcept {
    // Per chunk of 32 activations and nibble (odd): 64 int16 entries 16 t + n = the sum of the
    // activations 8t + 4 odd + b with bit b of n set, two zmm of 32 lanes (t = 0, 1 and 2, 3).
    // Lane l of the permutation for bit b reads activation 8 (l / 16) + b (+ 4 odd, + 16 half),
    // and keeps it where bit b of l % 16 is set.
    alignas(64) int16_t idx[4][32];
    __mmask32 keep[4];
    for (int b = 0; b < 4; ++b) {
        keep[b] = 0;
        for (int l = 0; l < 32; ++l) {
            idx[b][l] = static_cast<int16_t>(8 * (l / 16) + b);
            if ((l % 16) >> b & 1) keep[b] |= __mmask32(1) << l;
        }
    }
    for (int64_t c = q0 / 8; c < q1 / 8; ++c) {
        const __m512i xw = _mm512_cvtepi8_epi16(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * c)));
        uint8_t* dst = t + c * 256;
        for (int odd = 0; odd < 2; ++odd)
            for (int half = 0; half < 2; ++half) {
                const __m512i off = _mm512_set1_epi16(static_cast<int16_t>(4 * odd + 16 * half));
                __m512i e = _mm512_setzero_si512();
                for (int b = 0; b < 4; ++b)
                    e = _mm512_add_epi16(
                        e, _mm512_maskz_permutexvar_epi16(
                               keep[b], _mm512_add_epi16(_mm512_load_si512(idx[b]), off), xw));
                uint8_t* d = dst + odd * 128 + half * 32;
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm512_cvtepi16_epi8(e));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 64),
                                    _mm512_cvtepi16_epi8(_mm512_srai_epi16(e, 8)));
            }
    }
}

void tmac_one_bit_avx512(const PackedWeights& p, const uint8_t* tables, const float* dx,
                         const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                         DType ydt) noexcept {
    by_group<Blocks>(p.group_size, p, tables, dx, xsum, M, b0, b1, y, ydt);
}

}  // namespace onebit::cpu
