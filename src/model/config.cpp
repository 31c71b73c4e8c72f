#include "model/config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"

namespace onebit::model {

namespace {

using Json = nlohmann::json;

struct Reader {
    const Json& j;
    const std::string& source;
    template <typename... A>
    [[noreturn]] void error(A&&... a) const {
        fail("config", source, ": ", std::forward<A>(a)...);
    }
    bool has(const char* k) const { return j.contains(k) && !j.at(k).is_null(); }
    int64_t integer(const char* k, std::optional<int64_t> dflt = std::nullopt) const {
        if (!has(k)) {
            if (dflt) return *dflt;
            error("'", k, "' is missing");
        }
        const Json& v = j.at(k);
        if (!v.is_number_integer() || v.get<int64_t>() < 0)
            error("'", k, "' must be a non-negative integer, got ", v.dump());
        return v.get<int64_t>();
    }
    double number(const char* k, double dflt) const {
        if (!has(k)) return dflt;
        if (!j.at(k).is_number()) error("'", k, "' must be a number, got ", j.at(k).dump());
        return j.at(k).get<double>();
    }
    bool boolean(const char* k, bool dflt) const {
        if (!has(k)) return dflt;
        if (!j.at(k).is_boolean()) error("'", k, "' must be true or false");
        return j.at(k).get<bool>();
    }
};

std::vector<int32_t> id_list(const Reader& r, const char* key) {
    std::vector<int32_t> ids;
    if (!r.has(key)) return ids;
    const Json& v = r.j.at(key);
    auto one = [&](const Json& x) {
        if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX)
            r.error("'", key, "' must hold token ids, got ", x.dump());
        ids.push_back(x.get<int32_t>());
    };
    if (v.is_array())
        for (const Json& x : v) one(x);
    else one(v);
    return ids;
}

QuantSpec read_spec(const Reader& r, const Json& v, const std::string& where) {
    QuantSpec s;
    if (v.is_boolean()) {
        if (v.get<bool>()) r.error(where, ": true is not a quantization spec");
        return s;  // false: dense
    }
    if (!v.is_object()) r.error(where, " must be an object or false");
    const Reader q{v, r.source};
    s.quantized = true;
    s.bits = static_cast<int>(q.integer("bits"));
    s.group_size = static_cast<int>(q.integer("group_size"));
    if (q.has("mode") && v.at("mode") != "affine")
        r.error(where, ": quantization mode ", v.at("mode").dump(), " is not supported; supported: affine");
    const int bits_ok[] = {1, 2, 3, 4, 5, 6, 8};
    if (std::find(std::begin(bits_ok), std::end(bits_ok), s.bits) == std::end(bits_ok))
        r.error(where, ": bits ", s.bits, " is not supported; supported: 1, 2, 3, 4, 5, 6, 8");
    if (s.group_size != 32 && s.group_size != 64 && s.group_size != 128)
        r.error(where, ": group_size ", s.group_size, " is not supported; supported: 32, 64, 128");
    return s;
}

Json parse_object(const std::string& text, const std::string& source) {
    const Json j = parse_json<Json>(text, "config", source);
    if (!j.is_object()) fail("config", source, ": the top level is not an object");
    return j;
}

}  // namespace

QuantSpec ModelConfig::quant_for(const std::string& module) const {
    auto it = quant_overrides.find(module);
    return it != quant_overrides.end() ? it->second : quant_default;
}

ModelConfig ModelConfig::parse(const std::string& text, const std::string& source) {
    const Json j = parse_object(text, source);
    const Reader r{j, source};
    ModelConfig c;
    try {
        c.model_type = r.has("model_type") ? j.at("model_type").get<std::string>() : "";
        if (c.model_type == "qwen3") c.arch = Arch::Qwen3;
        else if (c.model_type == "llama") c.arch = Arch::Llama;
        else
            r.error("model_type '", c.model_type, "' is not supported; supported: qwen3, llama");
        c.hidden_size = r.integer("hidden_size");
        c.intermediate_size = r.integer("intermediate_size");
        c.num_hidden_layers = r.integer("num_hidden_layers");
        c.num_attention_heads = r.integer("num_attention_heads");
        c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
        if (c.num_attention_heads == 0 || c.hidden_size == 0 || c.num_key_value_heads == 0)
            r.error("hidden_size, num_attention_heads and num_key_value_heads must be positive");
        c.head_dim = r.integer("head_dim", c.hidden_size / c.num_attention_heads);
        if (c.head_dim == 0 || c.head_dim % 2) r.error("head_dim ", c.head_dim, " must be even and positive");
        if (c.num_attention_heads % c.num_key_value_heads)
            r.error("num_attention_heads ", c.num_attention_heads, " is not a multiple of num_key_value_heads ",
                    c.num_key_value_heads);
        c.vocab_size = r.integer("vocab_size");
        c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
        c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
        c.rope_theta = r.number("rope_theta", 10000);
        c.tie_word_embeddings = r.boolean("tie_word_embeddings", c.arch == Arch::Qwen3 ? false : false);
        if (r.has("torch_dtype")) c.torch_dtype = j.at("torch_dtype").get<std::string>();
        if (r.has("bos_token_id")) {
            auto ids = id_list(r, "bos_token_id");
            if (!ids.empty()) c.bos_token_id = ids[0];
        }
        c.eos_token_ids = id_list(r, "eos_token_id");
        if (r.has("rope_scaling")) {
            const Json& rs = j.at("rope_scaling");
            const Reader s{rs, source};
            if (!rs.is_object()) r.error("rope_scaling must be an object or null");
            RopeScaling& o = c.rope_scaling;
            o.type = rs.contains("rope_type") ? rs.at("rope_type").get<std::string>()
                     : rs.contains("type")    ? rs.at("type").get<std::string>()
                                              : "default";
            if (o.type != "default" && o.type != "linear" && o.type != "yarn" && o.type != "llama3")
                r.error("rope_scaling type '", o.type, "' is not supported; supported: default, linear, yarn, llama3");
            o.factor = s.number("factor", 1.0);
            o.original_max_position_embeddings =
                s.integer("original_max_position_embeddings", c.max_position_embeddings);
            o.beta_fast = s.number("beta_fast", 32);
            o.beta_slow = s.number("beta_slow", 1);
            if (s.has("attention_factor")) o.attention_factor = s.number("attention_factor", 1);
            if (s.has("mscale")) o.mscale = s.number("mscale", 1);
            if (s.has("mscale_all_dim")) o.mscale_all_dim = s.number("mscale_all_dim", 0);
            o.truncate = s.boolean("truncate", true);
            o.low_freq_factor = s.number("low_freq_factor", 1);
            o.high_freq_factor = s.number("high_freq_factor", 4);
        }
        const char* qkey = r.has("quantization") ? "quantization" : r.has("quantization_config") ? "quantization_config" : nullptr;
        if (qkey) {
            const Json& q = j.at(qkey);
            if (!q.is_object()) r.error("'", qkey, "' must be an object");
            c.quant_default = read_spec(r, q, qkey);
            for (auto it = q.begin(); it != q.end(); ++it) {
                if (it.key() == "bits" || it.key() == "group_size" || it.key() == "mode" ||
                    it.key() == "quant_method")
                    continue;
                c.quant_overrides[it.key()] = read_spec(r, it.value(), std::string(qkey) + "." + it.key());
            }
        }
    } catch (const Json::exception& e) {
        fail("config", source, ": unexpected content: ", e.what());
    }
    return c;
}

GenerationDefaults GenerationDefaults::parse(const std::string& text, const std::string& source) {
    const Json j = parse_object(text, source);
    const Reader r{j, source};
    GenerationDefaults g;
    g.eos_token_ids = id_list(r, "eos_token_id");
    auto opt = [&](const char* k, std::optional<double>& out) {
        if (r.has(k)) out = r.number(k, 0);
    };
    opt("temperature", g.temperature);
    opt("top_p", g.top_p);
    opt("min_p", g.min_p);
    opt("repetition_penalty", g.repetition_penalty);
    if (r.has("top_k")) g.top_k = r.integer("top_k");
    if (r.has("do_sample")) g.do_sample = r.boolean("do_sample", false);
    return g;
}

}  // namespace onebit::model
