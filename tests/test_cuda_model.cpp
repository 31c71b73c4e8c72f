// The forward pass on the GPU against the CPU: logits of random Qwen3 checkpoints (dense, 1-bit
// g128 and g64, 2- and 4-bit, float32 activations) agree within 2e-3 of the logits' scale,
// batched prefill and token-by-token decode alike; with int8 activations (1 bit, float16 scales:
// the packed layout; float32 scales: the MLX-layout kernel) the GPU is as close to the float32
// logits as the CPU's int8 run; the embedded stories260K reproduces its golden greedy text.
// Skipped where no GPU is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "backend/cuda/cuda.h"
#include "core/error.h"
#include "engine/generate.h"
#include "model/model.h"
#include "model_fixtures.h"
#include "ops/nn.h"
#include "scoped_env.h"
#include "scratch_dir.h"
#include "tokenizer/tokenizer.h"

namespace onebit {
namespace {

namespace fs = std::filesystem;

#define REQUIRE_GPU() \
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA)"

// The repository's data folder: ONEBIT_DATA_DIR from the environment (a GPU machine holding a
// copy of the repository elsewhere) or the build's.
std::string data_dir() {
    const char* e = std::getenv("ONEBIT_DATA_DIR");
    return e ? e : ONEBIT_DATA_DIR;
}

fs::path tmpdir(const std::string& name) { return test::scratch_dir("cuda_model") / name; }

// max |a - b| over max(1, max |a|).
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double scale = 1, diff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::fabs(double(a[i])));
        diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    }
    return diff / scale;
}

// sqrt(sum (a - b)^2 / sum a^2).
double rms_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i)
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(a[i]) * a[i];
    return std::sqrt(num / std::max(den, 1e-30));
}

TEST(CudaModel, LogitsMatchTheCpu) {
    REQUIRE_GPU();
    // the packed matmuls' exact prefill kernel (70 tokens reach it): the batched rows it
    // computes must still equal token-by-token decode bit for bit (the default GEMM prefill:
    // PrefillGemm below)
    const test::ScopedEnv env("ONEBIT_CUDA_PREFILL", "exact");
    struct Case {
        int bits, group;
        bool int8;
        DType sdt;
    };
    const DType f32 = DType::float32, f16 = DType::float16;
    for (const Case cs : {Case{0, 128, false, f32}, Case{1, 128, true, f16},
                          Case{1, 128, true, f32}, Case{1, 128, false, f16}, Case{1, 64, true, f32},
                          Case{2, 64, false, f32}, Case{4, 32, false, f16}}) {
        SCOPED_TRACE(::testing::Message() << "bits " << cs.bits << " g " << cs.group
                                          << (cs.int8 ? " int8 " : " ") << dtype_name(cs.sdt));
        const fs::path dir = tmpdir("m" + std::to_string(cs.bits) + "_" + std::to_string(cs.group) +
                                    (cs.int8 ? "i" : "f") + dtype_name(cs.sdt));
        test::write_qwen3(dir, cs.bits, cs.group, cs.bits == 1, 7 + cs.bits, {}, {}, 2, cs.sdt);
        model::LoadOptions lc, lg;
        lc.int8_activations = lg.int8_activations = cs.int8;
        lg.device = model::Device::cuda;
        const model::Model mc = model::Model::load(dir.string(), lc);
        const model::Model mg = model::Model::load(dir.string(), lg);
        // 70 tokens: with int8 activations the packed layers' prefill kernel runs (M >= 64)
        std::vector<int32_t> ids = {3, 17, 250, 9, 9, 100, 42, 299, 0, 5, 61, 77};
        for (int32_t i = 0; ids.size() < 70; ++i) ids.push_back((i * 37 + 11) % 300);
        model::KVCache cc(96, mc.config()), cg(96, mg.config()), cg1(96, mg.config());
        std::vector<float> lcpu, lgpu, one;
        mc.forward(ids, cc, lcpu, true);
        mg.forward(ids, cg, lgpu, true);
        ASSERT_EQ(lcpu.size(), lgpu.size());
        if (cs.int8) {
            // int8 activations make the forward pass discontinuous (rint): a 1-ulp change of one
            // norm weight already moves this random model's int8 logits by about 5e-4, and CPU and
            // GPU float rounding differ by more, so the two int8 runs need not agree closely.
            // What must hold: the GPU's int8 logits are as close to the float32 logits as the
            // CPU's are (each int8 matmul matches quant::qmm_t_int8_ref: test_cuda).
            model::LoadOptions lf;
            const model::Model mf = model::Model::load(dir.string(), lf);
            model::KVCache cf(96, mf.config());
            std::vector<float> lf32;
            mf.forward(ids, cf, lf32, true);
            EXPECT_LE(rel_diff(lf32, lgpu), 1.5 * rel_diff(lf32, lcpu) + 1e-3)
                << "GPU int8 vs float32 " << rel_diff(lf32, lgpu) << ", CPU int8 vs float32 "
                << rel_diff(lf32, lcpu);
        } else {
            EXPECT_LE(rel_diff(lcpu, lgpu), 2e-3) << "prefill";
        }
        // token by token on the GPU: each step's logits against the CPU's batched row (float32),
        // or bit for bit against the GPU's own batched row (int8: every kernel is batch
        // invariant, so the discontinuity cannot separate them)
        const size_t V = lcpu.size() / ids.size();
        for (size_t i = 0; i < ids.size(); ++i) {
            mg.forward(std::span<const int32_t>(&ids[i], 1), cg1, one);
            const std::vector<float>& batched = cs.int8 ? lgpu : lcpu;
            std::vector<float> row(batched.begin() + i * V, batched.begin() + (i + 1) * V);
            EXPECT_LE(rel_diff(row, one), cs.int8 ? 0.0 : 2e-3) << "decode position " << i;
        }
        // the greedy choice made on the device is nn::argmax of the same step's logits, the
        // candidates selected there nn::top_k of them
        model::KVCache ca(96, mg.config()), cb(96, mg.config()), csel(96, mg.config());
        std::vector<nn::Candidate> top, want;
        for (size_t i = 0; i < ids.size(); ++i) {
            const std::span<const int32_t> tok(&ids[i], 1);
            mg.forward(tok, ca, one);
            EXPECT_EQ(mg.forward_greedy(tok, cb), nn::argmax(one.data(), int64_t(one.size())))
                << "greedy at position " << i;
            const int64_t k = std::min<int64_t>(i % 2 ? 20 : 1000, int64_t(one.size()));
            const model::Model::SequenceInput in{tok, &csel};
            // every third step with penalties on the first ids and the best one
            std::vector<nn::LogitEdit> edits;
            if (i % 3 == 0) {
                const int32_t best = nn::argmax(one.data(), int64_t(one.size()));
                edits = {{0, 1.3f, 0.0f}, {1, 1.0f, 0.5f}, {2, 1.1f, -0.3f}};
                if (best > 2) edits.push_back({best, 2.0f, 1.0f});
                for (const nn::LogitEdit& e : edits) one[e.id] = nn::edited(one[e.id], e);
            }
            mg.forward_batch_top_k(std::span(&in, 1), k, top, std::span(&edits, 1));
            want.resize(k);
            nn::top_k(one.data(), int64_t(one.size()), k, want.data());
            ASSERT_EQ(top.size(), size_t(k));
            for (int64_t j = 0; j < k; ++j) {
                EXPECT_EQ(top[j].id, want[j].id)
                    << "top-" << k << " at position " << i << " rank " << j;
                EXPECT_EQ(top[j].logit, want[j].logit)
                    << "top-" << k << " at position " << i << " rank " << j;
            }
        }
    }
}

// A decode batch on the GPU (one token per sequence, each with its own cache: what continuous
// batching runs) gives every sequence the logits it gets alone, bit for bit, as the batch grows
// and shrinks; the fused packed path (1 bit, int8) and the general one (dense).
TEST(CudaModel, BatchedDecodeEqualsSingleBitForBit) {
    REQUIRE_GPU();
    for (auto [bits, int8] : {std::pair{1, true}, {0, false}}) {
        SCOPED_TRACE(::testing::Message() << "bits " << bits << " int8 " << int8);
        const fs::path dir = tmpdir("batch" + std::to_string(bits));
        test::write_qwen3(dir, bits, 128, true, 21 + bits, {}, {}, 2, DType::float16);
        model::LoadOptions lo;
        lo.int8_activations = int8;
        lo.device = model::Device::cuda;
        const model::Model m = model::Model::load(dir.string(), lo);
        const int64_t V = m.config().vocab_size;
        const std::vector<std::vector<int32_t>> prompts = {
            {3, 17, 250}, {9}, {100, 42, 299, 0, 5}, {7, 7}};
        std::vector<model::KVCache> alone, together, selected;
        std::vector<int32_t> next;
        std::vector<float> l;
        for (const auto& p : prompts) {
            alone.emplace_back(48, m.config());
            together.emplace_back(48, m.config());
            selected.emplace_back(48, m.config());
            m.forward(p, alone.back(), l);
            m.forward(p, together.back(), l);
            m.forward(p, selected.back(), l);
            next.push_back(static_cast<int32_t>(l.size() % 13));
        }
        for (int step = 0; step < 8; ++step) {
            // sequences 0 .. n-1 this step: 4, 3, 2, 4, ...
            const size_t n = step % 4 == 3 ? 4 : 4 - static_cast<size_t>(step % 4);
            std::vector<model::Model::SequenceInput> in;
            for (size_t s = 0; s < n; ++s)
                in.push_back({std::span<const int32_t>(&next[s], 1), &together[s]});
            std::vector<float> got;
            m.forward_batch(in, got);
            ASSERT_EQ(got.size(), n * V);
            // the batch's candidates selected on the device: nn::top_k of each row
            std::vector<model::Model::SequenceInput> in_sel;
            for (size_t s = 0; s < n; ++s)
                in_sel.push_back({std::span<const int32_t>(&next[s], 1), &selected[s]});
            std::vector<nn::Candidate> top, want(40);
            m.forward_batch_top_k(in_sel, 40, top);
            ASSERT_EQ(top.size(), n * 40);
            for (size_t s = 0; s < n; ++s) {
                nn::top_k(&got[s * V], V, 40, want.data());
                for (int j = 0; j < 40; ++j)
                    ASSERT_EQ(top[s * 40 + j].id, want[j].id)
                        << "step " << step << " seq " << s << " rank " << j;
            }
            for (size_t s = 0; s < n; ++s) {
                std::vector<float> one;
                m.forward(std::span<const int32_t>(&next[s], 1), alone[s], one);
                ASSERT_EQ(0, std::memcmp(one.data(), &got[s * V], V * sizeof(float)))
                    << "step " << step << " seq " << s;
                next[s] =
                    static_cast<int32_t>(std::max_element(one.begin(), one.end()) - one.begin());
            }
        }
    }
}

// Bonsai's sizes where the decode step fuses stages (head_dim 128: q / k norms, RoPE and the KV
// store inside attention; ff a multiple of 512: gate / up, SwiGLU and packing in one kernel): the
// logits of every decode step, alone and in a batch, are the bits of the unfused kernels and of
// the exact batched prefill's rows.
TEST(CudaModel, FusedDecodeStagesKeepTheBits) {
    REQUIRE_GPU();
    const test::ScopedEnv exact("ONEBIT_CUDA_PREFILL", "exact");
    const fs::path dir = tmpdir("fused_stages");
    test::Qwen3Dims dims;
    dims.d = 256, dims.hd = 128, dims.nh = 4, dims.nkv = 2, dims.ff = 1024;
    test::write_qwen3(dir, 1, 128, true, 33, {}, {}, 2, DType::float16, dims);
    model::LoadOptions lo;
    lo.int8_activations = true;
    lo.device = model::Device::cuda;
    std::vector<int32_t> ids;
    for (int32_t i = 0; ids.size() < 70; ++i) ids.push_back((i * 53 + 5) % 300);
    // per run: the batched prefill's rows, each token's decode logits alone, and two sequences
    // decoded together
    auto run = [&](const char* fused) {
        const test::ScopedEnv a("ONEBIT_CUDA_FUSED_ATTENTION", fused);
        const test::ScopedEnv b("ONEBIT_CUDA_FUSED_SWIGLU", fused);
        const model::Model m = model::Model::load(dir.string(), lo);
        std::vector<std::vector<float>> out(3);
        model::KVCache batched(96, m.config()), alone(96, m.config()), other(96, m.config());
        m.forward(ids, batched, out[0], true);
        std::vector<float> one;
        for (size_t i = 0; i < ids.size(); ++i) {
            m.forward(std::span<const int32_t>(&ids[i], 1), alone, one);
            out[1].insert(out[1].end(), one.begin(), one.end());
        }
        m.forward(std::span<const int32_t>(ids.data(), 3), other, one);
        for (int step = 0; step < 4; ++step) {
            model::KVCache* caches[2] = {&alone, &other};
            const int32_t tok[2] = {int32_t(step * 7 + 1), int32_t(step * 11 + 2)};
            std::vector<model::Model::SequenceInput> in;
            for (int s = 0; s < 2; ++s)
                in.push_back({std::span<const int32_t>(&tok[s], 1), caches[s]});
            m.forward_batch(in, one);
            out[2].insert(out[2].end(), one.begin(), one.end());
        }
        return out;
    };
    const auto fused = run("1"), apart = run("0");
    EXPECT_EQ(fused[0], apart[0]) << "the prefill (not fused) is unchanged";
    EXPECT_EQ(fused[1], apart[1]) << "decode steps alone";
    EXPECT_EQ(fused[2], apart[2]) << "decode steps of two sequences";
    EXPECT_EQ(fused[1], fused[0]) << "each decode step is its row of the batched prefill";
}

TEST(CudaModel, Stories260KGoldenGreedy) {
    REQUIRE_GPU();
    const std::string dir = data_dir() + "/../models/stories260K";
    model::LoadOptions lo;
    lo.device = model::Device::cuda;
    const model::Model m = model::Model::load(dir, lo);
    const tok::Tokenizer t = tok::Tokenizer::from_file(dir + "/tokenizer.json");
    engine::GenerateOptions o;
    o.max_tokens = 200;
    o.sampler.temperature = 0;
    std::string text;
    engine::generate(m, t, {1}, o, [&](std::string_view s) { text += s; });
    std::ifstream f(data_dir() + "/stories260K/expected_greedy_200.txt", std::ios::binary);
    const std::string want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(text, want);
}

// The shipped tiny 1-bit Qwen3: the golden greedy text of the CPU (tests/fixtures) on the GPU.
TEST(CudaModel, TinyQwen3OneBitGoldenGreedy) {
    REQUIRE_GPU();
    const std::string dir = data_dir() + "/../models/tiny-qwen3-1bit";
    model::LoadOptions lo;
    lo.device = model::Device::cuda;
    const model::Model m = model::Model::load(dir, lo);
    const tok::Tokenizer t = tok::Tokenizer::from_file(dir + "/tokenizer.json");
    engine::GenerateOptions o;
    o.max_tokens = 100;
    o.sampler.temperature = 0;
    std::string text;
    engine::generate(m, t, t.encode("ROMEO:"), o, [&](std::string_view s) { text += s; });
    std::ifstream f(data_dir() + "/../tests/fixtures/tiny_qwen3_greedy_romeo.txt",
                    std::ios::binary);
    const std::string want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(text + "\n", want);  // the command ends its text with a newline
}

// The default prefill of 1-bit int8 layers (a cuBLAS GEMM past 64 rows: cuda.h PrefillMode) does
// not give the decode kernel's bits, nor close to them: it rounds x to int8 in the bias term too
// (x_hat . w_hat), where the decode kernel uses the exact sum of x, and the two int8 errors are
// of a size. What must hold (root mean square over the rows, a steadier measure than the largest
// difference): a 70-token prefill's logits are as close to the float32 model's as the CPU's int8
// logits are, and so are the logits of tokens decoded after a 65-token GEMM prefill; on the
// shipped 1-bit model a long prompt's greedy continuation follows the exact prefill kernel's
// until a near tie (logits within 2% of their scale at every step).
TEST(CudaModel, PrefillGemm) {
    REQUIRE_GPU();
    for (const DType sdt : {DType::float16, DType::bfloat16}) {
        for (const bool tied : {true, false}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(sdt) << (tied ? " tied" : ""));
            const fs::path dir =
                tmpdir(std::string("gemm_") + dtype_name(sdt) + (tied ? "t" : "u"));
            test::write_qwen3(dir, 1, 128, tied, 31, {}, {}, 2, sdt);
            model::LoadOptions li, lf;
            li.int8_activations = true;
            const model::Model mc = model::Model::load(dir.string(), li);
            const model::Model mf = model::Model::load(dir.string(), lf);
            li.device = model::Device::cuda;
            const model::Model mg = model::Model::load(dir.string(), li);
            std::vector<int32_t> ids;
            for (int32_t i = 0; ids.size() < 70; ++i) ids.push_back((i * 53 + 7) % 300);
            model::KVCache cc(96, mc.config()), cf(96, mf.config()), cg(96, mg.config()),
                cg1(96, mg.config());
            std::vector<float> lcpu, lf32, lgpu, one;
            mc.forward(ids, cc, lcpu, true);
            mf.forward(ids, cf, lf32, true);
            mg.forward(ids, cg, lgpu, true);
            EXPECT_LE(rms_diff(lf32, lgpu), 1.5 * rms_diff(lf32, lcpu) + 1e-3)
                << "GPU int8 (GEMM prefill) vs float32 " << rms_diff(lf32, lgpu)
                << ", CPU int8 vs float32 " << rms_diff(lf32, lcpu);
            // 65 prompt tokens through the GEMM, then 5 decoded one at a time
            const size_t V = lgpu.size() / ids.size(), P = 65;
            mg.forward(std::span<const int32_t>(ids.data(), P), cg1, one);
            std::vector<float> decoded;
            for (size_t i = P; i < ids.size(); ++i) {
                mg.forward(std::span<const int32_t>(&ids[i], 1), cg1, one);
                decoded.insert(decoded.end(), one.begin(), one.end());
            }
            const std::vector<float> f32_tail(lf32.begin() + P * V, lf32.end()),
                cpu_tail(lcpu.begin() + P * V, lcpu.end());
            EXPECT_LE(rms_diff(f32_tail, decoded), 1.5 * rms_diff(f32_tail, cpu_tail) + 1e-3)
                << "decoded after a GEMM prefill vs float32 " << rms_diff(f32_tail, decoded)
                << ", CPU int8 vs float32 " << rms_diff(f32_tail, cpu_tail);
        }
    }
    const std::string dir = data_dir() + "/../models/tiny-qwen3-1bit";
    model::LoadOptions lo;
    lo.device = model::Device::cuda;
    lo.int8_activations = true;
    const model::Model m = model::Model::load(dir, lo);
    const tok::Tokenizer t = tok::Tokenizer::from_file(dir + "/tokenizer.json");
    std::ifstream f(data_dir() + "/../tests/fixtures/tiny_qwen3_greedy_romeo.txt",
                    std::ios::binary);
    const std::string prompt((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::vector<int32_t> ids = t.encode(prompt);
    ASSERT_GT(ids.size(), size_t(cuda::kDecodeMaxM));
    // 40 greedy tokens after each prefill, with every step's logits
    struct Greedy {
        std::vector<int32_t> tokens;
        std::vector<std::vector<float>> logits;
    };
    auto greedy = [&](const char* mode) {
        const test::ScopedEnv env("ONEBIT_CUDA_PREFILL", mode);
        model::KVCache c(static_cast<int64_t>(ids.size()) + 48, m.config());
        Greedy g;
        std::vector<float> l;
        m.forward(ids, c, l);
        for (int i = 0; i < 40; ++i) {
            const int32_t next = nn::argmax(l.data(), static_cast<int64_t>(l.size()));
            g.tokens.push_back(next);
            g.logits.push_back(l);
            m.forward(std::span<const int32_t>(&next, 1), c, l);
        }
        return g;
    };
    const Greedy exact = greedy("exact");
    // the GEMM prefill with its attention on cuBLAS (what 2 heads choose) and in the flash kernel
    for (const char* attention : {"tf32", "flash"}) {
        SCOPED_TRACE(attention);
        const test::ScopedEnv env("ONEBIT_CUDA_PREFILL_ATTENTION", attention);
        const Greedy gemm = greedy("gemm");
        // The two prefills differ in rounding (cuBLAS float16 / TF32 against the exact int8
        // kernels), so the greedy texts agree only until a near tie: every step's logits are within
        // 2% of their scale, and where the choices part the exact run ranks the GEMM run's token
        // within that.
        size_t i = 0;
        for (; i < gemm.tokens.size(); ++i) {
            EXPECT_LE(rel_diff(exact.logits[i], gemm.logits[i]), 0.02) << "step " << i;
            if (gemm.tokens[i] != exact.tokens[i]) break;
        }
        if (i < gemm.tokens.size()) {
            double scale = 1;
            for (float v : exact.logits[i]) scale = std::max(scale, std::fabs(double(v)));
            const double gap = exact.logits[i][exact.tokens[i]] - exact.logits[i][gemm.tokens[i]];
            EXPECT_LE(gap, 0.02 * scale) << "the texts part at step " << i << " without a near tie";
        }
        EXPECT_GE(i, size_t(3)) << "the first tokens agree";
    }
}

TEST(CudaModel, WithoutADeviceLoadingSaysSo) {
    if (cuda::available()) GTEST_SKIP() << "a device is present";
    const fs::path dir = tmpdir("nodev");
    test::write_qwen3(dir, 0, 128, true, 1);
    model::LoadOptions lo;
    lo.device = model::Device::cuda;
    try {
        model::Model::load(dir.string(), lo);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("[cuda]", 0), 0u) << e.what();
    }
}

}  // namespace
}  // namespace onebit
