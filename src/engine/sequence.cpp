#include "engine/sequence.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace onebit::engine {

bool StopFilter::push(std::string_view piece) {
    pending_ += piece;
    size_t cut = std::string::npos;
    for (const std::string& s : stop_)
        if (!s.empty()) cut = std::min(cut, pending_.find(s));
    if (cut != std::string::npos) {
        emit(std::string_view(pending_).substr(0, cut));
        pending_.clear();
        return true;
    }
    size_t hold = 0;  // longest suffix of pending_ that is a prefix of a stop string
    for (const std::string& s : stop_)
        for (size_t n = s.empty() ? 0 : std::min(s.size() - 1, pending_.size()); n > hold; --n)
            if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
                hold = n;
                break;
            }
    emit(std::string_view(pending_).substr(0, pending_.size() - hold));
    pending_.erase(0, pending_.size() - hold);
    return false;
}

void StopFilter::flush() {
    emit(pending_);
    pending_.clear();
}

void check_prompt(size_t prompt_tokens, int64_t capacity) {
    if (prompt_tokens == 0) fail("generate", "the prompt has no tokens");
    if (static_cast<int64_t>(prompt_tokens) > capacity)
        fail("generate", "the prompt has ", prompt_tokens, " tokens; the context holds ", capacity,
             " (--ctx-size)");
}

Sequence::Sequence(const model::Model& model, const tok::Tokenizer& tokenizer, std::vector<int32_t> prompt,
                   const GenerateOptions& options, int64_t capacity, TextSink on_text, TokenSink on_token)
    : model_(model),
      tokenizer_(tokenizer),
      prompt_(std::move(prompt)),
      options_(options),
      capacity_(capacity),
      on_token_(std::move(on_token)),
      sampler_(options.sampler),
      stream_(tokenizer),
      filter_(options.stop, std::move(on_text)) {
    check_prompt(prompt_.size(), capacity_);
    history_ = prompt_;
    stats_.prompt_tokens = static_cast<int64_t>(prompt_.size());
    if (options_.max_tokens <= 0) end("length");
}

namespace {

// log-softmax of the chosen id and the k most likely ids.
void logprobs(std::span<const float> logits, int32_t id, int k, TokenEvent& ev) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    ev.logprob = logits[id] - lse;
    if (k <= 0) return;
    std::vector<int32_t> idx(logits.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
    const size_t n = std::min(idx.size(), static_cast<size_t>(k));
    std::partial_sort(idx.begin(), idx.begin() + n, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (size_t i = 0; i < n; ++i) ev.top.push_back({idx[i], logits[idx[i]] - lse});
}

}  // namespace

std::optional<int32_t> Sequence::accept(std::span<float> logits) {
    if (done()) return std::nullopt;
    std::vector<float> raw;
    if (options_.top_logprobs >= 0) raw.assign(logits.begin(), logits.end());
    const std::span<const int32_t> generated(history_.data() + prompt_.size(), history_.size() - prompt_.size());
    return take(sampler_.sample(logits, history_, generated), raw);
}

std::optional<int32_t> Sequence::accept_greedy(int32_t id) {
    if (done()) return std::nullopt;
    if (!greedy()) fail("generate", "accept_greedy on a sequence that samples");
    return take(id, {});
}

int32_t Sequence::top_k() const {
    const int32_t k = sampler_.top_k_only();
    return options_.top_logprobs < 0 && k <= kMaxTopCandidates ? k : 0;
}

std::vector<nn::LogitEdit> Sequence::edits() const {
    const std::span<const int32_t> generated(history_.data() + prompt_.size(), history_.size() - prompt_.size());
    return sampler_.edits(history_, generated, model_.config().vocab_size);
}

std::optional<int32_t> Sequence::accept_top(std::span<const nn::Candidate> top) {
    if (done()) return std::nullopt;
    const int32_t k = top_k();
    if (k == 0) fail("generate", "accept_top on a sequence that needs every logit");
    return take(sampler_.sample_top(top.first(std::min(top.size(), static_cast<size_t>(k)))), {});
}

std::optional<int32_t> Sequence::take(int32_t next, std::span<const float> raw) {
    TokenEvent ev;
    const auto& eos = model_.eos_ids();
    if (!options_.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
        end("eos");
        return std::nullopt;
    }
    ++stats_.generated_tokens;
    history_.push_back(next);
    stats_.tokens.push_back(next);
    // The token's text is what the stream adds (so the tokens' texts add up to the output).
    const std::string piece = stream_.step(next);
    if (on_token_) {
        ev.id = next;
        ev.text = piece;
        if (!raw.empty()) logprobs(raw, next, options_.top_logprobs, ev);
        on_token_(ev);
    }
    if (filter_.push(piece)) {
        stats_.stop_reason = "stop";
        return std::nullopt;
    }
    if (stats_.generated_tokens >= options_.max_tokens) {
        end("length");
        return std::nullopt;
    }
    // The token must be fed at position history - 1; the cache holds capacity positions.
    if (static_cast<int64_t>(history_.size()) > capacity_) {
        end("context");
        return std::nullopt;
    }
    return next;
}

void Sequence::end(const std::string& reason) {
    stats_.stop_reason = reason;
    filter_.push(stream_.finish());
    filter_.flush();
}

void Sequence::abort(const std::string& reason, const std::string& error) {
    if (done()) return;
    stats_.stop_reason = reason;
    stats_.error = error;
}

}  // namespace onebit::engine
