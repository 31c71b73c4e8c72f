// The CPU backend's entry points: pick a kernel from the registry, prepare activations, split
// the work over the thread pool. Arguments are validated by ops beforehand.
#pragma once

#include "backend/cpu/registry.h"

namespace onebit::cpu {

void quantize(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits, uint32_t* weight,
              void* scales, void* biases);
void dequantize(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                int64_t rows, int64_t K, int g, int bits, void* out);
void quantized_matmul(const quant::QmmArgs& a, Precision precision = Precision::float32);

// Runs one given kernel (tests and benchmarks call every registered variant this way).
void run_dequantize(const Kernel& k, const uint32_t* weight, const void* scales, const void* biases,
                    DType sdt, int64_t rows, int64_t K, int g, int bits, void* out);
void run_qmm(const Kernel& k, const quant::QmmArgs& a);

// Attention over blocks of kAttentionBlock query tokens x KV heads on the thread pool, with the
// active ISA's kernel, or a given one.
void attention(const AttentionTask& a);
void run_attention(const Kernel& k, const AttentionTask& a);

// out [n] = silu(gate) * up with the active ISA's kernel (on the calling thread).
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

}  // namespace onebit::cpu
