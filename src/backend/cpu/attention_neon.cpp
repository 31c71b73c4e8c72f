// Causal grouped-query attention, NEON: attention_avx2.cpp's method with 4 lanes (4 keys of a
// block for the scores). NEON has no masked loads, so a row's last (d % 4 or length % 4) values
// go through a 4-float buffer padded with zeros (scores with -inf). Every query's bits depend
// only on its own row and length (batch invariance); test_backend_consistency checks it against
// float64 under qemu-aarch64.
#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/attention_common.h"
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// Values p[0 .. n) (n <= 4), the other lanes `fill`.
inline float32x4_t load_part(const float* p, int64_t n, float fill) {
    float b[4] = {fill, fill, fill, fill};
    std::memcpy(b, p, static_cast<size_t>(n) * sizeof(float));
    return vld1q_f32(b);
}
inline void store_part(float* p, int64_t n, float32x4_t v) {
    float b[4];
    vst1q_f32(b, v);
    std::memcpy(p, b, static_cast<size_t>(n) * sizeof(float));
}

// attention_scores_blocked's vector: 4 keys of a block.
struct Keys4 {
    static constexpr int64_t W = 4;
    using T = float32x4_t;
    static T zero() { return vdupq_n_f32(0.0f); }
    static T load(const float* p) { return vld1q_f32(p); }
    static T set1(float x) { return vdupq_n_f32(x); }
    static T fma(T a, T b, T acc) { return vfmaq_f32(acc, a, b); }
    static T add(T a, T b) { return vaddq_f32(a, b); }
    static void store(float* p, T v) { vst1q_f32(p, v); }
};

// e^x for -87 <= x <= 0, lane-wise (attention_common.h: kExpPoly).
inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, kLog2e));
    float32x4_t f = vfmsq_f32(x, n, vdupq_n_f32(kLn2Hi));
    f = vfmsq_f32(f, n, vdupq_n_f32(kLn2Lo));
    float32x4_t p = vdupq_n_f32(kExpPoly[0]);
    for (int k = 1; k < 6; ++k) p = vfmaq_f32(vdupq_n_f32(kExpPoly[k]), p, f);
    p = vfmaq_f32(vaddq_f32(f, vdupq_n_f32(1.0f)), vmulq_f32(p, f), f);
    // 2^n for n in [-126, 0]: the exponent field built directly
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

// o[0 .. cn) = inv * sum_{p < len} w[p] * v[p * ldv + 0 .. cn), NR = ceil(cn / 4) registers.
template <int NR>
void weighted_sum(const float* w, int64_t len, const float* v, int64_t ldv, int64_t cn, float inv,
                  float* o) {
    const int64_t last = cn - 4 * (NR - 1);  // 1 .. 4 values in the last register
    float32x4_t acc[NR];
    for (int r = 0; r < NR; ++r) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t p = 0; p < len; ++p) {
        const float wp = w[p];
        const float* vr = v + p * ldv;
        for (int r = 0; r < NR - 1; ++r) acc[r] = vfmaq_n_f32(acc[r], vld1q_f32(vr + 4 * r), wp);
        const float* vl = vr + 4 * (NR - 1);
        acc[NR - 1] =
            vfmaq_n_f32(acc[NR - 1], last == 4 ? vld1q_f32(vl) : load_part(vl, last, 0.0f), wp);
    }
    for (int r = 0; r < NR - 1; ++r) vst1q_f32(o + 4 * r, vmulq_n_f32(acc[r], inv));
    store_part(o + 4 * (NR - 1), last, vmulq_n_f32(acc[NR - 1], inv));
}

}  // namespace

void attention_neon(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                    float* scores) noexcept {
    const AttentionQueries Q(a, kvh, s0, s1);
    const int64_t d = a.d, ld = d, len = Q.len;
    attention_scores_blocked<Keys4>(Q, scores);
    for (int64_t i = 0; i < Q.nq; ++i) {
        float* sc = scores + i * len;
        const int64_t li = Q.limit(i);
        float32x4_t mx4 = vdupq_n_f32(-INFINITY);
        for (int64_t p = 0; p < li; p += 4) {
            const int64_t k = li - p < 4 ? li - p : 4;
            mx4 = vmaxq_f32(mx4, k == 4 ? vld1q_f32(sc + p) : load_part(sc + p, k, -INFINITY));
        }
        const float32x4_t mx = vdupq_n_f32(vmaxvq_f32(mx4));
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int64_t p = 0; p < li; p += 4) {
            const int64_t k = li - p < 4 ? li - p : 4;
            // a padded lane is -inf: clamped to -87, its e^x is zeroed below
            const float32x4_t s = k == 4 ? vld1q_f32(sc + p) : load_part(sc + p, k, -INFINITY);
            float32x4_t e = exp4(vmaxq_f32(vsubq_f32(s, mx), vdupq_n_f32(-87.0f)));
            if (k < 4) {
                const uint32_t live[4] = {0xffffffffu, k > 1 ? 0xffffffffu : 0u,
                                          k > 2 ? 0xffffffffu : 0u, 0u};
                e = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(e), vld1q_u32(live)));
            }
            sum = vaddq_f32(sum, e);
            if (k == 4)
                vst1q_f32(sc + p, e);
            else
                store_part(sc + p, k, e);
        }
        const float inv = 1.0f / vaddvq_f32(sum);
        for (int64_t c0 = 0; c0 < d; c0 += 32) {
            const int64_t cn = d - c0 < 32 ? d - c0 : 32;
            const float* vc = Q.value(0) + c0;
            float* o = Q.out(i) + c0;
            with_registers((cn + 3) / 4, [&](auto R) {
                weighted_sum<decltype(R)::value>(sc, li, vc, ld, cn, inv, o);
            });
        }
    }
}

}  // namespace onebit::cpu
