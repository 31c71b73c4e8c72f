// Every registered CPU kernel this machine can run, against a float64 oracle with the bound
//   |y - y_ref| <= tol * sum_k |x| (|scale q| + |bias|)        (see test_qmm_sweep.cpp)
// for every bits, group size and activation dtype it supports, on fresh random data with
// poisoned outputs; dequantize variants bit-exact with the reference. Batch invariance: for
// M up to 64 each row of a batched result is bit-identical to the M = 1 result, whatever the
// thread count.
//
// CI runs a pruned shape list that still has odd K (g, 2560, 9728, 4096 + g), M = 1 and M > 1
// for every variant; ONEBIT_FULL_SWEEP=1 (the "long" label) runs the full cross product:
// M in {1, 2, 7, 64, 300}; transpose: N in {1, 7, 256, 4096}, K in {g, 2560, 9728, 4096 + g};
// transpose false: N in {g, 2560, 4096 + g}, K in {1, 7, 64, 256}, for every SIMD variant.
// Large outputs are checked on a sample of elements (the first and last 256 outputs of the first
// and last rows, plus 512 random elements).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/dispatch.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/packed.h"
#include "backend/cpu/registry.h"
#include "core/error.h"
#include "core/threads.h"
#include "qmm_cases.h"
#include "quant/format.h"
#include "scoped_env.h"
#include "test_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

std::vector<const cpu::Kernel*> runnable(cpu::Op op) {
    std::vector<const cpu::Kernel*> out;
    for (const auto& k : cpu::kernels())
        if (k.op == op && cpu::cpu_can_run(k)) out.push_back(&k);
    return out;
}

std::string kernel_name(const ::testing::TestParamInfo<const cpu::Kernel*>& info) {
    return info.param->name;
}

class QmmVariant : public ::testing::TestWithParam<const cpu::Kernel*> {};

TEST_P(QmmVariant, MatchesOracleOverShapeSweep) {
    const cpu::Kernel& k = *GetParam();
    const bool transpose = k.op == cpu::Op::qmm_t;
    if (full_sweep() && k.isa == cpu::Isa::scalar)
        GTEST_SKIP() << "the scalar reference is too slow for the full sweep; the pruned sweep "
                        "and test_qmm_sweep check it";
    sweep_kernel(
        k.name, transpose, k.max_m, k.precision == cpu::Precision::int8,
        [&](int bits, int g, DType dt) { return k.supports(bits, g, dt); },
        [&](Case& c) {
            cpu::run_qmm(k, args_for(c.p, c.y, transpose, c.sh, c.g, c.bits, c.symmetric));
        });
}

// Rows of a batch equal the M = 1 results bit for bit, for 1 and 2 threads.
TEST_P(QmmVariant, BatchInvariantUpTo64) {
    const cpu::Kernel& k = *GetParam();
    const bool transpose = k.op == cpu::Op::qmm_t;
    if (!transpose) GTEST_SKIP() << "batch invariance is required of the transpose = true path";
    std::mt19937 rng(std::random_device{}());
    const int g = 128;
    for (int bits : quant::kSupportedBits) {
        if (!k.supports(bits, g, DType::float32)) continue;
        Shape3 sh{64, 37, 2560};
        Problem p = make_problem(DType::float32, true, sh, g, bits, rng, 0.3f);
        std::vector<float> single(sh.M * sh.N);
        set_num_threads(1);
        for (int64_t m = 0; m < sh.M; ++m) {
            Tensor x1(DType::float32, {1, sh.K}), y1(DType::float32, {1, sh.N});
            std::memcpy(x1.data(), p.x.ptr<float>() + m * sh.K, sh.K * 4);
            quant::QmmArgs a{x1.data(),
                             p.w.ptr<uint32_t>(),
                             p.s.data(),
                             p.b.data(),
                             y1.data(),
                             DType::float32,
                             DType::float32,
                             DType::float32,
                             1,
                             sh.N,
                             sh.K,
                             g,
                             bits,
                             true};
            cpu::run_qmm(k, a);
            std::memcpy(single.data() + m * sh.N, y1.data(), sh.N * 4);
        }
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            for (int64_t M : {2, 7, 64}) {
                Tensor y(DType::float32, {M, sh.N});
                test::poison(y.view());
                Shape3 shm{M, sh.N, sh.K};
                cpu::run_qmm(k, args_for(p, y, true, shm, g, bits));
                ASSERT_EQ(std::memcmp(y.data(), single.data(), M * sh.N * 4), 0)
                    << k.name << " bits " << bits << " M " << M << " threads " << threads;
            }
        }
    }
    set_num_threads(0);
}

INSTANTIATE_TEST_SUITE_P(Registered, QmmVariant, ::testing::ValuesIn([] {
                             auto a = runnable(cpu::Op::qmm_t);
                             auto b = runnable(cpu::Op::qmm_n);
                             a.insert(a.end(), b.begin(), b.end());
                             return a;
                         }()),
                         kernel_name);

class DequantizeVariant : public ::testing::TestWithParam<const cpu::Kernel*> {};

TEST_P(DequantizeVariant, BitExactWithReference) {
    const cpu::Kernel& k = *GetParam();
    std::mt19937 rng(std::random_device{}());
    for (int bits : quant::kSupportedBits)
        for (int g : quant::kSupportedGroupSizes)
            for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
                for (int64_t K : {int64_t(g), int64_t(2560), int64_t(4096 + g)}) {
                    const int64_t rows = 5;
                    Tensor w(DType::uint32, {rows, K * bits / 32}), s(dt, {rows, K / g}),
                        b(dt, {rows, K / g}), want(dt, {rows, K}), got(dt, {rows, K});
                    test::fill_random_words(w.view(), rng);
                    test::fill_scales(s.view(), b.view(), rng, false);
                    quant::dequantize_ref(w.ptr<uint32_t>(), s.data(), b.data(), dt, rows, K, g,
                                          bits, want.data());
                    test::poison(got.view());
                    cpu::run_dequantize(k, w.ptr<uint32_t>(), s.data(), b.data(), dt, rows, K, g,
                                        bits, got.data());
                    ASSERT_EQ(std::memcmp(want.data(), got.data(), want.nbytes()), 0)
                        << k.name << " bits " << bits << " g " << g << " " << dtype_name(dt)
                        << " K " << K;
                }
}

INSTANTIATE_TEST_SUITE_P(Registered, DequantizeVariant,
                         ::testing::ValuesIn(runnable(cpu::Op::dequantize)), kernel_name);

// The table is well formed: unique names, every op has a scalar variant covering everything.
TEST(Registry, WellFormed) {
    std::set<std::string> names;
    for (const auto& k : cpu::kernels()) EXPECT_TRUE(names.insert(k.name).second) << k.name;
    for (auto op : {cpu::Op::quantize, cpu::Op::dequantize, cpu::Op::qmm_t, cpu::Op::qmm_n}) {
        bool has = false;
        for (const auto& k : cpu::kernels())
            has |= k.op == op && k.isa == cpu::Isa::scalar && k.bits_mask == cpu::kAllBits &&
                   k.group_mask == cpu::kAllGroups && k.dtype_mask == cpu::kFloatDtypes && !k.max_m;
        EXPECT_TRUE(has) << cpu::op_name(op);
    }
}

TEST(Registry, IsaOverride) {
    setenv("ONEBIT_CPU_ISA", "scalar", 1);
    EXPECT_EQ(cpu::select(cpu::Op::qmm_t, 1, 128, DType::float32).isa, cpu::Isa::scalar);
    setenv("ONEBIT_CPU_ISA", "sse9", 1);
    EXPECT_THROW(cpu::active_isa(), Error);
    unsetenv("ONEBIT_CPU_ISA");
    EXPECT_EQ(cpu::active_isa(), cpu::available_isas().front());
}

}  // namespace

namespace {

#if defined(__x86_64__)
// The vectorized activation quantization is bit-identical to the reference's.
TEST(PackedWeights, ActivationQuantizationBitIdentical) {
    if (!cpu::cpu_has(cpu::Isa::avx2)) GTEST_SKIP() << "no AVX2 here";
    using Fn = void (*)(const float*, int64_t, int, int8_t*, float*, float*) noexcept;
    std::vector<Fn> fns = {cpu::quantize_activations_int8_avx2};
    if (cpu::cpu_has(cpu::Isa::avx512)) fns.push_back(cpu::quantize_activations_int8_avx512);
    std::mt19937 rng(std::random_device{}());
    for (Fn fn : fns)
        for (int g : quant::kSupportedGroupSizes) {
            const int64_t K = 4096 + g;
            std::vector<float> x(K), dx1(K / g), dx2(K / g), xs(K / g);
            std::vector<int8_t> q1(K), q2(K);
            std::normal_distribution<float> nd;
            for (auto& v : x) v = nd(rng) * (rng() % 4 ? 1.0f : 100.0f);
            for (int i = 0; i < g; ++i) x[i] = 0.0f;  // an all-zero group
            x[g + 3] = 127.0f * 0.5f;                 // ties around rounding steps
            quant::quantize_activations_int8(x.data(), K, g, q1.data(), dx1.data());
            fn(x.data(), K, g, q2.data(), dx2.data(), xs.data());
            EXPECT_EQ(q1, q2) << g << (fn == fns[0] ? " avx2" : " avx512");
            EXPECT_EQ(std::memcmp(dx1.data(), dx2.data(), dx1.size() * 4), 0) << g;
            for (int64_t G = 0; G < K / g; ++G) {  // group sums in the reference's serial order
                float s = 0.0f;
                for (int i = 0; i < g; ++i) s += x[G * g + i];
                ASSERT_EQ(std::memcmp(&s, &xs[G], 4), 0) << "g " << g << " group " << G;
            }
        }
}
#endif

std::string packed_trace(uint32_t seed, int g, DType dt, Shape3 sh, bool symmetric, int bits = 1) {
    return (::testing::Message() << "seed " << seed << " bits " << bits << " g " << g << " "
                                 << dtype_name(dt) << " M " << sh.M << " N " << sh.N << " K "
                                 << sh.K << " symmetric " << symmetric)
        .GetString();
}

cpu::PackedWeights pack(const Problem& p, Shape3 sh, int g, DType dt, bool symmetric,
                        int bits = 1) {
    return cpu::pack_weights(p.w.ptr<uint32_t>(), p.s.data(), symmetric ? nullptr : p.b.data(), dt,
                             sh.N, sh.K, g, bits);
}

// The packed kernels: 1 bit (lookup tables, int8 and float32 activations) and 2, 4, 8 bits
// (interleaved codes, int8), against the oracle with the int8 variants' bound or FORMAT.md's
// float32 bound: N not a multiple of the 16-row blocks, odd K, symmetric form, batch invariance.
TEST(PackedWeights, MatchesOracleAndIsBatchInvariant) {
    if (!cpu::packed_available()) GTEST_SKIP() << "no AVX2 or AVX-512 here";
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    // the machine's own kernels, then (on an AVX-512 machine) the AVX2 lookup-table kernel
    for (const char* isa : {static_cast<const char*>(nullptr), "avx2"})
        for (int bits : {1, 2, 4, 8})
            for (int g : quant::kSupportedGroupSizes)
                for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
                    for (Shape3 sh : {Shape3{1, 37, 2560}, Shape3{3, 16, int64_t(g)},
                                      Shape3{64, 7, 4096 + g}, Shape3{2, 300, 9728}})
                        for (cpu::Precision precision :
                             {cpu::Precision::int8, cpu::Precision::float32}) {
                            if (isa && cpu::active_isa() == cpu::Isa::avx2) continue;  // done
                            test::ScopedEnv force("ONEBIT_CPU_ISA", isa);
                            if (!cpu::packable(bits, precision)) continue;
                            const bool symmetric = rng() & 1;
                            SCOPED_TRACE(packed_trace(seed, g, dt, sh, symmetric, bits) + " isa " +
                                         cpu::isa_name(cpu::active_isa()));
                            Problem p = make_problem(dt, true, sh, g, bits, rng, 0.5f);
                            cpu::PackedWeights packed = pack(p, sh, g, dt, symmetric, bits);
                            Tensor y(dt, {sh.M, sh.N});
                            test::poison(y.view());
                            cpu::qmm_packed(packed, p.x.data(), dt, sh.M, y.data(), dt, precision);
                            check_against_oracle(p.x.view(), p.w.view(), p.s.view(), p.b.view(),
                                                 true, g, bits, y.view(), symmetric,
                                                 precision == cpu::Precision::int8);
                            if (HasFatalFailure()) return;
                            for (int64_t m = 0; m < sh.M;
                                 m += 13) {  // rows of the batch equal M = 1
                                Tensor y1(dt, {1, sh.N});
                                cpu::qmm_packed(
                                    packed,
                                    static_cast<uint8_t*>(p.x.data()) + m * sh.K * dtype_size(dt),
                                    dt, 1, y1.data(), dt, precision);
                                ASSERT_EQ(std::memcmp(y1.data(),
                                                      static_cast<uint8_t*>(y.data()) +
                                                          m * sh.N * dtype_size(dt),
                                                      y1.nbytes()),
                                          0)
                                    << "row " << m;
                            }
                        }
}

void expect_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
    try {
        f();
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        for (const char* part : parts)
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
}

// Packed 2-, 4- and 8-bit weights take int8 activations only, and bits the layout has no kernel
// for are refused: clear errors, not a wrong result.
TEST(PackedWeights, RefusesWhatItCannotRun) {
    if (!cpu::packed_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI / VBMI here";
    std::mt19937 rng(7);
    const Shape3 sh{1, 16, 256};
    Problem p = make_problem(DType::float32, true, sh, 64, 4, rng, 0.5f);
    cpu::PackedWeights packed = pack(p, sh, 64, DType::float32, false, 4);
    Tensor y(DType::float32, {1, 16});
    expect_error(
        [&] {
            cpu::qmm_packed(packed, p.x.data(), DType::float32, 1, y.data(), DType::float32,
                            cpu::Precision::float32);
        },
        {"[cpu]", "4-bit", "int8"});
    expect_error(
        [&] {
            cpu::qmm_packed(packed, p.x.data(), DType::float32, 1, y.data(), DType::float32,
                            cpu::Precision::int8, cpu::PackedPath::vnni);
        },
        {"[cpu]", "path must be automatic"});
    Problem p3 = make_problem(DType::float32, true, sh, 64, 3, rng, 0.5f);
    expect_error([&] { pack(p3, sh, 64, DType::float32, false, 3); },
                 {"[cpu]", "1, 2, 4 or 8 bits, got 3"});
}

// The lookup-table kernels' narrowest sums at their limits: every weight bit set (or clear)
// against activations that all quantize to +127 or -127, so each quad's subset sum is +-508
// and a group's partial sums reach the ends of their ranges (the AVX2 kernel's byte sums
// included). Any wrap-around would be off by far more than the int8 bound.
TEST(PackedWeights, ExtremeSubsetSumsAreExact) {
    if (!cpu::packable(1, cpu::Precision::int8)) GTEST_SKIP() << "no packed 1-bit kernel here";
    std::mt19937 rng(11);
    for (const char* isa : {static_cast<const char*>(nullptr), "avx2"}) {
        if (isa && cpu::active_isa() == cpu::Isa::avx2) continue;
        test::ScopedEnv force("ONEBIT_CPU_ISA", isa);
        for (int g : quant::kSupportedGroupSizes) {
            const Shape3 sh{3, 37, 4096 + g};
            Problem p = make_problem(DType::float32, true, sh, g, 1, rng, 0.0f);
            auto* x = p.x.ptr<float>();
            for (int64_t i = 0; i < sh.K; ++i) {
                x[i] = 1.0f;                                   // row 0: +127 everywhere
                x[sh.K + i] = -1.0f;                           // row 1: -127 everywhere
                x[2 * sh.K + i] = (i / g) % 2 ? 2.0f : -2.0f;  // row 2: groups alternate
            }
            auto* w = p.w.ptr<uint32_t>();
            for (int64_t n = 0; n < sh.N; ++n)
                for (int64_t j = 0; j < sh.K / 32; ++j)
                    w[n * (sh.K / 32) + j] = n % 3 == 0   ? 0xffffffffu
                                             : n % 3 == 1 ? 0u
                                                          : w[n * (sh.K / 32) + j];
            for (bool symmetric : {false, true}) {
                SCOPED_TRACE(packed_trace(0, g, DType::float32, sh, symmetric) + " isa " +
                             cpu::isa_name(cpu::active_isa()));
                cpu::PackedWeights packed = pack(p, sh, g, DType::float32, symmetric);
                Tensor y(DType::float32, {sh.M, sh.N});
                test::poison(y.view());
                cpu::qmm_packed(packed, p.x.data(), DType::float32, sh.M, y.data(), DType::float32,
                                cpu::Precision::int8);
                check_against_oracle(p.x.view(), p.w.view(), p.s.view(), p.b.view(), true, g, 1,
                                     y.view(), symmetric, true);
                if (HasFatalFailure()) return;
            }
        }
    }
}

// Where only the AVX2 lookup-table kernels run (forced on an AVX-512 machine too), what they
// cannot run is refused by name: more bits, the VNNI path, a path for float32 activations.
TEST(PackedWeights, Avx2RefusesWhatItCannotRun) {
    if (!cpu::cpu_has(cpu::Isa::avx2)) GTEST_SKIP() << "no AVX2 here";
    std::optional<cpu::PackedWeights> vnni_layout;  // packed for the AVX-512 kernels, if here
    if (cpu::packed_vnni_available()) {
        std::mt19937 rng(5);
        const Shape3 sh{1, 16, 256};
        Problem p = make_problem(DType::float32, true, sh, 64, 1, rng, 0.5f);
        vnni_layout = pack(p, sh, 64, DType::float32, false);
    }
    test::ScopedEnv force("ONEBIT_CPU_ISA", "avx2");
    if (vnni_layout) {
        std::vector<float> x(256, 1.0f), y(16);
        expect_error(
            [&] {
                cpu::qmm_packed(*vnni_layout, x.data(), DType::float32, 1, y.data(), DType::float32,
                                cpu::Precision::int8);
            },
            {"[cpu]", "packed for the AVX-512 VNNI / VBMI kernels", "avx2", "pack them again"});
    }
    ASSERT_TRUE(cpu::packed_available());
    EXPECT_FALSE(cpu::packed_vnni_available());
    EXPECT_TRUE(cpu::packable(1, cpu::Precision::int8));
    EXPECT_TRUE(cpu::packable(1, cpu::Precision::float32));
    EXPECT_FALSE(cpu::packable(4, cpu::Precision::int8));
    std::mt19937 rng(7);
    const Shape3 sh{1, 16, 256};
    Problem p = make_problem(DType::float32, true, sh, 64, 1, rng, 0.5f);
    cpu::PackedWeights packed = pack(p, sh, 64, DType::float32, false);
    Tensor y(DType::float32, {1, 16});
    auto run = [&](cpu::Precision precision, cpu::PackedPath path) {
        cpu::qmm_packed(packed, p.x.data(), DType::float32, 1, y.data(), DType::float32, precision,
                        path);
    };
    expect_error([&] { run(cpu::Precision::float32, cpu::PackedPath::lookup_table); },
                 {"[cpu]", "float32 activations have one path"});
    expect_error([&] { run(cpu::Precision::int8, cpu::PackedPath::vnni); },
                 {"[cpu]", "VNNI path", "avx2"});
    Problem p4 = make_problem(DType::float32, true, sh, 64, 4, rng, 0.5f);
    cpu::PackedWeights packed4 = pack(p4, sh, 64, DType::float32, false, 4);
    expect_error(
        [&] {
            cpu::qmm_packed(packed4, p4.x.data(), DType::float32, 1, y.data(), DType::float32,
                            cpu::Precision::int8);
        },
        {"[cpu]", "4-bit", "AVX-512 VNNI"});
}

// The VNNI prefill kernel over the packed layout gives exactly the lookup-table kernel's bits
// (so switching between them by M keeps batch invariance), and is within the int8 bound: every
// group size and dtype, M not a multiple of its row tile, N not a multiple of 16, odd K.
TEST(PackedWeights, VnniPrefillEqualsLookupTable) {
    if (!cpu::packed_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI / VBMI here";
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    for (int g : quant::kSupportedGroupSizes)
        for (DType dt : {DType::float32, DType::float16, DType::bfloat16})
            for (Shape3 sh :
                 {Shape3{1, 37, 2560}, Shape3{2, 1, 4096 + g}, Shape3{7, 16, int64_t(g)},
                  Shape3{64, 33, 2560}, Shape3{300, 7, 4096 + g}, Shape3{17, 300, 9728}}) {
                const bool symmetric = rng() & 1;
                SCOPED_TRACE(packed_trace(seed, g, dt, sh, symmetric));
                Problem p = make_problem(dt, true, sh, g, 1, rng, 0.5f);
                cpu::PackedWeights packed = pack(p, sh, g, dt, symmetric);
                Tensor y_lut(dt, {sh.M, sh.N}), y_vnni(dt, {sh.M, sh.N});
                test::poison(y_lut.view());
                test::poison(y_vnni.view());
                cpu::qmm_packed(packed, p.x.data(), dt, sh.M, y_lut.data(), dt,
                                cpu::Precision::int8, cpu::PackedPath::lookup_table);
                cpu::qmm_packed(packed, p.x.data(), dt, sh.M, y_vnni.data(), dt,
                                cpu::Precision::int8, cpu::PackedPath::vnni);
                check_against_oracle(p.x.view(), p.w.view(), p.s.view(), p.b.view(), true, g, 1,
                                     y_vnni.view(), symmetric, true);
                if (HasFatalFailure()) return;
                ASSERT_EQ(std::memcmp(y_lut.data(), y_vnni.data(), y_lut.nbytes()), 0);
            }
}

}  // namespace

namespace {

// Every attention kernel this CPU runs, against float64: several blocks of new tokens after
// cached positions, grouped heads, head sizes that are not a multiple of the vector width,
// poisoned outputs; and each token computed alone gives the bits it gets inside a block.
TEST(Attention, EveryKernelAgainstFloat64AndBatchInvariant) {
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    struct Case {
        int64_t t, past, nh, nkv, d;
    };
    for (const cpu::Kernel& k : cpu::kernels()) {
        if (k.op != cpu::Op::attention || !cpu::cpu_can_run(k)) continue;
        for (Case c : {Case{20, 5, 4, 2, 24}, Case{40, 100, 16, 8, 128}, Case{3, 0, 3, 1, 136},
                       Case{1, 300, 8, 2, 64}, Case{17, 2, 2, 2, 8}}) {
            SCOPED_TRACE(::testing::Message()
                         << k.name << " seed " << seed << " t " << c.t << " past " << c.past
                         << " heads " << c.nh << "/" << c.nkv << " d " << c.d);
            const int64_t cap = c.past + c.t, d = c.d, nh = c.nh, nkv = c.nkv;
            std::vector<float> q(c.t * nh * d), kc(cap * nkv * d), vc(cap * nkv * d),
                out(c.t * nh * d, NAN);
            for (float& v : q) v = 2.0f * nd(rng);
            for (float& v : kc) v = nd(rng);
            for (float& v : vc) v = nd(rng);
            std::vector<int32_t> pos(c.t);
            for (int64_t s = 0; s < c.t; ++s) pos[s] = static_cast<int32_t>(c.past + s);
            // the kernels' cache (cpu::key_index, value_index) with room for 5 more positions,
            // NaN past the last one (no kernel may use them)
            const int64_t rows = cpu::cache_rows(cap + 5);
            std::vector<float> kb(rows * nkv * d, NAN), vb(rows * nkv * d, NAN);
            for (int64_t p = 0; p < cap; ++p)
                for (int64_t h = 0; h < nkv; ++h)
                    for (int64_t i = 0; i < d; ++i) {
                        kb[cpu::key_index(p, h, i, rows, d)] = kc[(p * nkv + h) * d + i];
                        vb[cpu::value_index(p, h, i, rows, d)] = vc[(p * nkv + h) * d + i];
                    }
            cpu::AttentionTask a{q.data(), c.t,       nh,         nkv,        d,
                                 rows,     kb.data(), vb.data(),  pos.data(), out.data(),
                                 1.0f / std::sqrt(static_cast<float>(d))};
            cpu::run_attention(k, a);
            for (int64_t s = 0; s < c.t; ++s)
                for (int64_t h = 0; h < nh; ++h) {
                    const int64_t kvh = h / (nh / nkv), len = pos[s] + 1;
                    std::vector<double> w(len);
                    double mx = -1e300, z = 0;
                    for (int64_t p = 0; p < len; ++p) {
                        double dot = 0;
                        for (int64_t i = 0; i < d; ++i)
                            dot += double(q[(s * nh + h) * d + i]) * kc[(p * nkv + kvh) * d + i];
                        w[p] = dot / std::sqrt(static_cast<double>(d));
                        mx = std::max(mx, w[p]);
                    }
                    for (double& x : w) z += x = std::exp(x - mx);
                    for (int64_t i = 0; i < d; ++i) {
                        double o = 0, mag = 0;
                        for (int64_t p = 0; p < len; ++p) {
                            o += w[p] / z * vc[(p * nkv + kvh) * d + i];
                            mag += w[p] / z * std::fabs(vc[(p * nkv + kvh) * d + i]);
                        }
                        ASSERT_NEAR(out[(s * nh + h) * d + i], o, 2e-5 * mag + 1e-6)
                            << "token " << s << " head " << h << " i " << i;
                    }
                }
            for (int64_t s = 0; s < c.t; s += 7) {  // a token alone: the same bits
                std::vector<float> one(nh * d, NAN);
                cpu::AttentionTask a1{
                    q.data() + s * nh * d, 1,          nh,     nkv, d, rows, kb.data(), vb.data(),
                    pos.data() + s,        one.data(), a.scale};
                cpu::run_attention(k, a1);
                ASSERT_EQ(std::memcmp(one.data(), out.data() + s * nh * d, one.size() * 4), 0)
                    << "token " << s;
            }
        }
    }
}

}  // namespace

namespace {

// Every silu_mul kernel this CPU runs, against float64 of the formula on fresh random inputs
// with the edge values mixed in (0, -0, near and past the exp clamp, huge, NaN, +-inf), outputs
// poisoned, lengths around the vector widths; each element gets the same bits whatever the call's
// length and its offset in it (tails are masked, never another formula); the SIMD kernels are
// bit-identical to each other.
TEST(SiluMul, EveryKernelAgainstFloat64) {
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> edges = {0.0f,   -0.0f,  86.9f,   87.5f,  -87.5f, 88.5f, -88.5f,
                                      -88.9f, 100.0f, -100.0f, 1e-30f, -1e-30f, 1e30f, -1e30f,
                                      NAN,    inf,    -inf,    5e-39f};
    std::vector<float> simd_ref;  // the first SIMD kernel's output on the shared inputs
    const int64_t n_max = 6144 + 5;
    std::vector<float> gate(n_max), up(n_max);
    for (int64_t i = 0; i < n_max; ++i) {
        gate[i] = i % 29 == 0 ? edges[(i / 29) % edges.size()] : 6.0f * nd(rng);
        up[i] = nd(rng);
    }
    for (const cpu::Kernel& k : cpu::kernels()) {
        if (k.op != cpu::Op::silu_mul || !cpu::cpu_can_run(k)) continue;
        SCOPED_TRACE(::testing::Message() << k.name << " seed " << seed);
        std::vector<float> out(n_max, 12345.0f);
        k.silu_mul(gate.data(), up.data(), n_max, out.data());
        for (int64_t i = 0; i < n_max; ++i) {
            const double g = gate[i], ref = g / (1.0 + std::exp(-g)) * up[i];
            if (std::isnan(ref)) {
                EXPECT_TRUE(std::isnan(out[i])) << "gate " << gate[i] << " out " << out[i];
            } else if (std::isinf(ref)) {
                EXPECT_EQ(out[i], ref) << "gate " << gate[i];
            } else {
                EXPECT_NEAR(out[i], ref, 5e-7 * std::fabs(ref) + 1e-30)
                    << "gate " << gate[i] << " up " << up[i];
            }
        }
        // lengths and offsets: the same bits for every element
        for (int64_t n : {1, 3, 4, 7, 8, 15, 16, 17, 33, 100}) {
            for (int64_t off : {0, 1, 5, 29}) {
                std::vector<float> part(n + 2, 12345.0f);
                k.silu_mul(gate.data() + off, up.data() + off, n, part.data());
                for (int64_t i = 0; i < n; ++i)
                    ASSERT_EQ(std::memcmp(&part[i], &out[off + i], 4), 0)
                        << "n " << n << " offset " << off << " element " << i;
                EXPECT_EQ(part[n], 12345.0f) << "wrote past n = " << n;
            }
        }
        if (k.isa == cpu::Isa::scalar) continue;
        if (simd_ref.empty()) simd_ref = out;
        else EXPECT_EQ(std::memcmp(simd_ref.data(), out.data(), n_max * 4), 0);
    }
}

}  // namespace
