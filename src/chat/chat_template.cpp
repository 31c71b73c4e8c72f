#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/ast.h"
#include "chat/interp.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mmap.h"

namespace onebit::chat {

using Json = nlohmann::ordered_json;

struct ChatTemplate::Impl {
    Body body;
    std::unordered_map<std::string, Value> specials;
};

namespace {


// A special token in tokenizer_config.json: a string, or an AddedToken object with "content".
std::optional<std::string> token_text(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v.at("content").is_string())
        return v.at("content").get<std::string>();
    return std::nullopt;
}

// The messages as transformers hands them to the template: keys whose value is null dropped, and
// the reasoning text (reasoning_content, thinking or reasoning, first found) under both
// "thinking" (first key) and "reasoning_content".
Json template_messages(const Json& messages) {
    Json out = Json::array();
    for (const Json& m : messages) {
        Json clean = Json::object();
        for (auto it = m.begin(); it != m.end(); ++it)
            if (!it.value().is_null()) clean[it.key()] = it.value();
        const Json* reasoning = nullptr;
        for (const char* key : {"reasoning_content", "thinking", "reasoning"})
            if (!reasoning && clean.contains(key)) reasoning = &clean.at(key);
        if (reasoning) {
            Json aliased = Json::object();
            aliased["thinking"] = *reasoning;
            for (auto it = clean.begin(); it != clean.end(); ++it) aliased[it.key()] = it.value();
            aliased["reasoning_content"] = *reasoning;
            clean = std::move(aliased);
        }
        out.push_back(std::move(clean));
    }
    return out;
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& config_json,
                                       const std::string& origin) {
    auto impl = std::make_shared<Impl>();
    try {
        impl->body = parse_template(source);
    } catch (const Error& e) {
        fail("chat-template", origin, ": ", std::string(e.what()).substr(16));
    }
    if (!config_json.empty()) {
        const Json cfg = parse_json<Json>(config_json, "chat-template", origin + " (tokenizer_config.json)");
        if (!cfg.is_object()) fail("chat-template", origin, ": tokenizer_config.json is not an object");
        for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token",
                                "cls_token", "mask_token"}) {
            if (!cfg.contains(key)) continue;
            if (auto t = token_text(cfg.at(key))) impl->specials[key] = Value::string(*t);
        }
    }
    ChatTemplate t;
    t.impl_ = std::move(impl);
    return t;
}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir) {
    const std::string config_path = dir + "/tokenizer_config.json";
    const std::optional<std::string> config_text = read_file_if_exists(config_path);
    const std::string config = config_text.value_or("");
    const bool have_config = config_text.has_value();
    if (auto source = read_file_if_exists(dir + "/chat_template.jinja"))
        return from_source(*source, config, dir + "/chat_template.jinja");
    if (!have_config) fail("chat-template", "'", dir, "' has neither chat_template.jinja nor tokenizer_config.json");
    const Json cfg = parse_json<Json>(config, "chat-template", config_path);
    const Json tmpl = cfg.is_object() && cfg.contains("chat_template") ? cfg.at("chat_template") : Json();
    if (tmpl.is_string()) return from_source(tmpl.get<std::string>(), config, config_path);
    if (tmpl.is_array()) {
        for (const Json& t : tmpl)
            if (t.is_object() && t.value("name", "") == "default" && t.contains("template") &&
                t.at("template").is_string())
                return from_source(t.at("template").get<std::string>(), config, config_path);
        fail("chat-template", config_path, ": chat_template has no entry named 'default'");
    }
    fail("chat-template", config_path, ": has no chat_template");
}

ChatRequest ChatTemplate::request_from_json(const std::string& text, const std::string& origin) {
    const Json j = parse_json<Json>(text, "chat-template", origin);
    ChatRequest r;
    if (j.is_array()) {
        r.messages = j;
    } else if (j.is_object() && j.contains("messages")) {
        r.messages = j.at("messages");
        if (j.contains("tools")) r.tools = j.at("tools");
    } else {
        fail("chat-template", origin, ": expected a list of messages or {\"messages\": [...]}");
    }
    return r;
}

std::string ChatTemplate::render(const ChatRequest& r) const {
    if (!r.messages.is_array()) fail("chat-template", "messages must be a list");
    for (size_t k = 0; k < r.messages.size(); ++k) {
        const Json& m = r.messages[k];
        if (!m.is_object() || !m.contains("role") || !m.at("role").is_string())
            fail("chat-template", "message ", k, " must be an object with a string 'role'");
    }
    if (!r.tools.is_null() && !r.tools.is_array()) fail("chat-template", "tools must be a list");
    std::unordered_map<std::string, Value> globals = impl_->specials;
    globals["messages"] = from_json(template_messages(r.messages));
    globals["tools"] = r.tools.is_null() ? Value::none() : from_json(r.tools);
    globals["documents"] = Value::none();
    globals["add_generation_prompt"] = Value::boolean(r.add_generation_prompt);
    if (r.enable_thinking) globals["enable_thinking"] = Value::boolean(*r.enable_thinking);
    Interp in(std::move(globals));
    return in.render(impl_->body);
}

std::string render_jinja(const std::string& source, const Json& context) {
    const Body body = parse_template(source);
    std::unordered_map<std::string, Value> globals;
    if (!context.is_object()) fail("chat-template", "the context must be a JSON object");
    for (auto it = context.begin(); it != context.end(); ++it) globals[it.key()] = from_json(it.value());
    Interp in(std::move(globals));
    return in.render(body);
}

}  // namespace onebit::chat
