// A decoder-only transformer loaded from a Hugging Face / MLX checkpoint folder: Qwen3 (per-head
// q_norm / k_norm) and Llama. Weights stay memory-mapped; quantized linears (any affine bits and
// group size, per module) go through QuantizedMatrix, dense ones (float32 / float16 / bfloat16)
// through nn::linear. Activations are float32.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/huge_pages.h"
#include "model/config.h"
#include "ops/nn.h"

namespace onebit::model {

// Where the forward pass runs.
enum class Device : uint8_t { cpu, cuda };

// Keys and values of every layer for up to `capacity` positions, in host memory (the CPU
// forward) or device memory (the CUDA forward), allocated by the first forward call.
struct KVCache {
    int64_t capacity = 0, n_layers = 0, n_kv = 0, head_dim = 0;
    int64_t length = 0;        // positions filled
    // CPU: each layer's keys and values in nn::attention's layout (nn::kv_cache_floats each)
    std::vector<float, HugePageAllocator<float>> k, v;
    // the GPU's (CUDA): [n_layers, capacity, n_kv, head_dim] each of k and v, bytes() in all
    std::shared_ptr<void> device;
    KVCache(int64_t capacity, const ModelConfig& c);
    void ensure_host();
    float* k_layer(int64_t layer) { return &k[layer * (k.size() / n_layers)]; }
    float* v_layer(int64_t layer) { return &v[layer * (v.size() / n_layers)]; }
    size_t bytes() const { return size_t(2 * n_layers * capacity * n_kv * head_dim) * sizeof(float); }
};

// The bytes of a checkpoint folder's files, for models held in memory (the embedded default).
using FileMap = std::map<std::string, std::string_view>;

// How the quantized layers compute (the caller's explicit choice; the default is exact-as-float).
struct LoadOptions {
    // Quantize activations to int8 per group for the quantized matmuls (QmmOptions::
    // int8_activations: faster int8 / lookup-table kernels, error bound in quant/reference.h).
    bool int8_activations = false;
    // Device::cuda: weights copied to the GPU, forward() runs there (CUDA builds). There,
    // int8_activations applies to the 1-bit layers (the tensor-core kernels); other bits compute
    // with float32 activations. The GPU forward keeps its activations and decode graph in the
    // model: one thread at a time (the CPU forward has no such state).
    Device device = Device::cpu;
};

// What Model::run hands back instead of the returned rows' logits when one of these is set:
// their greedy ids, or their top_k best candidates each ([rows, top_k], rank order).
struct RowChoice {
    std::vector<int32_t>* greedy = nullptr;
    int64_t top_k = 0;
    std::vector<nn::Candidate>* top = nullptr;
    std::span<const std::vector<nn::LogitEdit>> edits;  // per row, before the selection; or none
};

class Model {
  public:
    // Loads a folder (config.json, *.safetensors, optional generation_config.json). Errors:
    // "[model] <dir>: ..." naming the missing or misshapen tensor; "[config] ..." for the config.
    static Model load(const std::string& dir, const LoadOptions& options = {});
    // The same from files in memory (names as in a folder); the bytes must outlive the model.
    static Model load_memory(const FileMap& files, const std::string& label, const LoadOptions& options = {});
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const ModelConfig& config() const;
    Device device() const;
    // EOS ids of config.json and generation_config.json together.
    const std::vector<int32_t>& eos_ids() const;
    // generation_config.json's sampling defaults (all unset without the file).
    const GenerationDefaults& generation_defaults() const;
    // Bytes of the weights as stored (what decoding streams per token, embeddings excepted).
    size_t weight_bytes() const;

    // Runs tokens [T] at positions cache.length .. cache.length + T - 1, appends their keys and
    // values to the cache and writes logits [T, vocab] (all_logits) or [1, vocab] (last token).
    // Errors: "[model] ..." when the cache cannot hold the tokens or an id is out of range.
    void forward(std::span<const int32_t> tokens, KVCache& cache, std::vector<float>& logits,
                 bool all_logits = false) const;

    // One sequence of a batched forward: its new tokens and its own cache.
    struct SequenceInput {
        std::span<const int32_t> tokens;
        KVCache* cache = nullptr;
    };
    // forward for several sequences in one pass: their rows go through every matmul together
    // (M = all their tokens), each attends over its own cache. logits: [rows, vocab] with each
    // sequence's last token (all its tokens with all_logits), in order. The kernels are batch
    // invariant, so a sequence's logits are bit-identical to what forward() gives it alone.
    // On the GPU a decode batch (one token per sequence, caches of one capacity) runs as one
    // pass; other mixes one sequence at a time. Errors: as forward, and "[model] ..." when two
    // sequences share a cache.
    void forward_batch(std::span<const SequenceInput> seqs, std::vector<float>& logits,
                       bool all_logits = false) const;

    // forward / forward_batch followed by the greedy choice (nn::argmax) for each
    // sequence's last token: on the GPU the choice is made there and only the ids come back, not
    // the logits (600 KB a token for a Qwen3 vocabulary). ids: one per sequence.
    int32_t forward_greedy(std::span<const int32_t> tokens, KVCache& cache) const;
    void forward_batch_greedy(std::span<const SequenceInput> seqs, std::vector<int32_t>& ids) const;
    // forward_batch followed by each sequence's k largest logits after its edits (nn::edited;
    // edits: one list per sequence, or none at all) in nn::top_k's rank order, k clamped to the
    // vocabulary: top [sequences, k]. On the GPU the edits and the selection are made there and
    // only the candidates come back. For Sampler::top_k_only sampling.
    void forward_batch_top_k(std::span<const SequenceInput> seqs, int64_t k,
                             std::vector<nn::Candidate>& top,
                             std::span<const std::vector<nn::LogitEdit>> edits = {}) const;

    struct Impl;

  private:
    explicit Model(std::unique_ptr<Impl> impl);
    void run(std::span<const SequenceInput> seqs, std::vector<float>& logits, bool all_logits,
             const RowChoice& choice) const;
    std::unique_ptr<Impl> impl_;
};

}  // namespace onebit::model
