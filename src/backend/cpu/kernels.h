// Declarations of the CPU kernels; each ISA's definitions live in their own file, compiled with
// that ISA's flags, and are only called after cpu_has() says the CPU can run them.
#pragma once

#include "backend/cpu/registry.h"

namespace onebit::cpu {

// A burst of independent float32 FMAs with the widest vectors of `isa`; returns the flops done
// (about 50 ms of work). For measuring the FMA peak.
int64_t fma_burst(Isa isa) noexcept;
int64_t fma_burst_avx512() noexcept;
int64_t fma_burst_avx2() noexcept;
int64_t fma_burst_neon() noexcept;
int64_t fma_burst_scalar() noexcept;

// Attention: plain loops (kernels_scalar.cpp), AVX2 (attention_avx2.cpp), AVX-512
// (attention_avx512.cpp) and NEON (attention_neon.cpp).
void attention_scalar(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                      float* scratch) noexcept;
void attention_avx2(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                    float* scratch) noexcept;
void attention_neon(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                    float* scratch) noexcept;
void attention_avx512(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                      float* scratch) noexcept;

// SwiGLU's silu(gate) * up (SiluMulFn). silu_mul_scalar (kernels_scalar.cpp) is the formula with
// std::exp. The SIMD kernels (silu_avx512.cpp, silu_avx2.cpp, silu_neon.cpp) compute x = -gate's
// exp the same way in every lane, with the same operations (bit-identical to each other): x
// clamped to [-87, 88], k = round(x / ln 2), r = x - k C1 - k C2 with ln 2 = C1 + C2 in two parts
// (C1 = 0.693359375, C2 = -2.12194440e-4), exp(r) = 1 + r + r^2 p(r) with Cephes expf's degree-5
// p by FMAs, times 2^k; infinite where x > 88 (as the formula's exp overflows). Within a few ulp
// of float64 (test_backend_consistency).
void silu_mul_scalar(const float* gate, const float* up, int64_t n, float* out) noexcept;
void silu_mul_avx512(const float* gate, const float* up, int64_t n, float* out) noexcept;
void silu_mul_avx2(const float* gate, const float* up, int64_t n, float* out) noexcept;
void silu_mul_neon(const float* gate, const float* up, int64_t n, float* out) noexcept;
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// scalar: the reference itself (kernels_scalar.cpp)
void qmm_t_scalar(const QmmTask& t) noexcept;
void qmm_t_int8_scalar(const QmmTask& t) noexcept;
void qmm_n_scalar(const QmmTask& t) noexcept;

// AVX-512 F/BW/VL/DQ (kernels_avx512.cpp)
void qmm_t_1bit_avx512(const QmmTask& t) noexcept;
void qmm_t_avx512(const QmmTask& t) noexcept;  // bits 2..8
void qmm_n_avx512(const QmmTask& t) noexcept;
void dequantize_avx512(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                       int64_t K, int g, int bits, void* out) noexcept;

// The lookup-table kernel's helpers (tmac_avx512.cpp): quant::quantize_activations_int8
// vectorized (bit-identical) plus float32 group sums; the per-quad subset-sum tables.
void quantize_activations_int8_avx512(const float* x, int64_t K, int g, int8_t* xq, float* dx,
                                      float* xsum) noexcept;
// Tables of one activation row, quads [q0, q1) only, written at their place in the row's full
// layout: int8 (xq is the whole row of K values; [K/32][4][64] bytes, see tmac_avx512.cpp) and
// float32 (x points at quad q0's first value; [K/4][16]).
void tmac_tables_avx512(const int8_t* xq, int64_t q0, int64_t q1, uint8_t* tables) noexcept;
void tmac_tables_f32_avx512(const float* x, int64_t q0, int64_t q1, float* tables) noexcept;

// AVX-512 VNNI + VBMI, int8 activations (kernels_avx512_vnni.cpp)
void qmm_t_int8_avx512vnni(const QmmTask& t) noexcept;

// AVX2 + FMA + F16C (kernels_avx2.cpp)
void qmm_t_1bit_avx2(const QmmTask& t) noexcept;
void qmm_t_int8_1bit_avx2(const QmmTask& t) noexcept;  // int8 activations
// The AVX2 lookup-table kernel's helpers (tmac_avx2.cpp): quantize_activations_int8_avx512's
// equal (bit-identical to the reference, group sums in its serial order); one activation row's
// tables for quads [q0, q1) (whole chunks of 8) at their place in its [K/32][8][32]-byte layout.
void quantize_activations_int8_avx2(const float* x, int64_t K, int g, int8_t* xq, float* dx,
                                    float* xsum) noexcept;
void tmac_tables_avx2(const int8_t* xq, int64_t q0, int64_t q1, uint8_t* tables) noexcept;
// float32 tables of octets (8 activations) [o0, o1) at their place in the row's [K/8][3][8]
// layout (x at octet o0's first value; see tmac_avx2.cpp).
void tmac_tables_f32_avx2(const float* x, int64_t o0, int64_t o1, float* tables) noexcept;
void qmm_t_avx2(const QmmTask& t) noexcept;
void qmm_n_avx2(const QmmTask& t) noexcept;
void dequantize_avx2(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                     int64_t K, int g, int bits, void* out) noexcept;

// NEON (kernels_neon.cpp, aarch64 builds only)
void qmm_t_1bit_neon(const QmmTask& t) noexcept;
void qmm_t_int8_1bit_neon(const QmmTask& t) noexcept;  // needs kDotProd
void qmm_t_neon(const QmmTask& t) noexcept;
void qmm_n_neon(const QmmTask& t) noexcept;
void dequantize_neon(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                     int64_t K, int g, int bits, void* out) noexcept;

}  // namespace onebit::cpu
