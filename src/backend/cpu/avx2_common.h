// Helpers shared by the AVX2 kernel files (internal linkage; see simd_common.h).
#pragma once

#include <immintrin.h>

#include "backend/cpu/simd_common.h"

namespace onebit::cpu {
namespace {

// Elements i .. i+7 of p (float32, float16 or bfloat16) as float32.
inline __m256 load8(DType dt, const void* p, int64_t i) {
    if (dt == DType::float32) return _mm256_loadu_ps(static_cast<const float*>(p) + i);
    __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    if (dt == DType::float16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace
}  // namespace onebit::cpu
