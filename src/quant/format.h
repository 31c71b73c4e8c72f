// The MLX affine format (docs: FORMAT.md section 1): supported parameters, packed sizes and the
// LSB-first bit stream every kernel reads. This header is the single definition of the layout.
#pragma once

#include <array>
#include <cstdint>

namespace onebit::quant {

inline constexpr std::array<int, 7> kSupportedBits = {1, 2, 3, 4, 5, 6, 8};
inline constexpr std::array<int, 3> kSupportedGroupSizes = {32, 64, 128};

constexpr bool is_supported_bits(int bits) {
    for (int b : kSupportedBits)
        if (b == bits) return true;
    return false;
}

constexpr bool is_supported_group_size(int g) {
    for (int s : kSupportedGroupSizes)
        if (s == g) return true;
    return false;
}

// uint32 words holding k codes of `bits` bits; k * bits is a multiple of 32 whenever k is a
// multiple of a supported group size, which validation guarantees.
constexpr int64_t packed_words(int64_t k, int bits) { return k * bits / 32; }

// Code k of a packed row: stream bits [k*bits, (k+1)*bits), bit j in byte j/8 at bit j%8.
// A code of at most 8 bits spans at most two bytes.
inline uint32_t get_code(const uint8_t* row, int64_t k, int bits) {
    int64_t bit = k * bits;
    const uint8_t* p = row + (bit >> 3);
    uint32_t shift = static_cast<uint32_t>(bit & 7);
    uint32_t v = static_cast<uint32_t>(p[0]) >> shift;
    if (shift + bits > 8) v |= static_cast<uint32_t>(p[1]) << (8 - shift);
    return v & ((1u << bits) - 1u);
}

// ORs code q into a zero-initialised packed row.
inline void put_code(uint8_t* row, int64_t k, int bits, uint32_t q) {
    int64_t bit = k * bits;
    uint8_t* p = row + (bit >> 3);
    uint32_t shift = static_cast<uint32_t>(bit & 7);
    p[0] |= static_cast<uint8_t>(q << shift);
    if (shift + bits > 8) p[1] |= static_cast<uint8_t>(q >> (8 - shift));
}

}  // namespace onebit::quant
