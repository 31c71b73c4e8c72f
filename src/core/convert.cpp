#include "core/convert.h"

#include <cstring>

namespace onebit {

void to_float_row(DType dt, const void* src, int64_t n, float* dst) noexcept {
    const auto* h = static_cast<const uint16_t*>(src);
    switch (dt) {  // one loop per dtype, so each can be vectorized
        case DType::float16:
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_float(h[i]);
            break;
        case DType::bfloat16:
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(h[i]);
            break;
        default:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    }
}

}  // namespace onebit
