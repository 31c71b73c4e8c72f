// Next-token choice from logits: greedy (temperature 0: the first largest logit), or sampling
// with repetition, presence and frequency penalties, temperature, top-k, top-p and min-p in llama.cpp's order, from a
// seeded generator (the same seed and inputs give the same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ops/nn.h"

namespace onebit::sampling {

struct SamplerParams {
    float temperature = 0.8f;
    int32_t top_k = 40;          // 0: off
    float top_p = 0.95f;         // 1: off
    float min_p = 0.05f;         // 0: off
    float repeat_penalty = 1.0f; // 1: off; applied to the last repeat_last_n tokens
    int32_t repeat_last_n = 64;
    // OpenAI's penalties over the generated tokens: logit -= presence * (count > 0) +
    // frequency * count. 0: off; each in [-2, 2].
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    uint64_t seed = 0;
};

class Sampler {
  public:
    // Errors: "[sampling] ..." for out-of-range parameters.
    explicit Sampler(const SamplerParams& p);
    // logits [vocab] (modified in place); history: the tokens so far (prompt and generated);
    // generated: the generated ones (for the presence and frequency penalties).
    int32_t sample(std::span<float> logits, std::span<const int32_t> history,
                   std::span<const int32_t> generated = {});
    // Whether sample() is argmax of the logits as given: temperature 0 and no penalties.
    bool greedy() const;
    // The penalties sample() applies for this history, as edits of single logits (ids outside
    // [0, vocab) dropped; none without penalties).
    std::vector<nn::LogitEdit> edits(std::span<const int32_t> history, std::span<const int32_t> generated,
                                     int64_t vocab) const;
    // k > 0 when sample() depends only on the k largest logits after edits() (temperature > 0,
    // top-k k): then sample_top() on those (nn::top_k) chooses exactly what sample() would, and
    // the logits need not be copied off the GPU. 0 otherwise.
    int32_t top_k_only() const;
    // sample() from the top_k_only() largest edited logits in nn::ranks_before order (fewer when
    // the vocabulary is smaller). Errors: "[sampling] ..." when top_k_only() is 0 or top is empty.
    int32_t sample_top(std::span<const nn::Candidate> top);

  private:
    // The draw from cand_[0, n) (in rank order) after temperature, top-p and min-p.
    int32_t pick(size_t n);
    SamplerParams p_;
    std::mt19937_64 rng_;
    std::vector<nn::Candidate> cand_;
};

// nn::argmax over logits (non-empty).
int32_t argmax(std::span<const float> logits);

}  // namespace onebit::sampling
