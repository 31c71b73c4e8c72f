// What a kernel supports, as the bit masks every backend's registration table uses (the CPU's in
// backend/cpu/registry.h, the GPU's in backend/cuda/cuda.h), and the numerics a caller chooses.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace onebit::quant {

// Numerics of a quantized matmul kernel: float32 activations (the default, within FORMAT.md's
// bound of the exact result) or int8 activations per group (faster; see
// quant::qmm_t_int8_ref for the bound). The caller chooses.
enum class Precision : uint8_t { float32, int8 };
inline const char* precision_name(Precision p) {
    return p == Precision::int8 ? "int8" : "float32";
}

constexpr uint32_t bits_bit(int bits) { return 1u << bits; }
constexpr uint32_t group_bit(int g) { return g == 32 ? 1u : g == 64 ? 2u : g == 128 ? 4u : 0u; }
constexpr uint32_t dtype_bit(DType dt) { return 1u << static_cast<int>(dt); }
inline constexpr uint32_t kAllBits = 0x17eu;    // 1, 2, 3, 4, 5, 6, 8
inline constexpr uint32_t kMultiBits = 0x17cu;  // 2, 3, 4, 5, 6, 8
inline constexpr uint32_t kOneBit = 0x2u;
inline constexpr uint32_t kAllGroups = 0x7u;  // 32, 64, 128
inline constexpr uint32_t kFloatDtypes = (1u << static_cast<int>(DType::float32)) |
                                         (1u << static_cast<int>(DType::float16)) |
                                         (1u << static_cast<int>(DType::bfloat16));

}  // namespace onebit::quant
