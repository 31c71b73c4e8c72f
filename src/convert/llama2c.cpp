#include "convert/llama2c.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/mmap.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "tokenizer/llama2c.h"

namespace onebit::convert {

namespace {

void write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary);
    if (!(f << text)) fail("convert", "cannot write '", p.string(), "'");
}

// Hugging Face's permutation for q/k: llama2.c rotates adjacent pairs (2j, 2j+1) of each head;
// rotate-half pairs (j, j + d/2). Row 2j -> j, row 2j+1 -> d/2 + j within each head.
Tensor permute_rows(const float* w, int64_t n_heads, int64_t rows, int64_t cols) {
    Tensor out(DType::float32, {rows, cols});
    const int64_t hd = rows / n_heads, half = hd / 2;
    for (int64_t h = 0; h < n_heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t par = 0; par < 2; ++par)
                std::memcpy(out.ptr<float>() + (h * hd + par * half + j) * cols, w + (h * hd + 2 * j + par) * cols,
                            static_cast<size_t>(cols) * sizeof(float));
    return out;
}

constexpr const char* kChatTemplate =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n{% else %}Assistant: "
    "{{ message['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:"
    "{% endif %}";

}  // namespace

void llama2c_to_folder(const std::string& model_bin, const std::string& tokenizer_bin, const std::string& out_dir) {
    const std::string bytes = read_file(model_bin, "convert");
    auto bad = [&](auto&&... a) { fail("convert", model_bin, ": ", a...); };
    if (bytes.size() < 28) bad("truncated: ", bytes.size(), " bytes, the header alone is 28");
    int32_t hdr[7];
    std::memcpy(hdr, bytes.data(), sizeof hdr);
    const int64_t dim = hdr[0], hidden = hdr[1], n_layers = hdr[2], n_heads = hdr[3], n_kv = hdr[4];
    const bool shared = hdr[5] > 0;
    const int64_t vocab = std::abs(static_cast<int64_t>(hdr[5])), seq_len = hdr[6];
    for (int64_t v : {dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len})
        if (v <= 0 || v > (1 << 24)) bad("header value ", v, " is not plausible (legacy llama2.c format expected)");
    if (dim % n_heads || n_heads % n_kv || (dim / n_heads) % 2) bad("dim ", dim, " and heads ", n_heads, "/", n_kv, " do not fit");
    const int64_t hd = dim / n_heads, kv_dim = n_kv * hd;
    const float* p = reinterpret_cast<const float*>(bytes.data() + 28);
    const size_t n_floats = (bytes.size() - 28) / 4;
    size_t used = 0;
    auto take = [&](int64_t n) {
        if (used + static_cast<size_t>(n) > n_floats)
            bad("truncated: needs more than its ", bytes.size(), " bytes for the shapes its header gives");
        const float* r = p + used;
        used += static_cast<size_t>(n);
        return r;
    };
    const float* emb = take(vocab * dim);
    const float* rms_att = take(n_layers * dim);
    const float* wq = take(n_layers * dim * dim);
    const float* wk = take(n_layers * kv_dim * dim);
    const float* wv = take(n_layers * kv_dim * dim);
    const float* wo = take(n_layers * dim * dim);
    const float* rms_ffn = take(n_layers * dim);
    const float* w1 = take(n_layers * hidden * dim);
    const float* w2 = take(n_layers * dim * hidden);
    const float* w3 = take(n_layers * hidden * dim);
    const float* rms_final = take(dim);
    take(seq_len * hd / 2);  // freq_cis_real (unused)
    take(seq_len * hd / 2);  // freq_cis_imag
    const float* wcls = shared ? emb : take(vocab * dim);
    if (used != n_floats) bad(n_floats - used, " trailing floats after the weights");

    std::vector<Tensor> owned;
    std::vector<std::pair<std::string, TensorView>> tensors;
    auto add = [&](const std::string& name, const float* src, Shape shape) {
        owned.emplace_back(DType::float32, shape);
        std::memcpy(owned.back().data(), src, owned.back().nbytes());
        tensors.emplace_back(name, owned.back().view());
    };
    auto add_owned = [&](const std::string& name, Tensor t) {
        owned.push_back(std::move(t));
        tensors.emplace_back(name, owned.back().view());
    };
    owned.reserve(static_cast<size_t>(12 * n_layers + 4));
    add("model.embed_tokens.weight", emb, {vocab, dim});
    for (int64_t l = 0; l < n_layers; ++l) {
        const std::string pre = "model.layers." + std::to_string(l) + ".";
        add(pre + "input_layernorm.weight", rms_att + l * dim, {dim});
        add_owned(pre + "self_attn.q_proj.weight", permute_rows(wq + l * dim * dim, n_heads, dim, dim));
        add_owned(pre + "self_attn.k_proj.weight", permute_rows(wk + l * kv_dim * dim, n_kv, kv_dim, dim));
        add(pre + "self_attn.v_proj.weight", wv + l * kv_dim * dim, {kv_dim, dim});
        add(pre + "self_attn.o_proj.weight", wo + l * dim * dim, {dim, dim});
        add(pre + "post_attention_layernorm.weight", rms_ffn + l * dim, {dim});
        add(pre + "mlp.gate_proj.weight", w1 + l * hidden * dim, {hidden, dim});
        add(pre + "mlp.down_proj.weight", w2 + l * dim * hidden, {dim, hidden});
        add(pre + "mlp.up_proj.weight", w3 + l * hidden * dim, {hidden, dim});
    }
    add("model.norm.weight", rms_final, {dim});
    if (!shared) add("lm_head.weight", wcls, {vocab, dim});

    const std::string tok_json = tok::llama2c_tokenizer_to_json(read_file(tokenizer_bin, "convert"), tokenizer_bin);
    std::filesystem::create_directories(out_dir);
    const std::filesystem::path dir(out_dir);
    io::save_safetensors((dir / "model.safetensors").string(), tensors, {{"format", "pt"}});
    using Json = nlohmann::ordered_json;
    const Json config = {{"architectures", {"LlamaForCausalLM"}},
                         {"model_type", "llama"},
                         {"hidden_size", dim},
                         {"intermediate_size", hidden},
                         {"num_hidden_layers", n_layers},
                         {"num_attention_heads", n_heads},
                         {"num_key_value_heads", n_kv},
                         {"head_dim", hd},
                         {"vocab_size", vocab},
                         {"max_position_embeddings", seq_len},
                         {"rms_norm_eps", 1e-5},
                         {"rope_theta", 10000.0},
                         {"hidden_act", "silu"},
                         {"tie_word_embeddings", shared},
                         {"attention_bias", false},
                         {"mlp_bias", false},
                         {"torch_dtype", "float32"},
                         {"bos_token_id", 1},
                         {"eos_token_id", 2}};
    write_text(dir / "config.json", config.dump(2) + "\n");
    write_text(dir / "generation_config.json",
               Json{{"bos_token_id", 1}, {"eos_token_id", 2}}.dump(2) + "\n");
    write_text(dir / "tokenizer.json", tok_json);
    const Json tcfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                       {"bos_token", "<s>"},
                       {"eos_token", "</s>"},
                       {"unk_token", "<unk>"},
                       {"add_bos_token", true},
                       {"model_max_length", seq_len},
                       {"chat_template", kChatTemplate}};
    write_text(dir / "tokenizer_config.json", tcfg.dump(2) + "\n");
}

}  // namespace onebit::convert
