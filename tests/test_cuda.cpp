// The CUDA backend on the device: every registered kernel against the scalar reference over the
// CPU's shape sweep (qmm_cases.h: K in {g, 2560, 9728, 4096 + g}, M = 1 and M > 1, every bits,
// group size and dtype it supports) with FORMAT.md's bound, on fresh random data with poisoned
// outputs; quantize and dequantize bit-exact; batch invariance for M up to 64. Where no GPU is
// (CI), or the build has no CUDA, the device tests skip and the backend is checked to say so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include <cstring>
#include <random>

#include "backend/cuda/cuda.h"
#include "core/error.h"
#include "qmm_cases.h"
#include "scoped_env.h"

using namespace onebit;
using namespace onebit::test;

namespace {

#define REQUIRE_GPU() \
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA)"

cuda::Buffer to_device(const Tensor& t) {
    cuda::Buffer b(t.nbytes());
    b.upload(t.data(), t.nbytes());
    return b;
}

void from_device(const cuda::Buffer& b, Tensor& t) {
    cuda::synchronize();
    b.download(t.data(), t.nbytes());
}

TEST(CudaBackend, SaysWhenItCannotRun) {
    if (cuda::available()) {
        EXPECT_FALSE(cuda::kernels().empty());
        const cuda::DeviceInfo info = cuda::device_info();
        EXPECT_GT(info.sm_count, 0);
        std::cout << "device: " << info.name << ", " << info.sm_count << " SMs, compute "
                  << info.cc_major << "." << info.cc_minor << "\n";
        return;
    }
    quant::QmmArgs a{};
    a.M = a.N = a.K = 128, a.group_size = 128, a.bits = 1, a.transpose = true;
    try {
        cuda::quantized_matmul(a);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        const std::string want = cuda::built() ? "no CUDA device" : "built without CUDA";
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("[cuda]", 0), 0u) << e.what();
    }
}

std::vector<const cuda::Kernel*> registered(std::initializer_list<cuda::Op> ops) {
    std::vector<const cuda::Kernel*> out;
    for (const auto& k : cuda::kernels())
        for (cuda::Op op : ops)
            if (k.op == op) out.push_back(&k);
    return out;
}

std::string kernel_name(const ::testing::TestParamInfo<const cuda::Kernel*>& info) {
    return info.param->name;
}

quant::QmmArgs on_device(quant::QmmArgs a, const cuda::Buffer& x, const cuda::Buffer& w,
                         const cuda::Buffer& s, const cuda::Buffer& b, const cuda::Buffer& y) {
    a.x = x.data(), a.w = static_cast<const uint32_t*>(w.data()), a.scales = s.data();
    a.biases = a.biases ? b.data() : nullptr;
    a.y = y.data();
    return a;
}

// int8 kernels against quant::qmm_t_int8_ref itself, up to float32 rounding (FORMAT.md's
// tolerance on the sum of |terms|): the oracle's int8 bound alone would not see an activation
// quantized differently from the reference.
void check_against_int8_reference(const Problem& p, const Tensor& y, Shape3 sh, int g, int bits,
                                  bool symmetric) {
    Tensor want(DType::float32, {sh.M, sh.N});
    quant::QmmArgs a = args_for(p, want, true, sh, g, bits, symmetric);
    quant::qmm_t_int8_ref(a);
    const double tol = qmm_tol(y.dtype()), floor = qmm_abs_floor(y.dtype());
    const int64_t K = sh.K, words = p.w.view().dim(1), ng = K / g;
    std::vector<float> xf(K), dx(ng);
    std::vector<int8_t> xq(K);
    for (int64_t m = 0; m < sh.M; ++m) {
        for (int64_t k = 0; k < K; ++k) xf[k] = load_float(p.x.dtype(), p.x.data(), m * K + k);
        quant::quantize_activations_int8(xf.data(), K, g, xq.data(), dx.data());
        for (int64_t n = 0; n < std::min<int64_t>(sh.N, 64); ++n) {
            double terms = 0;
            for (int64_t k = 0; k < K; ++k) {
                const double q = quant::get_code(
                    reinterpret_cast<const uint8_t*>(p.w.ptr<uint32_t>() + n * words), k, bits);
                const double sc = load_float(p.s.dtype(), p.s.data(), n * ng + k / g);
                const double bi = symmetric ? -sc / 2 : load_float(p.b.dtype(), p.b.data(), n * ng + k / g);
                terms += std::abs(sc * dx[k / g] * q * xq[k]) + std::abs(bi * xf[k]);
            }
            const double got = load_float(y.dtype(), y.data(), m * sh.N + n);
            ASSERT_LE(std::abs(got - want.ptr<float>()[m * sh.N + n]), tol * terms + floor)
                << "element (" << m << ", " << n << ") against qmm_t_int8_ref";
        }
    }
}

// PrefillMode::gemm's numerics: the weights w_hat and the int8-dequantized activations
// x_hat = q dx each rounded once to float16 (2^-10 of a product) and float32 accumulation, stated
// as |y - x_hat . w_hat| <= 2^-9 sum |x_hat w_hat| (x_hat, w_hat in double here); against the
// float32 product the int8 rounding of x, at most dx / 2 a term, on top.
void check_gemm_prefill(const Problem& p, const Tensor& y, Shape3 sh, int g, bool symmetric) {
    const int64_t K = sh.K, words = p.w.view().dim(1), ng = K / g;
    std::vector<float> xf(K), dx(ng);
    std::vector<int8_t> xq(K);
    for (int64_t m = 0; m < sh.M; m += std::max<int64_t>(1, sh.M / 9)) {
        for (int64_t k = 0; k < K; ++k) xf[k] = load_float(p.x.dtype(), p.x.data(), m * K + k);
        quant::quantize_activations_int8(xf.data(), K, g, xq.data(), dx.data());
        for (int64_t n = 0; n < sh.N; n += std::max<int64_t>(1, sh.N / 97)) {
            double want = 0, terms = 0, exact = 0, slack = 0;
            for (int64_t k = 0; k < K; ++k) {
                const double q = quant::get_code(
                    reinterpret_cast<const uint8_t*>(p.w.ptr<uint32_t>() + n * words), k, 1);
                const double sc = load_float(p.s.dtype(), p.s.data(), n * ng + k / g);
                const double bi = symmetric ? -sc / 2 : load_float(p.b.dtype(), p.b.data(), n * ng + k / g);
                const double w = sc * q + bi, xh = double(dx[k / g]) * xq[k];
                want += w * xh, terms += std::abs(w * xh);
                exact += w * xf[k], slack += std::abs(w) * dx[k / g] / 2 + std::abs(w * xf[k]) * 0x1p-9;
            }
            const double got = y.ptr<float>()[m * sh.N + n];
            ASSERT_LE(std::abs(got - want), std::ldexp(terms, -9) + 1e-30)
                << "element (" << m << ", " << n << ") against x_hat . w_hat";
            ASSERT_LE(std::abs(got - exact), slack * (1 + 1e-6) + 1e-30)
                << "element (" << m << ", " << n << ") against the float32 product";
        }
    }
}

class CudaQmm : public ::testing::TestWithParam<const cuda::Kernel*> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CudaQmm);

TEST_P(CudaQmm, MatchesOracleOverShapeSweep) {
    REQUIRE_GPU();
    const cuda::Kernel& k = *GetParam();
    const bool transpose = k.op == cuda::Op::qmm_t;
    const bool int8 = k.precision == cuda::Precision::int8;
    // a prefill GEMM's slabs crossed
    const ScopedEnv slabs("ONEBIT_CUDA_GEMM_SLAB_ROWS", k.min_m ? "48" : nullptr);
    sweep_kernel(k.name, transpose, k.max_m, int8,
                 [&](int bits, int g, DType dt) { return k.supports(bits, g, dt); },
                 [&](Case& c) {
                     cuda::Buffer dx = to_device(c.p.x), dw = to_device(c.p.w),
                                  ds = to_device(c.p.s), db = to_device(c.p.b), dy(c.y.nbytes());
                     dy.fill(0xff);  // NaN in every float dtype
                     k.qmm(on_device(args_for(c.p, c.y, transpose, c.sh, c.g, c.bits, c.symmetric),
                                     dx, dw, ds, db, dy));
                     from_device(dy, c.y);
                     if (int8) check_against_int8_reference(c.p, c.y, c.sh, c.g, c.bits, c.symmetric);
                 },
                 // a prefill kernel (min_m past a decode batch) also on a wider prompt-sized shape
                 k.min_m, k.min_m ? std::vector<Shape3>{{k.min_m, 300, 2560}, {100, 37, 4096 + 128}}
                                  : std::vector<Shape3>{});
}

// Each row of a batch is bit-identical to the M = 1 result for that row.
TEST_P(CudaQmm, BatchInvariantUpTo64) {
    REQUIRE_GPU();
    const cuda::Kernel& k = *GetParam();
    if (k.op != cuda::Op::qmm_t) GTEST_SKIP() << "batch invariance is required of transpose = true";
    if (k.min_m > cuda::kDecodeMaxM) GTEST_SKIP() << "chosen only past a decode batch";
    std::mt19937 rng(std::random_device{}());
    for (int g : {32, 128})
        for (int bits : quant::kSupportedBits) {
            if (!k.supports(bits, g, DType::float32)) continue;
            const Shape3 sh{64, 37, 2560};
            Problem p = make_problem(DType::float32, true, sh, g, bits, rng, 0.3f);
            cuda::Buffer dx = to_device(p.x), dw = to_device(p.w), ds = to_device(p.s),
                         db = to_device(p.b), dy(size_t(sh.M * sh.N) * 4);
            Tensor single(DType::float32, {sh.M, sh.N});
            for (int64_t m = 0; m < sh.M; ++m) {
                Tensor y1(DType::float32, {1, sh.N});
                quant::QmmArgs a = on_device(args_for(p, y1, true, {1, sh.N, sh.K}, g, bits), dx,
                                             dw, ds, db, dy);
                a.x = static_cast<const float*>(dx.data()) + m * sh.K;
                k.qmm(a);
                from_device(dy, y1);
                std::memcpy(single.ptr<float>() + m * sh.N, y1.data(), sh.N * 4);
            }
            for (int64_t M : {2, 3, 5, 7, 8, 9, 64}) {
                Tensor y(DType::float32, {M, sh.N});
                dy.fill(0xff);
                k.qmm(on_device(args_for(p, y, true, {M, sh.N, sh.K}, g, bits), dx, dw, ds, db, dy));
                from_device(dy, y);
                ASSERT_EQ(std::memcmp(y.data(), single.data(), M * sh.N * 4), 0)
                    << k.name << " bits " << bits << " g " << g << " M " << M;
            }
        }
}

// Weights and activations only 4-byte aligned (a view into a larger buffer) give the bits of
// aligned ones: kernels with vector loads must notice and load word by word.
TEST_P(CudaQmm, UnalignedOperandsGiveTheSameBits) {
    REQUIRE_GPU();
    const cuda::Kernel& k = *GetParam();
    if (k.op != cuda::Op::qmm_t || k.precision != cuda::Precision::float32 || k.min_m)
        GTEST_SKIP() << "float32 decode kernels";
    std::mt19937 rng(std::random_device{}());
    for (int bits : quant::kSupportedBits) {
        if (!k.supports(bits, 32, DType::float32)) continue;
        const Shape3 sh{3, 37, 2560};
        Problem p = make_problem(DType::float32, true, sh, 32, bits, rng, 0.3f);
        cuda::Buffer dx = to_device(p.x), dw = to_device(p.w), ds = to_device(p.s),
                     db = to_device(p.b), dy(size_t(sh.M * sh.N) * 4);
        cuda::Buffer ux(p.x.nbytes() + 4), uw(p.w.nbytes() + 4);
        ux.upload(p.x.data(), p.x.nbytes(), 4), uw.upload(p.w.data(), p.w.nbytes(), 4);
        Tensor aligned(DType::float32, {sh.M, sh.N}), unaligned(DType::float32, {sh.M, sh.N});
        quant::QmmArgs a = on_device(args_for(p, aligned, true, sh, 32, bits), dx, dw, ds, db, dy);
        dy.fill(0xff);
        k.qmm(a);
        from_device(dy, aligned);
        a.x = static_cast<const char*>(ux.data()) + 4;
        a.w = reinterpret_cast<const uint32_t*>(static_cast<const char*>(uw.data()) + 4);
        dy.fill(0xff);
        k.qmm(a);
        from_device(dy, unaligned);
        ASSERT_EQ(std::memcmp(aligned.data(), unaligned.data(), aligned.nbytes()), 0)
            << k.name << " bits " << bits;
        for (int64_t i = 0; i < sh.M * sh.N; ++i) ASSERT_TRUE(std::isfinite(aligned.ptr<float>()[i]));
    }
}

// qmm_t_gemv with each K split (the warps sharing rows, chosen from N; forced here): within the
// oracle's bound, and each row of a batch bit-identical to M = 1 under the same split.
TEST(CudaGemv, EverySplitMatchesOracleAndIsBatchInvariant) {
    REQUIRE_GPU();
    const cuda::Kernel* k = nullptr;
    for (const auto& kk : cuda::kernels())
        if (std::string(kk.name) == "qmm_t_gemv") k = &kk;
    ASSERT_NE(k, nullptr);
    std::mt19937 rng(std::random_device{}());
    for (const char* split : {"1", "2", "4"}) {
        const ScopedEnv env("ONEBIT_CUDA_GEMV_SPLIT", split);
        for (int bits : quant::kSupportedBits)
            for (Shape3 sh : {Shape3{1, 37, 4096 + 128}, Shape3{6, 37, 9728}, Shape3{5, 9, 128}}) {
                SCOPED_TRACE(::testing::Message() << "split " << split << " bits " << bits << " M "
                                                  << sh.M << " N " << sh.N << " K " << sh.K);
                Problem p = make_problem(DType::float32, true, sh, 128, bits, rng, 0.3f);
                cuda::Buffer dx = to_device(p.x), dw = to_device(p.w), ds = to_device(p.s),
                             db = to_device(p.b), dy(size_t(sh.M * sh.N) * 4);
                Tensor y(DType::float32, {sh.M, sh.N});
                dy.fill(0xff);
                k->qmm(on_device(args_for(p, y, true, sh, 128, bits), dx, dw, ds, db, dy));
                from_device(dy, y);
                check_against_oracle(p.x.view(), p.w.view(), p.s.view(), p.b.view(), true, 128,
                                     bits, y.view(), false, false);
                if (::testing::Test::HasFatalFailure()) break;
                for (int64_t m = 0; m < sh.M; ++m) {
                    Tensor y1(DType::float32, {1, sh.N});
                    quant::QmmArgs a =
                        on_device(args_for(p, y1, true, {1, sh.N, sh.K}, 128, bits), dx, dw, ds, db, dy);
                    a.x = static_cast<const float*>(dx.data()) + m * sh.K;
                    dy.fill(0xff);
                    k->qmm(a);
                    from_device(dy, y1);
                    ASSERT_EQ(std::memcmp(y1.data(), y.ptr<float>() + m * sh.N, sh.N * 4), 0) << "row " << m;
                }
            }
        if (::testing::Test::HasFatalFailure()) break;
    }
}

INSTANTIATE_TEST_SUITE_P(Registered, CudaQmm,
                         ::testing::ValuesIn(registered({cuda::Op::qmm_t, cuda::Op::qmm_n})),
                         kernel_name);

TEST(CudaDequantize, BitExactWithReference) {
    REQUIRE_GPU();
    std::mt19937 rng(std::random_device{}());
    for (const cuda::Kernel* k : registered({cuda::Op::dequantize}))
        for (int bits : quant::kSupportedBits)
            for (int g : quant::kSupportedGroupSizes)
                for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
                    for (int64_t K : {int64_t(g), int64_t(2560), int64_t(4096 + g)}) {
                        const int64_t rows = 5;
                        Tensor w(DType::uint32, {rows, K * bits / 32}), s(dt, {rows, K / g}),
                            b(dt, {rows, K / g}), want(dt, {rows, K}), got(dt, {rows, K});
                        fill_random_words(w.view(), rng);
                        fill_scales(s.view(), b.view(), rng, false);
                        quant::dequantize_ref(w.ptr<uint32_t>(), s.data(), b.data(), dt, rows, K,
                                              g, bits, want.data());
                        cuda::Buffer dw = to_device(w), ds = to_device(s), db = to_device(b),
                                     dout(got.nbytes());
                        dout.fill(0xff);
                        k->dequantize(static_cast<const uint32_t*>(dw.data()), ds.data(),
                                      db.data(), dt, rows, K, g, bits, dout.data());
                        from_device(dout, got);
                        ASSERT_EQ(std::memcmp(got.data(), want.data(), got.nbytes()), 0)
                            << k->name << " bits " << bits << " g " << g << " "
                            << dtype_name(dt) << " K " << K;
                    }
}

TEST(CudaQuantize, BitExactWithReference) {
    REQUIRE_GPU();
    std::mt19937 rng(std::random_device{}());
    for (const cuda::Kernel* k : registered({cuda::Op::quantize}))
        for (int bits : quant::kSupportedBits)
            for (int g : quant::kSupportedGroupSizes)
                for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
                    for (int64_t K : {int64_t(g), int64_t(2560), int64_t(4096 + g)}) {
                        const int64_t rows = 5;
                        Tensor w(dt, {rows, K});
                        fill_normal(w.view(), rng, (rng() & 1) ? 0.5f : 0.0f);
                        Tensor q_want(DType::uint32, {rows, K * bits / 32}), s_want(dt, {rows, K / g}),
                            b_want(dt, {rows, K / g}), q_got(DType::uint32, {rows, K * bits / 32}),
                            s_got(dt, {rows, K / g}), b_got(dt, {rows, K / g});
                        quant::quantize_ref(w.data(), dt, rows, K, g, bits, q_want.ptr<uint32_t>(),
                                            s_want.data(), b_want.data());
                        cuda::Buffer dw = to_device(w), dq(q_got.nbytes()), ds(s_got.nbytes()),
                                     db(b_got.nbytes());
                        dq.fill(0xa5), ds.fill(0xff), db.fill(0xff);
                        k->quantize(dw.data(), dt, rows, K, g, bits,
                                    static_cast<uint32_t*>(dq.data()), ds.data(), db.data());
                        from_device(dq, q_got);
                        from_device(ds, s_got);
                        from_device(db, b_got);
                        SCOPED_TRACE(::testing::Message() << k->name << " bits " << bits << " g "
                                                          << g << " " << dtype_name(dt) << " K " << K);
                        ASSERT_EQ(std::memcmp(q_got.data(), q_want.data(), q_got.nbytes()), 0);
                        ASSERT_EQ(std::memcmp(s_got.data(), s_want.data(), s_got.nbytes()), 0);
                        ASSERT_EQ(std::memcmp(b_got.data(), b_want.data(), b_got.nbytes()), 0);
                    }
}

}  // namespace

namespace {

// The repacked 1-bit layout: against the oracle with the int8 bound, every scale dtype it takes,
// symmetric and not, N not a multiple of 16, K not a multiple of its 512-k chunk; rows of a batch
// of up to kDecodeMaxM bit-identical to M = 1. Run in each PrefillMode: past kDecodeMaxM rows
// (65, 70, 100 here) the exact kernel must give the same bits as M = 1 too, the GEMM must keep
// within its stated bound (2^-10 of the terms' magnitudes) of qmm_t_int8_ref.
class CudaPackedOneBit : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaPackedOneBit, MatchesOracleAndBatchInvariant) {
    REQUIRE_GPU();
    const ScopedEnv env("ONEBIT_CUDA_PREFILL", GetParam());
    const bool gemm = cuda::prefill_mode() == cuda::PrefillMode::gemm;
    // the GEMM's weights in slabs of 48 rows: results cross slab boundaries, in and out of tiles
    const ScopedEnv slabs("ONEBIT_CUDA_GEMM_SLAB_ROWS", gemm ? "48" : nullptr);
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    const int g = 128;
    for (DType dt : {DType::float16, DType::bfloat16, DType::float32})
        for (const Shape3 sh : {Shape3{1, 1, 128}, Shape3{3, 37, 2560}, Shape3{9, 7, 9728},
                                Shape3{64, 300, 4096 + 128}, Shape3{2, 4096, 2048},
                                Shape3{100, 37, 2560}, Shape3{70, 130, 9728},
                                Shape3{65, 1000, 2048}, Shape3{66, 300, 4096 + 128}}) {
            const DType sdt = dt == DType::float32 ? DType::bfloat16 : dt;
            const bool symmetric = rng() & 1;
            SCOPED_TRACE(::testing::Message() << "seed " << seed << " " << dtype_name(dt) << " M "
                                              << sh.M << " N " << sh.N << " K " << sh.K
                                              << (symmetric ? " symmetric" : ""));
            Problem p = make_problem(sdt, true, sh, g, 1, rng, (rng() & 1) ? 1.0f : 0.0f);
            test::fill_scales(p.s.view(), p.b.view(), rng, symmetric);
            Tensor x(dt, {sh.M, sh.K});
            for (int64_t i = 0; i < sh.M * sh.K; ++i)
                store_float(dt, x.data(), i, load_float(sdt, p.x.data(), i));
            const cuda::PackedOneBit packed = cuda::pack_one_bit(
                p.w.ptr<uint32_t>(), p.s.data(), symmetric ? nullptr : p.b.data(), sdt, sh.N,
                sh.K, g);
            Tensor y(DType::float32, {sh.M, sh.N});
            cuda::Buffer dx = to_device(x), dy(y.nbytes());
            dy.fill(0xff);
            cuda::qmm_packed_one_bit(packed, dx.data(), dt, sh.M, dy.data(), DType::float32);
            from_device(dy, y);
            {
                Problem px{Tensor(dt, {sh.M, sh.K}), std::move(p.w), std::move(p.s), std::move(p.b)};
                std::memcpy(px.x.data(), x.data(), x.nbytes());
                if (gemm && sh.M > cuda::kDecodeMaxM) {
                    check_gemm_prefill(px, y, sh, g, symmetric);
                } else {
                    check_against_oracle(x.view(), px.w.view(), px.s.view(), px.b.view(), true, g,
                                         1, y.view(), symmetric, true);
                    if (!HasFatalFailure()) check_against_int8_reference(px, y, sh, g, 1, symmetric);
                }
                p.w = std::move(px.w), p.s = std::move(px.s), p.b = std::move(px.b);
            }
            if (HasFatalFailure()) return;
            // the two-step form (activations packed once) gives the same bits
            Tensor y2(DType::float32, {sh.M, sh.N});
            dy.fill(0xff);
            const cuda::PackedActivations xa = cuda::pack_activations(dx.data(), dt, sh.M, sh.K);
            cuda::qmm_packed_one_bit(packed, xa, dy.data(), DType::float32);
            from_device(dy, y2);
            ASSERT_EQ(std::memcmp(y2.data(), y.data(), y.nbytes()), 0);
            if (gemm && sh.M > cuda::kDecodeMaxM) continue;  // a prefill GEMM: not M = 1's bits
            for (int64_t m = 0; m < sh.M; ++m) {
                Tensor y1(DType::float32, {1, sh.N});
                dy.fill(0xff);
                cuda::qmm_packed_one_bit(packed,
                                         static_cast<const uint8_t*>(dx.data()) +
                                             m * sh.K * dtype_size(dt),
                                         dt, 1, dy.data(), DType::float32);
                from_device(dy, y1);
                ASSERT_EQ(std::memcmp(y1.data(), y.ptr<float>() + m * sh.N, sh.N * 4), 0)
                    << "row " << m << " differs from its M = 1 result";
            }
        }
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaPackedOneBit, ::testing::Values("decode", "exact", "gemm"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CudaPackedOneBitLayout, RefusesWhatItCannotPack) {
    EXPECT_FALSE(cuda::packable_one_bit(1, 64, DType::float16));
    EXPECT_FALSE(cuda::packable_one_bit(2, 128, DType::float16));
    EXPECT_FALSE(cuda::packable_one_bit(1, 128, DType::float32));
    REQUIRE_GPU();
    std::vector<uint32_t> w(4);
    std::vector<float> s(1);
    EXPECT_THROW(cuda::pack_one_bit(w.data(), s.data(), s.data(), DType::float32, 1, 128, 128),
                 Error);
}

}  // namespace
