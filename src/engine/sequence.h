// One request's generation state, shared by generate() and the Batcher: the sampler, the
// streaming detokenizer, the stop-string filter, the token history and why it stopped. The
// caller runs the model; the Sequence turns each position's logits into the next token.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/stop_filter.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace onebit::engine {

struct GenerateOptions {
    int64_t max_tokens = 256;
    int64_t ctx_size = 0;  // 0: the model's max_position_embeddings
    int64_t prefill_batch = 512;  // prompt tokens per forward pass
    std::vector<std::string> stop;  // stop strings (not emitted)
    sampling::SamplerParams sampler;
    // The log-probabilities of each generated token and of the top_logprobs most likely ones
    // (log-softmax of the model's logits, before penalties and temperature). -1: off.
    int top_logprobs = -1;
    // Generate past EOS (benchmarks: max_tokens tokens whatever the model says).
    bool ignore_eos = false;
};

struct GenerateStats {
    int64_t prompt_tokens = 0, generated_tokens = 0;
    int64_t cached_prompt_tokens = 0;  // prompt tokens whose KV came from an earlier request
    double prefill_s = 0, decode_s = 0, first_token_s = 0;
    std::string stop_reason;  // "eos", "stop", "length", "context", "cancelled", "error"
    std::vector<int32_t> tokens;  // the generated ids
    std::string error;            // stop_reason "error": what failed
};

struct TokenLogprob {
    int32_t id = 0;
    float logprob = 0;
};

// A generated token as the caller sees it (on_token): its id, the text it completes (empty while
// a multi-byte character is incomplete; all tokens' texts add up to the output) and, when asked
// for, log-probabilities.
struct TokenEvent {
    int32_t id = 0;
    std::string text;
    float logprob = 0;
    std::vector<TokenLogprob> top;
};

class Sequence {
  public:
    using TextSink = std::function<void(std::string_view)>;
    using TokenSink = std::function<void(const TokenEvent&)>;
    // capacity: the positions the sequence's cache holds (prompt and generated together).
    // Errors: "[generate] ..." for an empty prompt or one that does not fit the capacity;
    // "[sampling] ..." for bad sampler parameters.
    Sequence(const model::Model& model, const tok::Tokenizer& tokenizer, std::vector<int32_t> prompt,
             const GenerateOptions& options, int64_t capacity, TextSink on_text, TokenSink on_token = nullptr);

    const std::vector<int32_t>& prompt() const { return prompt_; }
    // Takes the logits [vocab] of the last position fed (modified), samples the next token and
    // streams its text. Returns the token to feed next, or nothing when the sequence has ended.
    std::optional<int32_t> accept(std::span<float> logits);
    // Whether the next token is the greedy choice of the raw logits (temperature 0, no penalties,
    // no log-probabilities asked for), so the caller may let the model choose it
    // (Model::forward_greedy: on the GPU no logits are copied) and pass it to accept_greedy.
    bool greedy() const { return sampler_.greedy() && options_.top_logprobs < 0; }
    // accept() for the token such a greedy choice made.
    std::optional<int32_t> accept_greedy(int32_t id);
    // k > 0 when the next token depends only on the k largest logits after edits()
    // (Sampler::top_k_only, no log-probabilities, k <= kMaxTopCandidates), so the caller may ask
    // the model for those (Model::forward_batch_top_k) and pass them to accept_top. 0 otherwise.
    int32_t top_k() const;
    // The penalties for the next token as edits of single logits (Sampler::edits).
    std::vector<nn::LogitEdit> edits() const;
    // accept() from the top_k() largest edited logits in nn::ranks_before order (a longer list in
    // that order is cut to its first top_k()): the same token accept() chooses from all of them.
    std::optional<int32_t> accept_top(std::span<const nn::Candidate> top);
    // Above this many candidates the whole logits row is as cheap to hand over.
    static constexpr int32_t kMaxTopCandidates = 1024;
    // Ends the sequence early ("cancelled", "error" with its message); held-back text is dropped.
    void abort(const std::string& reason, const std::string& error = {});
    bool done() const { return !stats_.stop_reason.empty(); }
    GenerateStats& stats() { return stats_; }
    const GenerateStats& stats() const { return stats_; }
    // Every token whose KV the sequence's cache holds or will hold: prompt then generated.
    const std::vector<int32_t>& history() const { return history_; }

  private:
    // Records next as the sequence's token, streams its text; raw: the logits for the
    // log-probabilities (empty: none asked for).
    std::optional<int32_t> take(int32_t next, std::span<const float> raw);
    void end(const std::string& reason);
    const model::Model& model_;
    const tok::Tokenizer& tokenizer_;
    std::vector<int32_t> prompt_, history_;
    GenerateOptions options_;
    int64_t capacity_;
    TokenSink on_token_;
    sampling::Sampler sampler_;
    tok::DecodeStream stream_;
    StopFilter filter_;
    GenerateStats stats_;
};

// Error unless 0 < prompt tokens <= capacity ("[generate] ...").
void check_prompt(size_t prompt_tokens, int64_t capacity);

}  // namespace onebit::engine
