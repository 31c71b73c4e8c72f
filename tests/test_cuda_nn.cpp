// The forward-pass kernels of the CUDA backend (backend/cuda/nn.h: nn.cu, attention.cu,
// fused.cu, packed_swiglu.cu), each against the CPU's ops/nn.h (the float32 reference of the
// model) or quant's reference, on fresh random inputs with poisoned outputs: embedding rows,
// RMSNorm, RoPE, attention over per-row KV caches, the KV store, SwiGLU, residual adds, dense
// linears, and the fused decode stages (residual + RMSNorm + int8 packing, SwiGLU + packing, q / k
// norm + RoPE + store, and the kernels that fuse those into attention and the gate / up matmul,
// bit for bit against the kernels apart). Shapes include sizes that are not multiples of a warp
// or a block. Float results agree within a few float32 ulps of the row's scale (the reductions
// run in another order); copies and dequantized rows are exact. Skips where no GPU is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "backend/cuda/cuda.h"
#include "backend/cuda/nn.h"
#include "core/convert.h"
#include "ops/nn.h"
#include "qmm_cases.h"
#include "quant/reference.h"
#include "scoped_env.h"

using namespace onebit;
using namespace onebit::test;

namespace {

#define REQUIRE_GPU() \
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA)"

template <typename T>
cuda::Buffer upload(const std::vector<T>& v) {
    cuda::Buffer b(std::max<size_t>(v.size() * sizeof(T), 1));
    if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
    return b;
}

template <typename T>
std::vector<T> download(const cuda::Buffer& b, size_t n) {
    cuda::synchronize();
    std::vector<T> v(n);
    b.download(v.data(), n * sizeof(T));
    return v;
}

cuda::Buffer poisoned(size_t bytes) {
    cuda::Buffer b(bytes);
    b.fill(0xff);
    return b;
}

std::vector<float> normal(size_t n, std::mt19937& rng, float scale = 1.0f, float mean = 0.0f) {
    std::normal_distribution<float> nd(mean, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

// got == want within rel * (the largest |want| of its row of `width`) + a tiny floor.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, int64_t width,
                  double rel, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t r0 = 0; r0 < want.size(); r0 += width) {
        double scale = 0;
        for (int64_t i = 0; i < width; ++i) scale = std::max(scale, std::abs(double(want[r0 + i])));
        for (int64_t i = 0; i < width; ++i) {
            const size_t j = r0 + i;
            ASSERT_TRUE(std::isfinite(got[j])) << what << " element " << j << " is " << got[j];
            ASSERT_LE(std::abs(double(got[j]) - want[j]), rel * scale + 1e-30)
                << what << " element " << j << ": got " << got[j] << ", want " << want[j];
        }
    }
}

// nn.h's bound for attention_prefill with AttentionMath::tf32, element by element of want
// [t][n_head][d] (queries s at positions pos[s], keys / values [positions][n_kv][d]), plus
// float32 rounding (1e-5 of the row's largest).
std::vector<float> tf32_attention_bound(const std::vector<float>& q, const float* k,
                                        const float* v, const std::vector<int32_t>& pos,
                                        int64_t n_head, int64_t n_kv, int64_t d,
                                        const std::vector<float>& want) {
    const double u = std::ldexp(1.0, -10), scale = 1.0 / std::sqrt(double(d));
    std::vector<float> bound(want.size());
    for (size_t s = 0; s < pos.size(); ++s)
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t kvh = h / (n_head / n_kv), r = (int64_t(s) * n_head + h) * d;
            double qk = 0.0, row = 0.0;
            std::vector<double> vmax(d, 0.0);
            for (int64_t j = 0; j <= pos[s]; ++j) {
                double a = 0.0;
                for (int64_t i = 0; i < d; ++i) {
                    a += std::abs(double(q[r + i]) * k[(j * n_kv + kvh) * d + i]);
                    vmax[i] = std::max(vmax[i], std::abs(double(v[(j * n_kv + kvh) * d + i])));
                }
                qk = std::max(qk, a);
            }
            for (int64_t i = 0; i < d; ++i) row = std::max(row, std::abs(double(want[r + i])));
            const double delta = 2 * u * scale * qk;
            for (int64_t i = 0; i < d; ++i)
                bound[r + i] = float((std::expm1(2 * delta) + 3 * u) * vmax[i] + 1e-5 * row);
        }
    return bound;
}

std::vector<float> inv_freq(int64_t head_dim, double theta) {
    std::vector<float> f(head_dim / 2);
    for (int64_t j = 0; j < head_dim / 2; ++j)
        f[j] = static_cast<float>(1.0 / std::pow(theta, 2.0 * j / head_dim));
    return f;
}

TEST(CudaNn, RmsNormSiluMulAdd) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    for (int64_t n : {int64_t(100), int64_t(2048), int64_t(4096 + 33)}) {
        const int64_t rows = 3;
        const auto x = normal(rows * n, rng, 2.0f, 0.3f), w = normal(n, rng, 0.5f, 1.0f);
        std::vector<float> want(rows * n);
        nn::rms_norm(x.data(), w.data(), rows, n, 1e-6f, want.data());
        cuda::Buffer dx = upload(x), dw = upload(w), dy = poisoned(rows * n * 4);
        cuda::nn::rms_norm(static_cast<float*>(dx.data()), static_cast<float*>(dw.data()), rows, n,
                           1e-6f, static_cast<float*>(dy.data()));
        expect_close(download<float>(dy, rows * n), want, n, 4e-6, "rms_norm");
        // in place
        cuda::nn::rms_norm(static_cast<float*>(dx.data()), static_cast<float*>(dw.data()), rows, n,
                           1e-6f, static_cast<float*>(dx.data()));
        expect_close(download<float>(dx, rows * n), want, n, 4e-6, "rms_norm in place");

        const auto g = normal(n, rng, 3.0f), u = normal(n, rng);
        std::vector<float> sw(n);
        nn::silu_mul(g.data(), u.data(), n, sw.data());
        cuda::Buffer dg = upload(g), du = upload(u), ds = poisoned(n * 4);
        cuda::nn::silu_mul(static_cast<float*>(dg.data()), static_cast<float*>(du.data()), n,
                           static_cast<float*>(ds.data()));
        expect_close(download<float>(ds, n), sw, n, 4e-6, "silu_mul");

        std::vector<float> sum(n);
        for (int64_t i = 0; i < n; ++i) sum[i] = g[i] + u[i];
        cuda::nn::add(static_cast<float*>(dg.data()), static_cast<float*>(du.data()), n);
        EXPECT_EQ(download<float>(dg, n), sum) << "add (exact)";
    }
}

// The device's greedy choice is ops' nn::argmax, row by row: random rows (a vocabulary not a
// multiple of the block), equal maxima far apart, NaNs first and elsewhere, all -inf, all NaN.
TEST(CudaNn, ArgmaxRowsIsTheCpuRule) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const float nan = std::nanf(""), inf = INFINITY;
    // one block a row (n below 8192) and slices of a row reduced apart, then merged
    for (int64_t n : {int64_t(1), int64_t(300), int64_t(8193), int64_t(40001), int64_t(151936)}) {
        const int64_t rows = 8;
        std::vector<float> x = normal(rows * n, rng, 3.0f);
        if (n > 1) {
            x[1 * n + n - 1] = 50.0f, x[1 * n + n / 2] = 50.0f;  // equal maxima: the first wins
            x[2 * n] = nan;                                       // NaN first: 0
            for (int64_t i = 0; i < n; i += 7) x[3 * n + i] = nan;  // NaNs passed over
            for (int64_t i = 0; i < n; ++i) x[4 * n + i] = -inf;
            for (int64_t i = 0; i < n; ++i) x[5 * n + i] = nan;
            x[6 * n + n - 1] = inf, x[6 * n + 1] = inf;
            for (int64_t i = 0; i < n; ++i) x[7 * n + i] = -1.0f - float(i % 3);
            x[7 * n + n - 1] = 0.0f, x[7 * n + n / 3] = -0.0f;  // -0 first: it wins over +0
        }
        std::vector<int32_t> want(rows);
        for (int64_t r = 0; r < rows; ++r) want[r] = nn::argmax(x.data() + r * n, n);
        cuda::Buffer dx = upload(x), dy = poisoned(rows * 4);
        cuda::nn::argmax_rows(static_cast<float*>(dx.data()), rows, n, static_cast<int32_t*>(dy.data()));
        EXPECT_EQ(download<int32_t>(dy, rows), want) << "n " << n;
    }
}

TEST(CudaNn, LogitEditsAreTheCpuOperations) {
    // nn::edited's float operations bit for bit (divide, fused multiply-subtract, subtract), on
    // positive, negative and zero logits, edits spread over rows.
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const int64_t rows = 3, n = 5000;
    std::vector<float> x = normal(rows * n, rng, 4.0f);
    x[7] = 0.0f, x[8] = -0.0f;
    std::vector<cuda::nn::RowEdit> edits;
    std::vector<float> want = x;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t r = 0; r < rows; ++r)
        for (int32_t id = int32_t(r); id < n; id += 7) {
            const nn::LogitEdit e{id, id % 3 ? 1.0f + std::abs(u(rng)) : 1.0f, id % 5 ? u(rng) : 0.0f};
            edits.push_back({int32_t(r), e.id, e.repeat, e.minus});
            want[r * n + id] = nn::edited(want[r * n + id], e);
        }
    cuda::Buffer dx = upload(x), de = upload(edits);
    cuda::nn::apply_edits(static_cast<float*>(dx.data()), n, static_cast<const cuda::nn::RowEdit*>(de.data()),
                          int64_t(edits.size()));
    const std::vector<float> got = download<float>(dx, rows * n);
    for (int64_t i = 0; i < rows * n; ++i)
        ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0) << "element " << i << ": " << got[i] << " vs " << want[i];
}

TEST(CudaNn, TopKRowsIsTheCpuSet) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const float nan = std::nanf(""), inf = INFINITY;
    // n: 16-byte loads (multiples of 4) and single ones (the rest); one block a row (n below
    // 8192) and slices of a row selected apart, then merged (2 slices at 8193 and 16384, 37 at
    // Qwen3's 151936), ties and equal values spanning slices in rows 1 to 3
    for (int64_t n : {int64_t(1), int64_t(40), int64_t(1500), int64_t(1501), int64_t(8193),
                      int64_t(16384), int64_t(151936), int64_t(151937)}) {
        for (int64_t k : {int64_t(1), int64_t(20), int64_t(40), int64_t(1024), n}) {
            if (k > n) continue;
            const int64_t rows = 7;
            std::vector<float> x = normal(rows * n, rng, 3.0f);
            // row 1: logits on a coarse grid (many ties, at the k-th too); row 2: one value
            // everywhere; row 3: +0 and -0 only with some larger values; row 4: NaNs and
            // infinities; row 5: a few huge values among tiny ones (long runs of equal top bits)
            for (int64_t i = 0; i < n; ++i) {
                x[1 * n + i] = std::round(x[1 * n + i] * 2.0f) / 2.0f;
                x[2 * n + i] = 1.5f;
                x[3 * n + i] = i % 3 ? 0.0f : -0.0f;
                x[5 * n + i] = std::ldexp(1.0f + x[5 * n + i] * 1e-3f, -100);
            }
            for (int64_t i = 0; i < n; i += 97) x[3 * n + i] = 1.0f + float(i % 5);
            for (int64_t i = 0; i < n; i += 13) x[4 * n + i] = nan;
            for (int64_t i = 5; i < n; i += 31) x[4 * n + i] = i % 2 ? inf : -inf;
            for (int64_t i = 0; i < n; i += 501) x[5 * n + i] = 1e30f;
            std::vector<nn::Candidate> want(rows * k);
            for (int64_t r = 0; r < rows; ++r) nn::top_k(x.data() + r * n, n, k, want.data() + r * k);
            cuda::Buffer dx = upload(x), dv = poisoned(rows * k * 4), di = poisoned(rows * k * 4);
            cuda::nn::top_k_rows(static_cast<float*>(dx.data()), rows, n, k, static_cast<float*>(dv.data()),
                                 static_cast<int32_t*>(di.data()));
            const std::vector<float> v = download<float>(dv, rows * k);
            const std::vector<int32_t> id = download<int32_t>(di, rows * k);
            for (int64_t r = 0; r < rows; ++r) {
                std::vector<nn::Candidate> got(k);
                for (int64_t j = 0; j < k; ++j) {
                    const int64_t e = r * k + j;
                    ASSERT_TRUE(id[e] >= 0 && id[e] < n) << "n " << n << " k " << k << " row " << r;
                    // the value must be the row's own (bit for bit, NaNs too)
                    ASSERT_EQ(std::memcmp(&v[e], &x[r * n + id[e]], 4), 0) << "row " << r << " id " << id[e];
                    got[j] = {v[e], id[e]};
                }
                std::sort(got.begin(), got.end(), nn::ranks_before);
                for (int64_t j = 0; j < k; ++j)
                    ASSERT_EQ(got[j].id, want[r * k + j].id) << "n " << n << " k " << k << " row " << r << " rank " << j;
            }
        }
    }
}

TEST(CudaNn, RopeMatchesTheCpu) {
    REQUIRE_GPU();
    std::mt19937 rng(std::random_device{}());
    for (int64_t hd : {int64_t(32), int64_t(64), int64_t(128)})
        for (float factor : {1.0f, 1.25f}) {
            const int64_t t = 5, heads = 3;
            auto x = normal(t * heads * hd, rng);
            const std::vector<int32_t> pos = {0, 1, 7, 300, 40000};
            const auto f = inv_freq(hd, 1e6);
            cuda::Buffer dx = upload(x), dp = upload(pos), df = upload(f);
            nn::rope(x.data(), t, heads, hd, pos.data(), f, factor);
            cuda::nn::rope(static_cast<float*>(dx.data()), t, heads, hd,
                           static_cast<const int32_t*>(dp.data()), static_cast<float*>(df.data()),
                           factor);
            // angles up to 4e4 rad: the cos / sin arguments round alike, the functions differ by ulps
            expect_close(download<float>(dx, x.size()), x, hd, 2e-5, "rope");
        }
}

// A random symmetric or affine 1-bit g128 matrix [n, k] packed for the GPU, with its host copy.
struct OneBitMatrix {
    Tensor w, s, b;
    cuda::PackedOneBit packed;
};

OneBitMatrix one_bit_matrix(int64_t n, int64_t k, std::mt19937& rng) {
    OneBitMatrix m{Tensor(DType::uint32, {n, k / 32}), Tensor(DType::float16, {n, k / 128}),
                   Tensor(DType::float16, {n, k / 128}), {}};
    fill_random_words(m.w.view(), rng);
    fill_scales(m.s.view(), m.b.view(), rng, false);
    m.packed = cuda::pack_one_bit(m.w.ptr<uint32_t>(), m.s.data(), m.b.data(), DType::float16, n,
                                  k, 128);
    return m;
}

// Attention over caches addressed per row (CacheRows), with a layer offset; the KV store first.
TEST(CudaNn, KvStoreAndAttentionMatchTheCpu) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    struct Case {
        int64_t t, past, n_head, n_kv, d;
    };
    for (Case c : {Case{1, 0, 4, 2, 64}, Case{1, 300, 16, 8, 128}, Case{7, 20, 6, 2, 128},
                   Case{33, 5, 4, 4, 64}, Case{2, 9, 2, 1, 32}, Case{3, 40, 5, 1, 128},
                   Case{5, 30, 32, 8, 128}, Case{3, 10, 8, 1, 64}, Case{300, 10, 8, 2, 64},
                   Case{160, 0, 32, 4, 128}, Case{4, 1021, 16, 8, 128}, Case{2, 2300, 4, 1, 64},
                   Case{140, 250, 8, 2, 128}}) {
        SCOPED_TRACE(::testing::Message() << "t " << c.t << " past " << c.past << " heads "
                                          << c.n_head << "/" << c.n_kv << " d " << c.d);
        const int64_t capacity = c.past + c.t + 3, width = c.n_kv * c.d, layers = 2;
        const int64_t layer = capacity * width;  // the second layer's offset
        // the cache: random history, then the new rows stored by kv_store
        auto kc = normal(layers * layer, rng), vc = normal(layers * layer, rng);
        const auto kn = normal(c.t * width, rng), vn = normal(c.t * width, rng);
        const auto q = normal(c.t * c.n_head * c.d, rng);
        std::vector<int32_t> pos(c.t);
        for (int64_t s = 0; s < c.t; ++s) pos[s] = static_cast<int32_t>(c.past + s);
        cuda::Buffer dk = upload(kc), dv = upload(vc), dkn = upload(kn), dvn = upload(vn),
                     dq = upload(q), dp = upload(pos);
        std::vector<float*> kp(c.t, static_cast<float*>(dk.data())),
            vp(c.t, static_cast<float*>(dv.data()));
        cuda::Buffer dkp = upload(kp), dvp = upload(vp);
        const cuda::nn::CacheRows rows{static_cast<float* const*>(dkp.data()),
                                       static_cast<float* const*>(dvp.data()), layer};
        cuda::nn::kv_store(static_cast<float*>(dkn.data()), static_cast<float*>(dvn.data()), rows,
                           static_cast<const int32_t*>(dp.data()), c.t, width);
        for (int64_t s = 0; s < c.t; ++s) {
            std::memcpy(&kc[layer + pos[s] * width], &kn[s * width], width * 4);
            std::memcpy(&vc[layer + pos[s] * width], &vn[s * width], width * 4);
        }
        ASSERT_EQ(download<float>(dk, kc.size()), kc) << "kv_store (exact, other rows untouched)";
        ASSERT_EQ(download<float>(dv, vc.size()), vc);
        std::vector<float> want(c.t * c.n_head * c.d);
        const auto [kb, vb] = nn::kv_cache_of(kc.data() + layer, vc.data() + layer, capacity, c.n_kv, c.d);
        nn::attention(q.data(), c.t, c.n_head, c.n_kv, c.d, capacity, kb.data(), vb.data(),
                      pos.data(), want.data());
        cuda::Buffer dout = poisoned(want.size() * 4);
        cuda::nn::attention(static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv, c.d, rows,
                            static_cast<const int32_t*>(dp.data()), capacity,
                            static_cast<float*>(dout.data()), 1.0f / std::sqrt(float(c.d)));
        const std::vector<float> got = download<float>(dout, want.size());
        expect_close(got, want, c.d, 1e-5, "attention");
        // the heads of a KV head share a block (t of 160 and 300 here) only while their scores
        // fit in shared memory: a capacity of 2^15 positions leaves a block per head, same bits
        cuda::Buffer dout1 = poisoned(want.size() * 4);
        cuda::nn::attention(static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv, c.d, rows,
                            static_cast<const int32_t*>(dp.data()), int64_t(1) << 15,
                            static_cast<float*>(dout1.data()), 1.0f / std::sqrt(float(c.d)));
        const std::vector<float> got1 = download<float>(dout1, want.size());
        ASSERT_EQ(std::memcmp(got.data(), got1.data(), got.size() * 4), 0)
            << "shared-block and block-per-head attention differ";
        // split as a decode step splits (rows past kAttentionChunk positions over several blocks):
        // the CPU's result within the same bound; rows of at most one chunk bit for bit as
        // unsplit; each row alone (t = 1) bit for bit as in the batch
        const cuda::nn::AttentionSplit split{c.past + c.t};
        cuda::Buffer douts = poisoned(want.size() * 4);
        cuda::nn::attention(static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv, c.d, rows,
                            static_cast<const int32_t*>(dp.data()), capacity,
                            static_cast<float*>(douts.data()), 1.0f / std::sqrt(float(c.d)), split);
        const std::vector<float> gots = download<float>(douts, want.size());
        expect_close(gots, want, c.d, 1e-5, "split attention");
        const int64_t hw = c.n_head * c.d;
        for (int64_t s = 0; s < c.t; ++s) {
            if (pos[s] + 1 <= cuda::nn::kAttentionChunk) {
                ASSERT_EQ(std::memcmp(&gots[s * hw], &got[s * hw], hw * 4), 0)
                    << "row " << s << " of one chunk";
            }
            if (s % 37 != c.t % 3 && s + 1 != c.t) continue;  // a few rows alone
            cuda::Buffer d1 = poisoned(hw * 4);
            const cuda::nn::CacheRows one{rows.k + s, rows.v + s, layer};
            cuda::nn::attention(static_cast<float*>(dq.data()) + s * hw, 1, c.n_head, c.n_kv, c.d,
                                one, static_cast<const int32_t*>(dp.data()) + s, capacity,
                                static_cast<float*>(d1.data()), 1.0f / std::sqrt(float(c.d)),
                                cuda::nn::AttentionSplit{pos[s] + 1});
            ASSERT_EQ(std::memcmp(download<float>(d1, hw).data(), &gots[s * hw], hw * 4), 0)
                << "row " << s << " alone differs from the batch";
        }
        // a prompt's prefill (positions past .. past + t - 1) on cuBLAS: float32, the CPU's
        // result within the same bound; tf32, within nn.h's bound; with all scores at once and
        // in blocks of 7 query rows; flash (head size 64 and 128; else tf32) within tf32's bound
        const std::vector<float> tf32_bound = tf32_attention_bound(
            q, kc.data() + layer, vc.data() + layer, pos, c.n_head, c.n_kv, c.d, want);
        for (const auto math : {cuda::nn::AttentionMath::float32, cuda::nn::AttentionMath::tf32,
                                cuda::nn::AttentionMath::flash})
            for (const int64_t budget :
                 {cuda::nn::kPrefillScoreBytes, 7 * c.n_head * (c.past + c.t) * 4}) {
                SCOPED_TRACE(budget == cuda::nn::kPrefillScoreBytes ? "attention_prefill"
                                                                    : "attention_prefill in blocks");
                cuda::Buffer dpre = poisoned(want.size() * 4);
                cuda::nn::attention_prefill(static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv,
                                            c.d, static_cast<float*>(dk.data()) + layer,
                                            static_cast<float*>(dv.data()) + layer, c.past,
                                            static_cast<float*>(dpre.data()),
                                            1.0f / std::sqrt(float(c.d)), budget, math);
                const std::vector<float> pre = download<float>(dpre, want.size());
                if (math == cuda::nn::AttentionMath::float32) {
                    expect_close(pre, want, c.d, 1e-5, "attention_prefill, float32");
                    continue;
                }
                for (size_t i = 0; i < want.size(); ++i)
                    ASSERT_LE(std::abs(double(pre[i]) - want[i]), tf32_bound[i])
                        << "attention_prefill, " << (math == cuda::nn::AttentionMath::flash ? "flash" : "tf32")
                        << ", element " << i << ": got " << pre[i]
                        << ", want " << want[i];
            }
        if (c.d != 128) continue;
        // fused with the packing of its output: the same packed activations as packing the
        // output afterwards (bit for bit through a packed matmul), and the same output
        const int64_t K = c.n_head * c.d;
        const OneBitMatrix w = one_bit_matrix(37, K, rng);
        cuda::Buffer dout2 = poisoned(want.size() * 4), y1 = poisoned(c.t * 37 * 4),
                     y2 = poisoned(c.t * 37 * 4);
        const cuda::PackedActivations fused = cuda::nn::attention_pack(
            static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv, c.d, rows,
            static_cast<const int32_t*>(dp.data()), capacity, static_cast<float*>(dout2.data()),
            1.0f / std::sqrt(float(c.d)));
        cuda::qmm_packed_one_bit(w.packed, fused, y1.data(), DType::float32);
        const cuda::PackedActivations apart =
            cuda::pack_activations(dout.data(), DType::float32, c.t, K);
        cuda::qmm_packed_one_bit(w.packed, apart, y2.data(), DType::float32);
        EXPECT_EQ(download<float>(dout2, want.size()), download<float>(dout, want.size()));
        EXPECT_EQ(download<float>(y1, c.t * 37), download<float>(y2, c.t * 37))
            << "attention_pack's packed output differs from pack_activations of its output";
        // and split: the packing of the merged output
        cuda::Buffer dout3 = poisoned(want.size() * 4), y3 = poisoned(c.t * 37 * 4),
                     y4 = poisoned(c.t * 37 * 4);
        const cuda::PackedActivations fused_split = cuda::nn::attention_pack(
            static_cast<float*>(dq.data()), c.t, c.n_head, c.n_kv, c.d, rows,
            static_cast<const int32_t*>(dp.data()), capacity, static_cast<float*>(dout3.data()),
            1.0f / std::sqrt(float(c.d)), split);
        cuda::qmm_packed_one_bit(w.packed, fused_split, y3.data(), DType::float32);
        EXPECT_EQ(download<float>(dout3, want.size()), gots) << "split attention_pack's output";
        cuda::qmm_packed_one_bit(w.packed, cuda::pack_activations(dout3.data(), DType::float32, c.t, K),
                                 y4.data(), DType::float32);
        EXPECT_EQ(download<float>(y3, c.t * 37), download<float>(y4, c.t * 37))
            << "split attention_pack's packed output differs from pack_activations of its output";
    }
}

TEST(CudaNn, EmbeddingsAndDenseLinear) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const int64_t vocab = 50, d = 256;
    const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
    const int64_t t = static_cast<int64_t>(ids.size());
    cuda::Buffer dids = upload(ids);
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16}) {
        SCOPED_TRACE(dtype_name(dt));
        Tensor table(dt, {vocab, d});
        fill_normal(table.view(), rng);
        cuda::Buffer dtab(table.nbytes()), dout = poisoned(t * d * 4);
        dtab.upload(table.data(), table.nbytes());
        cuda::nn::embed_dense(dtab.data(), dt, static_cast<const int32_t*>(dids.data()), t, d,
                              static_cast<float*>(dout.data()));
        std::vector<float> want(t * d);
        for (int64_t s = 0; s < t; ++s)
            for (int64_t i = 0; i < d; ++i) want[s * d + i] = load_float(dt, table.data(), ids[s] * d + i);
        EXPECT_EQ(download<float>(dout, want.size()), want) << "embed_dense (exact)";

        // dense linear, m = 1 and m > 1, n not a multiple of a block
        for (int64_t m : {int64_t(1), int64_t(5)}) {
            const int64_t n = 37;
            Tensor w(dt, {n, d});
            fill_normal(w.view(), rng);
            const auto x = normal(m * d, rng);
            std::vector<float> y(m * n);
            nn::linear(x.data(), m, d, w.view(), y.data());
            cuda::Buffer dw(w.nbytes()), dx = upload(x), dy = poisoned(m * n * 4);
            dw.upload(w.data(), w.nbytes());
            cuda::nn::linear_dense(static_cast<float*>(dx.data()), m, d, dw.data(), dt, n,
                                   static_cast<float*>(dy.data()));
            expect_close(download<float>(dy, y.size()), y, n, 2e-5, "linear_dense");
        }
    }
    // quantized table rows, as quant::dequantize_ref gives them
    for (int bits : {1, 2, 4, 8})
        for (int g : {32, 128}) {
            SCOPED_TRACE(::testing::Message() << "bits " << bits << " g " << g);
            Tensor w(DType::uint32, {vocab, d * bits / 32}), s(DType::bfloat16, {vocab, d / g}),
                b(DType::bfloat16, {vocab, d / g});
            fill_random_words(w.view(), rng);
            fill_scales(s.view(), b.view(), rng, false);
            Tensor deq(DType::bfloat16, {vocab, d});  // in the scales' dtype
            quant::dequantize_ref(w.ptr<uint32_t>(), s.data(), b.data(), DType::bfloat16, vocab, d, g,
                                  bits, deq.data());
            std::vector<float> want(t * d);
            for (int64_t r = 0; r < t; ++r)
                for (int64_t i = 0; i < d; ++i)
                    want[r * d + i] = load_float(DType::bfloat16, deq.data(), ids[r] * d + i);
            cuda::Buffer dw(w.nbytes()), ds(s.nbytes()), db(b.nbytes()), dout = poisoned(t * d * 4);
            dw.upload(w.data(), w.nbytes());
            ds.upload(s.data(), s.nbytes());
            db.upload(b.data(), b.nbytes());
            cuda::nn::embed_quantized(static_cast<const uint32_t*>(dw.data()), ds.data(), db.data(),
                                      DType::bfloat16, static_cast<const int32_t*>(dids.data()), t,
                                      d, g, bits, static_cast<float*>(dout.data()));
            EXPECT_EQ(download<float>(dout, want.size()), want) << "embed_quantized (exact)";
        }
}

// y of the packed matrix for activations xa, checked against the int8 oracle for the float
// activations `x` [rows, k] computed on the CPU.
void check_packed_product(const OneBitMatrix& w, const cuda::PackedActivations& xa,
                          const std::vector<float>& x, int64_t rows, int64_t k, const char* what) {
    SCOPED_TRACE(what);
    const int64_t n = w.w.view().dim(0);
    cuda::Buffer dy = poisoned(rows * n * 4);
    cuda::qmm_packed_one_bit(w.packed, xa, dy.data(), DType::float32);
    Tensor y(DType::float32, {rows, n}), xt(DType::float32, {rows, k});
    const auto got = download<float>(dy, rows * n);
    std::memcpy(y.data(), got.data(), got.size() * 4);
    std::memcpy(xt.data(), x.data(), x.size() * 4);
    check_against_oracle(xt.view(), w.w.view(), w.s.view(), w.b.view(), true, 128, 1, y.view(),
                         false, true);
}

// The attention kernels read head rows as float4s: a head_dim that is not a multiple of 4 is a
// clear error, not a misaligned read.
TEST(CudaNn, AttentionRefusesHeadDimNotAMultipleOf4) {
    REQUIRE_GPU();
    const int64_t d = 6, capacity = 4;
    cuda::Buffer q(d * 4), k(capacity * d * 4), v(capacity * d * 4), out(d * 4);
    const std::vector<float*> kp{static_cast<float*>(k.data())}, vp{static_cast<float*>(v.data())};
    const std::vector<int32_t> pos{0};
    cuda::Buffer dkp = upload(kp), dvp = upload(vp), dp = upload(pos);
    const cuda::nn::CacheRows rows{static_cast<float* const*>(dkp.data()),
                                   static_cast<float* const*>(dvp.data()), 0};
    try {
        cuda::nn::attention(static_cast<float*>(q.data()), 1, 1, 1, d, rows,
                            static_cast<const int32_t*>(dp.data()), capacity,
                            static_cast<float*>(out.data()), 1.0f);
        FAIL() << "head_dim 6 accepted";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("head_dim a multiple of 4"), std::string::npos)
            << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("[cuda]", 0), 0u) << e.what();
    }
}

// The flash prefill attention's preconditions (its copies are 16 bytes): clear errors, no launch.
TEST(CudaNn, FlashPrefillRefusesMisalignedInputs) {
    REQUIRE_GPU();
    const int64_t d = 128, t = 2;
    cuda::Buffer q(t * d * 4 + 16), k(t * d * 4), v(t * d * 4), out(t * d * 4);
    const auto* qf = static_cast<const float*>(q.data());
    auto run = [&](const float* qp, int64_t n_head, int64_t n_kv) {
        cuda::nn::attention_prefill(qp, t, n_head, n_kv, d, static_cast<const float*>(k.data()),
                                    static_cast<const float*>(v.data()), 0,
                                    static_cast<float*>(out.data()), 1.0f,
                                    cuda::nn::kPrefillScoreBytes, cuda::nn::AttentionMath::flash);
    };
    for (const auto& [qp, n_head, n_kv] :
         {std::tuple{qf + 1, int64_t(1), int64_t(1)}, std::tuple{qf, int64_t(3), int64_t(2)}}) {
        try {
            run(qp, n_head, n_kv);
            FAIL() << "accepted";
        } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find("16-byte aligned"), std::string::npos) << e.what();
            EXPECT_EQ(std::string(e.what()).rfind("[cuda]", 0), 0u) << e.what();
        }
    }
}

// Past a decode batch norm_pack packs whole rows in one block each (a prefill); the packed rows
// are the ones each row gets alone (chunked blocks), bit for bit through the decode kernel.
TEST(CudaNn, NormPackOfManyRowsIsEachRowsAlone) {
    REQUIRE_GPU();
    // the decode kernel for every M: it reads the bit planes too
    const test::ScopedEnv env("ONEBIT_CUDA_PREFILL", "decode");
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const int64_t rows = cuda::kDecodeMaxM + 6, n = 2560 + 128;
    const OneBitMatrix w = one_bit_matrix(45, n, rng);
    const auto x = normal(rows * n, rng, 1.5f, 0.2f), res = normal(rows * n, rng),
               nw = normal(n, rng, 0.3f, 1.0f);
    cuda::Buffer dx = upload(x), dres = upload(res), dnw = upload(nw), dz = poisoned(rows * n * 4),
                 dy = poisoned(rows * 45 * 4), d1 = poisoned(45 * 4), dz1 = poisoned(n * 4);
    const auto f = [](const cuda::Buffer& b) { return static_cast<float*>(b.data()); };
    cuda::qmm_packed_one_bit(w.packed, cuda::nn::norm_pack(f(dx), f(dres), f(dz), f(dnw), rows, n, 1e-6f),
                             dy.data(), DType::float32);
    const auto all = download<float>(dy, rows * 45), z = download<float>(dz, rows * n);
    for (int64_t r : {int64_t(0), int64_t(33), rows - 1}) {
        cuda::qmm_packed_one_bit(
            w.packed, cuda::nn::norm_pack(f(dx) + r * n, f(dres) + r * n, f(dz1), f(dnw), 1, n, 1e-6f),
            d1.data(), DType::float32);
        EXPECT_EQ(download<float>(d1, 45), std::vector<float>(all.begin() + r * 45, all.begin() + (r + 1) * 45))
            << "row " << r;
        EXPECT_EQ(download<float>(dz1, n), std::vector<float>(z.begin() + r * n, z.begin() + (r + 1) * n))
            << "residual sum of row " << r;
    }
}

TEST(CudaNn, FusedNormPackAndSiluPack) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    for (int64_t rows : {int64_t(1), int64_t(3)})
        for (int64_t n : {int64_t(2048), int64_t(2560 + 128), int64_t(4096 + 128)}) {  // K % 512 != 0 too
            SCOPED_TRACE(::testing::Message() << "rows " << rows << " n " << n);
            const OneBitMatrix w = one_bit_matrix(45, n, rng);
            const auto x = normal(rows * n, rng, 1.5f, 0.2f), res = normal(rows * n, rng),
                       nw = normal(n, rng, 0.3f, 1.0f);
            std::vector<float> z(rows * n), normed(rows * n);
            for (size_t i = 0; i < z.size(); ++i) z[i] = x[i] + res[i];
            nn::rms_norm(z.data(), nw.data(), rows, n, 1e-6f, normed.data());
            cuda::Buffer dx = upload(x), dres = upload(res), dnw = upload(nw),
                         dz = poisoned(rows * n * 4);
            const cuda::PackedActivations xa = cuda::nn::norm_pack(
                static_cast<float*>(dx.data()), static_cast<float*>(dres.data()),
                static_cast<float*>(dz.data()), static_cast<float*>(dnw.data()), rows, n, 1e-6f);
            EXPECT_EQ(download<float>(dz, z.size()), z) << "residual sum (exact)";
            check_packed_product(w, xa, normed, rows, n, "norm_pack with a residual");
            if (HasFatalFailure()) return;
            std::vector<float> nx(rows * n);  // no residual, no output
            nn::rms_norm(x.data(), nw.data(), rows, n, 1e-6f, nx.data());
            const cuda::PackedActivations xb = cuda::nn::norm_pack(
                static_cast<float*>(dx.data()), nullptr, nullptr, static_cast<float*>(dnw.data()),
                rows, n, 1e-6f);
            check_packed_product(w, xb, nx, rows, n, "norm_pack alone");
            if (HasFatalFailure()) return;
            // a row not 16-byte aligned takes the scalar sum (same result within the bound)
            std::vector<float> shifted(rows * n + 1, 0.0f);
            std::copy(x.begin(), x.end(), shifted.begin() + 1);
            cuda::Buffer dxs = upload(shifted);
            const cuda::PackedActivations xu = cuda::nn::norm_pack(
                static_cast<float*>(dxs.data()) + 1, nullptr, nullptr,
                static_cast<float*>(dnw.data()), rows, n, 1e-6f);
            check_packed_product(w, xu, nx, rows, n, "norm_pack of an unaligned row");
            if (HasFatalFailure()) return;

            const auto g = normal(rows * n, rng, 2.0f), u = normal(rows * n, rng);
            std::vector<float> sw(rows * n);
            nn::silu_mul(g.data(), u.data(), rows * n, sw.data());
            cuda::Buffer dg = upload(g), du = upload(u);
            const cuda::PackedActivations xs = cuda::nn::silu_pack(
                static_cast<float*>(dg.data()), static_cast<float*>(du.data()), rows, n);
            check_packed_product(w, xs, sw, rows, n, "silu_pack");
            if (HasFatalFailure()) return;
        }
}

// The batch-1 gate / up matmul with SwiGLU and packing in one kernel gives the bits of the two
// kernels it replaces (qmm_packed_one_bit, then silu_pack), seen through the down projection's
// product; and that product is within the bound of the oracle's on silu(g) * u. Every form
// (symmetric or not, float16 / bfloat16 scales) and K of 1 to 9 chunks (past the kernel's ring
// of 4).
TEST(CudaNn, GateUpSiluPackFusedIsTheTwoKernels) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    struct Case {
        int64_t ff, k;
    };
    for (Case c : {Case{512, 2048}, Case{1024, 2560}, Case{2048, 4096}, Case{512, 4608},
                   Case{1536, 512}})
        for (bool sym : {true, false})
            for (DType sdt : {DType::float16, DType::bfloat16}) {
                SCOPED_TRACE(::testing::Message() << "ff " << c.ff << " K " << c.k
                                                  << (sym ? " symmetric " : " affine ")
                                                  << dtype_name(sdt));
                Tensor w(DType::uint32, {2 * c.ff, c.k / 32}), s(sdt, {2 * c.ff, c.k / 128}),
                    b(sdt, {2 * c.ff, c.k / 128});
                fill_random_words(w.view(), rng);
                fill_scales(s.view(), b.view(), rng, sym);
                const cuda::PackedOneBit gu = cuda::pack_one_bit(
                    w.ptr<uint32_t>(), s.data(), sym ? nullptr : b.data(), sdt, 2 * c.ff, c.k, 128);
                const OneBitMatrix down = one_bit_matrix(45, c.ff, rng);
                const auto x = normal(c.k, rng, 1.5f);
                cuda::Buffer dx = upload(x), dg = poisoned(c.ff * 4), du = poisoned(c.ff * 4),
                             y_two = poisoned(45 * 4), y_one = poisoned(45 * 4);
                const auto f = [](const cuda::Buffer& b) { return static_cast<float*>(b.data()); };
                {
                    const test::ScopedEnv env("ONEBIT_CUDA_FUSED_SWIGLU", "0");
                    const auto xa = cuda::pack_activations(f(dx), DType::float32, 1, c.k);
                    cuda::qmm_packed_one_bit(down.packed,
                                             cuda::nn::gate_up_silu_pack(gu, xa, c.ff, f(dg), f(du)),
                                             y_two.data(), DType::float32);
                }
                const auto g = download<float>(dg, c.ff), u = download<float>(du, c.ff);
                const auto xa = cuda::pack_activations(f(dx), DType::float32, 1, c.k);
                const cuda::PackedActivations xs =
                    cuda::nn::gate_up_silu_pack(gu, xa, c.ff, f(dg), f(du));
                cuda::qmm_packed_one_bit(down.packed, xs, y_one.data(), DType::float32);
                EXPECT_EQ(download<float>(y_one, 45), download<float>(y_two, 45));
                std::vector<float> sw(c.ff);
                nn::silu_mul(g.data(), u.data(), c.ff, sw.data());
                check_packed_product(down, xs, sw, 1, c.ff, "fused gate / up, SwiGLU, packing");
                if (HasFatalFailure()) return;
            }
}

TEST(CudaNn, FusedQkNormRopeStore) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    // every head size the kernel is built for: one to eight 32-value slices a lane (pairs in one
    // lane or across lanes)
    for (int64_t hd : {int64_t(32), int64_t(64), int64_t(96), int64_t(128), int64_t(256)})
    for (bool norms : {true, false}) {  // Qwen3, and Llama (no q / k norms)
        SCOPED_TRACE(::testing::Message() << "head_dim " << hd << (norms ? " q/k norms" : ""));
        const int64_t t = 3, n_head = 4, n_kv = 2, capacity = 40;
        const int64_t width = n_kv * hd;
        auto q = normal(t * n_head * hd, rng, 2.0f), k = normal(t * width, rng, 2.0f);
        const auto v = normal(t * width, rng);
        const auto qn = normal(hd, rng, 0.2f, 1.0f), kn = normal(hd, rng, 0.2f, 1.0f);
        const std::vector<int32_t> pos = {5, 6, 31};
        const auto f = inv_freq(hd, 1e6);
        auto kc = normal(capacity * width, rng), vc = normal(capacity * width, rng);
        cuda::Buffer dq = upload(q), dk = upload(k), dv = upload(v), dqn = upload(qn),
                     dkn = upload(kn), dp = upload(pos), df = upload(f), dkc = upload(kc),
                     dvc = upload(vc);
        std::vector<float*> kp(t, static_cast<float*>(dkc.data())),
            vp(t, static_cast<float*>(dvc.data()));
        cuda::Buffer dkp = upload(kp), dvp = upload(vp);
        const cuda::nn::CacheRows rows{static_cast<float* const*>(dkp.data()),
                                       static_cast<float* const*>(dvp.data()), 0};
        cuda::nn::qk_norm_rope_store(
            static_cast<float*>(dq.data()), static_cast<float*>(dk.data()),
            static_cast<float*>(dv.data()), norms ? static_cast<float*>(dqn.data()) : nullptr,
            norms ? static_cast<float*>(dkn.data()) : nullptr, t, n_head, n_kv, hd, 1e-6f,
            static_cast<const int32_t*>(dp.data()), static_cast<float*>(df.data()), 1.0f, rows);
        if (norms) {
            nn::rms_norm(q.data(), qn.data(), t * n_head, hd, 1e-6f, q.data());
            nn::rms_norm(k.data(), kn.data(), t * n_kv, hd, 1e-6f, k.data());
        }
        nn::rope(q.data(), t, n_head, hd, pos.data(), f, 1.0f);
        nn::rope(k.data(), t, n_kv, hd, pos.data(), f, 1.0f);
        expect_close(download<float>(dq, q.size()), q, hd, 1e-5, "q");
        expect_close(download<float>(dk, k.size()), k, hd, 1e-5, "k");
        const auto kc_got = download<float>(dkc, kc.size()), vc_got = download<float>(dvc, vc.size());
        const auto k_got = download<float>(dk, k.size());
        for (int64_t s = 0; s < t; ++s) {
            std::memcpy(&kc[pos[s] * width], &k_got[s * width], width * 4);  // the rows it stored
            std::memcpy(&vc[pos[s] * width], &v[s * width], width * 4);
        }
        EXPECT_EQ(kc_got, kc) << "k cache: the rotated rows at their positions, others untouched";
        EXPECT_EQ(vc_got, vc) << "v cache";
    }
}

// A decode step's q / k norms, RoPE, KV store and attention in one kernel give the bits of
// qk_norm_rope_store then attention_pack: the output, the packed output (through a product), and
// both caches, whole. Rows in caches of their own; contexts past a split chunk; heads sharing a
// block (G > 1, many rows) or not; Qwen3's norms and Llama's none.
TEST(CudaNn, AttentionQkPackFusedIsTheTwoKernels) {
    REQUIRE_GPU();
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    struct Case {
        int64_t t, n_head, n_kv, capacity;
    };
    for (Case c : {Case{1, 32, 8, 700}, Case{3, 16, 8, 300}, Case{40, 32, 8, 40}, Case{2, 8, 1, 9}})
        for (bool norms : {true, false}) {
            SCOPED_TRACE(::testing::Message() << "t " << c.t << " heads " << c.n_head << "/"
                                              << c.n_kv << " capacity " << c.capacity
                                              << (norms ? " q/k norms" : ""));
            const int64_t hd = 128, width = c.n_kv * hd, layers = 2, K = c.n_head * hd;
            const int64_t layer = c.capacity * width;  // the second layer's offset
            const auto q = normal(c.t * K, rng, 2.0f), k = normal(c.t * width, rng, 2.0f),
                       v = normal(c.t * width, rng);
            const auto qn = normal(hd, rng, 0.2f, 1.0f), kn = normal(hd, rng, 0.2f, 1.0f);
            const auto f = inv_freq(hd, 1e6);
            std::vector<int32_t> pos(c.t);
            std::uniform_int_distribution<int32_t> at(0, int32_t(c.capacity - 1));
            int64_t longest = 0;
            for (auto& p : pos) p = at(rng), longest = std::max<int64_t>(longest, p + 1);
            pos[0] = int32_t(c.capacity - 1), longest = c.capacity;
            std::vector<float> caches = normal(c.t * layers * layer * 2, rng);  // k, v per row
            const OneBitMatrix wo = one_bit_matrix(45, K, rng);
            cuda::Buffer dqn = upload(qn), dkn = upload(kn), dp = upload(pos), df = upload(f);
            struct Run {
                std::vector<float> out, caches, y;
            };
            auto run = [&](bool fused) {
                cuda::Buffer dq = upload(q), dk = upload(k), dv = upload(v), dc = upload(caches),
                             dout = poisoned(c.t * K * 4), dy = poisoned(c.t * 45 * 4);
                std::vector<float*> kp(c.t), vp(c.t);
                for (int64_t s = 0; s < c.t; ++s)
                    kp[s] = static_cast<float*>(dc.data()) + (2 * s) * layers * layer,
                    vp[s] = static_cast<float*>(dc.data()) + (2 * s + 1) * layers * layer;
                cuda::Buffer dkp = upload(kp), dvp = upload(vp);
                const cuda::nn::CacheRows rows{static_cast<float* const*>(dkp.data()),
                                               static_cast<float* const*>(dvp.data()), layer};
                const test::ScopedEnv env("ONEBIT_CUDA_FUSED_ATTENTION", fused ? "1" : "0");
                const auto F = [](const cuda::Buffer& b) { return static_cast<float*>(b.data()); };
                const cuda::PackedActivations xo = cuda::nn::attention_qk_pack(
                    F(dq), F(dk), F(dv), norms ? F(dqn) : nullptr, norms ? F(dkn) : nullptr, c.t,
                    c.n_head, c.n_kv, hd, 1e-6f, static_cast<const int32_t*>(dp.data()), F(df),
                    1.0f, rows, c.capacity, F(dout), 0.088f, cuda::nn::AttentionSplit{longest});
                cuda::qmm_packed_one_bit(wo.packed, xo, dy.data(), DType::float32);
                return Run{download<float>(dout, c.t * K), download<float>(dc, caches.size()),
                           download<float>(dy, c.t * 45)};
            };
            const Run two = run(false), one = run(true);
            EXPECT_EQ(one.out, two.out) << "attention output";
            EXPECT_EQ(one.y, two.y) << "the packed output through a product";
            EXPECT_EQ(one.caches, two.caches) << "both caches: the new rows, the rest untouched";
            EXPECT_NE(two.caches, caches) << "the new rows were stored";
        }
}

}  // namespace
