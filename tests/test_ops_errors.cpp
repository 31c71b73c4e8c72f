// Every validation path of the ops: a clear Error starting with the op's name, naming the bad
// value and the allowed set, and nothing written.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "ops/ops.h"
#include "test_util.h"

using namespace onebit;

namespace {

void expect_error(const std::function<void()>& f, const std::string& op,
                  std::initializer_list<std::string> fragments) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one from " << op;
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("[" + op + "]", 0), 0u) << msg;
        for (const auto& fr : fragments) EXPECT_NE(msg.find(fr), std::string::npos) << msg;
    }
}

struct Packed {
    Tensor w, s, b;
};

Packed packed(int64_t rows, int64_t K, int g, int bits, DType sdt = DType::float32) {
    std::mt19937 rng(1);
    Packed p{Tensor(DType::uint32, {rows, K * bits / 32}), Tensor(sdt, {rows, K / g}),
             Tensor(sdt, {rows, K / g})};
    test::fill_random_words(p.w.view(), rng);
    test::fill_scales(p.s.view(), p.b.view(), rng, false);
    return p;
}

}  // namespace

TEST(OpsErrors, Quantize) {
    Tensor w(DType::float32, {4, 128});
    std::mt19937 rng(2);
    test::fill_normal(w.view(), rng);
    expect_error([&] { quantize(w.view(), 64, 7); }, "quantize",
                 {"bits 7 is not supported; supported: 1, 2, 3, 4, 5, 6, 8"});
    expect_error([&] { quantize(w.view(), 16, 4); }, "quantize",
                 {"group_size 16 is not supported; supported: 32, 64, 128"});
    Tensor odd(DType::float32, {4, 96});
    expect_error([&] { quantize(odd.view(), 64, 4); }, "quantize",
                 {"last dimension of w (96", "not a multiple of group_size 64"});
    Tensor flat(DType::float32, {128});
    expect_error([&] { quantize(flat.view(), 64, 4); }, "quantize", {"rank >= 2", "[128]"});
    Tensor ints(DType::int32, {4, 128});
    expect_error([&] { quantize(ints.view(), 64, 4); }, "quantize",
                 {"dtype int32", "supported: float32, float16, bfloat16"});
    TensorView strided(DType::float32, {4, 64}, w.data(), {128, 1});
    expect_error([&] { quantize(strided, 64, 4); }, "quantize", {"contiguous"});
    Tensor nan(DType::float32, {1, 64});
    test::fill_normal(nan.view(), rng);
    nan.ptr<float>()[10] = std::numeric_limits<float>::quiet_NaN();
    expect_error([&] { quantize(nan.view(), 64, 4); }, "quantize", {"non-finite", "index 10"});
    // *_into with a wrong output leaves it untouched
    Tensor wq(DType::uint32, {4, 8}), s(DType::float32, {4, 2}), b(DType::float32, {4, 3});
    test::poison(s.view());
    expect_error([&] { quantize_into(w.view(), 64, 4, wq.view(), s.view(), b.view()); }, "quantize",
                 {"output weight", "expected uint32 [4, 16]"});
    EXPECT_TRUE(std::isnan(s.ptr<float>()[0]));
}

TEST(OpsErrors, Dequantize) {
    Packed p = packed(4, 128, 64, 4);
    expect_error([&] { dequantize(p.w.view(), p.s.view(), p.b.view(), 64, 9); }, "dequantize",
                 {"bits 9 is not supported"});
    expect_error([&] { dequantize(p.w.view(), p.s.view(), p.b.view(), 48, 4); }, "dequantize",
                 {"group_size 48 is not supported"});
    // packed width 16 words at 4 bits is 128 values; at 8 bits it does not match
    expect_error([&] { dequantize(p.w.view(), p.s.view(), p.b.view(), 64, 8); }, "dequantize",
                 {"packed width 16", "expected 32 uint32 words"});
    expect_error([&] { dequantize(p.w.view(), p.s.view(), p.b.view(), 32, 4); }, "dequantize",
                 {"packed width 16", "expected 8 uint32 words"});
    Tensor b16(DType::float16, {4, 2});
    expect_error([&] { dequantize(p.w.view(), p.s.view(), b16.view(), 64, 4); }, "dequantize",
                 {"biases have dtype float16 but scales have float32"});
    Tensor b3(DType::float32, {4, 3});
    expect_error([&] { dequantize(p.w.view(), p.s.view(), b3.view(), 64, 4); }, "dequantize",
                 {"scales shape [4, 2] and biases shape [4, 3] differ"});
    Tensor s5(DType::float32, {5, 2}), b5(DType::float32, {5, 2});
    expect_error([&] { dequantize(p.w.view(), s5.view(), b5.view(), 64, 4); }, "dequantize",
                 {"does not match weight shape"});
    Tensor wf(DType::float32, {4, 16});
    expect_error([&] { dequantize(wf.view(), p.s.view(), p.b.view(), 64, 4); }, "dequantize",
                 {"weight has dtype float32; supported: uint32"});
    Tensor si(DType::int32, {4, 2}), bi(DType::int32, {4, 2});
    expect_error([&] { dequantize(p.w.view(), si.view(), bi.view(), 64, 4); }, "dequantize",
                 {"scales has dtype int32"});
    Tensor out(DType::float16, {4, 128});
    expect_error([&] { dequantize_into(p.w.view(), p.s.view(), p.b.view(), 64, 4, out.view()); },
                 "dequantize", {"expected float32 [4, 128]"});
}

TEST(OpsErrors, QuantizedMatmul) {
    Packed p = packed(8, 256, 64, 2);
    Tensor x(DType::float32, {3, 256});
    std::mt19937 rng(3);
    test::fill_normal(x.view(), rng);
    auto qmm = [&](const TensorView& xv, bool t, int g, int bits) {
        quantized_matmul(xv, p.w.view(), p.s.view(), p.b.view(), t, g, bits);
    };
    expect_error([&] { qmm(x.view(), true, 64, 0); }, "quantized_matmul",
                 {"bits 0 is not supported"});
    expect_error([&] { qmm(x.view(), true, 256, 2); }, "quantized_matmul",
                 {"group_size 256 is not supported"});
    Tensor xk(DType::float32, {3, 128});
    expect_error([&] { qmm(xk.view(), true, 64, 2); }, "quantized_matmul",
                 {"x has 128 values", "expects K = 256"});
    // transpose = false: weight [K=8, N=256] expects x's last dim 8
    expect_error([&] { qmm(x.view(), false, 64, 2); }, "quantized_matmul",
                 {"x has 256 values", "transpose false", "expects K = 8"});
    Tensor xi(DType::int32, {3, 256});
    expect_error([&] { qmm(xi.view(), true, 64, 2); }, "quantized_matmul",
                 {"x has dtype int32", "supported: float32, float16, bfloat16"});
    expect_error([&] { qmm(x.view(), true, 64, 4); }, "quantized_matmul",
                 {"packed width 16", "expected 32 uint32 words"});
    Tensor y(DType::float32, {3, 7});
    expect_error(
        [&] {
            quantized_matmul_into(x.view(), p.w.view(), p.s.view(), p.b.view(), true, 64, 2,
                                  y.view());
        },
        "quantized_matmul", {"output y is float32 [3, 7]; expected float32 [3, 8]"});
    // batched weights that do not broadcast
    Tensor xb(DType::float32, {3, 2, 256}), wb(DType::uint32, {2, 8, 16}),
        sb(DType::float32, {2, 8, 4}), bb(DType::float32, {2, 8, 4});
    expect_error([&] { quantized_matmul(xb.view(), wb.view(), sb.view(), bb.view(), true, 64, 2); },
                 "quantized_matmul", {"batch dims [3] of x and [2] of weight do not broadcast"});
}
