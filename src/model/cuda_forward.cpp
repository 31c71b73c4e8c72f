// Model::forward on the GPU: the CPU forward's steps (model.cpp) with activations in device
// memory. The 1-bit layers' activations are packed once per input and shared by the matrices
// that read it (q / k / v, gate / up). Only the token ids and positions go up and the logits
// come down per call.
#include "model/cuda_forward.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <utility>

#include "backend/cuda/cuda.h"
#include "backend/cuda/nn.h"
#include "model/model_impl.h"

namespace onebit::model {

namespace {

cuda::Buffer upload(const void* p, size_t bytes) {
    cuda::Buffer b(bytes);
    b.upload(p, bytes);
    return b;
}

cuda::Buffer upload(const TensorView& t) { return upload(t.data, t.nbytes()); }

cuda::Buffer upload(const std::vector<float>& v) { return upload(v.data(), v.size() * 4); }

// Whether every bias of a quantized layer is -scale / 2 (the Bonsai form: the packed copy then
// holds the scales alone, 10% fewer bytes a token).
bool symmetric(const Linear& l) {
    const int64_t n = l.scales.numel();
    for (int64_t i = 0; i < n; ++i)
        if (load_float(l.biases.dtype, l.biases.data, i) !=
            -0.5f * load_float(l.scales.dtype, l.scales.data, i))
            return false;
    return true;
}

// Layers that read one input (q / k / v, gate / up) as one packed matrix over their rows
// concatenated, when each would be packed (1 bit, int8 activations, group size 128, 16-bit
// scales) in the same form; nullopt otherwise.
std::optional<cuda::PackedOneBit> fuse(std::initializer_list<const Linear*> parts, bool int8) {
    const Linear& first = **parts.begin();
    if (!int8) return std::nullopt;
    const bool sym = first.w.data && symmetric(first);
    int64_t n = 0;
    for (const Linear* l : parts) {
        if (!l->w.data || l->bits != 1 || l->k != first.k || l->group_size != first.group_size ||
            l->scales.dtype != first.scales.dtype ||
            !cuda::packable_one_bit(1, l->group_size, l->scales.dtype) || symmetric(*l) != sym)
            return std::nullopt;
        n += l->n;
    }
    const int64_t K = first.k, words = K / 32, groups = K / first.group_size;
    std::vector<uint32_t> w;
    std::vector<uint16_t> sc, bi;  // float16 / bfloat16 bits
    for (const Linear* l : parts) {
        w.insert(w.end(), l->w.ptr<uint32_t>(), l->w.ptr<uint32_t>() + l->n * words);
        const auto* s16 = static_cast<const uint16_t*>(l->scales.data);
        const auto* b16 = static_cast<const uint16_t*>(l->biases.data);
        sc.insert(sc.end(), s16, s16 + l->n * groups);
        bi.insert(bi.end(), b16, b16 + l->n * groups);
    }
    return cuda::pack_one_bit(w.data(), sc.data(), sym ? nullptr : bi.data(), first.scales.dtype, n,
                              K, first.group_size);
}

// A linear layer on the device: packed 1-bit (int8 activations), quantized as stored, or dense.
struct DeviceLinear {
    int64_t n = 0, k = 0;
    bool int8 = false;  // int8 activations (1-bit layers with LoadOptions::int8_activations)
    std::optional<cuda::PackedOneBit> packed;
    cuda::Buffer w, s, b;
    DType wdt = DType::float32, sdt = DType::float32;
    int bits = 0, g = 0;

    static DeviceLinear from(const Linear& l, bool int8_activations) {
        DeviceLinear d;
        d.n = l.n, d.k = l.k;
        if (!l.w.data) {  // dense
            d.w = upload(l.dense), d.wdt = l.dense.dtype;
            return d;
        }
        d.bits = l.bits, d.g = l.group_size, d.sdt = l.scales.dtype;
        d.int8 = int8_activations && l.bits == 1;
        if (d.int8 && cuda::packable_one_bit(1, l.group_size, l.scales.dtype)) {
            d.packed = cuda::pack_one_bit(l.w.ptr<uint32_t>(), l.scales.data,
                                          symmetric(l) ? nullptr : l.biases.data, l.scales.dtype,
                                          l.n, l.k, l.group_size);
            return d;
        }
        d.w = upload(l.w), d.s = upload(l.scales), d.b = upload(l.biases);
        return d;
    }

    // y [m, n] = x [m, k] w^T; xa: x's packed activations when already made (packed layers).
    void forward(const float* x, int64_t m, float* y,
                 const cuda::PackedActivations* xa = nullptr) const {
        if (packed) {
            if (xa)
                cuda::qmm_packed_one_bit(*packed, *xa, y, DType::float32);
            else
                cuda::qmm_packed_one_bit(*packed, x, DType::float32, m, y, DType::float32);
            return;
        }
        if (!bits) return cuda::nn::linear_dense(x, m, k, w.data(), wdt, n, y);
        quant::QmmArgs a{x,    static_cast<const uint32_t*>(w.data()),
                         s.data(), b.data(),
                         y,    DType::float32,
                         sdt,  DType::float32,
                         m,    n,
                         k,    g,
                         bits, true};
        cuda::quantized_matmul(a, int8 ? cuda::Precision::int8 : cuda::Precision::float32);
    }
};

// Packs x once for the packed layers that share it (nullopt when none is packed).
std::optional<cuda::PackedActivations> share(const DeviceLinear& l, const float* x, int64_t m) {
    if (!l.packed) return std::nullopt;
    return cuda::pack_activations(x, DType::float32, m, l.k);
}

struct DeviceLayer {
    DeviceLinear q, k, v, o, gate, up, down;  // q / k / v, gate / up empty when fused
    std::optional<cuda::PackedOneBit> qkv, gate_up;
    cuda::Buffer attn_norm, mlp_norm, q_norm, k_norm;
};

struct DeviceCache {
    cuda::Buffer k, v;  // [n_layers, capacity, n_kv, head_dim]
};

}  // namespace

struct DeviceModel {
    cuda::Buffer embed_w, embed_s, embed_b;
    DType embed_dt = DType::float32, embed_sdt = DType::float32;
    int embed_bits = 0, embed_g = 0;
    std::vector<DeviceLayer> layers;
    bool fused = false;  // every layer's matmuls packed: the fused decode path
    cuda::Buffer final_norm, inv_freq;
    DeviceLinear lm_head;
    // Activations for up to `rows` tokens, grown on demand (at least 64: a decode batch).
    int64_t rows = 0;
    // chosen: greedy ids; top: [rows, k] candidates' logits, then their ids; edits: the
    // sampler's logit edits (nn::RowEdit)
    cuda::Buffer x, x2, h, q, k, v, att, o, g, u, logits, chosen, top, edits;
    // Per row, uploaded together each call: ids, positions (int32), then the row's cache
    // pointers for keys and values (what nn::CacheRows reads).
    cuda::Buffer meta;
    // Decode steps (one token per sequence) captured as graphs, one per batch size; each valid
    // for the buffers, scratch and cache capacity it was recorded with.
    struct Step {
        cuda::Graph graph;
        int64_t rows = 0, capacity = 0, splits = 0;
        uint64_t scratch = 0;
    };
    std::map<int64_t, std::unique_ptr<Step>> steps;
};

std::shared_ptr<DeviceModel> upload_to_device(const Model::Impl& m) {
    auto d = std::make_shared<DeviceModel>();
    const bool int8 = m.options.int8_activations;
    d->embed_w = upload(m.embed.weight), d->embed_dt = m.embed.weight.dtype;
    if (m.embed.scales.data) {
        d->embed_s = upload(m.embed.scales), d->embed_b = upload(m.embed.biases);
        d->embed_sdt = m.embed.scales.dtype, d->embed_bits = m.embed.bits;
        d->embed_g = m.embed.group_size;
    }
    for (const Layer& L : m.layers) {
        DeviceLayer D;
        D.qkv = fuse({&L.q, &L.k, &L.v}, int8);
        D.gate_up = fuse({&L.gate, &L.up}, int8);
        if (!D.qkv)
            D.q = DeviceLinear::from(L.q, int8), D.k = DeviceLinear::from(L.k, int8),
            D.v = DeviceLinear::from(L.v, int8);
        if (!D.gate_up) D.gate = DeviceLinear::from(L.gate, int8), D.up = DeviceLinear::from(L.up, int8);
        D.o = DeviceLinear::from(L.o, int8), D.down = DeviceLinear::from(L.down, int8);
        D.attn_norm = upload(L.attn_norm), D.mlp_norm = upload(L.mlp_norm);
        if (!L.q_norm.empty()) D.q_norm = upload(L.q_norm), D.k_norm = upload(L.k_norm);
        d->layers.push_back(std::move(D));
    }
    // the fused path's qk_norm_rope_store takes head sizes that are multiples of 32 up to 256
    const int64_t hd = m.config.head_dim;
    d->fused = !d->layers.empty() && hd % 32 == 0 && hd <= 256;
    for (const DeviceLayer& L : d->layers)
        d->fused = d->fused && L.qkv && L.gate_up && L.o.packed && L.down.packed;
    d->final_norm = upload(m.final_norm);
    d->inv_freq = upload(m.rope.inv_freq);
    d->lm_head = DeviceLinear::from(m.lm_head, int8);
    cuda::prepare_prefill();  // cuBLAS loaded with the model, not in the first prompt's time
    cuda::synchronize();
    return d;
}

void forward_device(const Model::Impl& m, std::span<const Model::SequenceInput> seqs,
                    std::vector<float>& logits, bool all_logits, const RowChoice& choice) {
    DeviceModel& D = *m.device;
    // the sampler's logit edits go up before the pass (an upload waits for the stream)
    int64_t n_edits = 0;
    if (choice.top && !choice.edits.empty()) {
        std::vector<cuda::nn::RowEdit> edits;
        for (size_t r = 0; r < choice.edits.size(); ++r)
            for (const nn::LogitEdit& e : choice.edits[r])
                edits.push_back({static_cast<int32_t>(r), e.id, e.repeat, e.minus});
        n_edits = static_cast<int64_t>(edits.size());
        const size_t bytes = edits.size() * sizeof(cuda::nn::RowEdit);
        if (n_edits && D.edits.size() < bytes) D.edits = cuda::Buffer(bytes);
        if (n_edits) D.edits.upload(edits.data(), bytes);
    }
    const ModelConfig& c = m.config;
    const int64_t d = c.hidden_size, hd = c.head_dim, nh = c.num_attention_heads,
                  nkv = c.num_key_value_heads, ff = c.intermediate_size, V = c.vocab_size;
    const int64_t capacity = seqs[0].cache->capacity;
    int64_t t = 0;
    for (const Model::SequenceInput& s : seqs) {
        t += static_cast<int64_t>(s.tokens.size());
        KVCache& cache = *s.cache;
        if (cache.capacity != capacity) fail("model", "a GPU batch needs caches of one capacity");
        if (!cache.device) {
            auto dc = std::make_shared<DeviceCache>();
            dc->k = cuda::Buffer(cache.bytes() / 2), dc->v = cuda::Buffer(cache.bytes() / 2);
            cache.device = dc;
        }
    }
    if (seqs.size() > 1 && t != static_cast<int64_t>(seqs.size()))
        fail("model", "a GPU batch of several sequences takes one token each");
    if (t > D.rows) {
        D.rows = std::max<int64_t>(t, 64);
        auto f = [&](int64_t n) { return cuda::Buffer(size_t(D.rows * n) * 4); };
        D.x = f(d), D.x2 = f(d), D.h = f(d), D.q = f(nh * hd), D.k = f(nkv * hd), D.v = f(nkv * hd);
        D.att = f(nh * hd), D.o = f(d), D.g = f(ff), D.u = f(ff), D.meta = f(6);
        D.logits = f(V), D.chosen = f(1);
    }
    // [ids t][positions t] int32, then [k pointers t][v pointers t]
    std::vector<int32_t> meta(size_t(6 * D.rows));
    int32_t* ids_h = meta.data();
    int32_t* pos_h = ids_h + D.rows;
    auto* kp_h = reinterpret_cast<float**>(meta.data() + 2 * D.rows);
    auto* vp_h = kp_h + D.rows;
    int64_t r = 0;
    for (const Model::SequenceInput& s : seqs) {
        auto& dc = *std::static_pointer_cast<DeviceCache>(s.cache->device);
        for (size_t i = 0; i < s.tokens.size(); ++i, ++r) {
            ids_h[r] = s.tokens[i];
            pos_h[r] = static_cast<int32_t>(s.cache->length + static_cast<int64_t>(i));
            kp_h[r] = static_cast<float*>(dc.k.data());
            vp_h[r] = static_cast<float*>(dc.v.data());
        }
    }
    D.meta.upload(meta.data(), meta.size() * 4);
    // One sequence: its last token's logits (or all); a decode batch: every row's.
    const int64_t rows = all_logits || seqs.size() > 1 ? t : 1;
    // A decode step (a token per sequence) splits long contexts over many blocks; prefill does
    // not (nn.h: AttentionSplit). The split's block count is fixed in a captured graph.
    int64_t longest = 0;
    for (const Model::SequenceInput& s : seqs) longest = std::max(longest, s.cache->length + 1);
    // a decode step: one token per sequence (each row the only one of the call in its cache)
    const bool decode_step = t == static_cast<int64_t>(seqs.size());
    const cuda::nn::AttentionSplit split{decode_step ? longest : 0};
    const int64_t splits = (split.longest + cuda::nn::kAttentionChunk - 1) / cuda::nn::kAttentionChunk;
    // A prompt's prefill past a decode batch (one sequence, t > kDecodeMaxM) runs its attention on
    // cuBLAS when the prefill mode is gemm (cuda.h PrefillMode; the packed matmuls follow it too).
    const bool prefill_gemm = seqs.size() == 1 && t > cuda::kDecodeMaxM &&
                              cuda::prefill_mode() == cuda::PrefillMode::gemm;
    const int64_t p0 = seqs[0].cache->length;
    auto& dc0 = *std::static_pointer_cast<DeviceCache>(seqs[0].cache->device);
    // Everything below reads the step's position from device memory, so for T = 1 it is the same
    // work at every position: captured once as a graph, replayed after.
    auto work = [&] {
        auto F = [](cuda::Buffer& b) { return static_cast<float*>(b.data()); };
        const auto* ids = static_cast<const int32_t*>(D.meta.data());
        const auto* dpos = ids + D.rows;
        const auto* kp = reinterpret_cast<float* const*>(ids + 2 * D.rows);
        const auto* vp = kp + D.rows;
        float *x = F(D.x), *h = F(D.h), *q = F(D.q), *k = F(D.k), *v = F(D.v), *att = F(D.att),
              *o = F(D.o), *g = F(D.g), *u = F(D.u);
        if (D.embed_bits)
            cuda::nn::embed_quantized(static_cast<const uint32_t*>(D.embed_w.data()), D.embed_s.data(),
                                      D.embed_b.data(), D.embed_sdt, ids, t, d, D.embed_g,
                                      D.embed_bits, x);
        else
            cuda::nn::embed_dense(D.embed_w.data(), D.embed_dt, ids, t, d, x);
        const float eps = static_cast<float>(c.rms_norm_eps);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        const int64_t layer_floats = capacity * nkv * hd;
        if (D.fused) {
            // every layer packed: norms, SwiGLU and the residual adds fused with the packing of
            // the next matmul's input; the residual of each down projection is added at the
            // next norm
            // the residual stream alternates between x and x2: a norm_pack that adds reads one
            // and writes the other
            float* cur = x;
            float* next = F(D.x2);
            for (size_t l = 0; l < D.layers.size(); ++l) {
                const DeviceLayer& L = D.layers[l];
                const auto xa = cuda::nn::norm_pack(cur, l ? o : nullptr, l ? next : nullptr,
                                                    static_cast<const float*>(L.attn_norm.data()),
                                                    t, d, eps);
                if (l) std::swap(cur, next);
                const cuda::OutSegment qkv[3] = {{q, nh * hd}, {k, nkv * hd}, {v, nkv * hd}};
                cuda::qmm_packed_one_bit(*L.qkv, xa, qkv, 3, DType::float32);
                const cuda::nn::CacheRows kv{kp, vp, static_cast<int64_t>(l) * layer_floats};
                const auto* qn = static_cast<const float*>(L.q_norm.data());
                const auto* kn = static_cast<const float*>(L.k_norm.data());
                const auto* inv_freq = static_cast<const float*>(D.inv_freq.data());
                const float factor = m.rope.attention_factor;
                // a decode step's attention kernel norms, rotates and stores q / k itself
                const bool fused_attention = !prefill_gemm && decode_step && hd == 128 && L.o.packed;
                if (!fused_attention)
                    cuda::nn::qk_norm_rope_store(q, k, v, qn, kn, t, nh, nkv, hd, eps, dpos,
                                                 inv_freq, factor, kv);
                if (prefill_gemm) {
                    cuda::nn::attention_prefill(q, t, nh, nkv, hd,
                                                F(dc0.k) + static_cast<int64_t>(l) * layer_floats,
                                                F(dc0.v) + static_cast<int64_t>(l) * layer_floats,
                                                p0, att, scale);
                    L.o.forward(att, t, o);
                } else if (fused_attention) {
                    // q / k norms, RoPE, KV store and attention in one kernel, packing for o
                    const auto xo = cuda::nn::attention_qk_pack(q, k, v, qn, kn, t, nh, nkv, hd,
                                                                eps, dpos, inv_freq, factor, kv,
                                                                capacity, att, scale, split);
                    L.o.forward(att, t, o, &xo);
                } else if (hd == 128 && L.o.packed) {  // a head per group: attention packs for o
                    const auto xo = cuda::nn::attention_pack(q, t, nh, nkv, hd, kv, dpos, capacity,
                                                             att, scale, split);
                    L.o.forward(att, t, o, &xo);
                } else {
                    cuda::nn::attention(q, t, nh, nkv, hd, kv, dpos, capacity, att, scale, split);
                    L.o.forward(att, t, o);
                }
                const auto xm = cuda::nn::norm_pack(
                    cur, o, next, static_cast<const float*>(L.mlp_norm.data()), t, d, eps);
                std::swap(cur, next);
                const auto xd = cuda::nn::gate_up_silu_pack(*L.gate_up, xm, ff, g, u);
                L.down.forward(g, t, o, &xd);
            }
            cuda::nn::add(cur, o, t * d);
            x = cur;  // the final norm reads the stream where it ended
        } else {
            for (size_t l = 0; l < D.layers.size(); ++l) {
                const DeviceLayer& L = D.layers[l];
                cuda::nn::rms_norm(x, static_cast<const float*>(L.attn_norm.data()), t, d, eps, h);
                if (L.qkv) {  // one launch: q [T, nh * hd], k and v [T, nkv * hd]
                    const cuda::OutSegment seg[3] = {{q, nh * hd}, {k, nkv * hd}, {v, nkv * hd}};
                    cuda::qmm_packed_one_bit(*L.qkv, cuda::pack_activations(h, DType::float32, t, d),
                                             seg, 3, DType::float32);
                } else {
                    const auto xa = share(L.q, h, t);
                    L.q.forward(h, t, q, xa ? &*xa : nullptr);  // [T, nh * hd]
                    L.k.forward(h, t, k, xa ? &*xa : nullptr);  // [T, nkv * hd]
                    L.v.forward(h, t, v, xa ? &*xa : nullptr);
                }
                if (c.arch == Arch::Qwen3) {
                    cuda::nn::rms_norm(q, static_cast<const float*>(L.q_norm.data()), t * nh, hd, eps, q);
                    cuda::nn::rms_norm(k, static_cast<const float*>(L.k_norm.data()), t * nkv, hd, eps, k);
                }
                const auto* inv_freq = static_cast<const float*>(D.inv_freq.data());
                cuda::nn::rope(q, t, nh, hd, dpos, inv_freq, m.rope.attention_factor);
                cuda::nn::rope(k, t, nkv, hd, dpos, inv_freq, m.rope.attention_factor);
                const cuda::nn::CacheRows kv{kp, vp, static_cast<int64_t>(l) * layer_floats};
                cuda::nn::kv_store(k, v, kv, dpos, t, nkv * hd);
                if (prefill_gemm)
                    cuda::nn::attention_prefill(q, t, nh, nkv, hd,
                                                F(dc0.k) + static_cast<int64_t>(l) * layer_floats,
                                                F(dc0.v) + static_cast<int64_t>(l) * layer_floats,
                                                p0, att, scale);
                else
                    cuda::nn::attention(q, t, nh, nkv, hd, kv, dpos, capacity, att, scale, split);
                L.o.forward(att, t, o);
                cuda::nn::add(x, o, t * d);
                cuda::nn::rms_norm(x, static_cast<const float*>(L.mlp_norm.data()), t, d, eps, h);
                if (L.gate_up) {  // one launch: gate and up [T, ff]
                    const cuda::OutSegment seg[2] = {{g, ff}, {u, ff}};
                    cuda::qmm_packed_one_bit(*L.gate_up, cuda::pack_activations(h, DType::float32, t, d),
                                             seg, 2, DType::float32);
                } else {
                    const auto xg = share(L.gate, h, t);
                    L.gate.forward(h, t, g, xg ? &*xg : nullptr);  // [T, ff]
                    L.up.forward(h, t, u, xg ? &*xg : nullptr);
                }
                cuda::nn::silu_mul(g, u, t * ff, g);
                L.down.forward(g, t, o);
                cuda::nn::add(x, o, t * d);
            }
        }
        cuda::nn::rms_norm(x + (t - rows) * d, static_cast<const float*>(D.final_norm.data()), rows,
                           d, eps, h);
        D.lm_head.forward(h, rows, F(D.logits));
    };
    if (t == static_cast<int64_t>(seqs.size()) && rows == t) {
        // a decode step (one token per sequence): replayed from its graph when one matches
        std::unique_ptr<DeviceModel::Step>& step = D.steps[t];
        if (!step) step = std::make_unique<DeviceModel::Step>();
        if (!step->graph.ready() || step->rows != D.rows || step->capacity != capacity ||
            step->splits != splits || step->scratch != cuda::scratch_generation()) {
            work();  // run plainly first: scratch reaches its size, kernel attributes are set
            cuda::synchronize();
            step->graph.capture(work);
            step->rows = D.rows, step->capacity = capacity, step->splits = splits;
            step->scratch = cuda::scratch_generation();
        } else {
            step->graph.launch();
        }
    } else {
        work();
    }
    for (const Model::SequenceInput& s : seqs) s.cache->length += static_cast<int64_t>(s.tokens.size());
    if (choice.greedy) {
        auto* ids = static_cast<int32_t*>(D.chosen.data());
        cuda::nn::argmax_rows(static_cast<const float*>(D.logits.data()), rows, V, ids);
        choice.greedy->resize(static_cast<size_t>(rows));
        cuda::synchronize();
        D.chosen.download(choice.greedy->data(), choice.greedy->size() * 4);
        return;
    }
    if (choice.top) {
        const int64_t k = choice.top_k, n = rows * k;
        if (D.top.size() < static_cast<size_t>(n) * 8) D.top = cuda::Buffer(static_cast<size_t>(n) * 8);
        auto* vals = static_cast<float*>(D.top.data());
        auto* ids = reinterpret_cast<int32_t*>(vals + n);
        if (n_edits)
            cuda::nn::apply_edits(static_cast<float*>(D.logits.data()), V,
                                  static_cast<const cuda::nn::RowEdit*>(D.edits.data()), n_edits);
        cuda::nn::top_k_rows(static_cast<const float*>(D.logits.data()), rows, V, k, vals, ids);
        std::vector<uint32_t> both(static_cast<size_t>(2 * n));  // values [n], then ids [n]
        cuda::synchronize();
        D.top.download(both.data(), both.size() * 4);  // one copy for both halves
        choice.top->resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
            (*choice.top)[i] = {std::bit_cast<float>(both[i]), static_cast<int32_t>(both[n + i])};
        for (int64_t r = 0; r < rows; ++r)  // the device hands them over unordered
            std::sort(choice.top->begin() + r * k, choice.top->begin() + (r + 1) * k, nn::ranks_before);
        return;
    }
    logits.resize(static_cast<size_t>(rows * V));
    cuda::synchronize();
    D.logits.download(logits.data(), logits.size() * 4);
}

}  // namespace onebit::model
