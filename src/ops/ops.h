// The public ops: validate, pick a backend kernel, run. Every bad argument is an onebit::Error
// naming the op, the bad value and what is allowed; kernels below never see bad input.
// All tensors must be contiguous. Results are owned Tensors; the *_into forms write into
// caller-owned outputs whose shape and dtype must match exactly (the C API uses them).
// Thread safety: ops are reentrant; concurrent calls on disjoint outputs are safe.
#pragma once

#include "core/tensor.h"

namespace onebit {

struct Quantized {
    Tensor weight;  // [..., N, K*bits/32] uint32
    Tensor scales;  // [..., N, K/group_size], dtype of w
    Tensor biases;  // same as scales
};

// w: [..., N, K] float32 / float16 / bfloat16, rank >= 2, K a multiple of group_size.
// Bit-exact with MLX's CPU quantize (bits = 1: scale = max - min, bias = min).
Quantized quantize(const TensorView& w, int group_size = 64, int bits = 4);
void quantize_into(const TensorView& w, int group_size, int bits, const TensorView& weight,
                   const TensorView& scales, const TensorView& biases);

// weight [..., N, K*bits/32] uint32; scales, biases [..., N, K/group_size] -> [..., N, K] in the
// scales' dtype. Bit-exact with MLX's CPU dequantize.
Tensor dequantize(const TensorView& weight, const TensorView& scales, const TensorView& biases,
                  int group_size = 64, int bits = 4);
void dequantize_into(const TensorView& weight, const TensorView& scales, const TensorView& biases,
                     int group_size, int bits, const TensorView& out);

// transpose = true:  x [..., M, K], weight [..., N, K*bits/32], scales [..., N, K/g] -> [..., M, N]
// transpose = false: x [..., M, K], weight [..., K, N*bits/32], scales [..., K, N/g] -> [..., M, N]
// A 2-D weight folds all of x's leading dims into M; batched weights broadcast against x's batch
// dims. Output dtype: promote(x, scales) (float16 with bfloat16 gives float32). Accumulates in
// float32.
Tensor quantized_matmul(const TensorView& x, const TensorView& weight, const TensorView& scales,
                        const TensorView& biases, bool transpose = true, int group_size = 64,
                        int bits = 4);
void quantized_matmul_into(const TensorView& x, const TensorView& weight, const TensorView& scales,
                           const TensorView& biases, bool transpose, int group_size, int bits,
                           const TensorView& out);

// Output shapes and dtypes the ops produce (and validate their arguments as the ops do).
struct OutSpec {
    DType dtype;
    Shape shape;
};
struct QuantizeSpec {
    OutSpec weight, scales, biases;
};
QuantizeSpec quantize_spec(const TensorView& w, int group_size, int bits);
OutSpec dequantize_spec(const TensorView& weight, const TensorView& scales,
                        const TensorView& biases, int group_size, int bits);
OutSpec quantized_matmul_spec(const TensorView& x, const TensorView& weight,
                              const TensorView& scales, const TensorView& biases, bool transpose,
                              int group_size, int bits);

}  // namespace onebit
