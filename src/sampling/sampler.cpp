#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "ops/nn.h"

namespace onebit::sampling {

int32_t argmax(std::span<const float> logits) {
    return nn::argmax(logits.data(), static_cast<int64_t>(logits.size()));
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
    if (!(p.temperature >= 0)) fail("sampling", "temperature ", p.temperature, " must be >= 0");
    if (p.top_k < 0) fail("sampling", "top-k ", p.top_k, " must be >= 0");
    if (!(p.top_p > 0 && p.top_p <= 1)) fail("sampling", "top-p ", p.top_p, " must be in (0, 1]");
    if (!(p.min_p >= 0 && p.min_p < 1)) fail("sampling", "min-p ", p.min_p, " must be in [0, 1)");
    if (!(p.repeat_penalty > 0)) fail("sampling", "repeat penalty ", p.repeat_penalty, " must be > 0");
    if (p.repeat_last_n < 0) fail("sampling", "repeat-last-n ", p.repeat_last_n, " must be >= 0");
    if (!(p.presence_penalty >= -2 && p.presence_penalty <= 2))
        fail("sampling", "presence penalty ", p.presence_penalty, " must be in [-2, 2]");
    if (!(p.frequency_penalty >= -2 && p.frequency_penalty <= 2))
        fail("sampling", "frequency penalty ", p.frequency_penalty, " must be in [-2, 2]");
}

bool Sampler::greedy() const {
    return p_.temperature == 0 && (p_.repeat_penalty == 1.0f || p_.repeat_last_n == 0) &&
           p_.presence_penalty == 0 && p_.frequency_penalty == 0;
}

std::vector<nn::LogitEdit> Sampler::edits(std::span<const int32_t> history,
                                          std::span<const int32_t> generated, int64_t vocab) const {
    std::vector<nn::LogitEdit> out;
    std::unordered_map<int32_t, size_t> at;  // id -> its edit
    auto edit = [&](int32_t id) -> nn::LogitEdit& {
        const auto [it, added] = at.try_emplace(id, out.size());
        if (added) out.push_back({id, 1.0f, 0.0f});
        return out[it->second];
    };
    if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
        const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
        for (size_t i = from; i < history.size(); ++i)
            if (history[i] >= 0 && history[i] < vocab) edit(history[i]).repeat = p_.repeat_penalty;
    }
    if (p_.presence_penalty != 0 || p_.frequency_penalty != 0) {
        std::unordered_map<int32_t, int> count;
        for (int32_t id : generated)
            if (id >= 0 && id < vocab) ++count[id];
        for (const auto& [id, n] : count)
            edit(id).minus = p_.presence_penalty + p_.frequency_penalty * static_cast<float>(n);
    }
    return out;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history,
                        std::span<const int32_t> generated) {
    for (const nn::LogitEdit& e : edits(history, generated, static_cast<int64_t>(logits.size())))
        logits[e.id] = nn::edited(logits[e.id], e);
    if (p_.temperature == 0) return argmax(logits);
    const auto n = static_cast<int64_t>(logits.size());
    if (p_.top_k > 0 && p_.top_k < n) {  // what the model's selection hands sample_top()
        cand_.resize(static_cast<size_t>(p_.top_k));
        nn::top_k(logits.data(), n, p_.top_k, cand_.data());
        return pick(cand_.size());
    }
    cand_.clear();
    for (int64_t i = 0; i < n; ++i) cand_.push_back({logits[i], static_cast<int32_t>(i)});
    std::sort(cand_.begin(), cand_.end(), nn::ranks_before);
    return pick(cand_.size());
}

int32_t Sampler::top_k_only() const { return p_.temperature > 0 ? p_.top_k : 0; }

int32_t Sampler::sample_top(std::span<const nn::Candidate> top) {
    if (top_k_only() == 0) fail("sampling", "sample_top needs top-k sampling (temperature > 0)");
    if (top.empty() || top.size() > static_cast<size_t>(p_.top_k))
        fail("sampling", "sample_top got ", top.size(), " candidates for top-k ", p_.top_k);
    cand_.assign(top.begin(), top.end());
    return pick(cand_.size());
}

int32_t Sampler::pick(size_t n) {
    cand_.resize(n);
    // Softmax at the temperature, then top-p (smallest prefix reaching p) and min-p.
    const float mx = cand_[0].logit;
    std::vector<double> prob(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp((cand_[i].logit - mx) / p_.temperature);
    for (double& x : prob) x /= sum;
    size_t keep = n;
    if (p_.top_p < 1) {
        double acc = 0;
        for (size_t i = 0; i < n; ++i) {
            acc += prob[i];
            if (acc >= p_.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (p_.min_p > 0) {
        size_t k = 1;
        while (k < keep && prob[k] >= p_.min_p * prob[0]) ++k;
        keep = k;
    }
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += prob[i];
    std::uniform_real_distribution<double> u(0.0, total);
    double r = u(rng_), acc = 0;
    for (size_t i = 0; i < keep; ++i) {
        acc += prob[i];
        if (r < acc) return cand_[i].id;
    }
    return cand_[keep - 1].id;
}

}  // namespace onebit::sampling
