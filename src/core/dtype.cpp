#include "core/dtype.h"

#include <array>

namespace onebit {

namespace {

struct DTypeInfo {
    DType dt;
    size_t size;
    const char* name;
    const char* st_name;
};

constexpr std::array<DTypeInfo, 13> kInfo = {{
    {DType::float32, 4, "float32", "F32"},
    {DType::float16, 2, "float16", "F16"},
    {DType::bfloat16, 2, "bfloat16", "BF16"},
    {DType::float64, 8, "float64", "F64"},
    {DType::uint32, 4, "uint32", "U32"},
    {DType::int32, 4, "int32", "I32"},
    {DType::uint8, 1, "uint8", "U8"},
    {DType::int8, 1, "int8", "I8"},
    {DType::uint16, 2, "uint16", "U16"},
    {DType::int16, 2, "int16", "I16"},
    {DType::uint64, 8, "uint64", "U64"},
    {DType::int64, 8, "int64", "I64"},
    {DType::boolean, 1, "bool", "BOOL"},
}};

constexpr bool table_follows_enum() {
    for (size_t i = 0; i < kInfo.size(); ++i)
        if (static_cast<size_t>(kInfo[i].dt) != i) return false;
    return true;
}
static_assert(table_follows_enum(), "kInfo must list DType values in enum order");

const DTypeInfo& info(DType dt) { return kInfo[static_cast<size_t>(dt)]; }

}  // namespace

size_t dtype_size(DType dt) { return info(dt).size; }
const char* dtype_name(DType dt) { return info(dt).name; }
const char* dtype_safetensors_name(DType dt) { return info(dt).st_name; }

std::optional<DType> dtype_from_safetensors(std::string_view name) {
    for (const auto& i : kInfo)
        if (name == i.st_name) return i.dt;
    return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const auto& i : kInfo)
        if (name == i.name) return i.dt;
    if (name == "f32" || name == "fp32") return DType::float32;
    if (name == "f16" || name == "fp16" || name == "half") return DType::float16;
    if (name == "bf16") return DType::bfloat16;
    return std::nullopt;
}

DType promote_float(DType a, DType b) {
    if (a == b) return a;
    return DType::float32;  // float32 with anything, or float16 with bfloat16
}

}  // namespace onebit
