// Weights repacked at load time for the lookup-table (T-MAC style) 1-bit kernel.
//
// Layout: rows in blocks of 16 (the last block padded with zero rows), one record per block and
// group: [g/32][16][4] bytes of bits (chunk c of 32 weights: row r's bytes 4c .. 4c+3 of the
// group side by side, so a 64-byte chunk holds 16 rows x 32 weights and its dword lane r is row
// r), then the 16 rows' scales, then their biases (absent in the symmetric form), in the scales'
// dtype. A block's records are consecutive ([blocks][K/g] records); the lookup-table kernel reads
// four blocks side by side, four streams (measured no slower than interleaving the four blocks'
// records into one stream). The packed data take the bytes of the original (plus padding rows).
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
    bool symmetric = false;    // biases are -scale / 2 and not stored
    int64_t group_stride = 0;  // bytes of one (block, group) record
    Buffer data;               // [blocks][K/g] records

    int64_t blocks() const { return (N + 15) / 16; }
    // Bytes a matmul streams.
    size_t stream_bytes() const { return data.size(); }
};

// Whether this CPU runs the packed kernels (AVX-512 with VNNI and VBMI: vpermb lookups and
// vpdpbusd sums); elsewhere prepared 1-bit weights keep the original layout and its kernels.
bool packed_one_bit_available();

// Repacks 1-bit weight [N, K/32] (uint32), scales and biases [N, K/g] of dtype sdt; biases
// nullptr means the symmetric form. Inputs validated by the caller.
PackedOneBit pack_one_bit(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                          int64_t N, int64_t K, int g);

// Kernels for int8 activations over the packed layout: lookup tables of activation subset sums
// (tmac_avx512.cpp, fastest for small M) and bits expanded to bytes for VNNI dot products
// (prefill_avx512_vnni.cpp, large M). Both give bit-identical results. automatic picks by M.
enum class PackedPath : uint8_t { automatic, lookup_table, vnni };
// The smallest M for which automatic picks vnni (when the CPU has VNNI and VBMI).
inline constexpr int64_t kPackedVnniMinM = 16;

// y [M, N] (ydt) = x [M, K] (xdt) @ w_hat^T. Precision::int8: the numerics of
// quant::qmm_t_int8_ref (same bound); Precision::float32: float tables of activation subset
// sums, within FORMAT.md's float32 bound (path must be automatic). Splits row blocks over the
// thread pool. Throws [cpu] when path names a kernel this CPU cannot run.
void qmm_packed_one_bit(const PackedOneBit& p, const void* x, DType xdt, int64_t M, void* y,
                        DType ydt, Precision precision, PackedPath path = PackedPath::automatic);

}  // namespace onebit::cpu
