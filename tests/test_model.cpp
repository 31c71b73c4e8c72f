// The model runtime: llama2.c's golden greedy output on the embedded stories260K (through the
// converted folder), quantized layers against the same model with the weights dequantized, the
// nn ops against float64, the sampler, stop strings, and every load / context error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/convert.h"
#include "core/error.h"
#include "engine/generate.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/nn.h"
#include "ops/ops.h"
#include "sampling/sampler.h"
#include "model_fixtures.h"
#include "scratch_dir.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace onebit {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::string kStories = std::string(ONEBIT_DATA_DIR) + "/../models/stories260K";

std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string greedy(const model::Model& m, const tok::Tokenizer& t, std::vector<int32_t> prompt, int64_t n,
                   std::vector<std::string> stop = {}) {
    engine::GenerateOptions o;
    o.max_tokens = n;
    o.sampler.temperature = 0;
    o.stop = std::move(stop);
    std::string text;
    engine::generate(m, t, prompt, o, [&](std::string_view s) { text += s; });
    return text;
}

TEST(Model, Stories260KGreedyEqualsLlama2c) {
    const model::Model m = model::Model::load(kStories);
    const tok::Tokenizer t = tok::Tokenizer::from_file(kStories + "/tokenizer.json");
    EXPECT_EQ(greedy(m, t, {1}, 200), slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt"));
}

TEST(Model, StopStringsAndContextLimit) {
    const model::Model m = model::Model::load(kStories);
    const tok::Tokenizer t = tok::Tokenizer::from_file(kStories + "/tokenizer.json");
    EXPECT_EQ(greedy(m, t, {1}, 200, {"Lily"}), "Once upon a time, there was a little girl named ");
    EXPECT_EQ(greedy(m, t, {1}, 200, {"park."}), "Once upon a time, there was a little girl named Lily. She loved to play outside in the ");
    engine::GenerateOptions o;
    o.ctx_size = 4;
    std::vector<int32_t> long_prompt(5, 1);
    try {
        engine::generate(m, t, long_prompt, o, [](std::string_view) {});
        ADD_FAILURE() << "prompt longer than the context accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("the prompt has 5 tokens; the context holds 4"), std::string::npos)
            << e.what();
    }
    o.sampler.temperature = 0;
    o.max_tokens = 100;
    const auto st = engine::generate(m, t, {1}, o, [](std::string_view) {});
    EXPECT_EQ(st.stop_reason, "context");
    EXPECT_EQ(st.generated_tokens, 4);
    model::KVCache cache(2, m.config());
    std::vector<float> logits;
    const int32_t bad[1] = {512};
    EXPECT_THROW(m.forward(bad, cache, logits), Error);
}

// The same folder with every quantized weight replaced by its float32 dequantization.
void dequantize_folder(const fs::path& src, const fs::path& dst, int bits, int group) {
    fs::create_directories(dst);
    Json cfg = Json::parse(slurp((src / "config.json").string()));
    cfg.erase("quantization");
    std::ofstream(dst / "config.json") << cfg.dump();
    const auto f = io::SafetensorsFile::open((src / "model.safetensors").string());
    std::vector<Tensor> owned;
    owned.reserve(f.names().size());
    std::vector<std::pair<std::string, TensorView>> tensors;
    for (const std::string& n : f.names()) {
        if (n.ends_with(".scales") || n.ends_with(".biases")) continue;
        const std::string mod = n.substr(0, n.size() - 7);
        if (f.contains(mod + ".scales")) {
            Tensor w = dequantize(f.get(n), f.get(mod + ".scales"), f.get(mod + ".biases"), group, bits);
            owned.push_back(std::move(w));
            tensors.emplace_back(n, owned.back().view());
        } else {
            tensors.emplace_back(n, f.get(n));
        }
    }
    io::save_safetensors((dst / "model.safetensors").string(), tensors);
}

fs::path tmpdir(const std::string& name) { return test::scratch_dir("model") / name; }

TEST(Model, QuantizedEqualsDequantizedDense) {
    for (auto [bits, group, tied] : {std::tuple{1, 128, true}, {2, 64, false}, {4, 32, true}, {8, 64, false}}) {
        const fs::path q = tmpdir("q" + std::to_string(bits)), dq = tmpdir("dq" + std::to_string(bits));
        test::write_qwen3(q, bits, group, tied, 42 + bits);
        dequantize_folder(q, dq, bits, group);
        const model::Model mq = model::Model::load(q.string()), md = model::Model::load(dq.string());
        std::vector<int32_t> ids = {3, 17, 250, 9, 9, 100, 42, 299, 0, 5, 61, 77};
        model::KVCache cq(64, mq.config()), cd(64, md.config());
        std::vector<float> lq, ld;
        // Prefill in one batch for one, token by token for the other: same results expected.
        mq.forward(ids, cq, lq, true);
        for (size_t i = 0; i < ids.size(); ++i) {
            std::vector<float> one;
            md.forward(std::span<const int32_t>(&ids[i], 1), cd, one);
            double max_abs = 0, max_diff = 0;
            for (size_t v = 0; v < one.size(); ++v) {
                max_abs = std::max(max_abs, std::fabs(static_cast<double>(one[v])));
                max_diff = std::max(max_diff, std::fabs(static_cast<double>(one[v]) - lq[i * one.size() + v]));
            }
            EXPECT_LE(max_diff, 1e-3 * std::max(1.0, max_abs)) << "bits " << bits << " position " << i;
        }
    }
}

// Several sequences in one forward pass (what the server's continuous batching runs): each
// sequence's logits are bit-identical to running it alone, for prefill chunks of different
// lengths and for decode steps; the 1-bit model with float32 and int8 activations, and a dense one.
TEST(Model, BatchedSequencesEqualSingleBitForBit) {
    const fs::path q = tmpdir("batch1"), dense = tmpdir("batchd");
    test::write_qwen3(q, 1, 128, true, 7);
    test::write_qwen3(dense, 0, 64, false, 8);
    for (auto [dir, int8] : {std::pair{q, false}, {q, true}, {dense, false}}) {
        model::LoadOptions opts;
        opts.int8_activations = int8;
        const model::Model m = model::Model::load(dir.string(), opts);
        const int64_t vocab = m.config().vocab_size;
        const std::vector<std::vector<int32_t>> prompts = {{3, 17, 250}, {9}, {100, 42, 299, 0, 5, 61, 77, 8}};
        std::vector<model::KVCache> alone, together, greedy;
        std::vector<model::KVCache> topk;
        for (size_t s = 0; s < prompts.size(); ++s) {
            alone.emplace_back(32, m.config());
            together.emplace_back(32, m.config());
            greedy.emplace_back(32, m.config());
            topk.emplace_back(32, m.config());
        }
        std::vector<float> expect, got, one;
        // Step 0 prefills every prompt together, steps 1..5 decode one token each.
        std::vector<std::vector<int32_t>> next = prompts;
        for (int step = 0; step < 6; ++step) {
            expect.clear();
            for (size_t s = 0; s < prompts.size(); ++s) {
                m.forward(next[s], alone[s], one);
                expect.insert(expect.end(), one.begin(), one.end());
            }
            std::vector<model::Model::SequenceInput> in;
            for (size_t s = 0; s < prompts.size(); ++s) in.push_back({next[s], &together[s]});
            m.forward_batch(in, got);
            ASSERT_EQ(got.size(), expect.size());
            ASSERT_EQ(0, std::memcmp(got.data(), expect.data(), got.size() * sizeof(float)))
                << dir << " int8 " << int8 << " step " << step;
            // the greedy forward chooses what argmax of the logits chooses
            std::vector<model::Model::SequenceInput> in_g;
            for (size_t s = 0; s < prompts.size(); ++s) in_g.push_back({next[s], &greedy[s]});
            std::vector<int32_t> chosen;
            m.forward_batch_greedy(in_g, chosen);
            ASSERT_EQ(chosen.size(), prompts.size());
            // the top-k forward hands back nn::top_k of the logits
            std::vector<model::Model::SequenceInput> in_t;
            for (size_t s = 0; s < prompts.size(); ++s) in_t.push_back({next[s], &topk[s]});
            std::vector<nn::Candidate> top;
            // sequence 1's best logit penalized below the rest; the others unedited
            std::vector<std::vector<nn::LogitEdit>> edits(prompts.size());
            const int32_t best1 = nn::argmax(&got[vocab], vocab);
            edits[1] = {{best1, 1.5f, 100.0f}, {(best1 + 1) % int32_t(vocab), 1.0f, -0.25f}};
            m.forward_batch_top_k(in_t, 5, top, edits);
            ASSERT_EQ(top.size(), prompts.size() * 5);
            for (size_t s = 0; s < prompts.size(); ++s) {
                std::vector<float> row(&got[s * vocab], &got[(s + 1) * vocab]);
                for (const nn::LogitEdit& e : edits[s]) row[e.id] = nn::edited(row[e.id], e);
                std::vector<nn::Candidate> want(5);
                nn::top_k(row.data(), vocab, 5, want.data());
                for (int j = 0; j < 5; ++j) {
                    EXPECT_EQ(top[s * 5 + j].id, want[j].id) << "sequence " << s << " step " << step;
                    EXPECT_EQ(top[s * 5 + j].logit, want[j].logit);
                }
            }
            for (size_t s = 0; s < prompts.size(); ++s) {
                EXPECT_EQ(together[s].length, alone[s].length);
                next[s] = {sampling::argmax(std::span<const float>(&got[s * vocab], vocab))};
                EXPECT_EQ(chosen[s], next[s][0]) << "sequence " << s << " step " << step;
                EXPECT_EQ(greedy[s].length, alone[s].length);
            }
        }
    }
    const model::Model m = model::Model::load(q.string());
    model::KVCache a(4, m.config());
    std::vector<float> l;
    const std::vector<int32_t> t = {1, 2};
    std::vector<model::Model::SequenceInput> twice = {{t, &a}, {t, &a}};
    EXPECT_THROW(m.forward_batch(twice, l), Error);
    // logit edits: one list a sequence, ids in the vocabulary, one edit an id
    model::KVCache b(4, m.config());
    const std::vector<model::Model::SequenceInput> one = {{t, &b}};
    std::vector<nn::Candidate> top;
    const std::vector<std::vector<nn::LogitEdit>> two_lists(2), outside = {{{-1, 1.0f, 1.0f}}},
        twice_id = {{{3, 1.1f, 0.0f}, {3, 1.0f, 0.5f}}};
    EXPECT_THROW(m.forward_batch_top_k(one, 3, top, two_lists), Error);
    EXPECT_THROW(m.forward_batch_top_k(one, 3, top, outside), Error);
    EXPECT_THROW(m.forward_batch_top_k(one, 3, top, twice_id), Error);
    EXPECT_THROW(m.forward_batch_top_k(one, 0, top), Error);
    EXPECT_EQ(b.length, 0);  // refused before the pass
}

TEST(Model, LoadErrorsNameTheProblem) {
    auto expect_error = [](const fs::path& dir, const std::string& needle) {
        try {
            model::Model::load(dir.string());
            ADD_FAILURE() << "loaded " << dir;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(tmpdir("nonexistent"), "is not a directory");
    const fs::path miss = tmpdir("missing");
    test::write_qwen3(miss, 4, 64, false, 1, "model.layers.1.mlp.up_proj.weight");
    expect_error(miss, "tensor 'model.layers.1.mlp.up_proj.weight' is missing");
    const fs::path shape = tmpdir("shape");
    test::write_qwen3(shape, 0, 64, true, 1, "", "model.layers.0.self_attn.k_norm.weight");
    expect_error(shape, "tensor 'model.layers.0.self_attn.k_norm.weight' has shape [33], expected [32]");
    const fs::path arch = tmpdir("arch");
    test::write_qwen3(arch, 0, 64, true, 1);
    Json cfg = Json::parse(slurp((arch / "config.json").string()));
    cfg["model_type"] = "mamba";
    std::ofstream(arch / "config.json") << cfg.dump();
    expect_error(arch, "model_type 'mamba' is not supported");
    const fs::path mismatch = tmpdir("mismatch");
    test::write_qwen3(mismatch, 4, 64, true, 1);
    cfg = Json::parse(slurp((mismatch / "config.json").string()));
    cfg["quantization"]["bits"] = 2;
    std::ofstream(mismatch / "config.json") << cfg.dump();
    expect_error(mismatch, "is stored with bits 4, group size 64 but config.json says bits 2");
    const fs::path trunc = tmpdir("trunc");
    test::write_qwen3(trunc, 0, 64, true, 1);
    fs::resize_file(trunc / "model.safetensors", fs::file_size(trunc / "model.safetensors") - 100);
    expect_error(trunc, "[safetensors]");
    // A corrupted config.json: each defect named.
    const fs::path badcfg = tmpdir("badcfg");
    test::write_qwen3(badcfg, 0, 64, true, 1);
    const std::pair<std::string, std::string> configs[] = {
        {"{\"model_type\": \"qwen3\",", "not valid JSON"},
        {"[1, 2]", "the top level is not an object"},
        {R"({"model_type": "qwen3", "hidden_size": "big"})", "'hidden_size' must be a non-negative integer"},
        {R"({"model_type": "qwen3", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 300})",
         "not a multiple of num_key_value_heads"},
        {R"({"model_type": "qwen3", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 300, "quantization": {"bits": 7, "group_size": 64}})",
         "bits 7 is not supported"},
        {R"({"model_type": "qwen3", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 300, "rope_scaling": {"type": "dynamic"}})",
         "rope_scaling type 'dynamic' is not supported"},
    };
    for (const auto& [text, needle] : configs) {
        std::ofstream(badcfg / "config.json") << text;
        expect_error(badcfg, needle);
    }
    const fs::path noconf = tmpdir("noconf");
    fs::create_directories(noconf);
    expect_error(noconf, "config.json");
}

TEST(NN, OpsAgainstFloat64) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    const int64_t m = 3, k = 70, n = 33;
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16}) {
        Tensor w(dt, {n, k});
        test::fill_normal(w.view(), rng);
        std::vector<float> x(m * k), y(m * n, NAN);
        for (float& v : x) v = nd(rng);
        nn::linear(x.data(), m, k, w.view(), y.data());
        for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0, mag = 0;
                for (int64_t i = 0; i < k; ++i) {
                    const double p = static_cast<double>(x[r * k + i]) * load_float(dt, w.data(), j * k + i);
                    acc += p, mag += std::fabs(p);
                }
                EXPECT_NEAR(y[r * n + j], acc, 1e-5 * mag + 1e-6);
            }
    }
    // RoPE: rotate-half with positions; a rotation keeps each pair's norm.
    const int64_t t = 2, heads = 3, hd = 8;
    std::vector<float> q(t * heads * hd), q0;
    for (float& v : q) v = nd(rng);
    q0 = q;
    const std::vector<float> inv = {1.0f, 0.1f, 0.01f, 0.001f};
    const int32_t pos[2] = {0, 5};
    nn::rope(q.data(), t, heads, hd, pos, inv, 1.0f);
    for (int64_t s = 0; s < t; ++s)
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t j = 0; j < hd / 2; ++j) {
                const int64_t b = (s * heads + h) * hd;
                const double ang = pos[s] * static_cast<double>(inv[j]);
                const double a = q0[b + j], c = q0[b + j + hd / 2];
                EXPECT_NEAR(q[b + j], a * std::cos(ang) - c * std::sin(ang), 1e-5);
                EXPECT_NEAR(q[b + j + hd / 2], c * std::cos(ang) + a * std::sin(ang), 1e-5);
            }
    // Attention for one query over three cached positions, against the formula.
    const int64_t nkv = 1, nh = 2, d = 4, len = 3;
    std::vector<float> kc(len * nkv * d), vc(len * nkv * d), qq(nh * d), out(nh * d);
    for (float& v : kc) v = nd(rng);
    for (float& v : vc) v = nd(rng);
    for (float& v : qq) v = nd(rng);
    const int32_t p2[1] = {2};
    const auto [kb, vb] = nn::kv_cache_of(kc.data(), vc.data(), len, nkv, d);
    nn::attention(qq.data(), 1, nh, nkv, d, len, kb.data(), vb.data(), p2, out.data());
    for (int64_t h = 0; h < nh; ++h) {
        double s[3], z = 0;
        for (int64_t p = 0; p < len; ++p) {
            double dot = 0;
            for (int64_t i = 0; i < d; ++i) dot += qq[h * d + i] * kc[p * d + i];
            z += s[p] = std::exp(dot / 2.0);
        }
        for (int64_t i = 0; i < d; ++i) {
            double o = 0;
            for (int64_t p = 0; p < len; ++p) o += s[p] / z * vc[p * d + i];
            EXPECT_NEAR(out[h * d + i], o, 1e-5);
        }
    }
}

// The greedy choice: the first of equal maxima; NaNs passed over unless the first value is one.
TEST(NN, ArgmaxRule) {
    const float nan = std::nanf(""), inf = INFINITY;
    auto am = [](std::vector<float> v) { return nn::argmax(v.data(), static_cast<int64_t>(v.size())); };
    EXPECT_EQ(am({0.1f, 2.0f, 2.0f, -1.0f}), 1);
    EXPECT_EQ(am({-inf, -inf, -3.0f}), 2);
    EXPECT_EQ(am({-inf, -inf}), 0);
    EXPECT_EQ(am({1.0f, nan, 3.0f, nan}), 2);
    EXPECT_EQ(am({nan, 5.0f, 7.0f}), 0);
    EXPECT_EQ(am({-1.0f, inf, inf}), 1);
    EXPECT_EQ(am({4.0f}), 0);
}

TEST(Sampler, GreedySeededAndValidated) {
    std::vector<float> logits = {0.1f, 2.0f, 2.0f, -1.0f};
    sampling::SamplerParams p;
    p.temperature = 0;
    sampling::Sampler greedy(p);
    EXPECT_EQ(greedy.sample(logits, {}), 1);  // the first of equal maxima
    EXPECT_TRUE(greedy.greedy());
    p.temperature = 1.0f;
    p.top_k = 0, p.top_p = 1.0f, p.min_p = 0;
    p.seed = 123;
    std::vector<int32_t> a, b;
    sampling::Sampler s1(p), s2(p);
    std::vector<int> counts(4);
    for (int i = 0; i < 2000; ++i) {
        std::vector<float> l1 = logits, l2 = logits;
        a.push_back(s1.sample(l1, {}));
        b.push_back(s2.sample(l2, {}));
        ++counts[a.back()];
    }
    EXPECT_EQ(a, b);
    EXPECT_NEAR(counts[1] / 2000.0, std::exp(2.0) / (std::exp(0.1) + 2 * std::exp(2.0) + std::exp(-1.0)), 0.04);
    p.top_k = 1;
    sampling::Sampler topk(p);
    std::vector<float> l = logits;
    EXPECT_EQ(topk.sample(l, {}), 1);
    // Repetition penalty pushes a repeated token below the other maximum.
    p.top_k = 0, p.temperature = 0, p.repeat_penalty = 2.0f;
    sampling::Sampler rep(p);
    EXPECT_FALSE(rep.greedy());  // the penalty changes the logits before the choice
    EXPECT_FALSE(topk.greedy());
    l = logits;
    const int32_t hist[1] = {1};
    EXPECT_EQ(rep.sample(l, hist), 2);
    EXPECT_EQ(rep.top_k_only(), 0);  // temperature 0: not a top-k draw
    p = {};
    p.temperature = -1;
    EXPECT_THROW(sampling::Sampler{p}, Error);
    p = {};
    p.top_p = 0;
    EXPECT_THROW(sampling::Sampler{p}, Error);
}

TEST(Nn, TopKIsTheFullSortsPrefix) {
    // nn::top_k (a bounded heap) against a full std::sort by nn::ranks_before, on rows with
    // ties, +0 / -0, infinities and NaNs, for k from 1 to n; and it refuses k out of range.
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> pick(0, 11);
    const float special[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(), std::nanf("")};
    for (int64_t n : {int64_t(1), int64_t(2), int64_t(17), int64_t(300)}) {
        std::vector<float> x(n);
        for (auto& v : x) {
            const int c = pick(rng);
            v = c < 5 ? special[c] : c < 8 ? static_cast<float>(c) : std::normal_distribution<float>()(rng);
        }
        std::vector<nn::Candidate> all(n);
        for (int64_t i = 0; i < n; ++i) all[i] = {x[i], static_cast<int32_t>(i)};
        std::sort(all.begin(), all.end(), nn::ranks_before);
        for (int64_t k = 1; k <= n; k += 1 + k / 4) {
            std::vector<nn::Candidate> top(k, nn::Candidate{-1.0f, -7});
            nn::top_k(x.data(), n, k, top.data());
            for (int64_t i = 0; i < k; ++i)
                ASSERT_EQ(top[i].id, all[i].id) << "n " << n << " k " << k << " rank " << i;
        }
        EXPECT_THROW(nn::top_k(x.data(), n, 0, all.data()), Error);
        EXPECT_THROW(nn::top_k(x.data(), n, n + 1, all.data()), Error);
    }
}

TEST(Sampler, TopCandidatesChooseWhatTheWholeRowChooses) {
    // sample_top on nn::top_k of the logits draws exactly what sample draws from all of them,
    // seed for seed, over temperatures, top-k / top-p / min-p settings and logits with ties
    // (a coarse grid, +0 and -0), in a vocabulary larger and smaller than k.
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    // With penalties the candidates are those of the edited logits (Sampler::edits).
    struct Setting { float temp; int32_t k; float top_p, min_p, repeat, presence, frequency; };
    for (const Setting& st : {Setting{0.7f, 20, 0.95f, 0.0f, 1, 0, 0}, Setting{1.0f, 40, 0.95f, 0.05f, 1, 0, 0},
                              Setting{0.3f, 1, 1.0f, 0.0f, 1, 0, 0}, Setting{2.0f, 300, 0.5f, 0.1f, 1, 0, 0},
                              Setting{1.0f, 7, 1.0f, 0.0f, 1, 0, 0}, Setting{0.8f, 20, 0.95f, 0.0f, 1.3f, 0, 0},
                              Setting{0.8f, 20, 0.95f, 0.0f, 1.1f, 0.5f, 0.3f},
                              Setting{1.0f, 40, 1.0f, 0.0f, 1, -0.7f, 0.2f}}) {
        for (int64_t vocab : {int64_t(5), int64_t(1000)}) {
            sampling::SamplerParams p;
            p.temperature = st.temp, p.top_k = st.k, p.top_p = st.top_p, p.min_p = st.min_p;
            p.repeat_penalty = st.repeat, p.presence_penalty = st.presence, p.frequency_penalty = st.frequency;
            p.repeat_last_n = 16;
            p.seed = rng();
            sampling::Sampler full(p), top(p);
            ASSERT_EQ(top.top_k_only(), st.k);
            std::vector<int32_t> history = {1, 2, 2, -1, int32_t(vocab)};  // out-of-range ids are skipped
            for (int step = 0; step < 300; ++step) {
                std::vector<float> logits(vocab);
                for (auto& l : logits) l = step % 2 ? std::round(nd(rng)) : nd(rng);
                logits[step % vocab] = 0.0f, logits[(step + 1) % vocab] = -0.0f;
                const std::span<const int32_t> generated(history.data() + 3, history.size() - 3);
                std::vector<float> edited = logits;
                for (const nn::LogitEdit& e : top.edits(history, generated, vocab))
                    edited[e.id] = nn::edited(edited[e.id], e);
                const int64_t k = std::min<int64_t>(st.k, vocab);
                std::vector<nn::Candidate> cands(k);
                nn::top_k(edited.data(), vocab, k, cands.data());
                const int32_t want = full.sample(logits, history, generated);
                ASSERT_EQ(top.sample_top(cands), want) << "step " << step << " vocab " << vocab;
                ASSERT_EQ(std::memcmp(logits.data(), edited.data(), vocab * 4), 0)  // what sample() did
                    << "step " << step;
                history.push_back(want);
            }
        }
    }
    sampling::SamplerParams p;
    p.top_k = 0;
    sampling::Sampler no_k(p);
    EXPECT_EQ(no_k.top_k_only(), 0);
    const nn::Candidate one[1] = {{1.0f, 0}};
    EXPECT_THROW(no_k.sample_top(one), Error);
    p.top_k = 2;
    sampling::Sampler two(p);
    EXPECT_THROW(two.sample_top({}), Error);
    const nn::Candidate three[3] = {{3.0f, 0}, {2.0f, 1}, {1.0f, 2}};
    EXPECT_THROW(two.sample_top(three), Error);
}

}  // namespace
}  // namespace onebit

namespace onebit {
namespace {

// The shipped tiny 1-bit Qwen3 through the library (engine::generate): the CLI's golden text.
TEST(Model, TinyQwen3OneBitGoldenThroughTheLibrary) {
    const std::string dir = std::string(ONEBIT_DATA_DIR) + "/../models/tiny-qwen3-1bit";
    const model::Model m = model::Model::load(dir);
    const tok::Tokenizer t = tok::Tokenizer::from_file(dir + "/tokenizer.json");
    engine::GenerateOptions o;
    o.max_tokens = 100;
    o.sampler.temperature = 0;
    std::string text;
    engine::generate(m, t, t.encode("ROMEO:"), o, [&](std::string_view s) { text += s; });
    std::ifstream f(std::string(ONEBIT_DATA_DIR) + "/../tests/fixtures/tiny_qwen3_greedy_romeo.txt", std::ios::binary);
    const std::string want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(text + "\n", want);  // the command ends its text with a newline
}

}  // namespace
}  // namespace onebit
