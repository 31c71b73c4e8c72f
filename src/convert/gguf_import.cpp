#include "convert/gguf_import.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/gguf_names.h"
#include "convert/gguf_tokenizer.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/half.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace onebit::convert {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

struct Reader {
    const io::GgufFile& f;
    template <typename... A>
    [[noreturn]] void bad(A&&... a) const {
        fail("gguf", "'", f.path(), "': ", std::forward<A>(a)...);
    }
    const io::GgufValue& need(const std::string& key) const {
        const io::GgufValue* v = f.find(key);
        if (!v) bad("has no ", key);
        return *v;
    }
    int64_t integer(const std::string& key) const {
        const io::GgufValue& v = need(key);
        if (!v.value.is_number_integer() || v.value.get<int64_t>() <= 0) bad(key, " is not a positive integer");
        return v.value.get<int64_t>();
    }
    std::optional<double> number(const std::string& key) const {
        const io::GgufValue* v = f.find(key);
        if (!v) return std::nullopt;
        if (!v->value.is_number() || !std::isfinite(v->value.get<double>()) || v->value.get<double>() <= 0)
            bad(key, " is not a positive number");
        return v->value.get<double>();
    }
};

// One output module or tensor.
struct Item {
    const io::GgufTensor* t;
    std::string hf;  // Hugging Face tensor name
    int64_t rows = 0, cols = 0, heads = 0;
    size_t spec = 0;  // its (first) output tensor in specs
};

float checked(const Reader& r, const std::string& name, float v) {
    if (!std::isfinite(round_fp16(v))) r.bad("tensor '", name, "' has a scale that overflows float16");
    return v;
}

}  // namespace

void gguf_to_folder(const std::string& src, const std::string& dst,
                    const std::function<void(size_t, size_t, const std::string&)>& progress, bool check) {
    if (fs::exists(dst)) fail("convert", "'", dst, "' exists; the output must be a new folder");
    const io::GgufFile f = io::GgufFile::open(src);
    const Reader r{f};
    const io::GgufValue& av = r.need("general.architecture");
    if (av.type != io::GgufType::string) r.bad("general.architecture is not a string");
    const std::string arch = av.value.get<std::string>();
    if (arch != "qwen3" && arch != "llama") r.bad("architecture '", arch, "' is not llama or qwen3");
    auto a = [&](const std::string& k) { return arch + "." + k; };
    const int64_t d = r.integer(a("embedding_length")), n_head = r.integer(a("attention.head_count"));
    const int64_t n_kv = f.find(a("attention.head_count_kv")) ? r.integer(a("attention.head_count_kv")) : n_head;
    const int64_t head_dim = f.find(a("attention.key_length")) ? r.integer(a("attention.key_length")) : d / n_head;
    const io::GgufTensor* embd = f.tensor("token_embd.weight");
    if (!embd || embd->ne.size() != 2) r.bad("has no 2-D token_embd.weight");
    const int64_t vocab = embd->ne[1];
    // The plan, and the dtype of float tensors: float16 unless the matrices say otherwise.
    std::vector<Item> items;
    bool any_bf16 = false, any_f32_matrix = false, any_quant = false;
    std::map<uint32_t, int> quant_count;
    for (const io::GgufTensor& t : f.tensors()) {
        Item it{&t, hf_name(t.name)};
        if (it.hf.empty()) r.bad("tensor '", t.name, "' is not a llama / qwen3 tensor onebit knows");
        if (t.ne.size() == 2) it.rows = t.ne[1], it.cols = t.ne[0];
        else if (t.ne.size() == 1) it.cols = t.ne[0];
        else r.bad("tensor '", t.name, "' has ", t.ne.size(), " dimensions");
        const bool q = t.type == io::kGgmlQ1_0 || t.type == io::kGgmlQ8_0;
        if (q && t.ne.size() != 2) r.bad("tensor '", t.name, "' is quantized but not a matrix");
        if (!q && t.type != io::kGgmlF32 && t.type != io::kGgmlF16 && t.type != io::kGgmlBF16)
            r.bad("tensor '", t.name, "' is ", io::ggml_type_name(t.type), "; onebit reads F32, F16, BF16, Q8_0 and Q1_0");
        if (q) ++quant_count[t.type], any_quant = true;
        if (t.ne.size() == 2 && t.type == io::kGgmlBF16) any_bf16 = true;
        if (t.ne.size() == 2 && t.type == io::kGgmlF32) any_f32_matrix = true;
        int64_t heads = 0;
        if (permuted_in_gguf(arch, it.hf, n_head, n_kv, heads)) {
            if (it.rows % heads || (it.rows / heads) % 2) r.bad("tensor '", t.name, "' rows do not split into ", heads, " heads");
            it.heads = heads;
        }
        items.push_back(std::move(it));
    }
    const DType dense = any_bf16 ? DType::bfloat16 : (any_f32_matrix && !any_quant) ? DType::float32 : DType::float16;
    // The default quantization is the most common one; other modules get their own entry.
    uint32_t main_type = 0;
    int best = 0;
    for (const auto& [type, n] : quant_count)
        if (n > best) best = n, main_type = type;
    auto spec = [](uint32_t type) {
        return type == io::kGgmlQ1_0 ? Json{{"group_size", 128}, {"bits", 1}, {"mode", "affine"}}
                                     : Json{{"group_size", 32}, {"bits", 8}, {"mode", "affine"}};
    };
    Json quant = main_type ? spec(main_type) : Json();
    std::vector<io::TensorSpec> specs;
    for (Item& it : items) {
        it.spec = specs.size();
        const uint32_t type = it.t->type;
        const std::string module = it.hf.substr(0, it.hf.size() - 7);
        if (type == io::kGgmlQ1_0 || type == io::kGgmlQ8_0) {
            const int bits = type == io::kGgmlQ1_0 ? 1 : 8, g = type == io::kGgmlQ1_0 ? 128 : 32;
            if (type != main_type) quant[module] = spec(type);
            specs.push_back({module + ".weight", DType::uint32, {it.rows, it.cols * bits / 32}});
            specs.push_back({module + ".scales", DType::float16, {it.rows, it.cols / g}});
            specs.push_back({module + ".biases", DType::float16, {it.rows, it.cols / g}});
        } else {
            if (main_type && it.t->ne.size() == 2) quant[module] = false;
            DType dt = type == io::kGgmlF16 ? DType::float16 : type == io::kGgmlBF16 ? DType::bfloat16 : DType::float32;
            if (it.t->ne.size() == 1 && dt == DType::float32) {
                bool exact = true;
                for (int64_t i = 0; i < it.cols && exact; ++i) {
                    float v;
                    std::memcpy(&v, it.t->data + 4 * i, 4);
                    exact = round_to(dense, v) == v;
                }
                if (exact) dt = dense;
            }
            specs.push_back({it.hf, dt, it.rows ? Shape{it.rows, it.cols} : Shape{it.cols}});
        }
    }
    // config.json
    const TokenizerFiles tok = tokenizer_from_gguf(f);
    Json cfg = {{"architectures", Json::array({arch == "qwen3" ? "Qwen3ForCausalLM" : "LlamaForCausalLM"})},
                {"model_type", arch},
                {"hidden_size", d},
                {"intermediate_size", r.integer(a("feed_forward_length"))},
                {"num_hidden_layers", r.integer(a("block_count"))},
                {"num_attention_heads", n_head},
                {"num_key_value_heads", n_kv},
                {"head_dim", head_dim},
                {"vocab_size", vocab},
                {"max_position_embeddings", f.find(a("context_length")) ? r.integer(a("context_length")) : 2048},
                {"rms_norm_eps", r.number(a("attention.layer_norm_rms_epsilon")).value_or(1e-6)},
                {"rope_theta", r.number(a("rope.freq_base")).value_or(10000.0)},
                {"tie_word_embeddings", f.tensor("output.weight") == nullptr},
                {"torch_dtype", dtype_name(dense)}};
    if (tok.bos) cfg["bos_token_id"] = *tok.bos;
    if (tok.eos.size() == 1) cfg["eos_token_id"] = tok.eos[0];
    else if (!tok.eos.empty()) cfg["eos_token_id"] = tok.eos;
    if (main_type) cfg["quantization"] = quant, cfg["quantization_config"] = quant;

    const fs::path tmp = fs::path(dst).parent_path() /
                         (fs::path(dst).filename().string() + ".partial-" + std::to_string(::getpid()));
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        io::SafetensorsWriter w((tmp / "model.safetensors").string(), specs);
        for (size_t i = 0; i < items.size(); ++i) {
            const Item& it = items[i];
            const io::GgufTensor& t = *it.t;
            const int64_t rows = std::max<int64_t>(it.rows, 1);
            const size_t row_bytes = t.nbytes / static_cast<size_t>(rows);
            auto gguf_row = [&](int64_t hf_row) -> const uint8_t* {
                return t.data + (it.heads ? gguf_row_of(hf_row, it.rows, it.heads) : hf_row) * row_bytes;
            };
            if (t.type == io::kGgmlQ1_0 || t.type == io::kGgmlQ8_0) {
                const bool one = t.type == io::kGgmlQ1_0;
                const int64_t g = one ? 128 : 32, groups = it.cols / g;
                Tensor words(DType::uint32, {it.rows, it.cols * (one ? 1 : 8) / 32});
                Tensor scales(DType::float16, {it.rows, groups}), biases(DType::float16, {it.rows, groups});
                auto* wb = static_cast<uint8_t*>(words.data());
                const size_t wrow = static_cast<size_t>(it.cols * (one ? 1 : 8) / 8);
                for (int64_t hr = 0; hr < it.rows; ++hr) {
                    const uint8_t* p = gguf_row(hr);
                    for (int64_t gi = 0; gi < groups; ++gi) {
                        uint16_t h;
                        std::memcpy(&h, p, 2);
                        p += 2;
                        const float dd = fp16_to_float(h);
                        uint8_t* out = wb + hr * wrow + gi * (one ? 16 : 32);
                        if (one) {
                            std::memcpy(out, p, 16);
                            p += 16;
                            store_float(DType::float16, scales.data(), hr * groups + gi, checked(r, t.name, 2 * dd));
                            store_float(DType::float16, biases.data(), hr * groups + gi, -dd);
                        } else {
                            for (int j = 0; j < 32; ++j) out[j] = static_cast<uint8_t>(static_cast<int8_t>(p[j]) + 128);
                            p += 32;
                            store_float(DType::float16, scales.data(), hr * groups + gi, dd);
                            store_float(DType::float16, biases.data(), hr * groups + gi, checked(r, t.name, -128 * dd));
                        }
                    }
                }
                w.write(words.view());
                w.write(scales.view());
                w.write(biases.view());
            } else {
                const io::TensorSpec& s = specs[it.spec];
                Tensor out(s.dtype, s.shape);
                const DType in = t.type == io::kGgmlF16 ? DType::float16 : t.type == io::kGgmlBF16 ? DType::bfloat16 : DType::float32;
                for (int64_t hr = 0; hr < rows; ++hr) {
                    const uint8_t* p = it.rows ? gguf_row(hr) : t.data;
                    if (in == s.dtype) {
                        std::memcpy(static_cast<uint8_t*>(out.data()) + hr * row_bytes, p, row_bytes);
                    } else {
                        for (int64_t k = 0; k < it.cols; ++k) store_float(s.dtype, out.data(), hr * it.cols + k, load_float(in, p, k));
                    }
                }
                w.write(out.view());
            }
            f.release(t);
            if (progress) progress(i + 1, items.size(), t.name);
        }
        w.finish();
        std::ofstream(tmp / "config.json") << cfg.dump(4);
        std::ofstream(tmp / "tokenizer.json") << tok.tokenizer_json;
        std::ofstream(tmp / "tokenizer_config.json") << tok.tokenizer_config_json;
        // The folder must load: its tensors against its config, and its tokenizer.
        if (check) {
            (void)model::Model::load(tmp.string());
            (void)tok::Tokenizer::from_file((tmp / "tokenizer.json").string());
        }
        if (fs::exists(dst)) fail("convert", "'", dst, "' appeared while converting");
        fs::rename(tmp, dst);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace onebit::convert
