// The CPU backend's kernel registration table: every kernel variant, with the ISA it needs and
// the bits / group sizes / activation dtypes it supports. ops picks from this table; tests and
// benchmarks iterate it, so adding a variant is adding a row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/reference.h"

namespace onebit::cpu {

enum class Isa : uint8_t { scalar, avx2, avx512, neon };

const char* isa_name(Isa isa);

enum class Op : uint8_t { quantize, dequantize, qmm_t, qmm_n };

const char* op_name(Op op);

using QuantizeFn = void (*)(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                            uint32_t* weight, void* scales, void* biases) noexcept;
using DequantizeFn = void (*)(const uint32_t* weight, const void* scales, const void* biases,
                              DType sdt, int64_t rows, int64_t K, int g, int bits,
                              void* out) noexcept;
using QmmFn = void (*)(const quant::QmmArgs& args) noexcept;

// Bit masks over supported parameter values.
constexpr uint32_t bits_bit(int bits) { return 1u << bits; }
constexpr uint32_t group_bit(int g) { return g == 32 ? 1u : g == 64 ? 2u : g == 128 ? 4u : 0u; }
constexpr uint32_t dtype_bit(DType dt) { return 1u << static_cast<int>(dt); }
inline constexpr uint32_t kAllBits = 0x17eu;  // 1, 2, 3, 4, 5, 6, 8
inline constexpr uint32_t kAllGroups = 0x7u;  // 32, 64, 128
inline constexpr uint32_t kFloatDtypes =
    (1u << static_cast<int>(DType::float32)) | (1u << static_cast<int>(DType::float16)) |
    (1u << static_cast<int>(DType::bfloat16));

struct Kernel {
    const char* name;
    Op op;
    Isa isa;
    uint32_t bits_mask;    // bits_bit(b) for each supported bits value
    uint32_t group_mask;   // group_bit(g) for each supported group size
    uint32_t dtype_mask;   // activation (qmm) or input (quantize) / scales (dequantize) dtypes
    QuantizeFn quantize = nullptr;
    DequantizeFn dequantize = nullptr;
    QmmFn qmm = nullptr;

    bool supports(int bits, int g, DType dt) const {
        return (bits_mask & bits_bit(bits)) && (group_mask & group_bit(g)) &&
               (dtype_mask & dtype_bit(dt));
    }
};

// Every registered kernel, in priority order within an op (most specialised first).
const std::vector<Kernel>& kernels();

// ISAs this CPU can run, best first.
std::vector<Isa> available_isas();

// The ISA ceiling in force: ONEBIT_CPU_ISA (auto, scalar, avx2, avx512, neon) or the best
// available. Throws [cpu] when the variable names an unknown ISA or one this CPU lacks.
Isa active_isa();

// The first registered kernel for op that supports (bits, g, dt) and runs at or below the active
// ISA. Throws [cpu] naming the combination when none does.
const Kernel& select(Op op, int bits, int g, DType dt);

}  // namespace onebit::cpu
