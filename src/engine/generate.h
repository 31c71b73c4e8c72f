// The generation loop for one request: prefill the prompt in batches, then decode token by token
// with the sampler, streaming text as it completes; stops at an EOS id, a stop string,
// max_tokens or the end of the context.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "engine/sequence.h"

namespace onebit::engine {

// Runs the model on `prompt` (ids; at least one) and calls on_text with each piece of generated
// text. Errors: "[generate] ..." when the prompt does not fit the context.
GenerateStats generate(const model::Model& model, const tok::Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<void(std::string_view)>& on_text);

// The context a request gets: options.ctx_size, else the model's max_position_embeddings.
int64_t context_size(const model::Model& model, const GenerateOptions& options);

}  // namespace onebit::engine
