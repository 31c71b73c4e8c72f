// The scalar reference against FORMAT.md's worked examples, the cases MLX's bits = 1 pull request
// tests, and packing properties.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ops/ops.h"
#include "quant/format.h"
#include "quant/reference.h"
#include "test_util.h"

using namespace onebit;

namespace {

Tensor from_values(DType dt, Shape shape, const std::vector<float>& v) {
    Tensor t(dt, std::move(shape));
    for (size_t i = 0; i < v.size(); ++i) store_float(dt, t.data(), i, v[i]);
    return t;
}

std::vector<float> tile(const std::vector<float>& v, size_t n) {
    std::vector<float> out;
    while (out.size() < n) out.insert(out.end(), v.begin(), v.end());
    out.resize(n);
    return out;
}

}  // namespace

TEST(Reference, FormatWorkedExamples4Bit) {
    float w1[4] = {-0.3f, 0.1f, 0.5f, 0.9f};
    quant::AffineParams p = quant::affine_params(w1, 4, 4);
    EXPECT_FLOAT_EQ(p.bias, 0.9f);
    EXPECT_NEAR(p.scale, -0.08181818f, 1e-6);
    float w2[4] = {-0.9f, 0.1f, 0.5f, 0.3f};
    p = quant::affine_params(w2, 4, 4);
    EXPECT_FLOAT_EQ(p.scale, 0.09f);
    EXPECT_FLOAT_EQ(p.bias, -0.9f);

    // codes through the op: the first worked example tiled over a 32-group
    Tensor w = from_values(DType::float32, {1, 32}, tile({-0.3f, 0.1f, 0.5f, 0.9f}, 32));
    Quantized q = quantize(w.view(), 32, 4);
    const auto* bytes = q.weight.ptr<uint8_t>();
    EXPECT_EQ(quant::get_code(bytes, 0, 4), 15u);
    EXPECT_EQ(quant::get_code(bytes, 1, 4), 10u);
    EXPECT_EQ(quant::get_code(bytes, 2, 4), 5u);
    EXPECT_EQ(quant::get_code(bytes, 3, 4), 0u);
    // 0.5 of the second example is clipped to code 15
    Tensor w2t = from_values(DType::float32, {1, 32}, tile({-0.9f, 0.1f, 0.5f, 0.3f}, 32));
    Quantized q2 = quantize(w2t.view(), 32, 4);
    EXPECT_EQ(quant::get_code(q2.weight.ptr<uint8_t>(), 2, 4), 15u);
}

TEST(Reference, AllZeroGroup) {
    for (int bits : quant::kSupportedBits) {
        Tensor w = from_values(DType::float32, {2, 64}, std::vector<float>(128, 0.0f));
        Quantized q = quantize(w.view(), 64, bits);
        for (int64_t i = 0; i < q.scales.view().numel(); ++i) {
            EXPECT_EQ(q.biases.ptr<float>()[i], 0.0f) << bits;
            EXPECT_EQ(q.scales.ptr<float>()[i], bits == 1 ? 1e-7f : -1e-7f) << bits;
        }
        Tensor d = dequantize(q.weight.view(), q.scales.view(), q.biases.view(), 64, bits);
        for (int64_t i = 0; i < 128; ++i) EXPECT_EQ(d.ptr<float>()[i], 0.0f) << bits;
    }
}

// The cases of MLX's bits = 1 pull request: {-0.5, +0.5} and {0.1, 0.9} round-trip exactly,
// dequantized values lie in {bias, bias + scale}, zeros round-trip to zero.
TEST(Reference, OneBitRoundTrips) {
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16}) {
        for (auto pair : {std::pair{-0.5f, 0.5f}, std::pair{0.1f, 0.9f}}) {
            std::mt19937 rng(5);
            std::vector<float> v(256);
            for (auto& e : v) e = (rng() & 1) ? pair.second : pair.first;
            Tensor w = from_values(dt, {2, 128}, v);
            Quantized q = quantize(w.view(), 128, 1);
            Tensor d = dequantize(q.weight.view(), q.scales.view(), q.biases.view(), 128, 1);
            for (int64_t i = 0; i < 256; ++i)
                EXPECT_EQ(load_float(dt, d.data(), i), load_float(dt, w.data(), i))
                    << dtype_name(dt) << " " << i;
        }
        std::mt19937 rng(9);
        Tensor w(dt, {4, 128});
        test::fill_normal(w.view(), rng);
        Quantized q = quantize(w.view(), 32, 1);
        Tensor d = dequantize(q.weight.view(), q.scales.view(), q.biases.view(), 32, 1);
        for (int64_t i = 0; i < 512; ++i) {
            float s = load_float(dt, q.scales.data(), i / 32);
            float b = load_float(dt, q.biases.data(), i / 32);
            float got = load_float(dt, d.data(), i);
            EXPECT_TRUE(got == b || got == round_to(dt, round_to(dt, s) + b)) << i;
        }
        Tensor z = from_values(dt, {1, 128}, std::vector<float>(128, 0.0f));
        Quantized qz = quantize(z.view(), 128, 1);
        Tensor dz = dequantize(qz.weight.view(), qz.scales.view(), qz.biases.view(), 128, 1);
        for (int64_t i = 0; i < 128; ++i) EXPECT_EQ(load_float(dt, dz.data(), i), 0.0f);
    }
}

// 1-bit {-d, +d}: scale 2d, bias -d, so w_hat is exactly +-d (the Bonsai form).
TEST(Reference, OneBitSymmetricForm) {
    std::vector<float> v(128);
    for (size_t i = 0; i < v.size(); ++i) v[i] = (i * 7 % 3 == 0) ? 0.25f : -0.25f;
    Tensor w = from_values(DType::float16, {1, 128}, v);
    Quantized q = quantize(w.view(), 128, 1);
    EXPECT_EQ(load_float(DType::float16, q.scales.data(), 0), 0.5f);
    EXPECT_EQ(load_float(DType::float16, q.biases.data(), 0), -0.25f);
    for (int k = 0; k < 128; ++k)
        EXPECT_EQ(quant::get_code(q.weight.ptr<uint8_t>(), k, 1), v[k] > 0 ? 1u : 0u);
}

// put_code / get_code round-trip every code at every position, and the stream is LSB-first:
// value k of a 1-bit row is bit k % 32 of word k / 32.
TEST(Reference, PackingRoundTripsAndIsLsbFirst) {
    std::mt19937 rng(11);
    for (int bits : quant::kSupportedBits) {
        const int64_t K = 256;
        std::vector<uint32_t> words(quant::packed_words(K, bits), 0);
        std::vector<uint32_t> codes(K);
        auto* bytes = reinterpret_cast<uint8_t*>(words.data());
        for (int64_t k = 0; k < K; ++k) {
            codes[k] = rng() & ((1u << bits) - 1u);
            quant::put_code(bytes, k, bits, codes[k]);
        }
        for (int64_t k = 0; k < K; ++k) ASSERT_EQ(quant::get_code(bytes, k, bits), codes[k]);
        if (32 % bits == 0) {
            int per = 32 / bits;
            for (int64_t k = 0; k < K; ++k)
                ASSERT_EQ((words[k / per] >> ((k % per) * bits)) & ((1u << bits) - 1u), codes[k]);
        }
    }
}

// Quantization error: every dequantized value lies within half a step of the input, except values
// the format clips at the far edge (bits >= 2) or bits = 1.
TEST(Reference, DequantizeErrorWithinHalfStep) {
    std::mt19937 rng(13);
    for (int bits : {2, 3, 4, 5, 6, 8}) {
        for (int g : quant::kSupportedGroupSizes) {
            Tensor w(DType::float32, {3, 256});
            test::fill_normal(w.view(), rng, 0.1f);
            Quantized q = quantize(w.view(), g, bits);
            Tensor d = dequantize(q.weight.view(), q.scales.view(), q.biases.view(), g, bits);
            for (int64_t i = 0; i < 3 * 256; ++i) {
                float s = std::abs(q.scales.ptr<float>()[i / g]);
                float err = std::abs(d.ptr<float>()[i] - w.ptr<float>()[i]);
                // clipping of the far edge can cost up to one more step
                EXPECT_LE(err, 1.5f * s + 1e-6f) << bits << " " << g << " " << i;
            }
        }
    }
}
