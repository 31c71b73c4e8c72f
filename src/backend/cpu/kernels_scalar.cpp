// The scalar variants: the reference (quant/reference.cpp) applied to a slice.
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

void qmm_t_scalar(const QmmTask& t) noexcept { quant::qmm_t_ref(t.a); }
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
