// The packed 1-bit weights' record (cuda.h: PackedOneBit; layout in packed_mma.cu's header
// comment), for the kernels that read it: the decode and exact prefill kernels (packed_mma.cu)
// and the GEMM prefill's dequantization (gemm.cu).
#pragma once

#include <type_traits>

#include "backend/cuda/internal.h"

namespace onebit::cuda {

// A record: 1024 bytes of words, then the scales (symmetric: 128 bytes) or scales and biases (256).
inline constexpr int64_t kWordBytes = 1024;
__host__ __device__ constexpr int64_t record_bytes(bool symmetric) {
    return kWordBytes + (symmetric ? 128 : 256);
}

// The 16-bit scale (or bias) `bits16` (low half) as float: ST is __half or __nv_bfloat16.
template <typename ST>
__device__ __forceinline__ float to_f(uint32_t bits16) {
    const unsigned short h = static_cast<unsigned short>(bits16);
    if constexpr (std::is_same_v<ST, __half>)
        return __half2float(__ushort_as_half(h));
    else
        return __bfloat162float(__ushort_as_bfloat16(h));
}

// f(SYM, ST) with the weights' form as types: std::bool_constant (symmetric or not) and
// std::common_type<ST> (float16 or bfloat16 scales).
template <typename F>
void by_form(const PackedOneBit& p, F&& f) {
    using H = std::common_type<__half>;
    using B = std::common_type<__nv_bfloat16>;
    const bool half = p.sdt == DType::float16;
    if (p.symmetric) {
        if (half) f(std::true_type{}, H{});
        else f(std::true_type{}, B{});
    } else {
        if (half) f(std::false_type{}, H{});
        else f(std::false_type{}, B{});
    }
}

}  // namespace onebit::cuda
