// Element conversions between the float dtypes and float32, for references and I/O.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/half.h"

namespace onebit {

// Element i of a float32 / float16 / bfloat16 array, as float32 (exact).
inline float load_float(DType dt, const void* p, int64_t i) {
    switch (dt) {
        case DType::float16:
            return fp16_to_float(static_cast<const uint16_t*>(p)[i]);
        case DType::bfloat16:
            return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
        default:
            return static_cast<const float*>(p)[i];
    }
}

// Stores v into element i of a float32 / float16 / bfloat16 array, rounding to nearest even.
inline void store_float(DType dt, void* p, int64_t i, float v) {
    switch (dt) {
        case DType::float16:
            static_cast<uint16_t*>(p)[i] = float_to_fp16(v);
            break;
        case DType::bfloat16:
            static_cast<uint16_t*>(p)[i] = float_to_bf16(v);
            break;
        default:
            static_cast<float*>(p)[i] = v;
    }
}

// Rounds a float32 to the precision of dt (identity for float32).
inline float round_to(DType dt, float v) {
    switch (dt) {
        case DType::float16:
            return round_fp16(v);
        case DType::bfloat16:
            return round_bf16(v);
        default:
            return v;
    }
}

// n elements of src (dtype dt) into float32 dst.
void to_float_row(DType dt, const void* src, int64_t n, float* dst) noexcept;

}  // namespace onebit
