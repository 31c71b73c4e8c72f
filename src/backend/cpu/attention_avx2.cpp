// Causal grouped-query attention, AVX2 + FMA: one KV head and up to kAttentionBlock query tokens
// (all the group's heads) per call, attention_scalar's loops in 8 lanes. Scores: 8 keys of a
// block (registry.h: key_index) in the lanes, per query two sums over d (even and odd
// components), each block read from L1 by every query of the call. Softmax: max, then e^(s - max)
// 8 positions at a time with a degree-6 polynomial (relative error about 2e-7, like expf; masked
// at the row's end), summed lane-wise. Output: per query, up to 64 outputs in registers over
// its positions, scaled by 1 / sum. Everything a query's output goes through depends only on
// its own row and length, so a token's bits do not depend on the tokens beside it (batch
// invariance); results differ from the plain loops by float rounding (test_backend_consistency
// checks both against float64).
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "backend/cpu/attention_common.h"
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// Lanes j < n set (n in 0 .. 8), as the mask argument of maskload / maskstore.
inline __m256i first_lanes(int64_t n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
}

inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// attention_scores_blocked's vector: 8 keys of a block.
struct Keys8 {
    static constexpr int64_t W = 8;
    using T = __m256;
    static T zero() { return _mm256_setzero_ps(); }
    static T load(const float* p) { return _mm256_loadu_ps(p); }
    static T set1(float x) { return _mm256_set1_ps(x); }
    static T fma(T a, T b, T acc) { return _mm256_fmadd_ps(a, b, acc); }
    static T add(T a, T b) { return _mm256_add_ps(a, b); }
    static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
};

// e^x for -87 <= x <= 0, lane-wise (attention_common.h: kExpPoly).
inline __m256 exp8(__m256 x) {
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), f);
    __m256 p = _mm256_set1_ps(kExpPoly[0]);
    for (int k = 1; k < 6; ++k) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExpPoly[k]));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, f), f, _mm256_add_ps(f, _mm256_set1_ps(1.0f)));
    // 2^n for n in [-126, 0]: the exponent field built directly
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// o[0 .. cn) = inv * sum_{p < len} w[p] * v[p * ldv + 0 .. cn), NR = ceil(cn / 8) registers.
template <int NR>
void weighted_sum(const float* w, int64_t len, const float* v, int64_t ldv, int64_t cn, float inv,
                  float* o) {
    const __m256i tail = first_lanes(cn - 8 * (NR - 1));
    __m256 acc[NR];
    for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t p = 0; p < len; ++p) {
        const __m256 wp = _mm256_set1_ps(w[p]);
        const float* vr = v + p * ldv;
        for (int r = 0; r < NR - 1; ++r)
            acc[r] = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vr + 8 * r), acc[r]);
        acc[NR - 1] = _mm256_fmadd_ps(wp, _mm256_maskload_ps(vr + 8 * (NR - 1), tail), acc[NR - 1]);
    }
    const __m256 s = _mm256_set1_ps(inv);
    for (int r = 0; r < NR - 1; ++r) _mm256_storeu_ps(o + 8 * r, _mm256_mul_ps(acc[r], s));
    _mm256_maskstore_ps(o + 8 * (NR - 1), tail, _mm256_mul_ps(acc[NR - 1], s));
}

}  // namespace

void attention_avx2(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                    float* scores) noexcept {
    const AttentionQueries Q(a, kvh, s0, s1);
    const int64_t d = a.d, ld = d, len = Q.len;
    attention_scores_blocked<Keys8>(Q, scores);
    for (int64_t i = 0; i < Q.nq; ++i) {
        float* sc = scores + i * len;
        const int64_t li = Q.limit(i);
        __m256 mx8 = _mm256_set1_ps(-INFINITY);
        for (int64_t p = 0; p < li; p += 8) {
            const __m256i m = first_lanes(li - p);
            const __m256 x = _mm256_maskload_ps(sc + p, m);
            mx8 = _mm256_max_ps(
                mx8, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), x, _mm256_castsi256_ps(m)));
        }
        const __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx8), _mm256_extractf128_ps(mx8, 1));
        const __m128 h2 = _mm_max_ps(h, _mm_movehl_ps(h, h));
        const __m256 mx = _mm256_set1_ps(_mm_cvtss_f32(_mm_max_ss(h2, _mm_shuffle_ps(h2, h2, 1))));
        __m256 sum = _mm256_setzero_ps();
        for (int64_t p = 0; p < li; p += 8) {
            const __m256i m = first_lanes(li - p);
            const __m256 x = _mm256_max_ps(_mm256_sub_ps(_mm256_maskload_ps(sc + p, m), mx),
                                           _mm256_set1_ps(-87.0f));
            const __m256 e = _mm256_and_ps(exp8(x), _mm256_castsi256_ps(m));
            sum = _mm256_add_ps(sum, e);
            _mm256_maskstore_ps(sc + p, m, e);
        }
        const float inv = 1.0f / hsum(sum);
        for (int64_t c0 = 0; c0 < d; c0 += 64) {
            const int64_t cn = d - c0 < 64 ? d - c0 : 64;
            const float* vc = Q.value(0) + c0;
            float* o = Q.out(i) + c0;
            with_registers((cn + 7) / 8, [&](auto R) {
                weighted_sum<decltype(R)::value>(sc, li, vc, ld, cn, inv, o);
            });
        }
    }
}

}  // namespace onebit::cpu
