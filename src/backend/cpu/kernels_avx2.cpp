// AVX2 + FMA + F16C kernels: the AVX-512 file's algorithms with 8-lane vectors and no mask
// registers (see kernels_avx512.cpp for the method). 1-bit: a 32-bit word of weight bits is
// broadcast and shifted per lane so that bit i lands in lane i's sign bit; blendv then selects x
// or 0 before the add. Packed loads use maskload, so nothing is read past a row end.
// Matches the reference within FORMAT.md's bound (tests/test_backend_consistency.cpp).
// int8 activations, 1 bit (qmm_t_int8_1bit_avx2): each 32-bit word of weight bits is spread to
// 32 bytes of 0 / 1 (byte shuffle, bit mask, unsigned min), and vpmaddubsw of those against xq
// sums the selected pairs into int16 (at most 4 x 254 per group of 128: no overflow), vpmaddwd
// widens once per group, and the group sum is scaled by scale * dx in float. Integer sums are
// exact, so the result matches qmm_t_int8_ref up to float32 rounding.
#include <immintrin.h>

#include "backend/cpu/avx2_common.h"
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 32 codes of BITS bits starting at a word boundary -> four float vectors.
template <int BITS>
struct Unpack32 {
    __m256i lo_idx[4], hi_idx[4], lo_sh[4], hi_sh[4];
    __m256i mask, load_mask;

    Unpack32() {
        alignas(32) int32_t li[32], hi[32], ls[32], hs[32], lm[8];
        for (int i = 0; i < 32; ++i) {
            int p = i * BITS;
            li[i] = p / 32;
            ls[i] = p % 32;
            hi[i] = (p / 32 + 1 < 7 ? p / 32 + 1 : 7);
            hs[i] = 32 - p % 32;
        }
        for (int i = 0; i < 8; ++i) lm[i] = i < BITS ? -1 : 0;
        for (int h = 0; h < 4; ++h) {
            lo_idx[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(li + 8 * h));
            hi_idx[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + 8 * h));
            lo_sh[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(ls + 8 * h));
            hi_sh[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hs + 8 * h));
        }
        mask = _mm256_set1_epi32((1 << BITS) - 1);
        load_mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lm));
    }

    inline void operator()(const uint32_t* w, __m256* f) const {
        __m256i data = _mm256_maskload_epi32(reinterpret_cast<const int*>(w), load_mask);
        for (int h = 0; h < 4; ++h) {
            __m256i lo = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(data, lo_idx[h]), lo_sh[h]);
            if constexpr (32 % BITS != 0) {
                __m256i hi =
                    _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(data, hi_idx[h]), hi_sh[h]);
                lo = _mm256_or_si256(lo, hi);
            }
            f[h] = _mm256_cvtepi32_ps(_mm256_and_si256(lo, mask));
        }
    }
};

inline float bias_dot(DType sdt, const void* biases, const float* xsum, int64_t n_groups) {
    __m256 acc = _mm256_setzero_ps();
    int64_t G = 0;
    for (; G + 8 <= n_groups; G += 8)
        acc = _mm256_fmadd_ps(load8(sdt, biases, G), _mm256_loadu_ps(xsum + G), acc);
    float s = hsum(acc);
    for (; G < n_groups; ++G) s += scalar_at(sdt, biases, G) * xsum[G];
    return s;
}

// Calls f(Rows<R>{}, Rows<MT>{}, n0, m) over the weight rows of a task in blocks of 4 (then single
// rows) and its activation rows two at a time (then one): kernels that share each expanded weight
// word between MT activation rows, computing every (m, n) the same way in any block.
template <typename F>
inline void for_row_pairs(const QmmTask& t, F&& f) {
    auto over_m = [&](auto rows, int64_t n0) {
        int64_t m = 0;
        for (; m + 2 <= t.a.M; m += 2) f(rows, Rows<2>{}, n0, m);
        if (m < t.a.M) f(rows, Rows<1>{}, n0, m);
    };
    int64_t n0 = 0;
    for (; n0 + 4 <= t.a.N; n0 += 4) over_m(Rows<4>{}, n0);
    for (; n0 < t.a.N; ++n0) over_m(Rows<1>{}, n0);
}

// R weight rows x MT activation rows (m .. m + MT - 1) of the float32 1-bit kernel: each shifted
// word serves the MT rows, and every (m, n) gets the same operations whatever MT is.
template <int R, int MT>
inline void one_bit_rows(const QmmTask& t, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int g = a.group_size;
    const int64_t n_groups = a.K / g, ldw = a.w_stride(), lds = a.s_stride();
    // lane i of chunk c (bits 8c..8c+7 of a word) shifts bit 8c+i into the sign bit
    const __m256i shift[4] = {_mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24),
                              _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16),
                              _mm256_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8),
                              _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)};
    const __m256 zero = _mm256_setzero_ps();
    __m256 acc[MT][R];
    for (int i = 0; i < MT; ++i)
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_setzero_ps();
    for (int64_t G = 0; G < n_groups; ++G) {
        __m256 part[MT][R];
        for (int i = 0; i < MT; ++i)
            for (int r = 0; r < R; ++r) part[i][r] = _mm256_setzero_ps();
        for (int j = 0; j < g; j += 32) {
            const int64_t k = G * g + j;
            __m256i word[R];
            for (int r = 0; r < R; ++r)
                word[r] = _mm256_set1_epi32(static_cast<int>(a.w[(n0 + r) * ldw + k / 32]));
            for (int c = 0; c < 4; ++c) {
                __m256 xv[MT];
                for (int i = 0; i < MT; ++i)
                    xv[i] = _mm256_loadu_ps(t.xf + (m + i) * a.K + k + 8 * c);
                for (int r = 0; r < R; ++r) {
                    const __m256 sel = _mm256_castsi256_ps(_mm256_sllv_epi32(word[r], shift[c]));
                    for (int i = 0; i < MT; ++i)
                        part[i][r] = _mm256_add_ps(part[i][r], _mm256_blendv_ps(zero, xv[i], sel));
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            const __m256 s = _mm256_set1_ps(scalar_at(a.sdt, a.scales, (n0 + r) * lds + G));
            for (int i = 0; i < MT; ++i) acc[i][r] = _mm256_fmadd_ps(part[i][r], s, acc[i][r]);
        }
    }
    for (int i = 0; i < MT; ++i)
        for (int r = 0; r < R; ++r) {
            const float* xs = t.xsum + (m + i) * n_groups;
            const float y = hsum(acc[i][r]) + row_bias_with(bias_dot, a, n0 + r, xs, n_groups);
            store_y(a.ydt, a.y, (m + i) * a.y_stride() + n0 + r, y);
        }
}

template <int BITS, int R>
inline void multi_bit_rows(const QmmTask& t, const Unpack32<BITS>& unpack, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int g = a.group_size;
    const int64_t n_groups = a.K / g, ldw = a.w_stride(), lds = a.s_stride();
    const float* x = t.xf + m * a.K;
    const float* xs = t.xsum + m * n_groups;
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t G = 0; G < n_groups; ++G) {
        __m256 part[R];
        for (int r = 0; r < R; ++r) part[r] = _mm256_setzero_ps();
        for (int j = 0; j < g; j += 32) {
            const int64_t k = G * g + j;
            for (int r = 0; r < R; ++r) {
                __m256 q[4];
                unpack(a.w + (n0 + r) * ldw + k / 32 * BITS, q);
                for (int c = 0; c < 4; ++c)
                    part[r] = _mm256_fmadd_ps(q[c], _mm256_loadu_ps(x + k + 8 * c), part[r]);
            }
        }
        for (int r = 0; r < R; ++r) {
            float s = scalar_at(a.sdt, a.scales, (n0 + r) * lds + G);
            acc[r] = _mm256_fmadd_ps(part[r], _mm256_set1_ps(s), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float y = hsum(acc[r]) + row_bias_with(bias_dot, a, n0 + r, xs, n_groups);
        store_y(a.ydt, a.y, m * a.y_stride() + n0 + r, y);
    }
}

template <int BITS>
struct QmmT {
    static void run(const QmmTask& t) {
        static const Unpack32<BITS> unpack;
        for_row_blocks(t, [&](auto rows, int64_t n0, int64_t m) {
            multi_bit_rows<BITS, decltype(rows)::value>(t, unpack, n0, m);
        });
    }
};

template <int BITS>
struct QmmN {
    static void run(const QmmTask& t) {
        static const Unpack32<BITS> unpack;
        const auto& a = t.a;
        const int g = a.group_size;
        const int64_t ldw = a.w_stride(), lds = a.s_stride();
        float* acc = t.scratch;  // [N] one output row
        for (int64_t m = 0; m < a.M; ++m) {
            for (int64_t n = 0; n < a.N; ++n) acc[n] = 0.0f;
            for (int64_t k = 0; k < a.K; ++k) {
                const float xk = t.xf[m * a.K + k];
                const uint32_t* row = a.w + k * ldw;
                for (int64_t n = 0; n < a.N; n += 32) {
                    const int64_t G = n / g;
                    __m256 c = _mm256_set1_ps(xk * scalar_at(a.sdt, a.scales, k * lds + G));
                    __m256 d = _mm256_set1_ps(
                        xk * (a.biases ? scalar_at(a.sdt, a.biases, k * lds + G)
                                       : -0.5f * scalar_at(a.sdt, a.scales, k * lds + G)));
                    __m256 q[4];
                    unpack(row + n / 32 * BITS, q);
                    for (int h = 0; h < 4; ++h) {
                        float* p = acc + n + 8 * h;
                        _mm256_storeu_ps(
                            p, _mm256_add_ps(_mm256_fmadd_ps(q[h], c, _mm256_loadu_ps(p)), d));
                    }
                }
            }
            for (int64_t n = 0; n < a.N; ++n) store_y(a.ydt, a.y, m * a.y_stride() + n, acc[n]);
        }
    }
};

inline __m256 round_vec(DType dt, __m256 v) {
    if (dt == DType::float16) return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    if (dt == DType::bfloat16) {
        __m256i u = _mm256_castps_si256(v);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
        r = _mm256_and_si256(r, _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
        return _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(quiet), nan);
    }
    return v;
}

inline void store_out(DType dt, void* out, int64_t i, __m256 v) {
    if (dt == DType::float32) {
        _mm256_storeu_ps(static_cast<float*>(out) + i, v);
    } else if (dt == DType::float16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(out) + i),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    } else {
        __m256i h = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
        __m128i packed =
            _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(out) + i), packed);
    }
}

template <int BITS>
struct Deq {
    static void run(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                    int64_t K, int g, void* out) {
        static const Unpack32<BITS> unpack;
        const int64_t words = K * BITS / 32, n_groups = K / g;
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t k = 0; k < K; k += 32) {
                const int64_t G = r * n_groups + k / g;
                __m256 sv = _mm256_set1_ps(scalar_at(sdt, s, G));
                __m256 bv = _mm256_set1_ps(scalar_at(sdt, b, G));
                __m256 q[4];
                unpack(w + r * words + k / 32 * BITS, q);
                for (int h = 0; h < 4; ++h) {
                    __m256 v = round_vec(sdt, _mm256_mul_ps(sv, q[h]));
                    v = round_vec(sdt, _mm256_add_ps(v, bv));
                    store_out(sdt, out, r * K + k + 8 * h, v);
                }
            }
        }
    }
};

// R weight rows x MT activation rows (m .. m + MT - 1) of the 1-bit int8 kernel with group size
// G: each word's bits are expanded once and serve the MT activation rows. Every (m, n) gets the
// same operations whatever MT is (exact integer sums, then the same float steps).
template <int G, int R, int MT>
inline void int8_one_bit_rows(const QmmTask& t, const Strides& st, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const uint32_t* words[R];
    const uint8_t* scales[R];
    for (int r = 0; r < R; ++r) {
        words[r] = a.w + (n0 + r) * st.ldw;
        scales[r] = static_cast<const uint8_t*>(a.scales) + (n0 + r) * st.lds * st.s_size;
    }
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                         2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256 acc[MT][R];
    for (int i = 0; i < MT; ++i)
        for (int r = 0; r < R; ++r) acc[i][r] = _mm256_setzero_ps();
    for (int64_t gi = 0; gi < st.n_groups; ++gi) {
        __m256i part[MT][R];
        for (int i = 0; i < MT; ++i)
            for (int r = 0; r < R; ++r) part[i][r] = _mm256_setzero_si256();
        for (int j = 0; j < G / 32; ++j) {
            const int64_t wi = gi * (G / 32) + j;
            __m256i xv[MT];
            for (int i = 0; i < MT; ++i)
                xv[i] = _mm256_loadu_si256(
                    reinterpret_cast<const __m256i*>(t.xq + (m + i) * a.K + wi * 32));
            for (int r = 0; r < R; ++r) {
                __m256i v =
                    _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(words[r][wi])), sel);
                v = _mm256_min_epu8(_mm256_and_si256(v, bit), ones8);  // 1 where set, else 0
                for (int i = 0; i < MT; ++i)
                    part[i][r] = _mm256_add_epi16(part[i][r], _mm256_maddubs_epi16(v, xv[i]));
            }
        }
        for (int i = 0; i < MT; ++i) {
            const float dx = t.dx[(m + i) * st.n_groups + gi];
            for (int r = 0; r < R; ++r) {
                const __m256 isum = _mm256_cvtepi32_ps(_mm256_madd_epi16(part[i][r], ones16));
                const float s = scalar_at(a.sdt, scales[r], gi) * dx;
                acc[i][r] = _mm256_fmadd_ps(isum, _mm256_set1_ps(s), acc[i][r]);
            }
        }
    }
    for (int i = 0; i < MT; ++i)
        for (int r = 0; r < R; ++r) {
            const float* xs = t.xsum + (m + i) * st.n_groups;
            const float y = hsum(acc[i][r]) + row_bias_with(bias_dot, a, n0 + r, xs, st.n_groups);
            store_y(a.ydt, a.y, (m + i) * st.ldy + n0 + r, y);
        }
}

template <int G>
struct Int8OneBit {
    static void run(const QmmTask& t) {
        const Strides st(t.a);
        for_row_pairs(t, [&](auto rows, auto acts, int64_t n0, int64_t m) {
            int8_one_bit_rows<G, decltype(rows)::value, decltype(acts)::value>(t, st, n0, m);
        });
    }
};

}  // namespace

void qmm_t_int8_1bit_avx2(const QmmTask& t) noexcept { by_group<Int8OneBit>(t.a.group_size, t); }

void qmm_t_1bit_avx2(const QmmTask& t) noexcept {
    for_row_pairs(t, [&](auto rows, auto acts, int64_t n0, int64_t m) {
        one_bit_rows<decltype(rows)::value, decltype(acts)::value>(t, n0, m);
    });
}

void qmm_t_avx2(const QmmTask& t) noexcept { by_bits<QmmT>(t.a.bits, t); }

void qmm_n_avx2(const QmmTask& t) noexcept { by_bits<QmmN>(t.a.bits, t); }

void dequantize_avx2(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                     int64_t K, int g, int bits, void* out) noexcept {
    by_bits<Deq>(bits, w, s, b, sdt, rows, K, g, out);
}

int64_t fma_burst_avx2() noexcept {
    __m256 acc[12];
    for (auto& v : acc) v = _mm256_setzero_ps();
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    const int64_t iters = 4'000'000;
    for (int64_t i = 0; i < iters; ++i)
        for (auto& v : acc) v = _mm256_fmadd_ps(v, m, c);
    for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    volatile float sink = hsum(acc[0]);
    (void)sink;
    return iters * 12 * 8 * 2;
}

}  // namespace onebit::cpu
