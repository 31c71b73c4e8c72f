// RoPE's rotation as the fused kernels compute it (fused.cu: qk_norm_rope_store, attention.cu:
// attention_qk_pack), written once so that both give the same bits.
#pragma once

#include "backend/cuda/internal.h"

namespace onebit::cuda {

// cos and sin of pair i's angle at position pos, scaled by the attention factor.
__device__ __forceinline__ void rope_angle(int64_t pos, float inv_freq, float factor, float& cs,
                                           float& sn) {
    const float angle = __fmul_rn(float(pos), inv_freq);
    cs = __fmul_rn(cosf(angle), factor), sn = __fmul_rn(sinf(angle), factor);
}

// The pair (a, b) = (x[i], x[i + d / 2]) rotated: products rounded, then the sum (no fused
// multiply-add, so the result does not depend on the compiler's contraction).
__device__ __forceinline__ void rope_pair(float a, float b, float cs, float sn, float& lo,
                                          float& hi) {
    lo = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
    hi = __fadd_rn(__fmul_rn(b, cs), __fmul_rn(a, sn));
}

}  // namespace onebit::cuda
