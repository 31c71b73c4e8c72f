#include "convert/gguf_names.h"

#include <regex>
#include <utility>

namespace onebit::convert {

namespace {

// Per-layer module suffixes: Hugging Face, GGUF.
const std::pair<const char*, const char*> kLayer[] = {
    {"input_layernorm", "attn_norm"},       {"post_attention_layernorm", "ffn_norm"},
    {"self_attn.q_proj", "attn_q"},         {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},         {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},    {"self_attn.k_norm", "attn_k_norm"},
    {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
const std::pair<const char*, const char*> kGlobal[] = {
    {"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"}};

}  // namespace

const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

std::string gguf_name(const std::string& hf) {
    static const std::regex layer(R"(model\.layers\.(\d+)\.(.+)\.(weight|bias))");
    static const std::regex global(R"((.+)\.(weight|bias))");
    std::smatch m;
    if (std::regex_match(hf, m, layer)) {
        for (const auto& [h, g] : kLayer)
            if (m[2] == h) return "blk." + m[1].str() + "." + g + "." + m[3].str();
        return {};
    }
    if (std::regex_match(hf, m, global))
        for (const auto& [h, g] : kGlobal)
            if (m[1] == h) return std::string(g) + "." + m[2].str();
    return {};
}

std::string hf_name(const std::string& gg) {
    static const std::regex layer(R"(blk\.(\d+)\.(.+)\.(weight|bias))");
    static const std::regex global(R"((.+)\.(weight|bias))");
    std::smatch m;
    if (std::regex_match(gg, m, layer)) {
        for (const auto& [h, g] : kLayer)
            if (m[2] == g) return "model.layers." + m[1].str() + "." + h + "." + m[3].str();
        return {};
    }
    if (std::regex_match(gg, m, global))
        for (const auto& [h, g] : kGlobal)
            if (m[1] == g) return std::string(h) + "." + m[2].str();
    return {};
}

int64_t llama_row(int64_t r, int64_t rows, int64_t heads) {
    // [heads, 2, half] -> [heads, half, 2]: GGUF row (h, i, j) is Hugging Face row (h, j, i).
    const int64_t hd = rows / heads, half = hd / 2;
    const int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
    return h * hd + j * half + i;
}

int64_t gguf_row_of(int64_t hf_row, int64_t rows, int64_t heads) {
    // Hugging Face row (h, j, i) is GGUF row (h, i, j)
    const int64_t hd = rows / heads, half = hd / 2;
    const int64_t h = hf_row / hd, within = hf_row % hd;
    return h * hd + (within % half) * 2 + within / half;
}

bool permuted_in_gguf(const std::string& arch, const std::string& hf, int64_t n_head, int64_t n_kv, int64_t& heads) {
    if (arch != "llama") return false;
    auto ends = [&](const char* s) {
        const std::string suffix = s;
        return hf.size() >= suffix.size() && hf.compare(hf.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends("self_attn.q_proj.weight")) heads = n_head;
    else if (ends("self_attn.k_proj.weight")) heads = n_kv;
    else return false;
    return true;
}

io::GgufValue gguf_u32(uint64_t v) { return {io::GgufType::u32, io::GgufType::u32, v}; }
io::GgufValue gguf_f32(double v) { return {io::GgufType::f32, io::GgufType::u32, v}; }
io::GgufValue gguf_bool(bool v) { return {io::GgufType::boolean, io::GgufType::u32, v}; }
io::GgufValue gguf_str(const std::string& s) { return {io::GgufType::string, io::GgufType::u32, s}; }
io::GgufValue gguf_strs(const std::vector<std::string>& v) { return {io::GgufType::array, io::GgufType::string, v}; }
io::GgufValue gguf_f32s(const std::vector<float>& v) { return {io::GgufType::array, io::GgufType::f32, v}; }
io::GgufValue gguf_i32s(const std::vector<int32_t>& v) { return {io::GgufType::array, io::GgufType::i32, v}; }

}  // namespace onebit::convert
