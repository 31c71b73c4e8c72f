// The scalar variants: the reference (quant/reference.cpp) applied to a slice.
#include <algorithm>
#include <cmath>

#include "backend/cpu/attention_common.h"
#include "backend/cpu/kernels.h"
#include "core/dot.h"

namespace onebit::cpu {

void qmm_t_scalar(const QmmTask& t) noexcept { quant::qmm_t_ref(t.a); }

void silu_mul_scalar(const float* gate, const float* up, int64_t n, float* out) noexcept {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}


// The queries of all the group's heads for tokens [s0, s1) share every key and value row while
// it is in L1. Scores [nq][len] in scratch, then a key row.
void attention_scalar(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                      float* scores) noexcept {
    const AttentionQueries Q(a, kvh, s0, s1);
    const int64_t d = a.d, len = Q.len;
    float* krow = scores + Q.nq * len;  // [d]: key p gathered from its block
    for (int64_t p = 0; p < len; ++p) {
        const float* kb = Q.key_block(p);
        for (int64_t c = 0; c < d; ++c) krow[c] = kb[c * kKeyBlock + p % kKeyBlock];
        for (int64_t i = 0; i < Q.nq; ++i)
            if (p < Q.limit(i)) scores[i * len + p] = dot_f32(Q.q(i), krow, d) * a.scale;
    }
    for (int64_t i = 0; i < Q.nq; ++i) {
        float* sc = &scores[i * len];
        const int64_t li = Q.limit(i);
        float mx = -INFINITY;
        for (int64_t p = 0; p < li; ++p) mx = std::max(mx, sc[p]);
        float sum = 0;
        for (int64_t p = 0; p < li; ++p) sum += sc[p] = std::exp(sc[p] - mx);
        const float inv = 1.0f / sum;
        for (int64_t p = 0; p < li; ++p) sc[p] *= inv;
        std::fill(Q.out(i), Q.out(i) + d, 0.0f);
    }
    for (int64_t p = 0; p < len; ++p) {
        const float* vv = Q.value(p);
        for (int64_t i = 0; i < Q.nq; ++i) {
            if (p >= Q.limit(i)) continue;
            const float w = scores[i * len + p];
            float* o = Q.out(i);
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
