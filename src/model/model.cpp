// Loading: every tensor is checked against the config before anything runs; a quantized module is
// recognised by its ".scales" tensor, its bits and group size read from the shapes and checked
// against the config's quantization entry. Forward: the Hugging Face Llama / Qwen3 computation in
// float32 activations (RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU).
#include "model/model.h"

#include "model/cuda_forward.h"
#include "model/model_impl.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/convert.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/mmap.h"
#include "io/safetensors.h"
#include "model/rope.h"
#include "ops/nn.h"
#include "ops/ops.h"

namespace onebit::model {

KVCache::KVCache(int64_t cap, const ModelConfig& c)
    : capacity(cap), n_layers(c.num_hidden_layers), n_kv(c.num_key_value_heads), head_dim(c.head_dim) {}

void KVCache::ensure_host() {
    if (!k.empty()) return;
    const size_t n = static_cast<size_t>(n_layers * nn::kv_cache_floats(capacity, n_kv, head_dim));
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
    if (options.device == Device::cuda) impl->device = upload_to_device(*impl);
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
    if (options.device == Device::cuda) impl->device = upload_to_device(*impl);
    return Model(std::move(impl));
}

const ModelConfig& Model::config() const { return impl_->config; }
Device Model::device() const { return impl_->options.device; }
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

// out [rows, n] = silu(gate row) * up row (nn::silu_mul's arithmetic, element by element), split
// over the thread pool: a decode step's one row in chunks, a prompt's rows together.
template <typename G, typename U>
void swiglu(int64_t rows, int64_t n, G gate, U up, float* out) {
    parallel_for(rows * n, 512, [&](int64_t b, int64_t e) {
        while (b < e) {
            const int64_t r = b / n, c = b % n, len = std::min(e - b, n - c);
            nn::silu_mul(gate(r) + c, up(r) + c, len, out + r * n + c);
            b += len;
        }
    });
}

}  // namespace
size_t Model::weight_bytes() const { return impl_->bytes; }

void Model::forward(std::span<const int32_t> tokens, KVCache& cache, std::vector<float>& logits,
                    bool all_logits) const {
    const SequenceInput seq{tokens, &cache};
    forward_batch(std::span<const SequenceInput>(&seq, 1), logits, all_logits);
}

void Model::forward_batch(std::span<const SequenceInput> seqs, std::vector<float>& logits,
                          bool all_logits) const {
    run(seqs, logits, all_logits, RowChoice{});
}

int32_t Model::forward_greedy(std::span<const int32_t> tokens, KVCache& cache) const {
    const SequenceInput seq{tokens, &cache};
    std::vector<int32_t> ids;
    forward_batch_greedy(std::span<const SequenceInput>(&seq, 1), ids);
    return ids[0];
}

void Model::forward_batch_greedy(std::span<const SequenceInput> seqs,
                                 std::vector<int32_t>& ids) const {
    std::vector<float> logits;
    run(seqs, logits, false, RowChoice{&ids});
}

void Model::forward_batch_top_k(std::span<const SequenceInput> seqs, int64_t k,
                                std::vector<nn::Candidate>& top,
                                std::span<const std::vector<nn::LogitEdit>> edits) const {
    if (k < 1) fail("model", "top-k of ", k, " candidates");
    if (!edits.empty() && edits.size() != seqs.size())
        fail("model", edits.size(), " lists of logit edits for ", seqs.size(), " sequences");
    for (const auto& list : edits) {
        std::vector<int32_t> ids;
        for (const nn::LogitEdit& e : list) {
            if (e.id < 0 || e.id >= impl_->config.vocab_size)
                fail("model", "a logit edit for token ", e.id, ", outside the vocabulary");
            ids.push_back(e.id);
        }
        std::sort(ids.begin(), ids.end());
        if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
            fail("model", "two logit edits for token ", *std::adjacent_find(ids.begin(), ids.end()));
    }
    std::vector<float> logits;
    run(seqs, logits, false,
        RowChoice{nullptr, std::min<int64_t>(k, impl_->config.vocab_size), &top, edits});
}

void Model::run(std::span<const SequenceInput> seqs, std::vector<float>& logits, bool all_logits,
                const RowChoice& choice) const {
    const Impl& m = *impl_;
    const ModelConfig& c = m.config;
    if (seqs.empty()) fail("model", "forward needs at least one sequence");
    // Rows of the batch: every sequence's tokens one after another; pos[r] its position and
    // first[s] the first row of sequence s.
    std::vector<int32_t> ids, pos;
    std::vector<int64_t> first;
    for (const SequenceInput& s : seqs) {
        const int64_t n = static_cast<int64_t>(s.tokens.size());
        if (n == 0) fail("model", "forward needs at least one token per sequence");
        if (!s.cache) fail("model", "forward needs a KV cache per sequence");
        for (const SequenceInput& o : seqs)
            if (&o != &s && o.cache == s.cache) fail("model", "two sequences of one batch share a KV cache");
        const KVCache& cache = *s.cache;
        if (cache.length + n > cache.capacity)
            fail("model", "the context holds ", cache.capacity, " tokens; ", cache.length, " used and ", n,
                 " more do not fit");
        first.push_back(static_cast<int64_t>(ids.size()));
        for (int64_t i = 0; i < n; ++i) {
            if (s.tokens[i] < 0 || s.tokens[i] >= c.vocab_size)
                fail("model", "token id ", s.tokens[i], " is outside the vocabulary (", c.vocab_size, ")");
            ids.push_back(s.tokens[i]);
            pos.push_back(static_cast<int32_t>(cache.length + i));
        }
    }
    first.push_back(static_cast<int64_t>(ids.size()));
    if (m.device) {
        // A decode batch (one token per sequence, one cache capacity) runs as one pass; anything
        // else one sequence at a time.
        bool decode_batch = true;
        for (const SequenceInput& s : seqs)
            decode_batch = decode_batch && s.tokens.size() == 1 && s.cache->capacity == seqs[0].cache->capacity;
        if (decode_batch || seqs.size() == 1)
            return forward_device(m, seqs, logits, all_logits, choice);
        std::vector<float> part;
        std::vector<int32_t> chosen;
        std::vector<nn::Candidate> top;
        logits.clear();
        if (choice.greedy) choice.greedy->clear();
        if (choice.top) choice.top->clear();
        for (size_t i = 0; i < seqs.size(); ++i) {
            const SequenceInput& s = seqs[i];
            const RowChoice one{choice.greedy ? &chosen : nullptr, choice.top_k, choice.top ? &top : nullptr,
                                choice.edits.empty() ? choice.edits : choice.edits.subspan(i, 1)};
            forward_device(m, std::span<const SequenceInput>(&s, 1), part, all_logits, one);
            if (choice.greedy) choice.greedy->insert(choice.greedy->end(), chosen.begin(), chosen.end());
            else if (choice.top) choice.top->insert(choice.top->end(), top.begin(), top.end());
            else logits.insert(logits.end(), part.begin(), part.end());
        }
        return;
    }
    const int64_t t = static_cast<int64_t>(ids.size());
    const int64_t d = c.hidden_size, hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
    const int64_t ff = c.intermediate_size;
    for (const SequenceInput& s : seqs) s.cache->ensure_host();
    std::vector<float> x(t * d), h(t * d), q(t * nh * hd), k(t * nkv * hd), v(t * nkv * hd), att(t * nh * hd),
        o(t * d), g(t * ff), u, joined;  // u: up apart; joined: a joined matmul's rows
    const int64_t wq = nh * hd, wk = nkv * hd, wqkv = wq + 2 * wk;
    const auto joined_size = static_cast<size_t>(t * std::max(wqkv, 2 * ff));
    for (int64_t i = 0; i < t; ++i) m.embed.row(ids[i], &x[i * d]);  // [T, d]
    const float eps = static_cast<float>(c.rms_norm_eps);
    for (size_t l = 0; l < m.layers.size(); ++l) {
        const Layer& L = m.layers[l];
        const auto li = static_cast<int64_t>(l);
        nn::rms_norm(x.data(), L.attn_norm.data(), t, d, eps, h.data());
        if (L.qkv.q) {  // [T, wqkv], split into q, k and v
            joined.resize(joined_size);
            L.qkv.forward(h.data(), t, joined.data());
            for (int64_t i = 0; i < t; ++i) {
                const float* r = &joined[i * wqkv];
                std::copy_n(r, wq, &q[i * wq]);
                std::copy_n(r + wq, wk, &k[i * wk]);
                std::copy_n(r + wq + wk, wk, &v[i * wk]);
            }
        } else {
            L.q.forward(h.data(), t, q.data());  // [T, nh * hd]
            L.k.forward(h.data(), t, k.data());  // [T, nkv * hd]
            L.v.forward(h.data(), t, v.data());
        }
        if (c.arch == Arch::Qwen3) {
            nn::rms_norm(q.data(), L.q_norm.data(), t * nh, hd, eps, q.data());
            nn::rms_norm(k.data(), L.k_norm.data(), t * nkv, hd, eps, k.data());
        }
        nn::rope(q.data(), t, nh, hd, pos.data(), m.rope.inv_freq, m.rope.attention_factor);
        nn::rope(k.data(), t, nkv, hd, pos.data(), m.rope.inv_freq, m.rope.attention_factor);
        for (size_t si = 0; si < seqs.size(); ++si) {
            KVCache& cache = *seqs[si].cache;
            const int64_t r0 = first[si], n = first[si + 1] - r0;
            for (int64_t i = r0; i < r0 + n; ++i)
                nn::store_kv(cache.k_layer(li), cache.v_layer(li), cache.capacity, pos[i], nkv, hd,
                             &k[i * nkv * hd], &v[i * nkv * hd]);
            nn::attention(&q[r0 * nh * hd], n, nh, nkv, hd, cache.capacity, cache.k_layer(li),
                          cache.v_layer(li), &pos[r0],
                          &att[r0 * nh * hd]);
        }
        L.o.forward(att.data(), t, o.data());
        for (int64_t i = 0; i < t * d; ++i) x[i] += o[i];
        nn::rms_norm(x.data(), L.mlp_norm.data(), t, d, eps, h.data());
        if (L.gate_up.q) {  // [T, 2 ff]: each row's gate, then its up
            joined.resize(joined_size);
            L.gate_up.forward(h.data(), t, joined.data());
            swiglu(t, ff, [&](int64_t r) { return &joined[r * 2 * ff]; },
                   [&](int64_t r) { return &joined[r * 2 * ff + ff]; }, g.data());
        } else {
            u.resize(static_cast<size_t>(t * ff));
            L.gate.forward(h.data(), t, g.data());  // [T, ff]
            L.up.forward(h.data(), t, u.data());
            swiglu(t, ff, [&](int64_t r) { return &g[r * ff]; }, [&](int64_t r) { return &u[r * ff]; },
                   g.data());
        }
        L.down.forward(g.data(), t, o.data());
        for (int64_t i = 0; i < t * d; ++i) x[i] += o[i];
    }
    // The rows that get logits: all, or each sequence's last.
    std::vector<int64_t> rows;
    for (size_t si = 0; si < seqs.size(); ++si) {
        seqs[si].cache->length += first[si + 1] - first[si];
        if (all_logits)
            for (int64_t r = first[si]; r < first[si + 1]; ++r) rows.push_back(r);
        else
            rows.push_back(first[si + 1] - 1);
    }
    const auto nr = static_cast<int64_t>(rows.size());
    std::vector<float> last(static_cast<size_t>(nr * d));  // [rows, d]
    for (int64_t i = 0; i < nr; ++i) std::copy_n(&x[rows[i] * d], d, &last[i * d]);
    nn::rms_norm(last.data(), m.final_norm.data(), nr, d, eps, h.data());
    logits.resize(static_cast<size_t>(nr * c.vocab_size));
    m.lm_head.forward(h.data(), nr, logits.data());
    if (choice.greedy) {
        choice.greedy->resize(static_cast<size_t>(nr));
        for (int64_t i = 0; i < nr; ++i)
            (*choice.greedy)[i] = nn::argmax(logits.data() + i * c.vocab_size, c.vocab_size);
    } else if (choice.top) {
        choice.top->resize(static_cast<size_t>(nr * choice.top_k));
        for (int64_t i = 0; i < nr; ++i) {
            float* row = logits.data() + i * c.vocab_size;
            if (!choice.edits.empty())
                for (const nn::LogitEdit& e : choice.edits[i]) row[e.id] = nn::edited(row[e.id], e);
            nn::top_k(row, c.vocab_size, choice.top_k, choice.top->data() + i * choice.top_k);
        }
    }
}

}  // namespace onebit::model
