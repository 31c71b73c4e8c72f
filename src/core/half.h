// Exact float16 (IEEE binary16) and bfloat16 conversions.
// float -> half rounds to nearest, ties to even; overflow goes to infinity; NaN stays NaN (quiet,
// sign kept); subnormals are produced and consumed exactly. half -> float is exact.
#pragma once

#include <cstdint>
#include <cstring>

namespace onebit {

inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;  // round to nearest even; carries into the exponent (and to inf) correctly
    return static_cast<uint16_t>(u >> 16);
}

inline float fp16_to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
    if (exp == 0) {
        // zero or subnormal: man * 2^-24, exact in float32
        float v = static_cast<float>(man) * bits_float(0x33800000u);  // 2^-24
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

inline uint16_t float_to_fp16(float f) {
    uint32_t u = float_bits(f);
    uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x1ffu));  // NaN
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (a >= 0x38800000u) {
        // normal half: rebias exponent (127 -> 15) and round 13 dropped bits to nearest even
        uint32_t lsb = (a >> 13) & 1u;
        a += 0xfffu + lsb;
        return static_cast<uint16_t>(sign | ((a - 0x38000000u) >> 13));
    }
    if (a < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): +-0
    // subnormal half: value = man * 2^-24 with man = round(|f| * 2^24) to nearest even
    uint32_t exp = a >> 23;
    uint32_t man = (a & 0x7fffffu) | 0x800000u;  // implicit bit
    uint32_t shift = 126u - exp;                 // 14 + (113 - exp), in [14, 24]
    uint32_t half_ulp = 1u << (shift - 1);
    uint32_t rest = man & ((1u << shift) - 1u);
    uint32_t q = man >> shift;
    if (rest > half_ulp || (rest == half_ulp && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
}

// Rounds a float to the nearest float16 / bfloat16 value and back (the value a store would keep).
inline float round_fp16(float f) { return fp16_to_float(float_to_fp16(f)); }
inline float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

}  // namespace onebit
