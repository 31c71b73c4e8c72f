// The scalar variants: the reference (quant/reference.cpp) applied to a slice.
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

void qmm_t_scalar(const QmmTask& t) noexcept { quant::qmm_t_ref(t.a); }
void qmm_n_scalar(const QmmTask& t) noexcept { quant::qmm_n_ref(t.a); }

}  // namespace onebit::cpu
