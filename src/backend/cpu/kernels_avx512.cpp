// AVX-512 kernels (F, BW, VL, DQ). Compiled with those flags; called only when cpu_has(avx512).
//
// qmm_t_1bit: y[m,n] = sum_G scale[n,G] * (sum of x over the set bits of group G) + bias[n,G] *
//   xsum[m,G]. Each 16-bit slice of a weight row is a mask register; the group's partial sum is
//   built with masked adds of 16 floats of x (no multiplies), then scaled with one FMA per
//   group into a vector accumulator reduced once per row. Four weight rows run together
//   (independent dependency chains); each (m, n) result is computed by the same instruction
//   sequence whatever M is, so results are batch invariant.
// qmm_t (bits 2..8): 32 codes at a time are unpacked from the bit stream with dword permutes and
//   variable shifts (codes may straddle dwords for 3, 5 and 6 bits), converted to float and
//   multiplied into the group sum; the rest as above.
// qmm_n: row k of the weight holds the codes of all N outputs; y[m, :] += (x[m,k] * scale) * q +
//   x[m,k] * bias over 32-wide column chunks.
// dequantize: unpacks as above; multiply, round to the scales' dtype, add, round (bit-exact with
//   the reference, which is bit-exact with MLX).
// Loads of packed data are masked to the exact words of the row: nothing is read past a row end
// for any K that is a multiple of the group size. Matches the reference within FORMAT.md's
// bound (tests/test_backend_consistency.cpp).
#include <immintrin.h>

#include "backend/cpu/avx512_common.h"
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// 32 codes of BITS bits starting at a word boundary (32 codes = BITS words) -> two float vectors.
template <int BITS>
struct Unpack32 {
    __m512i lo_idx[2], hi_idx[2], lo_sh[2], hi_sh[2];
    __m512i mask;
    __mmask16 load_mask;

    Unpack32() {
        alignas(64) int32_t li[32], hi[32], ls[32], hs[32];
        for (int i = 0; i < 32; ++i) {
            int p = i * BITS;
            li[i] = p / 32;
            ls[i] = p % 32;
            hi[i] = (p / 32 + 1 < 15 ? p / 32 + 1 : 15);
            hs[i] = 32 - p % 32;  // 32 shifts everything out: no contribution
        }
        for (int h = 0; h < 2; ++h) {
            lo_idx[h] = _mm512_load_si512(li + 16 * h);
            hi_idx[h] = _mm512_load_si512(hi + 16 * h);
            lo_sh[h] = _mm512_load_si512(ls + 16 * h);
            hi_sh[h] = _mm512_load_si512(hs + 16 * h);
        }
        mask = _mm512_set1_epi32((1 << BITS) - 1);
        load_mask = static_cast<__mmask16>((1u << BITS) - 1u);
    }

    inline void operator()(const uint32_t* w, __m512& f0, __m512& f1) const {
        __m512i data = _mm512_maskz_loadu_epi32(load_mask, w);
        __m512i v[2];
        for (int h = 0; h < 2; ++h) {
            __m512i lo = _mm512_srlv_epi32(_mm512_permutexvar_epi32(lo_idx[h], data), lo_sh[h]);
            if constexpr (32 % BITS != 0) {
                __m512i hi = _mm512_sllv_epi32(_mm512_permutexvar_epi32(hi_idx[h], data), hi_sh[h]);
                lo = _mm512_or_si512(lo, hi);
            }
            v[h] = _mm512_and_si512(lo, mask);
        }
        f0 = _mm512_cvtepi32_ps(v[0]);
        f1 = _mm512_cvtepi32_ps(v[1]);
    }
};

// R rows of a 1-bit qmm_t with group size G for one activation row x.
template <int G, int R>
inline void one_bit_rows(const QmmTask& t, const Strides& st, int64_t n0, int64_t m) {
    const auto& a = t.a;
    constexpr int kSteps = G / 16;
    const float* x = t.xf + m * a.K;
    const float* xs = t.xsum + m * st.n_groups;
    const uint16_t* bits[R];
    const uint8_t* scales[R];
    for (int r = 0; r < R; ++r) {
        bits[r] = reinterpret_cast<const uint16_t*>(a.w + (n0 + r) * st.ldw);
        scales[r] = static_cast<const uint8_t*>(a.scales) + (n0 + r) * st.lds * st.s_size;
    }
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    constexpr int kGroupsPerLine = 512 / G;  // 64 bytes of bits
    const int64_t ahead = R * st.ldw * 4;    // same row of the next block, in bytes
    for (int64_t gi = 0; gi < st.n_groups; ++gi) {
        const float* xg = x + gi * G;
        if (gi % kGroupsPerLine == 0)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(bits[r] + gi * kSteps) + ahead,
                             _MM_HINT_T0);
        __m512 part[R];
        __m512 xv = _mm512_loadu_ps(xg);
        for (int r = 0; r < R; ++r) part[r] = _mm512_maskz_mov_ps(bits[r][gi * kSteps], xv);
        for (int j = 1; j < kSteps; ++j) {
            xv = _mm512_loadu_ps(xg + 16 * j);
            for (int r = 0; r < R; ++r)
                part[r] = _mm512_mask_add_ps(part[r], bits[r][gi * kSteps + j], part[r], xv);
        }
        for (int r = 0; r < R; ++r)
            acc[r] =
                _mm512_fmadd_ps(part[r], _mm512_set1_ps(scalar_at(a.sdt, scales[r], gi)), acc[r]);
    }
    for (int r = 0; r < R; ++r) {
        float y =
            _mm512_reduce_add_ps(acc[r]) + row_bias_with(bias_dot, a, n0 + r, xs, st.n_groups);
        store_y(a.ydt, a.y, m * st.ldy + n0 + r, y);
    }
}

template <int G>
struct OneBit {
    static void run(const QmmTask& t) {
        const Strides st(t.a);
        for_row_blocks(t, [&](auto rows, int64_t n0, int64_t m) {
            one_bit_rows<G, decltype(rows)::value>(t, st, n0, m);
        });
    }
};

// R rows of a BITS-bit qmm_t for one activation row x.
template <int BITS, int R>
inline void multi_bit_rows(const QmmTask& t, const Unpack32<BITS>& unpack, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int g = a.group_size;
    const int64_t n_groups = a.K / g, ldw = a.w_stride(), lds = a.s_stride();
    const float* x = t.xf + m * a.K;
    const float* xs = t.xsum + m * n_groups;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t G = 0; G < n_groups; ++G) {
        __m512 part[R];
        for (int r = 0; r < R; ++r) part[r] = _mm512_setzero_ps();
        for (int j = 0; j < g; j += 32) {
            const int64_t k = G * g + j;
            __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
            for (int r = 0; r < R; ++r) {
                __m512 q0, q1;
                unpack(a.w + (n0 + r) * ldw + k / 32 * BITS, q0, q1);
                part[r] = _mm512_fmadd_ps(q0, x0, part[r]);
                part[r] = _mm512_fmadd_ps(q1, x1, part[r]);
            }
        }
        for (int r = 0; r < R; ++r) {
            float s = scalar_at(a.sdt, a.scales, (n0 + r) * lds + G);
            acc[r] = _mm512_fmadd_ps(part[r], _mm512_set1_ps(s), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float y = _mm512_reduce_add_ps(acc[r]) + row_bias_with(bias_dot, a, n0 + r, xs, n_groups);
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
                    __m512 c = _mm512_set1_ps(xk * scalar_at(a.sdt, a.scales, k * lds + G));
                    __m512 d = _mm512_set1_ps(
                        xk * (a.biases ? scalar_at(a.sdt, a.biases, k * lds + G)
                                       : -0.5f * scalar_at(a.sdt, a.scales, k * lds + G)));
                    __m512 q0, q1;
                    unpack(row + n / 32 * BITS, q0, q1);
                    _mm512_storeu_ps(
                        acc + n,
                        _mm512_add_ps(_mm512_fmadd_ps(q0, c, _mm512_loadu_ps(acc + n)), d));
                    _mm512_storeu_ps(
                        acc + n + 16,
                        _mm512_add_ps(_mm512_fmadd_ps(q1, c, _mm512_loadu_ps(acc + n + 16)), d));
                }
            }
            for (int64_t n = 0; n < a.N; ++n) store_y(a.ydt, a.y, m * a.y_stride() + n, acc[n]);
        }
    }
};

// Rounds 16 floats to dtype dt's precision (float32: unchanged), matching round_to().
inline __m512 round_vec(DType dt, __m512 v) {
    if (dt == DType::float16) return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    if (dt == DType::bfloat16) {
        __m512i u = _mm512_castps_si512(v);
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
        r = _mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u)));
        // NaN stays NaN (quiet)
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
        return _mm512_castsi512_ps(r);
    }
    return v;
}

inline __m512 load_broadcast(DType dt, const void* p, int64_t i) {
    return _mm512_set1_ps(scalar_at(dt, p, i));
}

inline void store_out(DType dt, void* out, int64_t i, __m512 v) {
    if (dt == DType::float32) {
        _mm512_storeu_ps(static_cast<float*>(out) + i, v);
    } else if (dt == DType::float16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint16_t*>(out) + i),
                            _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    } else {  // bfloat16, already rounded: take the high halves
        __m512i h = _mm512_srli_epi32(_mm512_castps_si512(v), 16);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint16_t*>(out) + i),
                            _mm512_cvtepi32_epi16(h));
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
                __m512 sv = load_broadcast(sdt, s, G), bv = load_broadcast(sdt, b, G);
                __m512 q[2];
                unpack(w + r * words + k / 32 * BITS, q[0], q[1]);
                for (int h = 0; h < 2; ++h) {
                    __m512 v = round_vec(sdt, _mm512_mul_ps(sv, q[h]));
                    v = round_vec(sdt, _mm512_add_ps(v, bv));
                    store_out(sdt, out, r * K + k + 16 * h, v);
                }
            }
        }
    }
};

}  // namespace

void qmm_t_1bit_avx512(const QmmTask& t) noexcept { by_group<OneBit>(t.a.group_size, t); }

void qmm_t_avx512(const QmmTask& t) noexcept { by_bits<QmmT>(t.a.bits, t); }

void qmm_n_avx512(const QmmTask& t) noexcept { by_bits<QmmN>(t.a.bits, t); }

void dequantize_avx512(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                       int64_t K, int g, int bits, void* out) noexcept {
    by_bits<Deq>(bits, w, s, b, sdt, rows, K, g, out);
}

int64_t fma_burst_avx512() noexcept {
    __m512 acc[12];
    for (auto& v : acc) v = _mm512_setzero_ps();
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    const int64_t iters = 4'000'000;
    for (int64_t i = 0; i < iters; ++i)
        for (auto& v : acc) v = _mm512_fmadd_ps(v, m, c);
    for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    volatile float sink = _mm512_reduce_add_ps(acc[0]);
    (void)sink;
    return iters * 12 * 16 * 2;
}

}  // namespace onebit::cpu
