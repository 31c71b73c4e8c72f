// Chat templates: a checkpoint's Jinja `chat_template` rendered with the variables transformers'
// apply_chat_template passes (messages, tools, add_generation_prompt, enable_thinking when given,
// documents, and the special tokens of tokenizer_config.json). The interpreter covers the Jinja
// subset real templates use; any other construct is an error naming it and its line.
//
// Thread safety: a ChatTemplate is immutable; render() may run on many threads at once.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace onebit::chat {

struct Node;

struct ChatRequest {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role", "content", ...}]
    nlohmann::ordered_json tools;                 // null or a list of tool schemas
    bool add_generation_prompt = true;
    std::optional<bool> enable_thinking;          // undefined in the template when not set
};

class ChatTemplate {
  public:
    // From a model directory: chat_template.jinja if present, else tokenizer_config.json's
    // "chat_template" (a string, or a list of {"name", "template"} whose "default" is used).
    // Errors: "[chat-template] <path>: ...".
    static ChatTemplate from_model_dir(const std::string& dir);
    // From template source and the tokenizer_config.json text (for the special tokens; may be "").
    static ChatTemplate from_source(const std::string& source, const std::string& config_json,
                                    const std::string& origin);

    // Renders the request. Errors: "[chat-template] ..." for malformed messages and for
    // template errors (including raise_exception from the template).
    std::string render(const ChatRequest& request) const;

    // Parses `{"messages": [...], "tools": [...]}` or a bare list of messages.
    static ChatRequest request_from_json(const std::string& json_text, const std::string& origin);

  private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
};

// Renders Jinja `source` with the variables of the JSON object `context`, under the same settings
// (for tests and tools that need a template outside a chat).
std::string render_jinja(const std::string& source, const nlohmann::ordered_json& context);

}  // namespace onebit::chat
