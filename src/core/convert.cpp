#include "core/convert.h"

namespace onebit {

void to_float_row(DType dt, const void* src, int64_t n, float* dst) noexcept {
    for (int64_t i = 0; i < n; ++i) dst[i] = load_float(dt, src, i);
}

}  // namespace onebit
