// Scalar reference of MLX affine quantization (FORMAT.md 1.1-1.4): the source of truth every
// fast kernel is tested against. Plain loops that read like the math. Inputs are contiguous and
// already validated by ops (shapes, dtypes, bits, group size); these functions do not check.
// Float dtypes: float32, float16, bfloat16.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace onebit::quant {

struct AffineParams {
    float scale;  // float32, before rounding to the stored dtype
    float bias;
};

// MLX's scale and bias for one group of g float32 values (bits = 1: max - min and min).
AffineParams affine_params(const float* w, int g, int bits) noexcept;

// w: [rows, K] of dtype dt. Writes weight [rows, K*bits/32] (uint32), scales and biases
// [rows, K/g] of dtype dt. Bit-exact with MLX's CPU quantize.
void quantize_ref(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                  uint32_t* weight, void* scales, void* biases) noexcept;

// weight [rows, K*bits/32], scales / biases [rows, K/g] of dtype sdt -> out [rows, K] of sdt.
// Multiplies, rounds to sdt, adds, rounds again (MLX's CPU dequantize), no fused multiply-add.
void dequantize_ref(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                    int64_t rows, int64_t K, int g, int bits, void* out) noexcept;

// One 2-D quantized matmul with float32 accumulation. Row strides (in elements) allow a slice
// of a larger problem: 0 means the natural (contiguous) stride.
struct QmmArgs {
    const void* x;       // [M, K], dtype xdt
    const uint32_t* w;   // transpose: [N, K*bits/32]; else [K, N*bits/32]  (row stride ldw)
    const void* scales;  // transpose: [N, K/g];       else [K, N/g]; dtype sdt (row stride lds)
    const void* biases;  // same as scales; nullptr: symmetric form, every bias is -scale / 2
    void* y;             // [M, N], dtype ydt (row stride ldy)
    DType xdt, sdt, ydt;
    int64_t M, N, K;
    int group_size, bits;
    bool transpose;
    int64_t ldw = 0, lds = 0, ldy = 0;

    constexpr int64_t row_values() const { return transpose ? K : N; }  // values per weight row
    constexpr int64_t w_stride() const { return ldw ? ldw : row_values() * bits / 32; }
    constexpr int64_t s_stride() const { return lds ? lds : row_values() / group_size; }
    constexpr int64_t y_stride() const { return ldy ? ldy : N; }
};

// transpose = true: y = x @ w_hat.T, per FORMAT.md 1.4's reference form
//   y[m,n] = sum_G scales[n,G] * sum_{k in G} x[m,k] q[n,k] + biases[n,G] * sum_{k in G} x[m,k].
void qmm_t_ref(const QmmArgs& a) noexcept;

// transpose = false: y = x @ w_hat, groups running along N.
void qmm_n_ref(const QmmArgs& a) noexcept;

// int8 activations (the fast path's numerics, chosen explicitly by the caller): each group of g
// values of an activation row is quantized to int8 with scale dx = max|x| / 127,
// xq = clamp(rint(x / dx), -127, 127) (dx = 0 and xq = 0 for an all-zero group). Writes xq [K]
// and dx [K / g].
void quantize_activations_int8(const float* x, int64_t K, int g, int8_t* xq, float* dx) noexcept;

// transpose = true with int8 activations:
//   y[m,n] = sum_G scales[n,G] * dx[m,G] * (sum_{k in G} q[n,k] * xq[m,k])   (exact integers)
//          + biases[n,G] * xsum[m,G]                                        (float32 sums of x)
// Versus the float result: |y_int8 - y| <= sum_G (dx[m,G] / 2) * sum_{k in G} |scales[n,G] *
// q[n,k]| (each xq is within half a step of x / dx), plus float32 rounding.
void qmm_t_int8_ref(const QmmArgs& a) noexcept;

}  // namespace onebit::quant
