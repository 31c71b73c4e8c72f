// quantized_matmul against a float64 oracle. The bound, per output element, is
//   |y - y_ref| <= tol * sum_k |x| * (|scale * q| + |bias|)
// FORMAT.md states it with |x * w_hat|, which no float32 evaluation can meet when scale * q and
// bias cancel (w_hat near 0, e.g. transpose = false with K = 1: the rounding of scale * q alone
// exceeds it); the magnitude of the two terms is what float32 rounding scales with. For the
// 1-bit symmetric (Bonsai) form, where |scale * q| + |bias| <= 3 |w_hat|, FORMAT.md's own bound
// is asserted.
// for every bits x group size, M in {1, 3, 17}; transpose true with N in {1, 7, 64} and
// K in {g, 2560, 9728, 4096 + g}; transpose false with N in {g, 2560, 4096 + g}, K in {1, 7, 64};
// inputs of zero and non-zero mean; random packed codes and scales (1-bit also in the symmetric
// Bonsai form); outputs poisoned with NaN first. float32 over the full sweep, float16 and
// bfloat16 over a subset. tol: 1e-5 (float32), 1e-3 (float16), 8e-3 (bfloat16).
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <tuple>

#include "core/error.h"
#include "ops/ops.h"
#include "quant/format.h"
#include "test_util.h"

using namespace onebit;

namespace {

struct Case {
    int bits, g;
    DType dt;
    bool transpose;
    int64_t M, N, K;
    float x_mean;
    bool symmetric;
};

void run_case(const Case& c, std::mt19937& rng) {
    SCOPED_TRACE(::testing::Message()
                 << "bits " << c.bits << " g " << c.g << " " << dtype_name(c.dt) << " transpose "
                 << c.transpose << " M " << c.M << " N " << c.N << " K " << c.K << " x_mean "
                 << c.x_mean << " symmetric " << c.symmetric);
    int64_t rows = c.transpose ? c.N : c.K, width = c.transpose ? c.K : c.N;
    Tensor x(c.dt, {c.M, c.K});
    Tensor w(DType::uint32, {rows, quant::packed_words(width, c.bits)});
    Tensor s(c.dt, {rows, width / c.g}), b(c.dt, {rows, width / c.g});
    test::fill_normal(x.view(), rng, c.x_mean);
    test::fill_random_words(w.view(), rng);
    test::fill_scales(s.view(), b.view(), rng, c.symmetric);
    OutSpec spec =
        quantized_matmul_spec(x.view(), w.view(), s.view(), b.view(), c.transpose, c.g, c.bits);
    Tensor y(spec.dtype, spec.shape);
    test::poison(y.view());
    quantized_matmul_into(x.view(), w.view(), s.view(), b.view(), c.transpose, c.g, c.bits,
                          y.view());
    test::Oracle o =
        test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), c.transpose, c.g, c.bits);
    double tol = test::qmm_tol(y.dtype()), floor = test::qmm_abs_floor(y.dtype());
    for (int64_t i = 0; i < c.M * c.N; ++i) {
        double got = load_float(y.dtype(), y.data(), i);
        double bound = c.symmetric ? o.bound[i] : o.terms[i];
        ASSERT_LE(std::abs(got - o.y[i]), tol * bound + floor) << "element " << i;
    }
}

}  // namespace

class QmmSweep : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(QmmSweep, TransposeTrue) {
    auto [bits, g] = GetParam();
    std::mt19937 rng(bits * 1000 + g);
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
        for (int64_t M : {1, 3, 17})
            for (int64_t N : {1, 7, 64})
                for (int64_t K : {int64_t(g), int64_t(2560), int64_t(9728), int64_t(4096 + g)}) {
                    if (dt != DType::float32 && (K == 9728 || N == 64)) continue;  // subset
                    for (float mean : {0.0f, 1.0f})
                        for (bool sym : {false, true}) {
                            if (sym && bits != 1) continue;
                            run_case({bits, g, dt, true, M, N, K, mean, sym}, rng);
                        }
                }
}

TEST_P(QmmSweep, TransposeFalse) {
    auto [bits, g] = GetParam();
    std::mt19937 rng(bits * 1000 + g + 1);
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
        for (int64_t M : {1, 3, 17})
            for (int64_t N : {int64_t(g), int64_t(2560), int64_t(4096 + g)})
                for (int64_t K : {1, 7, 64}) {
                    if (dt != DType::float32 && (K == 64 || N == 2560)) continue;  // subset
                    for (float mean : {0.0f, 1.0f})
                        run_case({bits, g, dt, false, M, N, K, mean, bits == 1}, rng);
                }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QmmSweep,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 5, 6, 8),
                                            ::testing::Values(32, 64, 128)),
                         [](const auto& info) {
                             return "b" + std::to_string(std::get<0>(info.param)) + "_g" +
                                    std::to_string(std::get<1>(info.param));
                         });

// Mixed dtypes: output dtype follows MLX's promotion and the bound still holds.
TEST(QmmPromotion, MixedDtypes) {
    std::mt19937 rng(21);
    struct P {
        DType x, s, out;
    };
    for (P p : {P{DType::bfloat16, DType::float16, DType::float32},
                P{DType::float16, DType::float32, DType::float32},
                P{DType::float32, DType::bfloat16, DType::float32},
                P{DType::float16, DType::float16, DType::float16}}) {
        Tensor x(p.x, {2, 128}), w(DType::uint32, {5, 16}), s(p.s, {5, 2}), b(p.s, {5, 2});
        test::fill_normal(x.view(), rng);
        test::fill_random_words(w.view(), rng);
        test::fill_scales(s.view(), b.view(), rng, false);
        Tensor y = quantized_matmul(x.view(), w.view(), s.view(), b.view(), true, 64, 4);
        EXPECT_EQ(y.dtype(), p.out);
        test::Oracle o = test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), true, 64, 4);
        for (int64_t i = 0; i < 10; ++i)
            EXPECT_LE(std::abs(load_float(y.dtype(), y.data(), i) - o.y[i]),
                      test::qmm_tol(y.dtype()) * o.bound[i]);
    }
}

// Leading dims: a 2-D weight folds x's leading dims into M; batched weights broadcast.
TEST(QmmBatch, FoldAndBroadcast) {
    std::mt19937 rng(23);
    const int g = 32, bits = 3;
    // x [2, 3, 4, 64] with weight [5, 6] (N 5, K 64): y [2, 3, 4, 5]
    Tensor x(DType::float32, {2, 3, 4, 64}), w(DType::uint32, {5, 6}), s(DType::float32, {5, 2}),
        b(DType::float32, {5, 2});
    test::fill_normal(x.view(), rng, 0.5f);
    test::fill_random_words(w.view(), rng);
    test::fill_scales(s.view(), b.view(), rng, false);
    Tensor y = quantized_matmul(x.view(), w.view(), s.view(), b.view(), true, g, bits);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 4, 5}));
    test::Oracle o = test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), true, g, bits);
    for (int64_t i = 0; i < 120; ++i)
        ASSERT_LE(std::abs(y.ptr<float>()[i] - o.y[i]), 1e-5 * o.bound[i]);

    // x [3, 1, 4, 64] with weight [2, 5, 6]: batch [3, 2]; each slice equals a 2-D call
    Tensor xb(DType::float32, {3, 1, 4, 64}), wb(DType::uint32, {2, 5, 6}),
        sb(DType::float32, {2, 5, 2}), bb(DType::float32, {2, 5, 2});
    test::fill_normal(xb.view(), rng);
    test::fill_random_words(wb.view(), rng);
    test::fill_scales(sb.view(), bb.view(), rng, false);
    Tensor yb = quantized_matmul(xb.view(), wb.view(), sb.view(), bb.view(), true, g, bits);
    ASSERT_EQ(yb.shape(), (Shape{3, 2, 4, 5}));
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 2; ++j) {
            TensorView xs(DType::float32, {4, 64}, xb.ptr<float>() + i * 256);
            TensorView ws(DType::uint32, {5, 6}, wb.ptr<uint32_t>() + j * 30);
            TensorView ss(DType::float32, {5, 2}, sb.ptr<float>() + j * 10);
            TensorView bs(DType::float32, {5, 2}, bb.ptr<float>() + j * 10);
            Tensor ys = quantized_matmul(xs, ws, ss, bs, true, g, bits);
            for (int64_t e = 0; e < 20; ++e)
                ASSERT_EQ(ys.ptr<float>()[e], yb.ptr<float>()[(i * 2 + j) * 20 + e]);
        }
}

// The symmetric form reads only the scales and gives the same bits as passing biases of
// -scale / 2; is_symmetric detects such biases.
TEST(QmmOptions, SymmetricEqualsExplicitBiases) {
    std::mt19937 rng(31);
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16}) {
        Tensor x(dt, {3, 2560}), w(DType::uint32, {9, 80}), s(dt, {9, 20}), b(dt, {9, 20});
        test::fill_normal(x.view(), rng, 0.5f);
        test::fill_random_words(w.view(), rng);
        test::fill_scales(s.view(), b.view(), rng, /*symmetric=*/true);
        ASSERT_TRUE(is_symmetric(s.view(), b.view()));
        Tensor y1 = quantized_matmul(x.view(), w.view(), s.view(), b.view(), true, 128, 1);
        QmmOptions sym;
        sym.symmetric = true;
        Tensor y2 = quantized_matmul(x.view(), w.view(), s.view(), TensorView(), true, 128, 1, sym);
        ASSERT_EQ(std::memcmp(y1.data(), y2.data(), y1.nbytes()), 0) << dtype_name(dt);
        store_float(dt, b.data(), 7, load_float(dt, b.data(), 7) * 0.5f + 0.01f);
        EXPECT_FALSE(is_symmetric(s.view(), b.view()));
    }
}

// int8 activations through ops: within the stated bound, and refused where not supported.
TEST(QmmOptions, Int8Activations) {
    std::mt19937 rng(37);
    QmmOptions o;
    o.int8_activations = true;
    Tensor x(DType::float32, {2, 4096 + 32}), w(DType::uint32, {5, (4096 + 32) / 8}),
        s(DType::float32, {5, (4096 + 32) / 32}), b(DType::float32, {5, (4096 + 32) / 32});
    test::fill_normal(x.view(), rng, 0.3f);
    test::fill_random_words(w.view(), rng);
    test::fill_scales(s.view(), b.view(), rng, false);
    Tensor y;
    try {
        y = quantized_matmul(x.view(), w.view(), s.view(), b.view(), true, 32, 4, o);
    } catch (const Error& e) {
        // no int8 kernel for this CPU: a clear error, never a slow fallback
        EXPECT_NE(std::string(e.what()).find("precision int8"), std::string::npos) << e.what();
        GTEST_SKIP() << e.what();
    }
    test::Oracle ref = test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), true, 32, 4);
    for (int64_t i = 0; i < 10; ++i) {
        double err = std::abs(y.ptr<float>()[i] - ref.y[i]);
        EXPECT_GT(err, 0.0);                  // it really is the int8 path
        EXPECT_LE(err, 0.02 * ref.terms[i]);  // coarse: the exact bound is in the backend test
    }
    EXPECT_THROW(quantized_matmul(x.view(), w.view(), s.view(), b.view(), false, 32, 4, o), Error);
}

// Prepared weights: the view path is bit-identical to the direct call; symmetric biases are
// detected; the packed path (1 bit, int8 activations) stays within the int8 bound and is batch
// invariant.
TEST(QuantizedMatrix, PreparedMatchesDirect) {
    std::mt19937 rng(41);
    for (int bits : {1, 4})
        for (bool sym : {false, true}) {
            const int64_t N = 37, K = 2560, g = 128;
            Tensor x(DType::float16, {2, 3, K}), w(DType::uint32, {N, K * bits / 32}),
                s(DType::float16, {N, K / g}), b(DType::float16, {N, K / g});
            test::fill_normal(x.view(), rng, 0.3f);
            test::fill_random_words(w.view(), rng);
            test::fill_scales(s.view(), b.view(), rng, sym);
            QuantizedMatrix q = QuantizedMatrix::prepare(w.view(), s.view(), b.view(), g, bits);
            EXPECT_EQ(q.symmetric(), sym);
            Tensor y1 = quantized_matmul(x.view(), w.view(), s.view(), b.view(), true, g, bits);
            Tensor y2 = quantized_matmul(x.view(), q);
            ASSERT_EQ(y2.shape(), (Shape{2, 3, N}));
            if (!q.packed()) {
                EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.nbytes()), 0) << bits << " " << sym;
            } else {  // 1 bit repacked for the lookup-table kernel: the float bound
                EXPECT_EQ(bits, 1);
                test::Oracle ref =
                    test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), true, g, bits);
                for (int64_t i = 0; i < 6 * N; ++i)
                    ASSERT_LE(std::abs(load_float(y2.dtype(), y2.data(), i) - ref.y[i]),
                              test::qmm_tol(y2.dtype()) * ref.terms[i] +
                                  test::qmm_abs_floor(y2.dtype()))
                        << i;
                TensorView x4(DType::float16, {1, K}, x.ptr<uint16_t>() + 4 * K);
                Tensor y4 = quantized_matmul(x4, q);  // batch invariant
                EXPECT_EQ(std::memcmp(y4.data(), y2.ptr<uint16_t>() + 4 * N, N * 2), 0);
            }

            QmmOptions o;
            o.int8_activations = true;
            QuantizedMatrix qi;
            try {
                qi = QuantizedMatrix::prepare(w.view(), s.view(), b.view(), g, bits, o);
                Tensor yi = quantized_matmul(x.view(), qi);
                test::Oracle ref =
                    test::qmm_oracle(x.view(), w.view(), s.view(), b.view(), true, g, bits);
                for (int64_t i = 0; i < 6 * N; ++i)
                    ASSERT_LE(std::abs(load_float(yi.dtype(), yi.data(), i) - ref.y[i]),
                              0.02 * ref.terms[i] + 1e-3)
                        << i;
                // row 4 of the batch alone gives the same bits
                TensorView x4(DType::float16, {1, K}, x.ptr<uint16_t>() + 4 * K);
                Tensor y4 = quantized_matmul(x4, qi);
                EXPECT_EQ(std::memcmp(y4.data(), yi.ptr<uint16_t>() + 4 * N, N * 2), 0);
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find("precision int8"), std::string::npos);
            }
        }
}

// Batch invariance of prepared weights over every M a model uses (decode batches and prefill
// chunks, across the M where the packed int8 path switches kernels): each row of an M-row call
// has the bits of that row alone. float32 and int8 activations, 1 bit (packed where the CPU has
// it) and 4 bits.
TEST(QuantizedMatrix, BatchInvariantForEveryM) {
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    const int64_t N = 45, K = 2560, g = 128;
    for (int bits : {1, 4})
        for (bool int8 : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "seed " << seed << " bits " << bits << " int8 " << int8);
            Tensor w(DType::uint32, {N, K * bits / 32}), s(DType::float16, {N, K / g}),
                b(DType::float16, {N, K / g});
            test::fill_random_words(w.view(), rng);
            test::fill_scales(s.view(), b.view(), rng, rng() & 1);
            QmmOptions o;
            o.int8_activations = int8;
            QuantizedMatrix q = QuantizedMatrix::prepare(w.view(), s.view(), b.view(), g, bits, o);
            for (int64_t M : {2, 15, 16, 17, 100, 300}) {
                Tensor x(DType::float32, {M, K});
                test::fill_normal(x.view(), rng, 0.5f);
                Tensor y;
                try {
                    y = quantized_matmul(x.view(), q);
                } catch (const Error& e) {  // no int8 kernel for these bits on this ISA
                    ASSERT_TRUE(int8) << e.what();
                    ASSERT_NE(std::string(e.what()).find("precision int8"), std::string::npos);
                    break;
                }
                for (int64_t m = 0; m < M; m += 7) {
                    TensorView x1(DType::float32, {1, K}, x.ptr<float>() + m * K);
                    Tensor y1 = quantized_matmul(x1, q);
                    ASSERT_EQ(std::memcmp(y1.data(), y.ptr<float>() + m * N, N * 4), 0)
                        << "M " << M << " row " << m;
                }
            }
        }
}

// Joined prepared weights (q / k / v, gate / up): each row of the joined matmul has the bits of
// its part's matmul, for every M a model uses; parts that cannot join give nullopt. Packed weights
// only (where this CPU packs them: 1 bit with AVX2 or AVX-512; the joined form is then checked).
TEST(QuantizedMatrix, JoinedRowsMatchTheirParts) {
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    const int64_t K = 2560, g = 128;
    struct Part {
        Tensor w, s, b;
        QuantizedMatrix q;
    };
    auto make = [&](int64_t n, const QmmOptions& o, bool sym, int64_t k) {
        Part p{Tensor(DType::uint32, {n, k / 32}), Tensor(DType::float16, {n, k / g}),
               Tensor(DType::float16, {n, k / g}), {}};
        test::fill_random_words(p.w.view(), rng);
        test::fill_scales(p.s.view(), p.b.view(), rng, sym);
        p.q = QuantizedMatrix::prepare(p.w.view(), p.s.view(), p.b.view(), g, 1, o);
        return p;
    };
    for (bool int8 : {false, true})
        for (bool sym : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "seed " << seed << " int8 " << int8 << " sym " << sym);
            QmmOptions o;
            o.int8_activations = int8;
            Part a = make(64, o, sym, K), b = make(32, o, sym, K), c = make(21, o, sym, K);
            const QuantizedMatrix* parts[] = {&a.q, &b.q, &c.q};
            std::optional<QuantizedMatrix> j = QuantizedMatrix::join(parts);
            if (!a.q.packed()) {  // nothing joins on a CPU without the packed kernels
                EXPECT_FALSE(j.has_value());
                continue;
            }
            ASSERT_TRUE(j.has_value());
            ASSERT_EQ(j->rows(), 64 + 32 + 21);
            ASSERT_EQ(j->cols(), K);
            EXPECT_EQ(j->stream_bytes(),
                      a.q.stream_bytes() + b.q.stream_bytes() + c.q.stream_bytes());
            const Part* parts_of[] = {&a, &b, &c};
            for (int64_t M : {1, 2, 17, 100}) {
                Tensor x(DType::float32, {M, K});
                test::fill_normal(x.view(), rng, 0.5f);
                Tensor y = quantized_matmul(x.view(), *j);
                int64_t col = 0;
                for (const Part* p : parts_of) {
                    Tensor yp = quantized_matmul(x.view(), p->q);
                    const int64_t n = p->q.rows();
                    for (int64_t m = 0; m < M; ++m)
                        ASSERT_EQ(std::memcmp(y.ptr<float>() + m * j->rows() + col,
                                              yp.ptr<float>() + m * n, n * 4),
                                  0)
                            << "M " << M << " row " << m << " part at " << col;
                    col += n;
                }
            }
            // what does not join: a part before the last with rows not a multiple of 16, another
            // K, other options
            const QuantizedMatrix* odd_first[] = {&c.q, &a.q};
            EXPECT_FALSE(QuantizedMatrix::join(odd_first).has_value());
            Part k2 = make(16, o, sym, K + g);
            const QuantizedMatrix* other_k[] = {&a.q, &k2.q};
            EXPECT_FALSE(QuantizedMatrix::join(other_k).has_value());
            QmmOptions o2 = o;
            o2.int8_activations = !int8;
            Part d = make(16, o2, sym, K);
            const QuantizedMatrix* other_o[] = {&a.q, &d.q};
            EXPECT_EQ(QuantizedMatrix::join(other_o).has_value(), false);
        }
}
