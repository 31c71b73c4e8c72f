// Weights repacked at load time for the packed kernels: rows in blocks of 16 (the last block
// padded with zero rows), one record per block and group, the 16 rows side by side so a 64-byte
// line holds 16 rows x 4 bytes (dword lane r is row r). A record is the group's code lines, then
// the 16 rows' scales, then their biases (absent in the symmetric form), in the scales' dtype.
//
// 1 bit: g/32 lines; line c holds the group's bits 32c .. 32c+31 of each row (byte t of a lane:
// weights 32c + 8t .. 32c + 8t + 7), read by the lookup-table kernel (tmac_avx512.cpp) and the
// VNNI prefill kernel (prefill_avx512_vnni.cpp). Packed where only AVX2 runs (byte_rows), a
// line holds the same bytes ordered by byte, then row: byte t of row r at (t % 2) 32 + (t / 2) 16
// + r, so each 16-byte lane is one byte of the 16 rows (tmac_avx2.cpp's pshufb tables).
// 2, 4 and 8 bits (codes_avx512.cpp): g * bits / 32 lines; line l holds 32 / bits codes of each
// row: bits [bits * q, bits * q + bits) of byte t are the code of weight l * 32 / bits + 4q + t, so
// masking the line to part q gives bytes (times 2^(bits * q)) that one vpdpbusd takes against
// activations 4q .. 4q+3 of the line.
//
// A block's records are consecutive ([blocks][K/g] records); the kernels read four blocks side
// by side, four streams (measured no slower than interleaving the four blocks' records into one
// stream). The packed data take the bytes of the original (plus padding rows).
#pragma once

#include <cstdint>
#include <span>

#include "backend/cpu/registry.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace onebit::cpu {

struct PackedWeights {
    int64_t N = 0, K = 0;
    int group_size = 0;
    int bits = 1;
    DType sdt = DType::float16;
    bool symmetric = false;    // biases are -scale / 2 and not stored
    bool byte_rows = false;    // 1 bit in the AVX2 kernel's line order (above)
    int64_t group_stride = 0;  // bytes of one (block, group) record
    Buffer data;               // [blocks][K/g] records

    int64_t blocks() const { return (N + 15) / 16; }
    // Bytes a matmul streams.
    size_t stream_bytes() const { return data.size(); }
};

// Whether the active ISA runs packed kernels: all of them with AVX-512 VNNI and VBMI (vpermb
// lookups, vpdpbusd sums; packed_vnni_available), the 1-bit lookup-table kernels (int8 and
// float32 activations) with AVX2 (tmac_avx2.cpp; also where AVX-512 lacks VNNI / VBMI or
// ONEBIT_CPU_ISA=avx2). Elsewhere
// prepared weights keep the original layout and its kernels.
bool packed_available();
bool packed_vnni_available();
// Whether weights of `bits` are packed for activations of that precision here: with VNNI, 1 bit
// for both (int8 and float32 kernels) and 2, 4 and 8 bits for int8 activations (float32
// activations keep the original layout); with AVX2, 1 bit for both.
bool packable(int bits, Precision precision);

// Repacks weight [N, K * bits / 32] (uint32), scales and biases [N, K/g] of dtype sdt; biases
// nullptr means the symmetric form. bits 1, 2, 4 or 8. Inputs validated by the caller. 1 bit is
// laid out for the kernels of the active ISA (byte_rows without VNNI); qmm_packed refuses
// weights packed for the other.
PackedWeights pack_weights(const uint32_t* weight, const void* scales, const void* biases,
                           DType sdt, int64_t N, int64_t K, int g, int bits = 1);

// Whether parts can be joined by rows (join_packed): the same K, group size, bits, scale dtype,
// form and layout, and every part but the last a whole number of 16-row blocks.
bool joinable(std::span<const PackedWeights* const> parts);
// One matrix of the parts' rows in order (e.g. q / k / v, one matmul for the three): their records
// concatenated, so each row is computed exactly as in its part. Throws [cpu] unless joinable.
PackedWeights join_packed(std::span<const PackedWeights* const> parts);

// Kernels for int8 activations over the packed 1-bit layout: lookup tables of activation subset
// sums (tmac_avx512.cpp, fastest for small M; tmac_avx2.cpp, every M on AVX2) and bits expanded
// to bytes for VNNI dot products (prefill_avx512_vnni.cpp, large M). All give bit-identical
// results on one machine. automatic picks by M (VNNI) or the lookup table (AVX2).
// Packed 2-, 4- and 8-bit weights have one kernel (codes_avx512.cpp) for every M: automatic.
enum class PackedPath : uint8_t { automatic, lookup_table, vnni };
// The smallest M for which automatic picks vnni (when the CPU has VNNI and VBMI).
inline constexpr int64_t kPackedVnniMinM = 16;

// y [M, N] (ydt) = x [M, K] (xdt) @ w_hat^T. Precision::int8: the numerics of
// quant::qmm_t_int8_ref (same bound); Precision::float32 (1 bit only): float tables of
// activation subset sums, within FORMAT.md's float32 bound (path must be automatic). Each row of
// the result is computed the same way whatever M is (batch invariant). Splits row blocks over the
// thread pool. Throws [cpu] when path names a kernel this CPU cannot run or the precision or bits
// are not packable here.
void qmm_packed(const PackedWeights& p, const void* x, DType xdt, int64_t M, void* y, DType ydt,
                Precision precision, PackedPath path = PackedPath::automatic);

}  // namespace onebit::cpu
