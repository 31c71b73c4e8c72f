// Synthetic checkpoints with Bonsai's real shapes, for benchmarks: random g128 weights of any bits
// value, centred (every bias -scale * (2^bits - 1) / 2: for 1 bit Bonsai's symmetric form),
// float16 scales.
#include "tools/synthetic.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "quant/format.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct Shape3 {
    int64_t hidden, inter, layers, heads, kv, vocab;
    bool tied;
};

Shape3 bonsai_shape(const std::string& kind) {
    if (kind == "bonsai-1.7b") return {2048, 6144, 28, 16, 8, 151936, true};
    if (kind == "bonsai-4b") return {2560, 9728, 36, 32, 8, 151936, true};
    if (kind == "bonsai-8b") return {4096, 12288, 36, 32, 8, 151936, false};
    fail("bench", "--synthetic '", kind, "' is not known; known: bonsai-1.7b, bonsai-4b, bonsai-8b");
}

}  // namespace

void write_synthetic(const std::string& kind, const fs::path& dir, int bits) {
    const Shape3 s = bonsai_shape(kind);
    if (!quant::is_supported_bits(bits))
        fail("bench", "synthetic checkpoints have bits 1, 2, 3, 4, 5, 6 or 8, not ", bits);
    const int64_t hd = 128, g = 128;
    fs::create_directories(dir);
    const nlohmann::ordered_json cfg = {
        {"model_type", "qwen3"}, {"hidden_size", s.hidden}, {"intermediate_size", s.inter},
        {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv},
        {"head_dim", hd}, {"vocab_size", s.vocab}, {"max_position_embeddings", 40960},
        {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", s.tied},
        {"torch_dtype", "float16"}, {"bos_token_id", 151643}, {"eos_token_id", 151645},
        {"quantization", {{"group_size", g}, {"bits", bits}}}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    std::mt19937_64 rng(1234);
    std::vector<Tensor> owned;
    owned.reserve(static_cast<size_t>(s.layers * 30 + 8));
    std::vector<std::pair<std::string, TensorView>> tensors;
    auto add = [&](const std::string& name, Tensor t) {
        owned.push_back(std::move(t));
        tensors.emplace_back(name, owned.back().view());
    };
    auto lin = [&](const std::string& m, int64_t n, int64_t k) {
        Tensor w(DType::uint32, {n, k * bits / 32}), sc(DType::float16, {n, k / g}), bi(DType::float16, {n, k / g});
        auto* wp = w.ptr<uint64_t>();
        for (int64_t i = 0; i < n * k * bits / 64; ++i) wp[i] = rng();
        for (int64_t i = 0; i < n * k / g; ++i) {
            const float scale = 0.01f + 0.04f * static_cast<float>(rng() % 1000) / 1000.0f;
            sc.ptr<uint16_t>()[i] = float_to_fp16(scale);
            bi.ptr<uint16_t>()[i] = float_to_fp16(-fp16_to_float(sc.ptr<uint16_t>()[i]) * float((1 << bits) - 1) / 2);
        }
        add(m + ".weight", std::move(w));
        add(m + ".scales", std::move(sc));
        add(m + ".biases", std::move(bi));
    };
    auto norm = [&](const std::string& name, int64_t n) {
        Tensor t(DType::float16, {n});
        for (int64_t i = 0; i < n; ++i) t.ptr<uint16_t>()[i] = float_to_fp16(1.0f);
        add(name, std::move(t));
    };
    lin("model.embed_tokens", s.vocab, s.hidden);
    for (int64_t l = 0; l < s.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        norm(p + "input_layernorm.weight", s.hidden);
        norm(p + "post_attention_layernorm.weight", s.hidden);
        norm(p + "self_attn.q_norm.weight", hd);
        norm(p + "self_attn.k_norm.weight", hd);
        lin(p + "self_attn.q_proj", s.heads * hd, s.hidden);
        lin(p + "self_attn.k_proj", s.kv * hd, s.hidden);
        lin(p + "self_attn.v_proj", s.kv * hd, s.hidden);
        lin(p + "self_attn.o_proj", s.hidden, s.heads * hd);
        lin(p + "mlp.gate_proj", s.inter, s.hidden);
        lin(p + "mlp.up_proj", s.inter, s.hidden);
        lin(p + "mlp.down_proj", s.hidden, s.inter);
    }
    norm("model.norm.weight", s.hidden);
    if (!s.tied) lin("lm_head", s.vocab, s.hidden);
    io::save_safetensors((dir / "model.safetensors").string(), tensors);
}

}  // namespace onebit::tools
