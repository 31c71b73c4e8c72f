// Element types. The names are the safetensors spellings, so a file's dtype maps one to one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace onebit {

enum class DType : uint8_t {
    float32,
    float16,
    bfloat16,
    float64,
    uint32,
    int32,
    uint8,
    int8,
    uint16,
    int16,
    uint64,
    int64,
    boolean,
};

// Bytes per element.
size_t dtype_size(DType dt);

// Lower-case name used in messages: "float32", "bfloat16", "uint32", ...
const char* dtype_name(DType dt);

// safetensors spelling ("F32", "BF16", "U32", ...) and its inverse (nullopt when unknown).
const char* dtype_safetensors_name(DType dt);
std::optional<DType> dtype_from_safetensors(std::string_view name);

// Parses a user-facing name ("float16", "bf16", "f32", ...); nullopt when unknown.
std::optional<DType> dtype_from_name(std::string_view name);

inline bool is_float(DType dt) {
    return dt == DType::float32 || dt == DType::float16 || dt == DType::bfloat16 ||
           dt == DType::float64;
}

// The floating dtypes quantized ops accept for activations, weights and scales.
inline bool is_half_or_float(DType dt) {
    return dt == DType::float32 || dt == DType::float16 || dt == DType::bfloat16;
}

// MLX's type promotion restricted to float32 / float16 / bfloat16: equal types stay, float32
// wins, and float16 with bfloat16 gives float32.
DType promote_float(DType a, DType b);

}  // namespace onebit
