// A model as the commands load it: a folder, a GGUF file, a Hugging Face repo id in the local cache, or the
// embedded tiny-qwen3-1bit when no --model is given, with its tokenizer and chat template.
#pragma once

#include <optional>
#include <string>

#include "chat/chat_template.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace onebit::tools {

struct Loaded {
    model::Model model;
    tok::Tokenizer tokenizer;
    std::optional<chat::ChatTemplate> chat_template;  // none when the checkpoint has none
    bool add_bos = false;  // tokenizer_config.json's add_bos_token
    std::string name;      // the folder, or "tiny-qwen3-1bit (embedded)"
};

// Errors: "[generate] ..." when model_arg is neither a folder nor a cached repo id, and the
// loaders' errors. device: "cpu" or "cuda".
Loaded load_model(const std::string& model_arg, bool int8 = false, const std::string& device = "cpu");

// The process's peak resident memory.
long peak_rss_mb();

}  // namespace onebit::tools
