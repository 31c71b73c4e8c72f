#include "engine/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace onebit::engine {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Streams text to on_text, holding back any tail that may begin a stop string. Returns true once
// a stop string has appeared (the text before it is emitted, the rest dropped).
class StopFilter {
  public:
    StopFilter(const std::vector<std::string>& stop, const std::function<void(std::string_view)>& out)
        : stop_(stop), out_(out) {}
    bool push(std::string_view piece) {
        pending_ += piece;
        size_t cut = std::string::npos;
        for (const std::string& s : stop_)
            if (!s.empty()) cut = std::min(cut, pending_.find(s));
        if (cut != std::string::npos) {
            emit(pending_.substr(0, cut));
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
        emit(pending_.substr(0, pending_.size() - hold));
        pending_.erase(0, pending_.size() - hold);
        return false;
    }
    void flush() {
        emit(pending_);
        pending_.clear();
    }

  private:
    void emit(std::string_view s) {
        if (!s.empty()) out_(s);
    }
    const std::vector<std::string>& stop_;
    const std::function<void(std::string_view)>& out_;
    std::string pending_;
};

}  // namespace

GenerateStats generate(const model::Model& model, const tok::Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& o,
                       const std::function<void(std::string_view)>& on_text) {
    const model::ModelConfig& c = model.config();
    const int64_t ctx = o.ctx_size > 0 ? o.ctx_size : c.max_position_embeddings;
    if (prompt.empty()) fail("generate", "the prompt has no tokens");
    if (static_cast<int64_t>(prompt.size()) > ctx)
        fail("generate", "the prompt has ", prompt.size(), " tokens; the context holds ", ctx,
             " (--ctx-size)");
    GenerateStats st;
    st.prompt_tokens = static_cast<int64_t>(prompt.size());
    // The cache holds what this request can use, not the model's whole context.
    const int64_t needed = static_cast<int64_t>(prompt.size()) + std::max<int64_t>(o.max_tokens, 0);
    model::KVCache cache(std::min(ctx, needed), c);
    sampling::Sampler sampler(o.sampler);
    std::vector<float> logits;
    std::vector<int32_t> history = prompt;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t batch = std::max<int64_t>(1, o.prefill_batch);
    for (size_t i = 0; i < prompt.size(); i += static_cast<size_t>(batch)) {
        const size_t n = std::min(prompt.size() - i, static_cast<size_t>(batch));
        model.forward(std::span<const int32_t>(prompt.data() + i, n), cache, logits);
    }
    st.prefill_s = seconds_since(t0);
    tok::DecodeStream stream(tokenizer);
    StopFilter filter(o.stop, on_text);
    const auto& eos = model.eos_ids();
    const auto t1 = std::chrono::steady_clock::now();
    st.stop_reason = "length";
    while (st.generated_tokens < o.max_tokens) {
        const int32_t next = sampler.sample(logits, history);
        if (st.generated_tokens == 0) st.first_token_s = st.prefill_s + seconds_since(t1);
        if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
            st.stop_reason = "eos";
            break;
        }
        ++st.generated_tokens;
        history.push_back(next);
        st.tokens.push_back(next);
        if (filter.push(stream.step(next))) {
            st.stop_reason = "stop";
            break;
        }
        if (st.generated_tokens == o.max_tokens) break;
        if (cache.length >= cache.capacity) {
            st.stop_reason = "context";
            break;
        }
        const int32_t one[1] = {next};
        model.forward(one, cache, logits);
    }
    if (st.stop_reason != "stop") {
        filter.push(stream.finish());
        filter.flush();
    }
    st.decode_s = seconds_since(t1);
    return st;
}

}  // namespace onebit::engine
