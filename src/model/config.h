// A model's config.json (Hugging Face / MLX): the architecture and its hyper-parameters, RoPE
// scaling, special token ids and the MLX quantization dict. Names follow Hugging Face's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace onebit::model {

enum class Arch { Llama, Qwen3 };

struct RopeScaling {
    std::string type = "default";  // default, linear, yarn, llama3
    double factor = 1.0;
    int64_t original_max_position_embeddings = 0;
    double beta_fast = 32, beta_slow = 1;                  // yarn
    std::optional<double> attention_factor, mscale, mscale_all_dim;  // yarn
    bool truncate = true;                                  // yarn
    double low_freq_factor = 1, high_freq_factor = 4;      // llama3
};

// The affine quantization of one module: bits and group size, or none (dense).
struct QuantSpec {
    bool quantized = false;
    int bits = 0, group_size = 0;
};

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string model_type;
    int64_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
    int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
    int64_t vocab_size = 0, max_position_embeddings = 0;
    double rms_norm_eps = 1e-6, rope_theta = 10000;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    std::string torch_dtype;
    std::optional<int32_t> bos_token_id;
    std::vector<int32_t> eos_token_ids;
    // MLX "quantization" (or "quantization_config"): the default and per-module overrides
    // ("model.layers.0.mlp.down_proj" -> spec; false -> dense).
    QuantSpec quant_default;
    std::map<std::string, QuantSpec> quant_overrides;

    // The spec for a module path (without ".weight").
    QuantSpec quant_for(const std::string& module) const;

    // Parses config.json text; `source` names it in errors ("[config] <source>: ...").
    static ModelConfig parse(const std::string& json_text, const std::string& source);
};

// generation_config.json: extra EOS ids and default sampling settings.
struct GenerationDefaults {
    std::vector<int32_t> eos_token_ids;
    std::optional<double> temperature, top_p, min_p, repetition_penalty;
    std::optional<int64_t> top_k;
    std::optional<bool> do_sample;  // false: greedy
    static GenerationDefaults parse(const std::string& json_text, const std::string& source);
};

}  // namespace onebit::model
