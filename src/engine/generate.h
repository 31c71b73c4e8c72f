// The generation loop: prefill the prompt in batches, then decode token by token with the
// sampler, streaming text as it completes; stops at an EOS id, a stop string, max_tokens or the
// end of the context.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

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
};

struct GenerateStats {
    int64_t prompt_tokens = 0, generated_tokens = 0;
    double prefill_s = 0, decode_s = 0, first_token_s = 0;
    std::string stop_reason;  // "eos", "stop", "length", "context"
    std::vector<int32_t> tokens;  // the generated ids
};

// Runs the model on `prompt` (ids; at least one) and calls on_text with each piece of generated
// text. Errors: "[generate] ..." when the prompt does not fit the context.
GenerateStats generate(const model::Model& model, const tok::Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<void(std::string_view)>& on_text);

}  // namespace onebit::engine
