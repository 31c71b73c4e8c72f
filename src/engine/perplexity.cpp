#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace onebit::engine {

int64_t perplexity_windows(size_t n_tokens, int64_t ctx_size) {
    return ctx_size > 0 ? static_cast<int64_t>(n_tokens) / ctx_size : 0;
}

PerplexityResult perplexity(const model::Model& model, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const std::function<void(int64_t, int64_t)>& progress, const ScoredToken& on_token) {
    if (o.ctx_size < 2) fail("perplexity", "--ctx-size ", o.ctx_size, " must be at least 2");
    if (o.batch < 1) fail("perplexity", "--batch ", o.batch, " must be at least 1");
    const int64_t windows = perplexity_windows(tokens.size(), o.ctx_size);
    if (windows == 0)
        fail("perplexity", "the text has ", tokens.size(), " tokens: fewer than one window of ", o.ctx_size,
             " (--ctx-size)");
    const int64_t vocab = model.config().vocab_size;
    const int64_t lead = o.bos ? 1 : 0;  // positions before the window's first token
    PerplexityResult r;
    r.windows = windows;
    // Running sums of the negative log-likelihoods and their squares (for the standard error).
    double sum = 0, sum_sq = 0;
    std::vector<float> logits, lp(static_cast<size_t>(vocab));
    std::vector<int32_t> seq;
    for (int64_t w = 0; w < windows; ++w) {
        if (progress) progress(w, windows);
        seq.clear();
        if (o.bos) seq.push_back(*o.bos);
        seq.insert(seq.end(), tokens.begin() + w * o.ctx_size, tokens.begin() + (w + 1) * o.ctx_size);
        model::KVCache cache(static_cast<int64_t>(seq.size()), model.config());
        // position p's logits predict seq[p + 1]; the window's token i sits at position lead + i,
        // so tokens i = 1 .. ctx - 1 are scored from positions lead + i - 1
        for (size_t at = 0; at < seq.size(); at += static_cast<size_t>(o.batch)) {
            const size_t n = std::min(seq.size() - at, static_cast<size_t>(o.batch));
            model.forward(std::span<const int32_t>(seq.data() + at, n), cache, logits, /*all_logits=*/true);
            for (size_t j = 0; j < n; ++j) {
                const int64_t pos = static_cast<int64_t>(at + j);
                const int64_t next = pos + 1;  // the position of the token this row predicts
                if (next < lead + 1 || next >= static_cast<int64_t>(seq.size())) continue;
                const float* row = &logits[j * vocab];
                const float mx = *std::max_element(row, row + vocab);
                double z = 0;
                for (int64_t v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(row[v] - mx));
                const double lse = mx + std::log(z);
                const int32_t target = seq[static_cast<size_t>(next)];
                const double nll = lse - row[target];
                sum += nll;
                sum_sq += nll * nll;
                ++r.scored;
                if (on_token) {
                    for (int64_t v = 0; v < vocab; ++v) lp[v] = static_cast<float>(row[v] - lse);
                    on_token(lp, target);
                }
            }
        }
    }
    if (progress) progress(windows, windows);
    const double n = static_cast<double>(r.scored);
    r.mean_nll = sum / n;
    const double var = r.scored > 1 ? std::max(0.0, (sum_sq / n - r.mean_nll * r.mean_nll) * n / (n - 1)) : 0;
    r.nll_stderr = std::sqrt(var / n);
    r.ppl = std::exp(r.mean_nll);
    r.ppl_stderr = r.ppl * r.nll_stderr;
    return r;
}

}  // namespace onebit::engine
