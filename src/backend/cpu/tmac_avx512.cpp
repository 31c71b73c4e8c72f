// Lookup-table kernels for repacked 1-bit weights (packed.h), AVX-512 BW.
//
// int8 activations:
// For each quad of 4 activations the 16 possible sums of a subset (int16, stored as a low-byte
// and a high-byte plane) are precomputed once per activation row (packed.cpp). A 128-bit lane of
// packed weights holds byte j of 16 rows: its low nibbles index the table of quad 2j and its high
// nibbles that of quad 2j + 1, so four vpshufb give the two int16 partial sums of 16 rows for 8
// weights each, with no per-row bit expansion. 512 weights (16 rows x 32) cost one load, three
// bit ops, four shuffles, four unpacks and four adds. Partial sums stay in int16 within a group
// (at most 8 quads of 4 x 127 per lane: no overflow), are reduced over lanes once per group,
// converted and scaled by scale * dx for the 16 rows at once: the vector lanes are the output
// rows, so no horizontal reduction per row. Integer sums are exact: results match
// quant::qmm_t_int8_ref up to float32 rounding, and each (m, n) is computed the same way
// whatever M is (batch invariant).
//
// float32 activations: the tables hold the 16 subset sums of each quad as floats (one zmm per
// quad); the nibbles of 16 rows, widened to dword lanes, index them through vpermps. Within
// FORMAT.md's float32 bound of the reference (test_backend_consistency), batch invariant.
//
// Loads are whole blocks of the packed buffers (padded to 16 rows), never past their ends.
#include <immintrin.h>

#include "backend/cpu/packed_avx512.h"

namespace onebit::cpu {

namespace {

// Sum of the four lanes of a (rows 0-7) and c (rows 8-15): 16 int32, lane r = row r.
inline __m512i reduce_lanes(__m512i a, __m512i c) {
    __m256i a2 = _mm256_add_epi16(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m256i c2 = _mm256_add_epi16(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    __m128i a1 = _mm_add_epi16(_mm256_castsi256_si128(a2), _mm256_extracti128_si256(a2, 1));
    __m128i c1 = _mm_add_epi16(_mm256_castsi256_si128(c2), _mm256_extracti128_si256(c2, 1));
    __m256i rows = _mm256_inserti128_si256(_mm256_castsi128_si256(a1), c1, 1);
    return _mm512_cvtepi16_epi32(rows);
}

template <int G>
void block_rows(const PackedOneBit& p, const uint8_t* tables, const float* dx, const float* xsum,
                int64_t M, int64_t b, void* y, DType ydt) {
    constexpr int kBytesPerGroup = G / 8;  // k-bytes per group: 4, 8 or 16
    const Block blk(p, b, G);
    const int64_t kb = p.K / 8, ng = blk.ng;
    const __m512i nib = _mm512_set1_epi8(0x0f);
    for (int64_t m = 0; m < M; ++m) {
        const uint8_t* tle = tables + m * 4 * kb * 16;
        const uint8_t* the = tle + kb * 16;
        const uint8_t* tlo = tle + 2 * kb * 16;
        const uint8_t* tho = tle + 3 * kb * 16;
        const float* dxm = dx + m * ng;
        const float* xsm = xsum + m * ng;
        __m512 acc = _mm512_setzero_ps(), accb = _mm512_setzero_ps();
        for (int64_t gi = 0; gi < ng; ++gi) {
            __m512i a = _mm512_setzero_si512(), c = _mm512_setzero_si512();
            const uint8_t* wg = blk.bits(gi);
            if (m == 0)  // the scales and biases of the block after next: keep DRAM busy
                _mm_prefetch(blk.ahead(gi, G * 2), _MM_HINT_T0);
            for (int64_t jj = 0; jj < kBytesPerGroup; jj += 4) {
                const int64_t j = gi * kBytesPerGroup + jj;
                if (m == 0) _mm_prefetch(blk.ahead(gi, jj * 16), _MM_HINT_T0);
                const __m512i w = _mm512_loadu_si512(wg + jj * 16);
                const __m512i lo = _mm512_and_si512(w, nib);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
                const __m512i ell = _mm512_shuffle_epi8(_mm512_loadu_si512(tle + j * 16), lo);
                const __m512i elh = _mm512_shuffle_epi8(_mm512_loadu_si512(the + j * 16), lo);
                const __m512i ehl = _mm512_shuffle_epi8(_mm512_loadu_si512(tlo + j * 16), hi);
                const __m512i ehh = _mm512_shuffle_epi8(_mm512_loadu_si512(tho + j * 16), hi);
                a = _mm512_add_epi16(a, _mm512_add_epi16(_mm512_unpacklo_epi8(ell, elh),
                                                         _mm512_unpacklo_epi8(ehl, ehh)));
                c = _mm512_add_epi16(c, _mm512_add_epi16(_mm512_unpackhi_epi8(ell, elh),
                                                         _mm512_unpackhi_epi8(ehl, ehh)));
            }
            const __m512 s = blk.scale(p.sdt, gi);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(reduce_lanes(a, c)),
                                  _mm512_mul_ps(s, _mm512_set1_ps(dxm[gi])), acc);
            accb = blk.add_bias(p.sdt, gi, s, xsm[gi], accb);
        }
        blk.store(p, b, m, _mm512_add_ps(acc, accb), y, ydt);
    }
}

// float32 activations: tables of float subset sums (16 per quad, one zmm), looked up with
// vpermps by the nibbles of 16 rows widened to dword lanes.
template <int G>
void block_rows_f32(const PackedOneBit& p, const float* tables, const float* xsum, int64_t M,
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
            for (int jj = 0; jj < kBytesPerGroup; ++jj) {
                const int64_t j = gi * kBytesPerGroup + jj;
                if (m == 0 && jj % 4 == 0) _mm_prefetch(blk.ahead(gi, jj * 16), _MM_HINT_T0);
                const __m512i v = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(wg + jj * 16)));
                const __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_srli_epi32(v, 4);
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
    static void run(const PackedOneBit& p, const float* tables, const float* xsum, int64_t M,
                    int64_t b0, int64_t b1, void* y, DType ydt) {
        for (int64_t b = b0; b < b1; ++b) block_rows_f32<G>(p, tables, xsum, M, b, y, ydt);
    }
};

template <int G>
struct Blocks {
    static void run(const PackedOneBit& p, const uint8_t* tables, const float* dx,
                    const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) {
        for (int64_t b = b0; b < b1; ++b) block_rows<G>(p, tables, dx, xsum, M, b, y, ydt);
    }
};

// out[G] = sum of x[G*g .. G*g+g-1] added in order from 0.0f, as the reference sums (bit-identical),
// for 16 groups at a time: lane G gathers its group's i-th value.
void group_sums_serial(const float* x, int64_t ng, int g, float* out) {
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(g));
    for (int64_t G = 0; G < ng; G += 16) {
        const __mmask16 live = ng - G >= 16 ? __mmask16(0xffff) : __mmask16((1u << (ng - G)) - 1);
        __m512 s = _mm512_setzero_ps();
        for (int i = 0; i < g; ++i)
            s = _mm512_add_ps(
                s, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, x + G * g + i, 4));
        _mm512_mask_storeu_ps(out + G, live, s);
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

void tmac_one_bit_f32_avx512(const PackedOneBit& p, const float* tables, const float* xsum,
                             int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) noexcept {
    by_group<BlocksF32>(p.group_size, p, tables, xsum, M, b0, b1, y, ydt);
}

void tmac_tables_avx512(const int8_t* xq, int64_t K, int64_t q0, int64_t q1, uint8_t* t) noexcept {
    // lane idx of bit mask b is all ones when bit b of idx is set
    alignas(32) int16_t masks[4][16];
    for (int b = 0; b < 4; ++b)
        for (int idx = 0; idx < 16; ++idx) masks[b][idx] = (idx >> b & 1) ? -1 : 0;
    __m256i mb[4];
    for (int b = 0; b < 4; ++b)
        mb[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(masks[b]));
    const int64_t kb = K / 8;
    for (int64_t q = q0; q < q1; ++q) {
        __m256i e = _mm256_setzero_si256();
        for (int b = 0; b < 4; ++b)
            e = _mm256_add_epi16(e, _mm256_and_si256(mb[b], _mm256_set1_epi16(xq[4 * q + b])));
        const int64_t j = q / 2, odd = q % 2;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(t + ((2 * odd) * kb + j) * 16),
                         _mm256_cvtepi16_epi8(e));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(t + ((2 * odd + 1) * kb + j) * 16),
                         _mm256_cvtepi16_epi8(_mm256_srai_epi16(e, 8)));
    }
}

void tmac_one_bit_avx512(const PackedOneBit& p, const uint8_t* tables, const float* dx,
                         const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                         DType ydt) noexcept {
    by_group<Blocks>(p.group_size, p, tables, dx, xsum, M, b0, b1, y, ydt);
}

}  // namespace onebit::cpu
