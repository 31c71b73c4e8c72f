// Lookup-table kernel for repacked 1-bit weights (packed.h) with int8 activations, AVX2 + FMA +
// F16C: the AVX-512 kernel's method (tmac_avx512.cpp) with 16-byte pshufb tables.
//
// The weights are packed with byte_rows (packed.h): a 64-byte line of a block holds 32 weights
// of 16 rows as  A = [byte t=0 of rows 0-15 | t=2],  B = [t=1 | t=3]  (byte t: weights 8t .. 8t+7,
// low nibble quad 2t, high nibble quad 2t+1), so each nibble of a 128-bit lane indexes the
// 16-entry table of one quad. A subset sum S of four int8 activations (|S| <= 508) is split
// S = 64 h + l with l in [0, 63] and h in [-8, 7], one byte table each: the four l lookups of a
// line add up in bytes (<= 252) and are widened to int16 once per line; the h lookups add up in
// bytes over a whole group (16 quads a lane at g = 128: [-128, 112]) and are widened once per
// group. 512 weights cost two loads, six nibble ops, eight lookups, seven byte adds, two unpacks
// and two int16 adds: no bit expansion. Per group the exact integer sums (lanes hold different
// quads of the same rows; |sum| <= 16256 after folding) are converted and scaled by scale * dx
// for 16 rows at once: the numerics of quant::qmm_t_int8_ref up to float32 rounding, and each
// (m, n) is computed the same way whatever M is (batch invariant).
//
// Table layout per activation row, chunk C (k = 32C .. 32C+31), 8 x 32 bytes: entry j has
// lanes L = 0, 1 for quad 8C + 2 (j / 4) + (j / 2) % 2 + 4 L (j / 4: A or B; (j / 2) % 2: low or
// high nibble), the l (j even) or h (j odd) bytes of its 16 subset sums.
//
// float32 activations (tmac_one_bit_f32_avx2): per 8 activations 8o .. 8o + 7, three tables of
// 8 floats ([K/8][3][8]): the subset sums of activations 8o .. 8o+2, of 8o+3 .. 8o+5, and of
// 8o+6, 8o+7 (entries 0-3; 4-7 repeat them). A byte of 8 rows widened to dwords indexes them
// by itself, shifted by 3 and by 6: vpermps reads the low three bits of each lane. 64 weights
// of 8 rows cost a widening load, 2 shifts, 3 vpermps and 3 adds, where the bit-expansion
// kernel (kernels_avx2.cpp) spends 24 operations.
//
// Loads are whole blocks of the packed buffers (padded to 16 rows), never past their ends.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/avx2_common.h"
#include "backend/cpu/packed.h"

namespace onebit::cpu {

namespace {

// 8 int16 sums per lane (rows 0-7 twice, from different quads) -> the 8 rows' float32 totals.
inline __m256 fold(__m256i acc) {
    const __m128i s = _mm_add_epi16(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    return _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(s));
}

// Block b of the packed weights (16 rows, padded): its group records, scales and biases as two
// ymm of 8 rows (r = 0: rows 0-7, 1: rows 8-15), and the store of its results (the AVX2 side of
// packed_avx512.h's Block).
struct Block {
    const uint8_t* base;  // record of group 0
    int64_t rows, ng, stride, code_bytes;
    size_t es;
    DType sdt;
    bool symmetric;
    Block(const PackedWeights& p, int64_t b, int g)
        : ng(p.K / g),
          stride(p.group_stride),
          code_bytes(2 * g),
          es(dtype_size(p.sdt)),
          sdt(p.sdt),
          symmetric(p.symmetric) {
        base = static_cast<const uint8_t*>(p.data.data()) + b * ng * stride;
        rows = p.N - b * 16 < 16 ? p.N - b * 16 : 16;
    }
    const uint8_t* record(int64_t gi) const { return base + gi * stride; }
    // Every line of the record kAhead bytes past group gi's into L1. One line a record 2 KiB
    // ahead (the hardware prefetcher left to find the rest) gave 1.7B's int8 tg128 48.0 t/s on
    // an AVX2 VM, this 58.6 (alternating builds; BENCHMARKS.md, 2026-12-07).
    void prefetch(int64_t gi) const {
        constexpr int64_t kAhead = 8192;
        for (int64_t off = 0; off < stride; off += 64)
            _mm_prefetch(reinterpret_cast<const char*>(record(gi) + kAhead + off), _MM_HINT_T0);
    }
    __m256 scale(int64_t gi, int r) const { return load8(sdt, record(gi) + code_bytes, 8 * r); }
    // accb + bias * xsum_g for rows 8r .. 8r + 7 (-scale / 2 in the symmetric form)
    __m256 add_bias(int64_t gi, int r, __m256 s, float xsum_g, __m256 accb) const {
        if (symmetric) return _mm256_fmadd_ps(s, _mm256_set1_ps(-0.5f * xsum_g), accb);
        return _mm256_fmadd_ps(load8(sdt, record(gi) + code_bytes + 16 * es, 8 * r),
                               _mm256_set1_ps(xsum_g), accb);
    }
    // y[m, 16 b + r] = v[r / 8] lane r % 8, for the block's real rows
    void store(const PackedWeights& p, int64_t b, int64_t m, __m256 v0, __m256 v1, void* y,
               DType ydt) const {
        alignas(32) float out[16];
        _mm256_store_ps(out, v0);
        _mm256_store_ps(out + 8, v1);
        for (int64_t r = 0; r < rows; ++r) store_y(ydt, y, m * p.N + b * 16 + r, out[r]);
    }
};

template <int G>
void block_rows(const PackedWeights& p, const uint8_t* tables, const float* dx, const float* xsum,
                int64_t M, int64_t b, void* y, DType ydt) {
    constexpr int kChunks = G / 32;  // 64-byte lines per group record
    const Block blk(p, b, G);
    const int64_t ng = blk.ng;
    const __m256i nib = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (int64_t m = 0; m < M; ++m) {
        const uint8_t* tm = tables + m * p.K * 8;
        const float* dxm = dx + m * ng;
        const float* xsm = xsum + m * ng;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 accb[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t gi = 0; gi < ng; ++gi) {
            const uint8_t* rec = blk.record(gi);
            if (m == 0) blk.prefetch(gi);
            __m256i l0 = zero, l1 = zero, h = zero;  // l: rows 0-7, 8-15 (int16); h: bytes
            for (int c = 0; c < kChunks; ++c) {
                const auto* t = reinterpret_cast<const __m256i*>(tm + (gi * kChunks + c) * 256);
                const __m256i va =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 64 * c));
                const __m256i vb =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 64 * c + 32));
                const __m256i n[4] = {
                    _mm256_and_si256(va, nib), _mm256_and_si256(_mm256_srli_epi16(va, 4), nib),
                    _mm256_and_si256(vb, nib), _mm256_and_si256(_mm256_srli_epi16(vb, 4), nib)};
                __m256i l = _mm256_shuffle_epi8(_mm256_loadu_si256(t), n[0]);
                for (int i = 1; i < 4; ++i)
                    l = _mm256_add_epi8(l,
                                        _mm256_shuffle_epi8(_mm256_loadu_si256(t + 2 * i), n[i]));
                for (int i = 0; i < 4; ++i)
                    h = _mm256_add_epi8(
                        h, _mm256_shuffle_epi8(_mm256_loadu_si256(t + 2 * i + 1), n[i]));
                l0 = _mm256_add_epi16(l0, _mm256_unpacklo_epi8(l, zero));
                l1 = _mm256_add_epi16(l1, _mm256_unpackhi_epi8(l, zero));
            }
            // S = l + 64 h; h's bytes sign-extended to int16 by placing them high and shifting
            const __m256i s16[2] = {
                _mm256_add_epi16(
                    l0, _mm256_slli_epi16(_mm256_srai_epi16(_mm256_unpacklo_epi8(zero, h), 8), 6)),
                _mm256_add_epi16(
                    l1, _mm256_slli_epi16(_mm256_srai_epi16(_mm256_unpackhi_epi8(zero, h), 8), 6))};
            const __m256 dxg = _mm256_set1_ps(dxm[gi]);
            for (int r = 0; r < 2; ++r) {
                const __m256 s = blk.scale(gi, r);
                acc[r] = _mm256_fmadd_ps(fold(s16[r]), _mm256_mul_ps(s, dxg), acc[r]);
                accb[r] = blk.add_bias(gi, r, s, xsm[gi], accb[r]);
            }
        }
        blk.store(p, b, m, _mm256_add_ps(acc[0], accb[0]), _mm256_add_ps(acc[1], accb[1]), y,
                  ydt);
    }
}

// float32 activations: block b's 16 rows for activation rows [0, M); tables [M][K/8][3][8].
template <int G>
void block_rows_f32(const PackedWeights& p, const float* tables, const float* xsum, int64_t M,
                    int64_t b, void* y, DType ydt) {
    constexpr int kChunks = G / 32;  // 64-byte lines per group record
    const Block blk(p, b, G);
    const int64_t ng = blk.ng;
    for (int64_t m = 0; m < M; ++m) {
        const float* tm = tables + m * (p.K / 8) * 24;
        const float* xsm = xsum + m * ng;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 accb[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t gi = 0; gi < ng; ++gi) {
            const uint8_t* rec = blk.record(gi);
            if (m == 0) blk.prefetch(gi);
            // [r][i]: rows 8r .. 8r + 7, two sums alternating by byte
            __m256 part[2][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()},
                                 {_mm256_setzero_ps(), _mm256_setzero_ps()}};
            for (int c = 0; c < kChunks; ++c)
                for (int t = 0; t < 4; ++t) {
                    // byte t of rows 0-15: weights 32c + 8t .. 32c + 8t + 7, octet o
                    const uint8_t* bytes = rec + 64 * c + (t % 2) * 32 + (t / 2) * 16;
                    const float* to = tm + ((gi * G + 32 * c + 8 * t) / 8) * 24;
                    const __m256 t0 = _mm256_loadu_ps(to), t1 = _mm256_loadu_ps(to + 8),
                                 t2 = _mm256_loadu_ps(to + 16);
                    for (int r = 0; r < 2; ++r) {
                        const __m256i v = _mm256_cvtepu8_epi32(
                            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes + 8 * r)));
                        const __m256 e =
                            _mm256_add_ps(_mm256_add_ps(_mm256_permutevar8x32_ps(t0, v),
                                                        _mm256_permutevar8x32_ps(
                                                            t1, _mm256_srli_epi32(v, 3))),
                                          _mm256_permutevar8x32_ps(t2, _mm256_srli_epi32(v, 6)));
                        part[r][t % 2] = _mm256_add_ps(part[r][t % 2], e);
                    }
                }
            for (int r = 0; r < 2; ++r) {
                const __m256 s = blk.scale(gi, r);
                acc[r] = _mm256_fmadd_ps(_mm256_add_ps(part[r][0], part[r][1]), s, acc[r]);
                accb[r] = blk.add_bias(gi, r, s, xsm[gi], accb[r]);
            }
        }
        blk.store(p, b, m, _mm256_add_ps(acc[0], accb[0]), _mm256_add_ps(acc[1], accb[1]), y,
                  ydt);
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
        for (int64_t b = b0; b < b1; ++b) block_rows<G>(p, tables, dx, xsum, M, b, y, ydt);
    }
};

}  // namespace

void quantize_activations_int8_avx2(const float* x, int64_t K, int g, int8_t* xq, float* dx,
                                    float* xsum) noexcept {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    // int32 lanes -> bytes 0-3 of each 128-bit lane, then lanes' dwords 0 and 4 side by side
    const __m256i to_bytes =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (int64_t G = 0; G < K / g; ++G) {
        const float* xg = x + G * g;
        __m256 amax = _mm256_setzero_ps();
        for (int i = 0; i < g; i += 8)
            amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(xg + i), absmask));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        // the reference's arithmetic: d = amax / 127, inv = 1 / d, q = rint(x * inv), clamp
        const float d = _mm_cvtss_f32(m4) / 127.0f;
        const float inv = d > 0.0f ? 1.0f / d : 0.0f;
        dx[G] = d;
        const __m256 vinv = _mm256_set1_ps(inv);
        for (int i = 0; i < g; i += 8) {
            __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xg + i), vinv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
            const __m256i b = _mm256_shuffle_epi8(_mm256_cvtps_epi32(q), to_bytes);
            const uint32_t b0 = static_cast<uint32_t>(_mm256_extract_epi32(b, 0)),
                           b1 = static_cast<uint32_t>(_mm256_extract_epi32(b, 4));
            std::memcpy(xq + G * g + i, &b0, 4);
            std::memcpy(xq + G * g + i + 4, &b1, 4);
        }
    }
    // group sums in the reference's serial order, eight groups side by side (lane j gathers
    // group G + j's values one by one)
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i offsets = _mm256_mullo_epi32(lane, _mm256_set1_epi32(g));
    for (int64_t G = 0; G < K / g; G += 8) {
        const int live = K / g - G < 8 ? static_cast<int>(K / g - G) : 8;
        const __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(live), lane));
        __m256 sum = _mm256_setzero_ps();
        for (int i = 0; i < g; ++i)
            sum = _mm256_add_ps(sum, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), x + G * g + i,
                                                              offsets, mask, 4));
        _mm256_maskstore_ps(xsum + G, _mm256_castps_si256(mask), sum);
    }
}

void tmac_tables_avx2(const int8_t* xq, int64_t q0, int64_t q1, uint8_t* tables) noexcept {
    const __m256i low6 = _mm256_set1_epi16(0x003f);
    __m256i bit[4];  // lane n: all ones where bit b of n is set
    for (int b = 0; b < 4; ++b) {
        alignas(32) int16_t m[16];
        for (int n = 0; n < 16; ++n) m[n] = static_cast<int16_t>((n >> b & 1) ? -1 : 0);
        bit[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
    }
    for (int64_t c = q0 / 8; c < q1 / 8; ++c) {
        // the chunk's 32 activations as int16, then each quad's 16 subset sums: entry n adds
        // activation b where bit b of n is set
        alignas(32) int16_t x16[32];
        const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * c));
        _mm256_store_si256(reinterpret_cast<__m256i*>(x16),
                           _mm256_cvtepi8_epi16(_mm256_castsi256_si128(xb)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(x16 + 16),
                           _mm256_cvtepi8_epi16(_mm256_extracti128_si256(xb, 1)));
        __m256i e[8];
        for (int q = 0; q < 8; ++q) {
            e[q] = _mm256_and_si256(bit[0], _mm256_set1_epi16(x16[4 * q]));
            for (int b = 1; b < 4; ++b)
                e[q] = _mm256_add_epi16(
                    e[q], _mm256_and_si256(bit[b], _mm256_set1_epi16(x16[4 * q + b])));
        }
        uint8_t* dst = tables + c * 256;
        for (int j = 0; j < 8; j += 2) {  // tables j (l = S & 63) and j + 1 (h = S >> 6)
            const int q = 2 * (j / 4) + (j / 2) % 2;  // lane 0's quad; lane 1's is q + 4
            const __m256i a = e[q], b = e[q + 4];
            // packs work per 128-bit lane: [a 0-7, b 0-7 | a 8-15, b 8-15] -> qwords 0, 2, 1, 3
            const __m256i l =
                _mm256_packus_epi16(_mm256_and_si256(a, low6), _mm256_and_si256(b, low6));
            const __m256i h = _mm256_packs_epi16(_mm256_srai_epi16(a, 6), _mm256_srai_epi16(b, 6));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * j),
                                _mm256_permute4x64_epi64(l, 0xd8));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * (j + 1)),
                                _mm256_permute4x64_epi64(h, 0xd8));
        }
    }
}

void tmac_one_bit_avx2(const PackedWeights& p, const uint8_t* tables, const float* dx,
                       const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                       DType ydt) noexcept {
    by_group<Blocks>(p.group_size, p, tables, dx, xsum, M, b0, b1, y, ydt);
}

void tmac_tables_f32_avx2(const float* x, int64_t o0, int64_t o1, float* t) noexcept {
    // entry i of a table: the sum of its activations b (0-2; 0-1 for the third table) with bit b
    // of i set, added in order of b
    alignas(32) float masks[3][8];
    for (int b = 0; b < 3; ++b)
        for (int i = 0; i < 8; ++i) masks[b][i] = (i >> b & 1) ? 1.0f : 0.0f;
    const __m256 m0 = _mm256_load_ps(masks[0]), m1 = _mm256_load_ps(masks[1]),
                 m2 = _mm256_load_ps(masks[2]);
    for (int64_t o = o0; o < o1; ++o) {
        const float* xs = x + 8 * (o - o0);
        float* d = t + o * 24;
        for (int k = 0; k < 2; ++k) {
            __m256 e = _mm256_mul_ps(m0, _mm256_set1_ps(xs[3 * k]));
            e = _mm256_fmadd_ps(m1, _mm256_set1_ps(xs[3 * k + 1]), e);
            e = _mm256_fmadd_ps(m2, _mm256_set1_ps(xs[3 * k + 2]), e);
            _mm256_storeu_ps(d + 8 * k, e);
        }
        const __m256 e = _mm256_fmadd_ps(m1, _mm256_set1_ps(xs[7]),
                                         _mm256_mul_ps(m0, _mm256_set1_ps(xs[6])));
        _mm256_storeu_ps(d + 16, e);
    }
}

void tmac_one_bit_f32_avx2(const PackedWeights& p, const float* tables, const float* xsum,
                           int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) noexcept {
    by_group<BlocksF32>(p.group_size, p, tables, xsum, M, b0, b1, y, ydt);
}

}  // namespace onebit::cpu
