// Model internals shared by model.cpp (loading, the CPU forward) and cuda_forward.cpp (the GPU
// forward): the weights as loaded, per layer.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/convert.h"
#include "core/error.h"
#include "core/mmap.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/rope.h"
#include "ops/nn.h"
#include "ops/ops.h"

namespace onebit::model {

struct DeviceModel;  // cuda_forward.cpp

namespace detail {

// y [M, N] = x [M, K] w^T, quantized (prepared once) or dense.
struct Linear {
    int64_t n = 0, k = 0;
    std::optional<QuantizedMatrix> q;
    TensorView dense;
    size_t bytes = 0;
    // Device::cuda: the stored quantized tensors, copied to the GPU instead of prepared here
    TensorView w, scales, biases;
    int bits = 0, group_size = 0;

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
    // q / k / v and gate / up joined by rows (QuantizedMatrix::join) where their packed weights
    // allow: one matmul each, the parts' prepared copies then dropped (their q empty)
    Linear qkv, gate_up;
    std::vector<float> attn_norm, mlp_norm, q_norm, k_norm;
};

// Where tensors come from: a checkpoint folder or in-memory safetensors.
struct Source {
    std::string label;
    std::function<bool(const std::string&)> contains;
    std::function<TensorView(const std::string&)> get;
    std::function<void(const std::string&)> release;  // drop a tensor's mapped pages (may be empty)
};

inline std::string shape_str(const Shape& s) {
    return "[" + join(s) + "]";
}

}  // namespace detail

using detail::Embedding;
using detail::Layer;
using detail::Linear;
using detail::Source;
using detail::shape_str;

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
    std::shared_ptr<DeviceModel> device;  // Device::cuda: the weights on the GPU

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
            if (options.device == Device::cuda) {
                l.w = w, l.scales = sc, l.biases = bi, l.bits = bits, l.group_size = g;
                l.bytes = w.nbytes() + sc.nbytes() + bi.nbytes();
                bytes += l.bytes;
                return l;
            }
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

    // The parts' prepared weights joined into one Linear (QuantizedMatrix::join), their own
    // copies dropped; an empty Linear where they do not join.
    static Linear join(std::initializer_list<Linear*> parts) {
        std::vector<const QuantizedMatrix*> qs;
        for (const Linear* l : parts) {
            if (!l->q) return {};
            qs.push_back(&*l->q);
        }
        std::optional<QuantizedMatrix> joined = QuantizedMatrix::join(qs);
        if (!joined) return {};
        Linear j;
        j.n = joined->rows(), j.k = joined->cols();
        j.bytes = joined->stream_bytes();
        j.q = std::move(joined);
        for (Linear* l : parts) l->q.reset();
        return j;
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
            L.qkv = join({&L.q, &L.k, &L.v});
            L.gate_up = join({&L.gate, &L.up});
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

}  // namespace onebit::model
