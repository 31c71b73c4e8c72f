// The CPU backend's kernel registration table: every kernel variant, the ISA it needs and what it
// supports (op, bits, group sizes, dtypes, largest M). ops calls the backend (dispatch.h), which
// picks from this table; tests and benchmarks iterate it, so adding a variant is adding a row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/kernel_support.h"
#include "quant/reference.h"

namespace onebit::cpu {

enum class Isa : uint8_t { scalar, avx2, avx512, neon };
const char* isa_name(Isa isa);

enum class Op : uint8_t { quantize, dequantize, qmm_t, qmm_n, attention, silu_mul };
const char* op_name(Op op);

using quant::Precision;
using quant::precision_name;

// CPU features a kernel needs beyond its ISA.
inline constexpr uint32_t kVnni = 1u;     // AVX-512 VNNI
inline constexpr uint32_t kVbmi = 2u;     // AVX-512 VBMI
inline constexpr uint32_t kDotProd = 8u;  // Armv8.2 dot product (sdot)
// A scalar kernel that is the implementation on every ISA (ops with no SIMD variant, such as
// quantize). Other scalar kernels run only when the active ISA is scalar: never a silent slow
// fallback.
inline constexpr uint32_t kPortable = 4u;

// A quantized matmul slice as kernels receive it: the raw problem (the scalar reference reads
// x from here) plus x already converted to float32 and its per-group sums. a.biases == nullptr
// means the symmetric 1-bit form: every bias is -scale / 2.
struct QmmTask {
    quant::QmmArgs a;
    const float* xf;    // [M, K] float32 copy of x (row stride K)
    const float* xsum;  // [M, K / group_size] sums of xf over each group (transpose only)
    float* scratch;     // [N] per-thread working row (transpose = false only)
    const int8_t* xq;   // [M, K] int8 activations (int8 precision only)
    const float* dx;    // [M, K / group_size] their scales (int8 precision only)
};

using QuantizeFn = void (*)(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                            uint32_t* weight, void* scales, void* biases) noexcept;
using DequantizeFn = void (*)(const uint32_t* weight, const void* scales, const void* biases,
                              DType sdt, int64_t rows, int64_t K, int g, int bits,
                              void* out) noexcept;
using QmmFn = void (*)(const QmmTask& task) noexcept;

// The KV cache's layout, head-major so that a head's positions are one stream: `rows` positions
// a head (the capacity rounded up to kKeyBlock: cache_rows). Values [n_kv][rows][d]; keys in
// blocks of kKeyBlock positions, each block a [d][16] tile (a component's 16 positions side by
// side, so the kernels take 16 keys into vector lanes with no transposes): [n_kv][rows / 16][d][16].
inline constexpr int64_t kKeyBlock = 16;
inline int64_t cache_rows(int64_t capacity) { return (capacity + kKeyBlock - 1) / kKeyBlock * kKeyBlock; }
inline int64_t key_index(int64_t p, int64_t h, int64_t c, int64_t rows, int64_t d) {
    return (h * rows + p - p % kKeyBlock) * d + c * kKeyBlock + p % kKeyBlock;
}
inline int64_t value_index(int64_t p, int64_t h, int64_t c, int64_t rows, int64_t d) {
    return (h * rows + p) * d + c;
}

// Causal grouped-query attention (see nn::attention) as kernels receive it. A kernel call is one
// KV head and query tokens [s0, s1): q [t, n_head, d] rows of those tokens for the head group,
// keys (key_index) and values (value_index) of `rows` positions a head, read up to the largest
// position + 1, out [t, n_head, d]. Lanes of a key block past the largest position may hold
// anything.
struct AttentionTask {
    const float* q;
    int64_t t, n_head, n_kv, d;
    int64_t rows;  // cache_rows(capacity)
    const float* k_cache;
    const float* v_cache;
    const int32_t* positions;  // [t]: token s attends to cache rows 0 .. positions[s]
    float* out;
    float scale;  // applied to q . k
};
// Largest number of query tokens in one call, and the floats of scratch one call needs (queries
// rounded up to 16 x (scores, a transposed query or a key row, limits)).
inline constexpr int64_t kAttentionBlock = 16;
inline int64_t attention_scratch_floats(int64_t group, int64_t len, int64_t d) {
    const int64_t nq = (kAttentionBlock * group + 15) / 16 * 16;
    return nq * (len + d + 16);
}
using AttentionFn = void (*)(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                             float* scratch) noexcept;

// out [n] = silu(gate) * up = gate / (1 + exp(-gate)) * up (nn::silu_mul). The scalar kernel is
// that formula with std::exp; the SIMD kernels use exp_poly's arithmetic (kernels.h), the same
// for every element whatever n and its position (tails are masked, never a different formula).
using SiluMulFn = void (*)(const float* gate, const float* up, int64_t n, float* out) noexcept;

using quant::bits_bit;
using quant::dtype_bit;
using quant::group_bit;
using quant::kAllBits;
using quant::kAllGroups;
using quant::kFloatDtypes;
using quant::kMultiBits;
using quant::kOneBit;

struct Kernel {
    const char* name;
    Op op;
    Isa isa;
    uint32_t bits_mask;   // bits_bit(b) for each supported bits value
    uint32_t group_mask;  // group_bit(g) for each supported group size
    uint32_t dtype_mask;  // activation (qmm), input (quantize) or scales (dequantize) dtypes
    int64_t max_m;        // largest M it is chosen for (0: any); qmm only
    Precision precision;  // qmm only
    uint32_t features;    // kVnni | kVbmi ...
    QuantizeFn quantize = nullptr;
    DequantizeFn dequantize = nullptr;
    QmmFn qmm = nullptr;
    AttentionFn attention = nullptr;
    SiluMulFn silu_mul = nullptr;

    bool supports(int bits, int g, DType dt) const {
        return (bits_mask & bits_bit(bits)) && (group_mask & group_bit(g)) &&
               (dtype_mask & dtype_bit(dt));
    }
};

// Every registered kernel, most preferred first within an op.
const std::vector<Kernel>& kernels();

// Whether this CPU can run kernels of `isa`, and the kernel k (its ISA and extra features).
bool cpu_has(Isa isa);
bool cpu_can_run(const Kernel& k);
// Whether this CPU has the extra features (kVnni | kVbmi | kDotProd bits).
bool cpu_has_features(uint32_t features);

// ISAs this CPU can run, best first.
std::vector<Isa> available_isas();

// The ISA in force: ONEBIT_CPU_ISA (auto, scalar, avx2, avx512, neon) or the best available.
// Throws [cpu] when the variable names an unknown ISA or one this CPU lacks.
Isa active_isa();

// The first kernel for op supporting (bits, g, dt, m, precision) that this CPU can run and whose
// ISA is the active one (or scalar and kPortable). Throws [cpu] naming the combination when none
// does.
const Kernel& select(Op op, int bits, int g, DType dt, int64_t m = 1,
                     Precision precision = Precision::float32);
// The attention kernel for the active ISA (float32 only).
const Kernel& select_attention();
// The silu_mul kernel for the active ISA.
const Kernel& select_silu_mul();

}  // namespace onebit::cpu
