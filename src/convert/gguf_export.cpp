#include "convert/gguf_export.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "convert/gguf_names.h"
#include "convert/gguf_tokenizer.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/half.h"
#include "core/mmap.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace onebit::convert {

namespace fs = std::filesystem;

namespace {

// One GGUF tensor from a Hugging Face tensor (dense) or module (quantized).
struct Plan {
    std::string hf;      // tensor name, or module path when quantized
    bool quantized = false;
    int64_t rows = 0, cols = 0;  // cols = K (values per row); rows = 0 for 1-D
    int64_t heads = 0;           // > 0: rows permuted (llama q / k)
    io::GgufTensor out;
};

uint32_t dense_type(DType dt, bool one_d, const std::string& name) {
    if (one_d) return io::kGgmlF32;
    switch (dt) {
        case DType::float32: return io::kGgmlF32;
        case DType::float16: return io::kGgmlF16;
        case DType::bfloat16: return io::kGgmlBF16;
        default: fail("convert", "tensor '", name, "' is ", dtype_name(dt), "; GGUF export takes float tensors");
    }
}

// The bytes of one GGUF row r (Hugging Face row `src`) of a quantized module.
void quantized_row(const Plan& p, const TensorView& w, const TensorView& s, const TensorView& b, int64_t src,
                   uint8_t* dst) {
    const int64_t g = p.out.type == io::kGgmlQ1_0 ? 128 : 32, groups = p.cols / g;
    const auto* words = static_cast<const uint8_t*>(w.data) + src * (w.dim(1) * 4);
    for (int64_t gi = 0; gi < groups; ++gi) {
        const float scale = load_float(s.dtype, s.data, src * groups + gi);
        const float bias = load_float(b.dtype, b.data, src * groups + gi);
        float d;
        bool ok;
        if (p.out.type == io::kGgmlQ1_0) {
            d = scale * 0.5f;
            ok = bias == -d;
        } else {
            d = scale;
            ok = bias == -128.0f * d;
        }
        if (!ok || round_fp16(d) != d)
            fail("convert", "'", p.hf, "' row ", src, " group ", gi, ": scale ", scale, " and bias ", bias,
                 p.out.type == io::kGgmlQ1_0 ? " are not the symmetric 1-bit form (bias = -scale / 2, scale / 2 a float16)"
                                             : " are not the symmetric 8-bit form (bias = -128 * scale, scale a float16)",
                 ", which GGUF holds; quantize from float weights with --mode symmetric");
        const uint16_t h = float_to_fp16(d);
        std::memcpy(dst, &h, 2);
        dst += 2;
        if (p.out.type == io::kGgmlQ1_0) {
            std::memcpy(dst, words + gi * 16, 16);  // the bit plane: value j at byte j / 8, bit j % 8
            dst += 16;
        } else {
            for (int j = 0; j < 32; ++j) *dst++ = static_cast<uint8_t>(words[gi * 32 + j] - 128);
        }
    }
}

}  // namespace

void folder_to_gguf(const std::string& src, const std::string& dst,
                    const std::function<void(size_t, size_t, const std::string&)>& progress) {
    if (fs::exists(dst)) fail("convert", "'", dst, "' exists; the output must be a new file");
    const model::ModelConfig c = model::ModelConfig::parse(read_file(src + "/config.json", "convert"), src + "/config.json");
    const std::string arch = c.arch == model::Arch::Qwen3 ? "qwen3" : "llama";
    if (c.rope_scaling.type != "default")
        fail("convert", src, ": rope_scaling '", c.rope_scaling.type, "' is not exported to GGUF");
    const io::Checkpoint ck = io::Checkpoint::open(src);
    std::vector<std::string> names = ck.names();
    // llama.cpp's order: the embedding, the layers in order, the final norm, the head
    auto key = [](const std::string& n) {
        if (n.rfind("model.embed_tokens", 0) == 0) return std::make_pair(-1L, n);
        if (n.rfind("model.layers.", 0) == 0) return std::make_pair(std::stol(n.substr(13)), n);
        return std::make_pair(1L << 40, n);
    };
    std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
    std::vector<Plan> plans;
    for (const std::string& n : names) {
        auto ends = [&](const char* s) { return n.size() > std::strlen(s) && n.compare(n.size() - std::strlen(s), std::strlen(s), s) == 0; };
        if (ends(".scales") || ends(".biases") || ends("rotary_emb.inv_freq")) continue;
        if (c.tie_word_embeddings && n.rfind("lm_head.", 0) == 0) continue;
        const std::string gg = gguf_name(n);
        if (gg.empty()) fail("convert", src, ": tensor '", n, "' has no GGUF name");
        const TensorView t = ck.get(n);
        Plan p;
        p.out.name = gg;
        const std::string module = n.substr(0, n.size() - 7);  // without ".weight"
        if (ends(".weight") && ck.contains(module + ".scales")) {
            const model::QuantSpec q = c.quant_for(module);
            const TensorView s = ck.get(module + ".scales");
            if (t.ndim() != 2 || s.ndim() != 2 || s.dim(0) != t.dim(0) || !q.quantized)
                fail("convert", src, ": '", module, "' has scales but no matching quantization in config.json");
            p.hf = module;
            p.quantized = true;
            p.rows = t.dim(0);
            p.cols = s.dim(1) * q.group_size;
            if (q.bits == 1 && q.group_size == 128) p.out.type = io::kGgmlQ1_0;
            else if (q.bits == 8 && q.group_size == 32) p.out.type = io::kGgmlQ8_0;
            else
                fail("convert", src, ": '", module, "' is ", q.bits, "-bit with groups of ", q.group_size,
                     "; GGUF export takes 1-bit g128 (Q1_0) and 8-bit g32 (Q8_0) modules in symmetric form and float ones");
            if (t.dim(1) * 32 != p.cols * q.bits) fail("convert", src, ": '", module, "' weight and scales disagree");
        } else {
            p.hf = n;
            if (t.ndim() != 1 && t.ndim() != 2) fail("convert", src, ": tensor '", n, "' has ", t.ndim(), " dimensions");
            p.rows = t.ndim() == 2 ? t.dim(0) : 0;
            p.cols = t.ndim() == 2 ? t.dim(1) : t.dim(0);
            p.out.type = dense_type(t.dtype, t.ndim() == 1, n);
        }
        int64_t heads = 0;
        if (permuted_in_gguf(arch, module + ".weight", c.num_attention_heads, c.num_key_value_heads, heads)) {
            if (p.rows % heads || (p.rows / heads) % 2) fail("convert", src, ": '", n, "' rows do not split into ", heads, " heads");
            p.heads = heads;
        }
        p.out.ne = p.rows ? std::vector<int64_t>{p.cols, p.rows} : std::vector<int64_t>{p.cols};
        const io::GgmlBlock blk = io::ggml_block(p.out.type, p.out.name);
        p.out.nbytes = static_cast<size_t>(std::max<int64_t>(p.rows, 1) * (p.cols / blk.values)) * blk.bytes;
        plans.push_back(std::move(p));
    }
    // Metadata: what llama.cpp's converter writes for these architectures.
    std::vector<std::pair<std::string, io::GgufValue>> kv;
    auto a = [&](const std::string& k) { return arch + "." + k; };
    kv.emplace_back("general.architecture", gguf_str(arch));
    kv.emplace_back("general.name", gguf_str(fs::path(src).filename().string()));
    kv.emplace_back("general.quantization_version", gguf_u32(2));
    kv.emplace_back(a("context_length"), gguf_u32(static_cast<uint64_t>(c.max_position_embeddings)));
    kv.emplace_back(a("embedding_length"), gguf_u32(static_cast<uint64_t>(c.hidden_size)));
    kv.emplace_back(a("block_count"), gguf_u32(static_cast<uint64_t>(c.num_hidden_layers)));
    kv.emplace_back(a("feed_forward_length"), gguf_u32(static_cast<uint64_t>(c.intermediate_size)));
    kv.emplace_back(a("attention.head_count"), gguf_u32(static_cast<uint64_t>(c.num_attention_heads)));
    kv.emplace_back(a("attention.head_count_kv"), gguf_u32(static_cast<uint64_t>(c.num_key_value_heads)));
    kv.emplace_back(a("attention.key_length"), gguf_u32(static_cast<uint64_t>(c.head_dim)));
    kv.emplace_back(a("attention.value_length"), gguf_u32(static_cast<uint64_t>(c.head_dim)));
    kv.emplace_back(a("rope.freq_base"), gguf_f32(c.rope_theta));
    if (arch == "llama") kv.emplace_back(a("rope.dimension_count"), gguf_u32(static_cast<uint64_t>(c.head_dim)));
    kv.emplace_back(a("attention.layer_norm_rms_epsilon"), gguf_f32(c.rms_norm_eps));
    kv.emplace_back(a("vocab_size"), gguf_u32(static_cast<uint64_t>(c.vocab_size)));
    TokenizerSource ts;
    ts.tokenizer_json = read_file(src + "/tokenizer.json", "convert");
    ts.tokenizer_config_json = read_file_if_exists(src + "/tokenizer_config.json").value_or("");
    ts.chat_template = read_file_if_exists(src + "/chat_template.jinja").value_or("");
    if (ts.chat_template.empty() && !ts.tokenizer_config_json.empty()) {
        const auto j = nlohmann::json::parse(ts.tokenizer_config_json, nullptr, false);
        if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
            ts.chat_template = j["chat_template"].get<std::string>();
    }
    ts.vocab_size = c.vocab_size;
    ts.bos = c.bos_token_id;
    ts.eos = c.eos_token_ids;
    for (auto& e : tokenizer_to_gguf(ts, src)) kv.push_back(std::move(e));

    std::vector<io::GgufTensor> specs;
    for (const Plan& p : plans) specs.push_back(p.out);
    io::GgufWriter w(dst, kv, specs);
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < plans.size(); ++i) {
        const Plan& p = plans[i];
        buf.assign(p.out.nbytes, 0);
        const size_t row_bytes = p.out.nbytes / static_cast<size_t>(std::max<int64_t>(p.rows, 1));
        auto src_row = [&](int64_t r) { return p.heads ? llama_row(r, p.rows, p.heads) : r; };
        if (p.quantized) {
            const TensorView wt = ck.get(p.hf + ".weight"), s = ck.get(p.hf + ".scales"), b = ck.get(p.hf + ".biases");
            for (int64_t r = 0; r < p.rows; ++r) quantized_row(p, wt, s, b, src_row(r), &buf[r * row_bytes]);
            for (const char* suffix : {".weight", ".scales", ".biases"}) ck.release(p.hf + suffix);
        } else {
            const TensorView t = ck.get(p.hf);
            const int64_t rows = std::max<int64_t>(p.rows, 1);
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t sr = p.rows ? src_row(r) : 0;
                if (p.out.type == io::kGgmlF32) {
                    auto* out = reinterpret_cast<float*>(&buf[r * row_bytes]);
                    for (int64_t k = 0; k < p.cols; ++k) out[k] = load_float(t.dtype, t.data, sr * p.cols + k);
                } else {
                    std::memcpy(&buf[r * row_bytes], static_cast<const uint8_t*>(t.data) + sr * row_bytes, row_bytes);
                }
            }
            ck.release(p.hf);
        }
        w.write(buf.data(), buf.size());
        if (progress) progress(i + 1, plans.size(), p.out.name);
    }
    if (fs::exists(dst)) fail("convert", "'", dst, "' appeared while converting");
    w.finish();
}

}  // namespace onebit::convert
