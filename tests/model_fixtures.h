// Small model folders the model tests write: a random Qwen3 checkpoint, dense or quantized.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/convert.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "test_util.h"

namespace onebit::test {

// The sizes of write_qwen3's model.
struct Qwen3Dims {
    int64_t d = 128, hd = 32, nh = 4, nkv = 2, ff = 256, vocab = 300;
};

// A tiny random Qwen3 folder; `bits` 0 stores dense float32 weights, else affine-quantized.
inline void write_qwen3(const std::filesystem::path& dir, int bits, int group, bool tied, uint32_t seed,
                        const std::string& drop = {}, const std::string& reshape = {},
                        int64_t layers = 2, DType scale_dtype = DType::float32,
                        const Qwen3Dims& dims = {}) {
    std::filesystem::create_directories(dir);
    const int64_t d = dims.d, hd = dims.hd, nh = dims.nh, nkv = dims.nkv, ff = dims.ff,
                  vocab = dims.vocab;
    nlohmann::ordered_json cfg = {{"model_type", "qwen3"}, {"hidden_size", d}, {"intermediate_size", ff},
                {"num_hidden_layers", layers}, {"num_attention_heads", nh}, {"num_key_value_heads", nkv},
                {"head_dim", hd}, {"vocab_size", vocab}, {"max_position_embeddings", 256},
                {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", tied},
                {"eos_token_id", 7}};
    if (bits) cfg["quantization"] = {{"group_size", group}, {"bits", bits}};
    std::ofstream(dir / "config.json") << cfg.dump();
    std::mt19937 rng(seed);
    std::vector<Tensor> owned;
    owned.reserve(64);
    std::vector<std::pair<std::string, TensorView>> tensors;
    auto add = [&](const std::string& name, Tensor t) {
        if (name == drop) return;
        owned.push_back(std::move(t));
        tensors.emplace_back(name, owned.back().view());
    };
    auto dense = [&](const std::string& name, Shape s, float mean, float sd) {
        if (name == reshape) s[0] += 1;
        Tensor t(DType::float32, s);
        fill_normal(t.view(), rng, mean, sd);
        add(name, std::move(t));
    };
    auto lin = [&](const std::string& module, int64_t n, int64_t k) {
        if (!bits) return dense(module + ".weight", {n, k}, 0, 0.08f);
        Tensor w(DType::float32, {n, k});
        fill_normal(w.view(), rng, 0, 0.08f);
        Quantized q = quantize(w.view(), group, bits);
        add(module + ".weight", std::move(q.weight));
        for (auto* t : {&q.scales, &q.biases}) {  // stored in scale_dtype, as checkpoints do
            Tensor c(scale_dtype, t->shape());
            for (int64_t i = 0; i < t->view().numel(); ++i)
                store_float(scale_dtype, c.data(), i, t->ptr<float>()[i]);
            *t = std::move(c);
        }
        add(module + ".scales", std::move(q.scales));
        add(module + ".biases", std::move(q.biases));
    };
    lin("model.embed_tokens", vocab, d);
    for (int64_t l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        dense(p + "input_layernorm.weight", {d}, 1, 0.1f);
        dense(p + "post_attention_layernorm.weight", {d}, 1, 0.1f);
        dense(p + "self_attn.q_norm.weight", {hd}, 1, 0.1f);
        dense(p + "self_attn.k_norm.weight", {hd}, 1, 0.1f);
        lin(p + "self_attn.q_proj", nh * hd, d);
        lin(p + "self_attn.k_proj", nkv * hd, d);
        lin(p + "self_attn.v_proj", nkv * hd, d);
        lin(p + "self_attn.o_proj", d, nh * hd);
        lin(p + "mlp.gate_proj", ff, d);
        lin(p + "mlp.up_proj", ff, d);
        lin(p + "mlp.down_proj", d, ff);
    }
    dense("model.norm.weight", {d}, 1, 0.1f);
    if (!tied) lin("lm_head", vocab, d);
    io::save_safetensors((dir / "model.safetensors").string(), tensors);
}

}  // namespace onebit::test
