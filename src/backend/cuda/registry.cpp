// The CUDA backend's kernel registration table (CUDA builds; the stub has none). Most preferred
// first within an op; select() (common.cpp) takes the first that supports a call.
#include "backend/cuda/internal.h"

namespace onebit::cuda {

namespace {

using quant::kAllBits, quant::kAllGroups, quant::kFloatDtypes, quant::kOneBit;
constexpr int64_t kAnyM = 0;
constexpr Precision F32 = Precision::float32, I8 = Precision::int8;

// clang-format off
const std::vector<Kernel> kKernels = {
    // name                 op              bits      groups      dtypes        max_m  precision
    {"qmm_t_1bit_mma_i8",   Op::qmm_t,      kOneBit,  kAllGroups, kFloatDtypes, kAnyM, I8,
     nullptr, nullptr, qmm_t_1bit_mma_i8},
    // past a decode batch (a prompt's prefill): float32 GEMMs on cuBLAS, min_m kDecodeMaxM + 1
    {"qmm_t_dequant_sgemm", Op::qmm_t,      kAllBits, kAllGroups, kFloatDtypes, kAnyM, F32,
     nullptr, nullptr, qmm_t_dequant_sgemm, kDecodeMaxM + 1},
    // decode batches: a warp per 4 weight rows, coalesced activations, float32
    {"qmm_t_gemv",          Op::qmm_t,      kAllBits, kAllGroups, kFloatDtypes, kDecodeMaxM, F32,
     nullptr, nullptr, qmm_t_gemv},
    {"qmm_t_generic",       Op::qmm_t,      kAllBits, kAllGroups, kFloatDtypes, kAnyM, F32,
     nullptr, nullptr, qmm_t_generic},
    {"qmm_n_generic",       Op::qmm_n,      kAllBits, kAllGroups, kFloatDtypes, kAnyM, F32,
     nullptr, nullptr, qmm_n_generic},
    {"dequantize_generic",  Op::dequantize, kAllBits, kAllGroups, kFloatDtypes, kAnyM, F32,
     nullptr, dequantize_generic, nullptr},
    {"quantize_generic",    Op::quantize,   kAllBits, kAllGroups, kFloatDtypes, kAnyM, F32,
     quantize_generic, nullptr, nullptr},
};
// clang-format on

}  // namespace

const std::vector<Kernel>& kernels() { return kKernels; }

}  // namespace onebit::cuda
