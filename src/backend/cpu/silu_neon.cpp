// silu(gate) * up with NEON: exp_poly (kernels.h) 4 lanes at a time, the tail through a copy.
#include <arm_neon.h>

#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// gate [4] -> silu(gate) * up
inline float32x4_t silu_mul4(float32x4_t g, float32x4_t u) {
    const float32x4_t xr = vnegq_f32(g);
    // vmaxnm / vminnm: a NaN lane takes the bound (its gate still makes the result NaN)
    const float32x4_t x = vminnmq_f32(vmaxnmq_f32(xr, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t k = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(kExpPoly[0]);
    for (int i = 1; i < 6; ++i) p = vfmaq_f32(vdupq_n_f32(kExpPoly[i]), p, r);
    const float32x4_t e = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
    const float32x4_t ex = vbslq_f32(vcgtq_f32(xr, vdupq_n_f32(88.0f)),  // infinite above 88
                                     vdupq_n_f32(__builtin_inff()),
                                     vmulq_f32(e, vreinterpretq_f32_s32(bits)));
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), ex)), u);
}

}  // namespace

void silu_mul_neon(const float* gate, const float* up, int64_t n, float* out) noexcept {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, silu_mul4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        float g[4] = {0, 0, 0, 0}, u[4] = {0, 0, 0, 0}, o[4];
        for (int64_t j = 0; j < n - i; ++j) g[j] = gate[i + j], u[j] = up[i + j];
        vst1q_f32(o, silu_mul4(vld1q_f32(g), vld1q_f32(u)));
        for (int64_t j = 0; j < n - i; ++j) out[i + j] = o[j];
    }
}

}  // namespace onebit::cpu
