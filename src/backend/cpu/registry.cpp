#include "backend/cpu/registry.h"

#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#include <string_view>

#include "backend/cpu/kernels.h"
#include "core/error.h"

namespace onebit::cpu {

namespace {

constexpr int64_t kAnyM = 0;

// clang-format off
constexpr Precision F32 = Precision::float32, I8 = Precision::int8;
constexpr uint32_t kF32 = 1u << static_cast<int>(DType::float32);
const std::vector<Kernel> kKernels = {
    // name                  op              isa          bits        groups      dtypes        max_m  precision features
#if defined(__x86_64__)
    {"qmm_t_int8_avx512vnni", Op::qmm_t,     Isa::avx512, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, I8,  kVnni | kVbmi,
     nullptr, nullptr, qmm_t_int8_avx512vnni},
    {"qmm_t_1bit_avx512",    Op::qmm_t,      Isa::avx512, kOneBit,    kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_1bit_avx512},
    {"qmm_t_avx512",         Op::qmm_t,      Isa::avx512, kMultiBits, kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_avx512},
    {"qmm_n_avx512",         Op::qmm_n,      Isa::avx512, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_n_avx512},
    {"dequantize_avx512",    Op::dequantize, Isa::avx512, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, dequantize_avx512, nullptr},
    {"attention_avx512",     Op::attention,  Isa::avx512, 0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, attention_avx512},
    {"silu_mul_avx512",      Op::silu_mul,   Isa::avx512, 0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, nullptr, silu_mul_avx512},
    {"attention_avx2",       Op::attention,  Isa::avx2,   0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, attention_avx2},
    {"silu_mul_avx2",        Op::silu_mul,   Isa::avx2,   0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, nullptr, silu_mul_avx2},
    {"qmm_t_int8_1bit_avx2", Op::qmm_t,      Isa::avx2,   kOneBit,    kAllGroups, kFloatDtypes, kAnyM, I8,  0,
     nullptr, nullptr, qmm_t_int8_1bit_avx2},
    {"qmm_t_1bit_avx2",      Op::qmm_t,      Isa::avx2,   kOneBit,    kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_1bit_avx2},
    {"qmm_t_avx2",           Op::qmm_t,      Isa::avx2,   kMultiBits, kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_avx2},
    {"qmm_n_avx2",           Op::qmm_n,      Isa::avx2,   kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_n_avx2},
    {"dequantize_avx2",      Op::dequantize, Isa::avx2,   kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, dequantize_avx2, nullptr},
#endif
#if defined(__aarch64__)
    {"attention_neon",       Op::attention,  Isa::neon,   0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, attention_neon},
    {"silu_mul_neon",        Op::silu_mul,   Isa::neon,   0,          0,          kF32,         kAnyM, F32, 0,
     nullptr, nullptr, nullptr, nullptr, silu_mul_neon},
    {"qmm_t_int8_1bit_neon", Op::qmm_t,      Isa::neon,   kOneBit,    kAllGroups, kFloatDtypes, kAnyM, I8,  kDotProd,
     nullptr, nullptr, qmm_t_int8_1bit_neon},
    {"qmm_t_1bit_neon",      Op::qmm_t,      Isa::neon,   kOneBit,    kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_1bit_neon},
    {"qmm_t_neon",           Op::qmm_t,      Isa::neon,   kMultiBits, kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_neon},
    {"qmm_n_neon",           Op::qmm_n,      Isa::neon,   kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_n_neon},
    {"dequantize_neon",      Op::dequantize, Isa::neon,   kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, dequantize_neon, nullptr},
#endif
    {"quantize_scalar",      Op::quantize,   Isa::scalar, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, kPortable,
     quant::quantize_ref, nullptr, nullptr},
    {"dequantize_scalar",    Op::dequantize, Isa::scalar, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, quant::dequantize_ref, nullptr},
    {"qmm_t_scalar",         Op::qmm_t,      Isa::scalar, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_t_scalar},
    {"qmm_t_int8_scalar",    Op::qmm_t,      Isa::scalar, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, I8,  0,
     nullptr, nullptr, qmm_t_int8_scalar},
    {"qmm_n_scalar",         Op::qmm_n,      Isa::scalar, kAllBits,   kAllGroups, kFloatDtypes, kAnyM, F32, 0,
     nullptr, nullptr, qmm_n_scalar},
    // plain loops (the reference for the SIMD variants, and what a CPU without them runs)
    {"attention_scalar",     Op::attention,  Isa::scalar, 0,          0,          kF32,         kAnyM, F32, kPortable,
     nullptr, nullptr, nullptr, attention_scalar},
    {"silu_mul_scalar",      Op::silu_mul,   Isa::scalar, 0,          0,          kF32,         kAnyM, F32, kPortable,
     nullptr, nullptr, nullptr, nullptr, silu_mul_scalar},
};
// clang-format on

#if defined(__x86_64__)
// CPUID feature bits, with the OS's XSAVE support for the vector state (XCR0) checked too.
struct X86Features {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool vnni = false, vbmi = false;
};

const X86Features& x86_features() {
    static const X86Features f = [] {
        X86Features r;
        unsigned a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return r;
        const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
        if (!osxsave) return r;
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        const bool ymm = (lo & 0x6) == 0x6, zmm = (lo & 0xe6) == 0xe6;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return r;
        r.avx2 = ymm && ((b >> 5) & 1);
        r.fma = ymm && fma;
        r.f16c = ymm && f16c;
        r.avx512f = zmm && ((b >> 16) & 1);
        r.avx512dq = zmm && ((b >> 17) & 1);
        r.avx512bw = zmm && ((b >> 30) & 1);
        r.avx512vl = zmm && ((b >> 31) & 1);
        r.vbmi = zmm && ((c >> 1) & 1);
        r.vnni = zmm && ((c >> 11) & 1);
        return r;
    }();
    return f;
}
#endif

}  // namespace

bool cpu_has(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return true;
#if defined(__x86_64__)
        case Isa::avx2: {
            const auto& f = x86_features();
            return f.avx2 && f.fma && f.f16c;
        }
        case Isa::avx512: {
            const auto& f = x86_features();
            return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
        }
#endif
#if defined(__aarch64__)
        case Isa::neon:
            return true;
#endif
        default:
            return false;
    }
}

bool cpu_has_features(uint32_t features) {
#if defined(__x86_64__)
    if ((features & kVnni) && !x86_features().vnni) return false;
    if ((features & kVbmi) && !x86_features().vbmi) return false;
#else
    if (features & (kVnni | kVbmi)) return false;
#endif
#if defined(__aarch64__)
    if ((features & kDotProd) && !(getauxval(AT_HWCAP) & HWCAP_ASIMDDP)) return false;
#else
    if (features & kDotProd) return false;
#endif
    return true;
}

bool cpu_can_run(const Kernel& k) { return cpu_has(k.isa) && cpu_has_features(k.features); }

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
        case Op::attention:
            return "attention";
        case Op::silu_mul:
            return "silu_mul";
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
    fail("cpu", "ONEBIT_CPU_ISA=", want,
         " is not known; supported: auto, scalar, avx2, avx512, neon");
}

namespace {

// The first kernel of the table that fits and that the active ISA may run (its own ISA, or a
// portable scalar one), or nullptr.
template <typename Fits>
const Kernel* first_runnable(Isa isa, Fits&& fits) {
    for (const Kernel& k : kKernels) {
        if (!fits(k)) continue;
        const bool isa_ok = k.isa == isa || (k.isa == Isa::scalar && (k.features & kPortable));
        if (isa_ok && cpu_can_run(k)) return &k;
    }
    return nullptr;
}

}  // namespace

const Kernel& select(Op op, int bits, int g, DType dt, int64_t m, Precision precision) {
    const Isa isa = active_isa();
    const Kernel* k = first_runnable(isa, [&](const Kernel& k) {
        return k.op == op && k.supports(bits, g, dt) && !(k.max_m && m > k.max_m) &&
               ((op != Op::qmm_t && op != Op::qmm_n) || k.precision == precision);
    });
    if (!k)
        fail("cpu", "no kernel for ", op_name(op), " with bits ", bits, ", group_size ", g,
             ", dtype ", dtype_name(dt), ", precision ", precision_name(precision), " on ",
             isa_name(isa));
    return *k;
}

const Kernel& select_attention() {
    const Isa isa = active_isa();
    const Kernel* k = first_runnable(isa, [](const Kernel& k) { return k.op == Op::attention; });
    if (!k) fail("cpu", "no attention kernel on ", isa_name(isa));
    return *k;
}

const Kernel& select_silu_mul() {
    const Isa isa = active_isa();
    const Kernel* k = first_runnable(isa, [](const Kernel& k) { return k.op == Op::silu_mul; });
    if (!k) fail("cpu", "no silu_mul kernel on ", isa_name(isa));
    return *k;
}

}  // namespace onebit::cpu
