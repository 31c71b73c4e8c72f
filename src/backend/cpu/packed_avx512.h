// Reading the repacked 1-bit layout (packed.h) with AVX-512: included only by the AVX-512 kernel
// files that read it (internal linkage, see simd_common.h).
#pragma once

#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/packed.h"
#include "backend/cpu/simd_common.h"

namespace onebit::cpu {
namespace {

inline __m512 load16(DType dt, const uint8_t* p) {
    if (dt == DType::float32) return _mm512_loadu_ps(p);
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if (dt == DType::float16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// One 16-row block of a packed matrix (any bits): its group records and the rows it holds.
struct Block {
    const uint8_t* base;  // record of group 0
    int64_t rows, ng, stride, g, code_bytes;
    size_t es;
    bool symmetric;
    Block(const PackedWeights& p, int64_t b, int group_size)
        : ng(p.K / group_size),
          stride(p.group_stride),
          g(group_size),
          code_bytes(2 * group_size * p.bits),
          es(dtype_size(p.sdt)),
          symmetric(p.symmetric) {
        base = static_cast<const uint8_t*>(p.data.data()) + b * ng * stride;
        rows = p.N - b * 16 < 16 ? p.N - b * 16 : 16;
    }
    const uint8_t* bits(int64_t gi) const { return base + gi * stride; }
    // off bytes into group gi's record, 2 KiB further on in the block's stream: what to
    // prefetch (about a microsecond before it is read; past the buffer's end is harmless)
    // A kernel that reads nb consecutive blocks side by side goes on to the block nb further on:
    // past this block's end, the prefetch lands there (the same distance into it), so the next
    // pass starts in cache.
    const char* ahead(int64_t gi, int64_t off, int nb = 1) const {
        int64_t pos = gi * stride + off + 2048;
        if (pos >= ng * stride) pos += (nb - 1) * ng * stride;
        return reinterpret_cast<const char*>(base + pos);
    }
    __m512 scale(DType dt, int64_t gi) const { return load16(dt, bits(gi) + code_bytes); }
    // accb += bias * xsum_g for the 16 rows (-scale / 2 in the symmetric form)
    __m512 add_bias(DType dt, int64_t gi, __m512 s, float xsum_g, __m512 accb) const {
        if (!symmetric)
            return _mm512_fmadd_ps(load16(dt, bits(gi) + code_bytes + 16 * es), _mm512_set1_ps(xsum_g),
                                   accb);
        return _mm512_fmadd_ps(s, _mm512_set1_ps(-0.5f * xsum_g), accb);
    }
    void store(const PackedWeights& p, int64_t b, int64_t m, __m512 v, void* y, DType ydt) const {
        alignas(64) float out[16];
        _mm512_store_ps(out, v);
        for (int64_t r = 0; r < rows; ++r) store_y(ydt, y, m * p.N + b * 16 + r, out[r]);
    }
};

// Blocks b .. b + NB - 1 of p (make_index_sequence<NB>()).
template <int NB, size_t... I>
std::array<Block, NB> blocks_from(const PackedWeights& p, int64_t b, int g,
                                  std::index_sequence<I...>) {
    return {Block(p, b + static_cast<int64_t>(I), g)...};
}

// The four int8 values at p in every dword lane.
inline __m512i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

}  // namespace
}  // namespace onebit::cpu
