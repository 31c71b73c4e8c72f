#include "engine/generate.h"

#include <algorithm>
#include <chrono>

namespace onebit::engine {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int64_t context_size(const model::Model& model, const GenerateOptions& o) {
    return o.ctx_size > 0 ? o.ctx_size : model.config().max_position_embeddings;
}

GenerateStats generate(const model::Model& model, const tok::Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& o,
                       const std::function<void(std::string_view)>& on_text) {
    const int64_t ctx = context_size(model, o);
    check_prompt(prompt.size(), ctx);
    // The cache holds what this request can use, not the model's whole context.
    const int64_t needed = static_cast<int64_t>(prompt.size()) + std::max<int64_t>(o.max_tokens, 0);
    const int64_t capacity = std::min(ctx, needed);
    Sequence seq(model, tokenizer, prompt, o, capacity, on_text);
    if (seq.done()) return seq.stats();
    model::KVCache cache(capacity, model.config());
    std::vector<float> logits;
    // Greedy decoding lets the model choose each token, top-k sampling lets it select the
    // candidates (on the GPU: only the choice or the candidates are copied back).
    const bool greedy = seq.greedy();
    const int32_t top_k = seq.top_k();
    int32_t chosen = 0;
    std::vector<nn::Candidate> top;
    auto run = [&](std::span<const int32_t> tokens) {
        if (greedy) {
            chosen = model.forward_greedy(tokens, cache);
        } else if (top_k > 0) {
            const model::Model::SequenceInput in{tokens, &cache};
            const std::vector<nn::LogitEdit> edits = seq.edits();
            model.forward_batch_top_k(std::span(&in, 1), top_k, top, std::span(&edits, 1));
        } else {
            model.forward(tokens, cache, logits);
        }
    };
    const auto t0 = std::chrono::steady_clock::now();
    const size_t batch = static_cast<size_t>(std::max<int64_t>(1, o.prefill_batch));
    for (size_t i = 0; i < prompt.size(); i += batch)
        run(std::span<const int32_t>(prompt.data() + i, std::min(prompt.size() - i, batch)));
    GenerateStats& st = seq.stats();
    st.prefill_s = seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    for (;;) {
        const std::optional<int32_t> next = greedy ? seq.accept_greedy(chosen)
                                            : top_k > 0 ? seq.accept_top(top)
                                                        : seq.accept(logits);
        if (st.generated_tokens <= 1 && st.first_token_s == 0) st.first_token_s = st.prefill_s + seconds_since(t1);
        if (!next) break;
        run(std::span<const int32_t>(&*next, 1));
    }
    st.decode_s = seconds_since(t1);
    return st;
}

}  // namespace onebit::engine
