// Helpers shared by the AVX-512 kernel files (internal linkage; see simd_common.h).
#pragma once

#include <immintrin.h>

#include "backend/cpu/simd_common.h"
#include "quant/reference.h"

namespace onebit::cpu {
namespace {

// r[k] lane j = r[j] lane k (16 x 16 floats).
inline void transpose16(__m512 r[16]) {
    // fully unrolled, so that r and t stay in registers
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4)
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
            r[i + 2 * j] = _mm512_castpd_ps(
                _mm512_unpacklo_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
            r[i + 2 * j + 1] = _mm512_castpd_ps(
                _mm512_unpackhi_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
        }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 8)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

// sum_G bias[G] * xsum[G] over n_groups groups, 16 at a time.
inline float bias_dot(DType sdt, const void* biases, const float* xsum, int64_t n_groups) {
    __m512 acc = _mm512_setzero_ps();
    int64_t G = 0;
    for (; G + 16 <= n_groups; G += 16) {
        __m512 b;
        if (sdt == DType::float32) {
            b = _mm512_loadu_ps(static_cast<const float*>(biases) + G);
        } else {
            __m256i h = _mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(biases) + G));
            b = sdt == DType::float16
                    ? _mm512_cvtph_ps(h)
                    : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        }
        acc = _mm512_fmadd_ps(b, _mm512_loadu_ps(xsum + G), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; G < n_groups; ++G) s += scalar_at(sdt, biases, G) * xsum[G];
    return s;
}

}  // namespace
}  // namespace onebit::cpu
