// The scalar variants: the reference (quant/reference.cpp) applied to a slice.
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels.h"
#include "core/dot.h"

namespace onebit::cpu {

void qmm_t_scalar(const QmmTask& t) noexcept { quant::qmm_t_ref(t.a); }


// The queries of all the group's heads for tokens [s0, s1) share every key and value row while
// it is in L1. Scores [nq][len] in scratch.
void attention_scalar(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                      float* scores) noexcept {
    const int64_t group = a.n_head / a.n_kv, d = a.d;
    int64_t len = 0;  // positions any query of the block attends
    for (int64_t s = s0; s < s1; ++s) len = std::max<int64_t>(len, a.positions[s] + 1);
    const int64_t nq = (s1 - s0) * group;
    // Query i: token s0 + i / group, head kvh * group + i % group.
    auto qrow = [&](int64_t i) { return a.q + ((s0 + i / group) * a.n_head + kvh * group + i % group) * d; };
    auto orow = [&](int64_t i) { return a.out + ((s0 + i / group) * a.n_head + kvh * group + i % group) * d; };
    auto limit = [&](int64_t i) { return static_cast<int64_t>(a.positions[s0 + i / group]) + 1; };
    for (int64_t p = 0; p < len; ++p) {
        const float* kv = a.k_cache + (p * a.n_kv + kvh) * d;
        for (int64_t i = 0; i < nq; ++i)
            if (p < limit(i)) scores[i * len + p] = dot_f32(qrow(i), kv, d) * a.scale;
    }
    for (int64_t i = 0; i < nq; ++i) {
        float* sc = &scores[i * len];
        const int64_t li = limit(i);
        float mx = -INFINITY;
        for (int64_t p = 0; p < li; ++p) mx = std::max(mx, sc[p]);
        float sum = 0;
        for (int64_t p = 0; p < li; ++p) sum += sc[p] = std::exp(sc[p] - mx);
        const float inv = 1.0f / sum;
        for (int64_t p = 0; p < li; ++p) sc[p] *= inv;
        std::fill(orow(i), orow(i) + d, 0.0f);
    }
    for (int64_t p = 0; p < len; ++p) {
        const float* vv = a.v_cache + (p * a.n_kv + kvh) * d;
        for (int64_t i = 0; i < nq; ++i) {
            if (p >= limit(i)) continue;
            const float w = scores[i * len + p];
            float* o = orow(i);
            for (int64_t c = 0; c < d; ++c) o[c] += w * vv[c];
        }
    }
}
void qmm_n_scalar(const QmmTask& t) noexcept { quant::qmm_n_ref(t.a); }
void qmm_t_int8_scalar(const QmmTask& t) noexcept { quant::qmm_t_int8_ref(t.a); }

int64_t fma_burst_scalar() noexcept {
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float m = 0.999999f, c = 1e-7f;
    const int64_t iters = 20'000'000;
    for (int64_t i = 0; i < iters; ++i)
        for (float& v : a) v = v * m + c;
    volatile float sink = a[0] + a[7];
    (void)sink;
    return iters * 8 * 2;
}

int64_t fma_burst(Isa isa) noexcept {
    switch (isa) {
#if defined(__x86_64__)
        case Isa::avx512:
            return fma_burst_avx512();
        case Isa::avx2:
            return fma_burst_avx2();
#endif
#if defined(__aarch64__)
        case Isa::neon:
            return fma_burst_neon();
#endif
        default:
            return fma_burst_scalar();
    }
}

}  // namespace onebit::cpu
