// Perplexity over a token sequence, llama-perplexity style. The tokens are cut into consecutive,
// non-overlapping windows of ctx_size tokens (a trailing part shorter than a window is left out);
// a model with a BOS token sees it before each window (so a window takes ctx_size + 1 positions).
// In each window every token after the first is scored given the tokens before it in that
// window: ctx_size - 1 scored tokens per window, BOS never scored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "model/model.h"

namespace onebit::engine {

struct PerplexityOptions {
    int64_t ctx_size = 512;
    int64_t batch = 512;             // tokens per forward pass
    std::optional<int32_t> bos;      // prepended to every window when set
};

struct PerplexityResult {
    int64_t windows = 0, scored = 0;
    double mean_nll = 0, nll_stderr = 0;  // natural log
    double ppl = 0, ppl_stderr = 0;       // exp(mean_nll), and its standard error (delta method)
};

// Called for each scored token with its log-probabilities over the vocabulary (log-softmax of the
// logits) and the token that came.
using ScoredToken = std::function<void(std::span<const float> logprobs, int32_t target)>;

// Errors: "[perplexity] ..." when ctx_size < 2 or the tokens fill no window.
PerplexityResult perplexity(const model::Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options,
                            const std::function<void(int64_t window, int64_t windows)>& progress = {},
                            const ScoredToken& on_token = {});

// The number of whole windows the tokens fill.
int64_t perplexity_windows(size_t n_tokens, int64_t ctx_size);

}  // namespace onebit::engine
