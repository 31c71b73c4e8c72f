// The public ops: validate, pick a backend kernel, run. Every bad argument is an onebit::Error
// naming the op, the bad value and what is allowed; kernels below never see bad input.
// All tensors must be contiguous. Results are owned Tensors; the *_into forms write into
// caller-owned outputs whose shape and dtype must match exactly (the C API uses them).
// Thread safety: ops are reentrant; concurrent calls on disjoint outputs are safe.
#pragma once

#include <memory>
#include <optional>
#include <span>

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

// How quantized_matmul may compute (the caller's explicit choice; defaults are exact-as-float).
struct QmmOptions {
    // false: activations stay float32 (within FORMAT.md's bound of the exact result).
    // true: activations are quantized to int8 per group (scale max|x| / 127), which adds at most
    // sum_G (dx_G / 2) * sum_k |scale * q| per output (quant::qmm_t_int8_ref); faster where the
    // CPU has int8 dot products. transpose = true only.
    bool int8_activations = false;
    // true: every bias is -scale / 2 (the 1-bit Bonsai form); biases are not read (and may be an
    // empty view), so 1-bit g128 streams 1.125 instead of 1.25 bits per weight.
    bool symmetric = false;
};

// Whether every bias equals -scale / 2 exactly (then QmmOptions::symmetric gives the same
// results reading only the scales). scales and biases as for quantized_matmul.
bool is_symmetric(const TensorView& scales, const TensorView& biases);

// transpose = true:  x [..., M, K], weight [..., N, K*bits/32], scales [..., N, K/g] -> [..., M, N]
// transpose = false: x [..., M, K], weight [..., K, N*bits/32], scales [..., K, N/g] -> [..., M, N]
// A 2-D weight folds all of x's leading dims into M; batched weights broadcast against x's batch
// dims. Output dtype: promote(x, scales) (float16 with bfloat16 gives float32). Accumulates in
// float32.
Tensor quantized_matmul(const TensorView& x, const TensorView& weight, const TensorView& scales,
                        const TensorView& biases, bool transpose = true, int group_size = 64,
                        int bits = 4, const QmmOptions& options = {});
void quantized_matmul_into(const TensorView& x, const TensorView& weight, const TensorView& scales,
                           const TensorView& biases, bool transpose, int group_size, int bits,
                           const TensorView& out, const QmmOptions& options = {});

// A 2-D quantized weight prepared once (at load time) for repeated y = x @ w_hat^T. prepare()
// validates it, detects the symmetric 1-bit form (every bias -scale / 2: biases are then not
// read) and, where the fastest decode kernel needs its own layout (on AVX-512 VNNI / VBMI: 1 bit
// for the lookup-table and VNNI kernels; 2, 4 and 8 bits with int8 activations for the
// interleaved-codes kernel), also repacks the weights into memory it owns, used for every
// M (the original pages may then be released). It keeps views of the tensors, which must outlive
// it. Results: bit-identical to quantized_matmul with the same options when not packed; when
// packed, within the same bound (FORMAT.md's float32 bound, or the int8 bound with int8
// activations); batch invariant for every M. Thread safety: const methods may be called
// concurrently.
class QuantizedMatrix {
  public:
    // weight [N, K*bits/32], scales and biases [N, K/group_size].
    static QuantizedMatrix prepare(const TensorView& weight, const TensorView& scales,
                                   const TensorView& biases, int group_size, int bits,
                                   const QmmOptions& options = {});
    // Prepared weights joined by rows into one matrix (q / k / v or gate / up: one matmul, its
    // input prepared once): its result rows are the parts' rows in order, bit for bit as each
    // part gives them. Only packed weights join (blocks of 16 rows), with the same K, group
    // size, bits, scale dtype and options; nullopt where the parts do not (then use them apart).
    static std::optional<QuantizedMatrix> join(std::span<const QuantizedMatrix* const> parts);
    QuantizedMatrix();
    ~QuantizedMatrix();
    QuantizedMatrix(QuantizedMatrix&&) noexcept;
    QuantizedMatrix& operator=(QuantizedMatrix&&) noexcept;

    int64_t rows() const;         // N
    int64_t cols() const;         // K
    bool packed() const;          // repacked into owned memory
    bool symmetric() const;       // biases not read
    size_t stream_bytes() const;  // bytes one matmul reads from the weight

    struct Impl;
    const Impl& impl() const { return *impl_; }

  private:
    std::unique_ptr<Impl> impl_;
};

// x [..., K] -> [..., N] with a prepared weight; output dtype promote(x, scales).
Tensor quantized_matmul(const TensorView& x, const QuantizedMatrix& w);
void quantized_matmul_into(const TensorView& x, const QuantizedMatrix& w, const TensorView& out);

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
                              int group_size, int bits, const QmmOptions& options = {});

}  // namespace onebit
