// Golden fixtures from real MLX (scripts/gen_mlx_fixtures.py): quantize and dequantize must be
// bit-exact; quantized_matmul within FORMAT.md's bound of a float64 oracle and close to MLX's
// own result (which accumulates float16 / bfloat16 inputs in half precision).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>

#include "io/safetensors.h"
#include "ops/ops.h"
#include "test_util.h"

using namespace onebit;

namespace {

const io::SafetensorsFile& fixtures() {
    static io::SafetensorsFile f =
        io::SafetensorsFile::open(std::string(ONEBIT_TEST_DATA) + "/mlx_affine.safetensors");
    return f;
}

void expect_same_bytes(const TensorView& got, const TensorView& want, const std::string& what) {
    ASSERT_EQ(got.dtype, want.dtype) << what;
    ASSERT_EQ(got.shape, want.shape) << what;
    size_t n = got.nbytes();
    const auto* a = static_cast<const uint8_t*>(got.data);
    const auto* b = static_cast<const uint8_t*>(want.data);
    size_t elem = dtype_size(got.dtype);
    for (size_t i = 0; i < n; i += elem) {
        if (std::memcmp(a + i, b + i, elem) != 0) {
            ADD_FAILURE() << what << ": first difference at element " << i / elem << " of "
                          << shape_str(got.shape);
            return;
        }
    }
}

using Param = std::tuple<int, int, std::string>;

class MlxGolden : public ::testing::TestWithParam<Param> {
  protected:
    std::string prefix() const {
        auto [bits, g, dt] = GetParam();
        return "b" + std::to_string(bits) + "_g" + std::to_string(g) + "_" + dt + ".";
    }
    TensorView get(const std::string& name) const { return fixtures().get(prefix() + name); }
};

// |y - ref| <= tol * sum_k |x| (|scale q| + |bias|) + floor, element by element. The fixtures'
// outlier rows (bias 5.0, weights near 0.01) make scale * q + bias cancel, so the error of any
// float32 evaluation scales with the terms' magnitude, not with |w_hat| (FORMAT.md's bound holds
// for the random sweep in test_qmm_sweep, whose groups do not cancel like this).
void expect_close(const TensorView& y, const std::vector<double>& ref_vals, const test::Oracle& o,
                  double tol, const std::string& what) {
    double floor = test::qmm_abs_floor(y.dtype);
    for (int64_t i = 0; i < y.numel(); ++i) {
        double a = load_float(y.dtype, y.data, i);
        ASSERT_LE(std::abs(a - ref_vals[i]), tol * o.terms[i] + floor) << what << " element " << i;
    }
}

std::vector<double> values(const TensorView& t) {
    std::vector<double> v(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = load_float(t.dtype, t.data, i);
    return v;
}

// MLX accumulates float16 / bfloat16 inputs in that dtype; allow for it.
double mlx_tol(DType dt) {
    return dt == DType::float16 ? 2e-2 : dt == DType::bfloat16 ? 1e-1 : 2e-5;
}

}  // namespace

TEST_P(MlxGolden, QuantizeIsBitExact) {
    auto [bits, g, dt] = GetParam();
    Quantized q = quantize(get("w"), g, bits);
    expect_same_bytes(q.weight.view(), get("weight"), prefix() + "weight");
    expect_same_bytes(q.scales.view(), get("scales"), prefix() + "scales");
    expect_same_bytes(q.biases.view(), get("biases"), prefix() + "biases");
    Quantized qn = quantize(get("wn"), g, bits);
    expect_same_bytes(qn.weight.view(), get("wn_weight"), prefix() + "wn_weight");
    expect_same_bytes(qn.scales.view(), get("wn_scales"), prefix() + "wn_scales");
}

TEST_P(MlxGolden, DequantizeIsBitExact) {
    auto [bits, g, dt] = GetParam();
    Tensor d = dequantize(get("weight"), get("scales"), get("biases"), g, bits);
    expect_same_bytes(d.view(), get("deq"), prefix() + "deq");
}

TEST_P(MlxGolden, QuantizedMatmulMatchesOracleAndMlx) {
    auto [bits, g, dt] = GetParam();
    for (bool transpose : {true, false}) {
        std::string w = transpose ? "" : "wn_";
        TensorView x = get(transpose ? "x" : "x2"), ref = get(transpose ? "y" : "y2");
        TensorView wq = get(w.empty() ? "weight" : "wn_weight");
        TensorView s = get(w + "scales"), b = get(w + "biases");
        Tensor y = quantized_matmul(x, wq, s, b, transpose, g, bits);
        ASSERT_EQ(y.dtype(), ref.dtype);
        test::Oracle o = test::qmm_oracle(x, wq, s, b, transpose, g, bits);
        std::string what = prefix() + (transpose ? "y" : "y2");
        ASSERT_EQ(y.shape(), ref.shape) << what;
        expect_close(y.view(), o.y, o, test::qmm_tol(y.dtype()), what + " vs float64 oracle");
        expect_close(y.view(), values(ref), o, mlx_tol(y.dtype()), what + " vs MLX");
    }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, MlxGolden,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 5, 6, 8),
                                            ::testing::Values(32, 64, 128),
                                            ::testing::Values("float32", "float16", "bfloat16")),
                         [](const auto& info) {
                             return "b" + std::to_string(std::get<0>(info.param)) + "_g" +
                                    std::to_string(std::get<1>(info.param)) + "_" +
                                    std::get<2>(info.param);
                         });
