#include "backend/cpu/registry.h"

#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace onebit::cpu {

namespace {

// clang-format off
const std::vector<Kernel> kKernels = {
    // name                op                 isa          bits       groups      dtypes
    {"quantize_scalar",    Op::quantize,   Isa::scalar, kAllBits, kAllGroups, kFloatDtypes,
     quant::quantize_ref, nullptr, nullptr},
    {"dequantize_scalar",  Op::dequantize, Isa::scalar, kAllBits, kAllGroups, kFloatDtypes,
     nullptr, quant::dequantize_ref, nullptr},
    {"qmm_t_scalar",       Op::qmm_t,      Isa::scalar, kAllBits, kAllGroups, kFloatDtypes,
     nullptr, nullptr, quant::qmm_t_ref},
    {"qmm_n_scalar",       Op::qmm_n,      Isa::scalar, kAllBits, kAllGroups, kFloatDtypes,
     nullptr, nullptr, quant::qmm_n_ref},
};
// clang-format on

bool cpu_has(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return true;
#if defined(__x86_64__) || defined(__i386__)
        case Isa::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
#if defined(__aarch64__)
        case Isa::neon:
            return true;
#endif
        default:
            return false;
    }
}

int rank(Isa isa) { return static_cast<int>(isa); }

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return "scalar";
        case Isa::avx2:
            return "avx2";
        case Isa::avx512:
            return "avx512";
        case Isa::neon:
            return "neon";
    }
    return "?";
}

const char* op_name(Op op) {
    switch (op) {
        case Op::quantize:
            return "quantize";
        case Op::dequantize:
            return "dequantize";
        case Op::qmm_t:
            return "quantized_matmul(transpose=true)";
        case Op::qmm_n:
            return "quantized_matmul(transpose=false)";
    }
    return "?";
}

const std::vector<Kernel>& kernels() { return kKernels; }

std::vector<Isa> available_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::neon, Isa::scalar})
        if (cpu_has(isa)) out.push_back(isa);
    return out;
}

Isa active_isa() {
    const char* env = std::getenv("ONEBIT_CPU_ISA");
    std::string_view want = env ? env : "auto";
    if (want.empty() || want == "auto") return available_isas().front();
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
        if (want != isa_name(isa)) continue;
        if (!cpu_has(isa)) fail("cpu", "ONEBIT_CPU_ISA=", want, " but this CPU lacks it");
        return isa;
    }
    fail("cpu", "ONEBIT_CPU_ISA=", want, " is not known; supported: auto, scalar, avx2, avx512, neon");
}

const Kernel& select(Op op, int bits, int g, DType dt) {
    Isa ceiling = active_isa();
    for (const Kernel& k : kKernels) {
        if (k.op != op || !k.supports(bits, g, dt)) continue;
        if (rank(k.isa) > rank(ceiling)) continue;
        if (!cpu_has(k.isa)) continue;
        return k;
    }
    fail("cpu", "no kernel for ", op_name(op), " with bits ", bits, ", group_size ", g,
         ", dtype ", dtype_name(dt));
}

}  // namespace onebit::cpu
