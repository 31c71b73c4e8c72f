// Helpers for the x86 SIMD kernel files, included only by them. Everything here has internal
// linkage and the kernel files instantiate no shared templates (no std::vector, std::fill, ...):
// an out-of-line copy compiled with AVX-512 flags must never be what the linker picks for code
// that runs on a CPU without AVX-512.
#pragma once

#include <cstdint>
#include <cstring>

#include "backend/cpu/kernel_common.h"
#include "core/dtype.h"

namespace onebit::cpu {
namespace {

inline float bits_to_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Scale / bias element i as float32 (the dtype switch is uniform per call: predicted).
inline float scalar_at(DType dt, const void* p, int64_t i) {
    switch (dt) {
        case DType::float16:
            return _cvtsh_ss(static_cast<const uint16_t*>(p)[i]);
        case DType::bfloat16:
            return bits_to_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
        default:
            return static_cast<const float*>(p)[i];
    }
}

// Stores one float32 result into y of dtype ydt, rounding to nearest even.
inline void store_y(DType ydt, void* y, int64_t i, float v) {
    switch (ydt) {
        case DType::float16:
            static_cast<uint16_t*>(y)[i] = _cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT);
            break;
        case DType::bfloat16: {
            uint32_t u;
            std::memcpy(&u, &v, 4);
            if ((u & 0x7fffffffu) > 0x7f800000u)
                u |= 0x00400000u;
            else
                u += 0x7fffu + ((u >> 16) & 1u);
            static_cast<uint16_t*>(y)[i] = static_cast<uint16_t>(u >> 16);
            break;
        }
        default:
            static_cast<float*>(y)[i] = v;
    }
}

}  // namespace
}  // namespace onebit::cpu
