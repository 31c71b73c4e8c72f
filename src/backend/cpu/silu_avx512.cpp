// silu(gate) * up with AVX-512: exp_poly (kernels.h) 16 lanes at a time, the tail masked.
#include <immintrin.h>

#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// gate [16] -> silu(gate) * up
inline __m512 silu_mul16(__m512 g, __m512 u) {
    const __m512 xr = _mm512_sub_ps(_mm512_setzero_ps(), g);
    const __m512 x = _mm512_min_ps(_mm512_max_ps(xr, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512 ex = _mm512_mask_blend_ps(  // e 2^k, infinite above 88
        _mm512_cmp_ps_mask(xr, _mm512_set1_ps(88.0f), _CMP_GT_OQ), _mm512_scalef_ps(e, k),
        _mm512_set1_ps(__builtin_inff()));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), ex)), u);
}

}  // namespace

void silu_mul_avx512(const float* gate, const float* up, int64_t n, float* out) noexcept {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, silu_mul16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, silu_mul16(_mm512_maskz_loadu_ps(m, gate + i),
                                                     _mm512_maskz_loadu_ps(m, up + i)));
    }
}

}  // namespace onebit::cpu
