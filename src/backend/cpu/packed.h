// Weights repacked at load time for the lookup-table (T-MAC style) 1-bit kernel.
//
// Layout: rows in blocks of 16 (the last block padded with zero rows); within a block, byte j
// of every row's bit stream is stored together: bits [n_blocks][K/8][16]. Scales and biases
// become [n_blocks][K/g][16] in their dtype, so one vector load gives a group's scales for 16
// rows. The packed bits take exactly the bytes of the original (plus padding rows).
#pragma once

#include <cstdint>

#include "backend/cpu/registry.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace onebit::cpu {

struct PackedOneBit {
    int64_t N = 0, K = 0;
    int group_size = 0;
    DType sdt = DType::float16;
    bool symmetric = false;  // biases are -scale / 2 and not stored
    Buffer bits;             // [N/16 blocks][K/8][16] bytes
    Buffer scales;           // [blocks][K/g][16]
    Buffer biases;           // [blocks][K/g][16]; empty when symmetric

    int64_t blocks() const { return (N + 15) / 16; }
    // Bytes a matmul streams: packed bits plus scales (and biases).
    size_t stream_bytes() const { return bits.size() + scales.size() + biases.size(); }
};

// Whether this CPU runs the lookup-table kernel (AVX-512 BW).
bool packed_one_bit_available();

// Repacks 1-bit weight [N, K/32] (uint32), scales and biases [N, K/g] of dtype sdt; biases
// nullptr means the symmetric form. Inputs validated by the caller.
PackedOneBit pack_one_bit(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                          int64_t N, int64_t K, int g);

// y [M, N] (ydt) = x [M, K] (xdt) @ w_hat^T. Precision::int8: the numerics of
// quant::qmm_t_int8_ref (same bound); Precision::float32: float tables of activation subset
// sums, within FORMAT.md's float32 bound. Splits row blocks over the thread pool.
void qmm_packed_one_bit(const PackedOneBit& p, const void* x, DType xdt, int64_t M, void* y,
                        DType ydt, Precision precision);

}  // namespace onebit::cpu
