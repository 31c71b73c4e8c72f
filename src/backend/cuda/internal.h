// Shared by the CUDA backend's sources (CUDA builds only): error checks, device scratch, the
// kernel launchers that registry.cpp lists, and device helpers for the float dtypes.
#pragma once

#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/cuda.h"

namespace onebit::cuda {

// The stream every kernel of the backend runs on, in order (a blocking stream, so the legacy
// default stream's copies in Buffer order with it). Graph capture records it.
cudaStream_t stream();

// Throws [cuda] "<what>: <CUDA's message>" unless e is cudaSuccess.
void check(cudaError_t e, const char* what);
// After a launch: throws [cuda] naming the kernel when the launch failed.
void check_launch(const char* kernel);

// Device scratch for slot (0 .. kWorkspaceSlots - 1), at least `bytes` long: grown when too
// small (the only allocation, so steady-state calls allocate nothing), never shrunk.
inline constexpr int kWorkspaceSlots = 17;  // 0-1, 5 packed activations, 2-4 qmm_t_1bit_mma_i8,
                                            // 6 top_k_rows, argmax_rows, 7-8 split attention,
                                            // 9-11 qmm_packed_gemm, 12-14 attention_prefill,
                                            // 15-16 gate_up_silu_pack's packed activations
void* workspace(int slot, size_t bytes);

// Programmatic dependent launch (Hopper and later; off with ONEBIT_CUDA_PDL=0): a kernel launched
// by launch_dependent may be scheduled while the kernel before it in the stream still runs, so
// the launch latency of the decode step's ~10 kernels a layer overlaps their predecessors. Such a
// kernel calls wait_for_prior_grids() before it reads anything a kernel of the stream writes and
// before it writes at all: it returns once the previous kernel has completed and its writes are
// visible (and lets the next kernel be scheduled early in turn). Before the wait it may read only
// what no kernel writes (weights, the step's uploaded positions and cache pointers) and issue L2
// prefetches (they write no register), which is how the packed matmuls, attention, norm_pack and
// qk_norm_rope_store hide their first loads. Elsewhere it is a plain launch and the wait a no-op.
bool programmatic_launch();
// Whether the environment variable `name` is set to "0" (how the ONEBIT_CUDA_* switches that are
// on by default are turned off).
bool switched_off(const char* name);

// The packed matmul past kDecodeMaxM rows on cuBLAS (gemm.cu; cuda.h: PrefillMode::gemm), with
// the activations' int8 values (xa.q8) and its segments' outputs.
void qmm_packed_gemm(const PackedOneBit& p, const PackedActivations& xa, const OutSegment* out,
                     int segments, DType ydt);

// The flash prefill attention (attention_flash.cu; nn.h: attention_prefill, AttentionMath::flash),
// the head sizes it takes, and whether its blocks for t rows of n_head heads fill the GPU (at
// least 1.5 a multiprocessor: AttentionMath::automatic's choice).
bool flash_prefill_supports(int64_t d);
bool flash_prefill_fills(int64_t t, int64_t n_head);
namespace nn {
void attention_prefill_flash(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                             const float* k_layer, const float* v_layer, int64_t p0, float* out,
                             float scale);
}  // namespace nn

// Calls f(std::integral_constant<int, bits>) for the runtime bits value (1-6, else 8).
template <typename F>
void with_bits(int bits, F&& f) {
    switch (bits) {
        case 1: return f(std::integral_constant<int, 1>{});
        case 2: return f(std::integral_constant<int, 2>{});
        case 3: return f(std::integral_constant<int, 3>{});
        case 4: return f(std::integral_constant<int, 4>{});
        case 5: return f(std::integral_constant<int, 5>{});
        case 6: return f(std::integral_constant<int, 6>{});
        default: return f(std::integral_constant<int, 8>{});
    }
}

template <typename... P, typename... A>
void launch_dependent(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream();
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = programmatic_launch() ? 1 : 0;
    check(cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...), "cudaLaunchKernelEx");
}

// Launchers (registry.cpp).
void quantize_generic(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                      uint32_t* weight, void* scales, void* biases);
void dequantize_generic(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                        int64_t rows, int64_t K, int g, int bits, void* out);
void qmm_t_generic(const quant::QmmArgs& a);
// transpose = true for decode batches (gemv.cu): every bits value, float32, batch invariant.
void qmm_t_gemv(const quant::QmmArgs& a);
void qmm_n_generic(const quant::QmmArgs& a);
void qmm_t_1bit_mma_i8(const quant::QmmArgs& a);
// transpose = true past a decode batch (gemm.cu): weights dequantized to float32 in slabs and
// cuBLAS float32 GEMMs (float32 numerics, not batch invariant: registered with min_m).
void qmm_t_dequant_sgemm(const quant::QmmArgs& a);

#ifdef __CUDACC__
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Brings the 128-byte line at p into L2 (no registers written, nothing waited for).
__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// Element i of a float32 / float16 / bfloat16 array as float (exact).
__device__ __forceinline__ float load_as_float(DType dt, const void* p, int64_t i) {
    if (dt == DType::float16) return __half2float(static_cast<const __half*>(p)[i]);
    if (dt == DType::bfloat16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    return static_cast<const float*>(p)[i];
}
// Stores v rounded to nearest even into element i.
__device__ __forceinline__ void store_from_float(DType dt, void* p, int64_t i, float v) {
    if (dt == DType::float16)
        static_cast<__half*>(p)[i] = __float2half_rn(v);
    else if (dt == DType::bfloat16)
        static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
    else
        static_cast<float*>(p)[i] = v;
}
// v rounded to the precision of dt.
__device__ __forceinline__ float round_as(DType dt, float v) {
    if (dt == DType::float16) return __half2float(__float2half_rn(v));
    if (dt == DType::bfloat16) return __bfloat162float(__float2bfloat16_rn(v));
    return v;
}
// Code j (0..31) of a chunk of 32 codes of BITS bits held in words[0 .. BITS-1], LSB first
// (FORMAT.md: the bit stream runs through the words' bytes in order, little endian).
template <int BITS>
__device__ __forceinline__ uint32_t chunk_code(const uint32_t* words, int j) {
    const int bit = j * BITS, w = bit >> 5, s = bit & 31;
    uint32_t v = words[w] >> s;
    if (s + BITS > 32) v |= words[w + 1] << (32 - s);
    return v & ((1u << BITS) - 1u);
}
#endif

}  // namespace onebit::cuda
