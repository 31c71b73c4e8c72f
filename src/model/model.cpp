// Loading: every tensor is checked against the config before anything runs; a quantized module is
// recognised by its ".scales" tensor, its bits and group size read from the shapes and checked
// against the config's quantization entry. Forward: the Hugging Face Llama / Qwen3 computation in
// float32 activations (RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU).
#include "model/model.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/convert.h"
#include "core/error.h"
#include "core/mmap.h"
#include "io/safetensors.h"
#include "model/rope.h"
#include "ops/nn.h"
#include "ops/ops.h"

namespace onebit::model {

namespace {

// y [M, N] = x [M, K] w^T, quantized (prepared once) or dense.
struct Linear {
    int64_t n = 0, k = 0;
    std::optional<QuantizedMatrix> q;
    TensorView dense;
    size_t bytes = 0;

    void forward(const float* x, int64_t m, float* y) const {
        if (q) {
            TensorView xv(DType::float32, {m, k}, const_cast<float*>(x));
            TensorView yv(DType::float32, {m, n}, y);
            quantized_matmul_into(xv, *q, yv);
        } else {
            nn::linear(x, m, k, dense, y);
        }
    }
};

// Embedding rows by id: dense rows converted, or quantized rows dequantized.
struct Embedding {
    int64_t n = 0, k = 0;
    TensorView weight, scales, biases;  // quantized when scales.data
    int bits = 0, group_size = 0;
    void row(int32_t id, float* out) const {
        if (!scales.data) {
            for (int64_t i = 0; i < k; ++i) out[i] = load_float(weight.dtype, weight.data, id * k + i);
            return;
        }
        const int64_t wcols = weight.dim(1), scols = scales.dim(1);
        TensorView w(weight.dtype, {1, wcols}, weight.ptr<uint32_t>() + id * wcols);
        const size_t ss = dtype_size(scales.dtype);
        TensorView s(scales.dtype, {1, scols}, static_cast<char*>(scales.data) + id * scols * ss);
        TensorView b(biases.dtype, {1, scols}, static_cast<char*>(biases.data) + id * scols * ss);
        Tensor tmp = dequantize(w, s, b, group_size, bits);
        for (int64_t i = 0; i < k; ++i) out[i] = load_float(tmp.dtype(), tmp.data(), i);
    }
};

struct Layer {
    Linear q, k, v, o, gate, up, down;
    std::vector<float> attn_norm, mlp_norm, q_norm, k_norm;
};

// Where tensors come from: a checkpoint folder or in-memory safetensors.
struct Source {
    std::string label;
    std::function<bool(const std::string&)> contains;
    std::function<TensorView(const std::string&)> get;
    std::function<void(const std::string&)> release;  // drop a tensor's mapped pages (may be empty)
};

std::string shape_str(const Shape& s) {
    return "[" + join(s) + "]";
}

}  // namespace

struct Model::Impl {
    ModelConfig config;
    LoadOptions options;
    std::vector<int32_t> eos;
    GenerationDefaults generation;
    // Storage the views point into.
    std::optional<io::Checkpoint> checkpoint;
    std::vector<std::unique_ptr<io::SafetensorsFile>> memory_files;
    Embedding embed;
    std::vector<Layer> layers;
    std::vector<float> final_norm;
    Linear lm_head;
    RopeTable rope;
    size_t bytes = 0;

    template <typename... A>
    [[noreturn]] void error(const Source& s, A&&... a) const {
        fail("model", s.label, ": ", std::forward<A>(a)...);
    }

    TensorView need(const Source& s, const std::string& name, const Shape& shape) {
        if (!s.contains(name)) error(s, "tensor '", name, "' is missing");
        TensorView t = s.get(name);
        if (t.shape != shape)
            error(s, "tensor '", name, "' has shape ", shape_str(t.shape), ", expected ", shape_str(shape));
        return t;
    }

    std::vector<float> norm(const Source& s, const std::string& name, int64_t n) {
        TensorView t = need(s, name, {n});
        if (!is_float(t.dtype)) error(s, "tensor '", name, "' has dtype ", dtype_name(t.dtype), ", expected a float type");
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[i] = load_float(t.dtype, t.data, i);
        return v;
    }

    // A module's weight [n, k]: quantized when "<module>.scales" exists.
    void quant_shape(const Source& s, const std::string& module, int64_t n, int64_t k, int& bits, int& g,
                     TensorView& w, TensorView& sc, TensorView& bi) {
        const std::string wn = module + ".weight";
        if (!s.contains(wn)) error(s, "tensor '", wn, "' is missing");
        w = s.get(wn);
        sc = s.get(module + ".scales");
        if (!s.contains(module + ".biases")) error(s, "tensor '", module, ".biases' is missing");
        bi = s.get(module + ".biases");
        if (w.dtype != DType::uint32) error(s, "tensor '", wn, "' is quantized but has dtype ", dtype_name(w.dtype));
        if (w.ndim() != 2 || w.dim(0) != n || (w.dim(1) * 32) % k != 0)
            error(s, "tensor '", wn, "' has shape ", shape_str(w.shape), ", which is no bit width of [", n, ", ", k, "]");
        bits = static_cast<int>(w.dim(1) * 32 / k);
        if (sc.ndim() != 2 || sc.dim(0) != n || sc.dim(1) == 0 || k % sc.dim(1) != 0)
            error(s, "tensor '", module, ".scales' has shape ", shape_str(sc.shape), " for [", n, ", ", k, "]");
        g = static_cast<int>(k / sc.dim(1));
        if (bi.shape != sc.shape) error(s, "tensor '", module, ".biases' has shape ", shape_str(bi.shape), ", expected ", shape_str(sc.shape));
        const QuantSpec spec = config.quant_for(module);
        if (spec.quantized && (spec.bits != bits || spec.group_size != g))
            error(s, "'", module, "' is stored with bits ", bits, ", group size ", g, " but config.json says bits ",
                  spec.bits, ", group size ", spec.group_size);
    }

    Linear linear(const Source& s, const std::string& module, int64_t n, int64_t k) {
        Linear l;
        l.n = n, l.k = k;
        if (s.contains(module + ".scales")) {
            int bits = 0, g = 0;
            TensorView w, sc, bi;
            quant_shape(s, module, n, k, bits, g, w, sc, bi);
            try {
                QmmOptions qo;
                qo.int8_activations = options.int8_activations;
                l.q = QuantizedMatrix::prepare(w, sc, bi, g, bits, qo);
            } catch (const Error& e) {
                error(s, "'", module, "': ", e.what());
            }
            l.bytes = l.q->stream_bytes();
            // The packed copy serves every call, so the original pages need not stay resident.
            if (l.q->packed() && s.release)
                for (const char* part : {".weight", ".scales", ".biases"}) s.release(module + part);
        } else {
            l.dense = need(s, module + ".weight", {n, k});
            if (!is_float(l.dense.dtype))
                error(s, "tensor '", module, ".weight' has dtype ", dtype_name(l.dense.dtype), ", expected a float type");
            l.bytes = l.dense.nbytes();
        }
        bytes += l.bytes;
        return l;
    }

    void load(const Source& s) {
        const ModelConfig& c = config;
        const int64_t d = c.hidden_size, hd = c.head_dim;
        // Embeddings.
        embed.n = c.vocab_size, embed.k = d;
        if (s.contains("model.embed_tokens.scales")) {
            quant_shape(s, "model.embed_tokens", c.vocab_size, d, embed.bits, embed.group_size, embed.weight,
                        embed.scales, embed.biases);
        } else {
            embed.weight = need(s, "model.embed_tokens.weight", {c.vocab_size, d});
            if (!is_float(embed.weight.dtype)) error(s, "tensor 'model.embed_tokens.weight' is not a float type");
        }
        for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            Layer L;
            L.attn_norm = norm(s, p + "input_layernorm.weight", d);
            L.mlp_norm = norm(s, p + "post_attention_layernorm.weight", d);
            L.q = linear(s, p + "self_attn.q_proj", c.num_attention_heads * hd, d);
            L.k = linear(s, p + "self_attn.k_proj", c.num_key_value_heads * hd, d);
            L.v = linear(s, p + "self_attn.v_proj", c.num_key_value_heads * hd, d);
            L.o = linear(s, p + "self_attn.o_proj", d, c.num_attention_heads * hd);
            if (c.arch == Arch::Qwen3) {
                L.q_norm = norm(s, p + "self_attn.q_norm.weight", hd);
                L.k_norm = norm(s, p + "self_attn.k_norm.weight", hd);
            }
            for (const char* b : {"q_proj", "k_proj", "v_proj", "o_proj"})
                if (s.contains(p + "self_attn." + b + ".bias"))
                    error(s, "tensor '", p, "self_attn.", b, ".bias': attention biases are not supported");
            L.gate = linear(s, p + "mlp.gate_proj", c.intermediate_size, d);
            L.up = linear(s, p + "mlp.up_proj", c.intermediate_size, d);
            L.down = linear(s, p + "mlp.down_proj", d, c.intermediate_size);
            layers.push_back(std::move(L));
        }
        final_norm = norm(s, "model.norm.weight", d);
        if (!c.tie_word_embeddings || s.contains("lm_head.weight")) {
            lm_head = linear(s, "lm_head", c.vocab_size, d);
        } else {
            lm_head = linear(s, "model.embed_tokens", c.vocab_size, d);  // tied
        }
        rope = rope_table(c);
    }
};

KVCache::KVCache(int64_t cap, const ModelConfig& c)
    : capacity(cap), n_layers(c.num_hidden_layers), n_kv(c.num_key_value_heads), head_dim(c.head_dim) {
    const size_t n = static_cast<size_t>(n_layers * capacity * n_kv * head_dim);
    k.assign(n, 0.0f);
    v.assign(n, 0.0f);
}

namespace {

// The EOS ids of config.json and generation_config.json together, and the latter's defaults.
void read_generation(Model::Impl& m, const std::string& gen_json, const std::string& label);

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& dir, const LoadOptions& options) {
    if (!std::filesystem::is_directory(dir)) fail("model", "'", dir, "' is not a directory");
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->config = ModelConfig::parse(read_file(dir + "/config.json", "model"), dir + "/config.json");
    read_generation(*impl, read_file_if_exists(dir + "/generation_config.json").value_or(""), dir);
    impl->checkpoint = io::Checkpoint::open(dir);
    const io::Checkpoint* ck = &*impl->checkpoint;
    Source s{dir, [ck](const std::string& n) { return ck->contains(n); },
             [ck](const std::string& n) { return ck->get(n); },
             [ck](const std::string& n) { ck->release(n); }};
    impl->load(s);
    return Model(std::move(impl));
}

Model Model::load_memory(const FileMap& files, const std::string& label, const LoadOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    auto file = [&](const char* name, bool required) -> std::string {
        auto it = files.find(name);
        if (it == files.end()) {
            if (required) fail("model", label, ": has no ", name);
            return {};
        }
        return std::string(it->second);
    };
    impl->config = ModelConfig::parse(file("config.json", true), label + "/config.json");
    read_generation(*impl, file("generation_config.json", false), label);
    auto it = files.find("model.safetensors");
    if (it == files.end()) fail("model", label, ": has no model.safetensors");
    impl->memory_files.push_back(std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::from_bytes(
        label + "/model.safetensors", reinterpret_cast<const uint8_t*>(it->second.data()), it->second.size())));
    const io::SafetensorsFile* f = impl->memory_files.back().get();
    Source s{label, [f](const std::string& n) { return f->contains(n); },
             [f](const std::string& n) { return f->get(n); }, nullptr};
    impl->load(s);
    return Model(std::move(impl));
}

const ModelConfig& Model::config() const { return impl_->config; }
const std::vector<int32_t>& Model::eos_ids() const { return impl_->eos; }
const GenerationDefaults& Model::generation_defaults() const { return impl_->generation; }

namespace {

void read_generation(Model::Impl& m, const std::string& gen_json, const std::string& label) {
    m.eos = m.config.eos_token_ids;
    if (gen_json.empty()) return;
    m.generation = GenerationDefaults::parse(gen_json, label + "/generation_config.json");
    for (int32_t id : m.generation.eos_token_ids)
        if (std::find(m.eos.begin(), m.eos.end(), id) == m.eos.end()) m.eos.push_back(id);
}

}  // namespace
size_t Model::weight_bytes() const { return impl_->bytes; }

void Model::forward(std::span<const int32_t> tokens, KVCache& cache, std::vector<float>& logits,
                    bool all_logits) const {
    const Impl& m = *impl_;
    const ModelConfig& c = m.config;
    const int64_t t = static_cast<int64_t>(tokens.size());
    if (t == 0) fail("model", "forward needs at least one token");
    if (cache.length + t > cache.capacity)
        fail("model", "the context holds ", cache.capacity, " tokens; ", cache.length, " used and ", t,
             " more do not fit");
    const int64_t d = c.hidden_size, hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
    const int64_t ff = c.intermediate_size;
    std::vector<int32_t> pos(static_cast<size_t>(t));
    for (int64_t i = 0; i < t; ++i) {
        if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
            fail("model", "token id ", tokens[i], " is outside the vocabulary (", c.vocab_size, ")");
        pos[i] = static_cast<int32_t>(cache.length + i);
    }
    std::vector<float> x(t * d), h(t * d), q(t * nh * hd), k(t * nkv * hd), v(t * nkv * hd), att(t * nh * hd),
        o(t * d), g(t * ff), u(t * ff);
    for (int64_t i = 0; i < t; ++i) m.embed.row(tokens[i], &x[i * d]);  // [T, d]
    const float eps = static_cast<float>(c.rms_norm_eps);
    for (size_t l = 0; l < m.layers.size(); ++l) {
        const Layer& L = m.layers[l];
        nn::rms_norm(x.data(), L.attn_norm.data(), t, d, eps, h.data());
        L.q.forward(h.data(), t, q.data());  // [T, nh * hd]
        L.k.forward(h.data(), t, k.data());  // [T, nkv * hd]
        L.v.forward(h.data(), t, v.data());
        if (c.arch == Arch::Qwen3) {
            nn::rms_norm(q.data(), L.q_norm.data(), t * nh, hd, eps, q.data());
            nn::rms_norm(k.data(), L.k_norm.data(), t * nkv, hd, eps, k.data());
        }
        nn::rope(q.data(), t, nh, hd, pos.data(), m.rope.inv_freq, m.rope.attention_factor);
        nn::rope(k.data(), t, nkv, hd, pos.data(), m.rope.inv_freq, m.rope.attention_factor);
        for (int64_t i = 0; i < t; ++i) {
            std::copy_n(&k[i * nkv * hd], nkv * hd, cache.k_at(static_cast<int64_t>(l), pos[i]));
            std::copy_n(&v[i * nkv * hd], nkv * hd, cache.v_at(static_cast<int64_t>(l), pos[i]));
        }
        nn::attention(q.data(), t, nh, nkv, hd, cache.k_at(static_cast<int64_t>(l), 0),
                      cache.v_at(static_cast<int64_t>(l), 0), pos.data(), att.data());
        L.o.forward(att.data(), t, o.data());
        for (int64_t i = 0; i < t * d; ++i) x[i] += o[i];
        nn::rms_norm(x.data(), L.mlp_norm.data(), t, d, eps, h.data());
        L.gate.forward(h.data(), t, g.data());  // [T, ff]
        L.up.forward(h.data(), t, u.data());
        nn::silu_mul(g.data(), u.data(), t * ff, g.data());
        L.down.forward(g.data(), t, o.data());
        for (int64_t i = 0; i < t * d; ++i) x[i] += o[i];
    }
    cache.length += t;
    const int64_t rows = all_logits ? t : 1;
    const float* last = &x[(t - rows) * d];
    nn::rms_norm(last, m.final_norm.data(), rows, d, eps, h.data());
    logits.resize(static_cast<size_t>(rows * c.vocab_size));
    m.lm_head.forward(h.data(), rows, logits.data());
}

}  // namespace onebit::model
