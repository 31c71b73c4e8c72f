// float16 / bfloat16 conversions: exhaustive round trips and rounding against the compiler's
// _Float16 (an independent implementation of IEEE binary16).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/half.h"

using namespace onebit;

TEST(Half, Fp16RoundTripsEveryValue) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        float f = fp16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(f)))) << h;
            continue;
        }
        EXPECT_EQ(float_to_fp16(f), h) << std::hex << h;
    }
}

#if defined(__aarch64__)
using CompilerHalf = __fp16;  // IEEE binary16 on aarch64
#define ONEBIT_HAVE_COMPILER_HALF 1
#elif defined(__FLT16_MAX__)
using CompilerHalf = _Float16;
#define ONEBIT_HAVE_COMPILER_HALF 1
#endif

#if defined(ONEBIT_HAVE_COMPILER_HALF)
TEST(Half, Fp16MatchesCompilerFloat16) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        CompilerHalf c;
        uint16_t hb = static_cast<uint16_t>(h);
        std::memcpy(&c, &hb, 2);
        float f = fp16_to_float(hb);
        if (!std::isnan(f)) {
            EXPECT_EQ(static_cast<float>(c), f) << std::hex << h;
        }
    }
    std::mt19937 rng(7);
    auto check = [](float f) {
        CompilerHalf c = static_cast<CompilerHalf>(f);
        uint16_t cb;
        std::memcpy(&cb, &c, 2);
        if (std::isnan(f))
            EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(f))));
        else
            EXPECT_EQ(float_to_fp16(f), cb) << f;
    };
    for (int i = 0; i < 2000000; ++i) check(bits_float(rng()));  // every exponent, incl. NaN
    // every tie and neighbour around each fp16 value
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        uint32_t u = float_bits(fp16_to_float(static_cast<uint16_t>(h)));
        for (int d = -2; d <= 2; ++d) {
            check(bits_float(u + d));
            check(-bits_float(u + d));
        }
        float mid = (fp16_to_float(h) + fp16_to_float(h + 1)) * 0.5f;
        check(mid);
        check(-mid);
    }
}
#endif

TEST(Half, Fp16SpecialValues) {
    EXPECT_EQ(float_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(float_to_fp16(65519.0f), 0x7bff);
    EXPECT_EQ(float_to_fp16(65520.0f), 0x7c00);  // tie at max rounds to even -> inf
    EXPECT_EQ(float_to_fp16(INFINITY), 0x7c00);
    EXPECT_EQ(float_to_fp16(-INFINITY), 0xfc00);
    EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
    EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);         // tie -> even (0)
    EXPECT_EQ(float_to_fp16(std::ldexp(1.5f, -24)), 0x0002);         // tie -> even (2)
    EXPECT_EQ(float_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
    EXPECT_EQ(float_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_EQ(float_to_fp16(NAN) & 0x7e00, 0x7e00);
}

TEST(Half, Bf16RoundTripsAndRounds) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        float f = bf16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f))));
            continue;
        }
        EXPECT_EQ(float_to_bf16(f), h) << std::hex << h;
    }
    EXPECT_EQ(float_to_bf16(bits_float(0x3f808000)), 0x3f80);  // tie -> even (down)
    EXPECT_EQ(float_to_bf16(bits_float(0x3f818000)), 0x3f82);  // tie -> even (up)
    EXPECT_EQ(float_to_bf16(bits_float(0x3f808001)), 0x3f81);  // above the tie
    EXPECT_EQ(float_to_bf16(bits_float(0x7f7fffff)), 0x7f80);  // rounds up to inf
    EXPECT_EQ(float_to_bf16(INFINITY), 0x7f80);
    EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
    EXPECT_TRUE(
        std::isnan(bf16_to_float(float_to_bf16(bits_float(0x7f800001)))));  // sNaN stays NaN
    // against a float64 computation of round-to-nearest-even
    std::mt19937 rng(3);
    for (int i = 0; i < 1000000; ++i) {
        float f = bits_float(rng() & 0x7f7fffffu);  // finite, positive
        float lo = bf16_to_float(static_cast<uint16_t>(float_bits(f) >> 16));
        uint16_t next = static_cast<uint16_t>((float_bits(f) >> 16) + 1);
        double hi = next == 0x7f80 ? std::ldexp(1.0, 128) : double(bf16_to_float(next));
        double dl = double(f) - lo, dh = hi - f;
        uint16_t want = static_cast<uint16_t>(float_bits(f) >> 16);
        if (dh < dl || (dh == dl && (want & 1))) ++want;
        ASSERT_EQ(float_to_bf16(f), want) << f;
    }
}
