// silu(gate) * up with AVX2 + FMA: exp_poly (kernels.h) 8 lanes at a time, the tail masked.
#include <immintrin.h>

#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// gate [8] -> silu(gate) * up
inline __m256 silu_mul8(__m256 g, __m256 u) {
    const __m256 xr = _mm256_sub_ps(_mm256_setzero_ps(), g);
    const __m256 x = _mm256_min_ps(_mm256_max_ps(xr, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    // 2^k in the exponent field (k in [-126, 127]: a normal float)
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    const __m256 ex = _mm256_blendv_ps(_mm256_mul_ps(e, _mm256_castsi256_ps(bits)),  // infinite above 88
                                       _mm256_set1_ps(__builtin_inff()),
                                       _mm256_cmp_ps(xr, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), ex)), u);
}

}  // namespace

void silu_mul_avx2(const float* gate, const float* up, int64_t n, float* out) noexcept {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        alignas(32) int32_t lane[8];
        for (int j = 0; j < 8; ++j) lane[j] = j < n - i ? -1 : 0;
        const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane));
        _mm256_maskstore_ps(out + i, m, silu_mul8(_mm256_maskload_ps(gate + i, m),
                                                  _mm256_maskload_ps(up + i, m)));
    }
}

}  // namespace onebit::cpu
