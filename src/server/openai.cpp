#include "server/openai.h"

#include <cmath>
#include <random>
#include <sstream>

#include "core/error.h"

namespace onebit::server {

ApiError::ApiError(int s, std::string message, std::string p, std::string c)
    : std::runtime_error(std::move(message)), status(s), param(std::move(p)), code(std::move(c)) {
    type = s == 401 ? "authentication_error"
           : s == 404 ? "not_found_error"
           : s == 503 ? "server_overloaded"
           : s >= 500 ? "server_error"
                      : "invalid_request_error";
}

Json ApiError::body() const {
    return {{"error",
             {{"message", what()},
              {"type", type},
              {"param", param.empty() ? Json() : Json(param)},
              {"code", code.empty() ? Json() : Json(code)}}}};
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
    throw ApiError(400, "'" + param + "' " + message, param);
}

// Typed, range-checked access to the fields of a request object; absent and null read the same.
class Fields {
  public:
    explicit Fields(const Json& j) : j_(j) {}
    const Json* get(const char* name) const {
        const auto it = j_.find(name);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }
    std::optional<bool> boolean(const char* name) const {
        const Json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) bad(name, "must be a boolean");
        return v->get<bool>();
    }
    std::optional<int64_t> integer(const char* name, int64_t lo, int64_t hi) const {
        const Json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_number_integer()) bad(name, "must be an integer");
        if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
            bad(name, "is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        const int64_t x = v->get<int64_t>();
        if (x < lo || x > hi)
            bad(name, "is " + std::to_string(x) + "; it must be in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "]");
        return x;
    }
    std::optional<double> number(const char* name, double lo, double hi, bool open_lo = false) const {
        const Json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_number()) bad(name, "must be a number");
        const double x = v->get<double>();
        if (!std::isfinite(x) || x < lo || x > hi || (open_lo && x == lo)) {
            std::ostringstream os;
            os << "is " << x << "; it must be in " << (open_lo ? "(" : "[") << lo << ", " << hi << "]";
            bad(name, os.str());
        }
        return x;
    }
    std::optional<std::string> string(const char* name) const {
        const Json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_string()) bad(name, "must be a string");
        return v->get<std::string>();
    }

  private:
    const Json& j_;
};

Json parse_body(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON (UTF-8)");
    if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
    return j;
}

void check_model(const Fields& f, const ServedModel& served) {
    const std::optional<std::string> m = f.string("model");
    if (m && *m != served.id)
        throw ApiError(404, "the model '" + *m + "' does not exist; this server serves '" + served.id + "'", "model",
                       "model_not_found");
}

// Sampling: the request's values, else generation_config.json's, else OpenAI's defaults
// (temperature 1, no top-k / top-p / min-p truncation).
void parse_sampling(const Fields& f, const ServedModel& served, engine::GenerateOptions& o) {
    const model::GenerationDefaults& d = served.model->generation_defaults();
    sampling::SamplerParams& s = o.sampler;
    s.temperature = static_cast<float>(d.temperature.value_or(1.0));
    if (d.do_sample == false) s.temperature = 0;
    s.top_p = static_cast<float>(d.top_p.value_or(1.0));
    s.top_k = static_cast<int32_t>(d.top_k.value_or(0));
    s.min_p = static_cast<float>(d.min_p.value_or(0.0));
    s.repeat_penalty = static_cast<float>(d.repetition_penalty.value_or(1.0));
    if (auto v = f.number("temperature", 0, 2)) s.temperature = static_cast<float>(*v);
    if (auto v = f.number("top_p", 0, 1)) {
        s.top_p = static_cast<float>(*v);
        if (*v == 0) {  // nothing but the most likely token
            s.top_p = 1;
            s.temperature = 0;
        }
    }
    if (auto v = f.integer("top_k", 0, INT32_MAX)) s.top_k = static_cast<int32_t>(*v);
    if (auto v = f.number("min_p", 0, 1)) {
        if (*v >= 1) bad("min_p", "must be below 1");
        s.min_p = static_cast<float>(*v);
    }
    if (auto v = f.number("presence_penalty", -2, 2)) s.presence_penalty = static_cast<float>(*v);
    if (auto v = f.number("frequency_penalty", -2, 2)) s.frequency_penalty = static_cast<float>(*v);
    if (auto v = f.number("repetition_penalty", 0, 10, true)) s.repeat_penalty = static_cast<float>(*v);
    if (auto v = f.integer("seed", INT64_MIN, INT64_MAX)) s.seed = static_cast<uint64_t>(*v);
    else s.seed = std::random_device{}() * 0x9E3779B97F4A7C15ull + std::random_device{}();
    f.integer("n", 1, 1);  // one choice per request
    if (const Json* stop = f.get("stop")) {
        if (stop->is_string()) {
            o.stop = {stop->get<std::string>()};
        } else if (stop->is_array() && stop->size() <= 16) {
            for (const Json& s1 : *stop) {
                if (!s1.is_string()) bad("stop", "must be a string or a list of at most 16 strings");
                o.stop.push_back(s1.get<std::string>());
            }
        } else {
            bad("stop", "must be a string or a list of at most 16 strings");
        }
        for (const std::string& s1 : o.stop)
            if (s1.empty()) bad("stop", "must not hold an empty string");
    }
}

// max_tokens (or max_completion_tokens): at least 1; above the context the context ends it.
void parse_max_tokens(const Fields& f, Job& job, int64_t dflt) {
    std::optional<int64_t> m = f.integer("max_completion_tokens", 1, INT64_MAX);
    if (!m) m = f.integer("max_tokens", 1, INT64_MAX);
    job.options.max_tokens = m.value_or(dflt);
}

void parse_stream(const Fields& f, Job& job) {
    job.stream = f.boolean("stream").value_or(false);
    if (const Json* so = f.get("stream_options")) {
        if (!so->is_object()) bad("stream_options", "must be an object");
        job.include_usage = Fields(*so).boolean("include_usage").value_or(false);
    }
}

void check_prompt_fits(const Job& job, const ServedModel& served) {
    if (job.prompt.empty()) throw ApiError(400, "the prompt is empty", "prompt");
    if (static_cast<int64_t>(job.prompt.size()) > served.ctx_size)
        throw ApiError(400,
                       "the prompt has " + std::to_string(job.prompt.size()) + " tokens; the context holds " +
                           std::to_string(served.ctx_size),
                       "messages", "context_length_exceeded");
}

std::vector<int32_t> encode(const ServedModel& served, const std::string& text, const char* param) {
    std::vector<int32_t> ids;
    const auto bos = served.model->config().bos_token_id;
    if (served.add_bos && bos) ids.push_back(*bos);
    try {
        const std::vector<int32_t> body = served.tokenizer->encode(text);
        ids.insert(ids.end(), body.begin(), body.end());
    } catch (const Error& e) {
        bad(param, std::string("cannot be tokenized: ") + e.what());
    }
    return ids;
}

// A message's content as the template sees it: a string (text parts joined) or null.
Json message_content(const Json& c, size_t i) {
    const std::string param = "messages[" + std::to_string(i) + "].content";
    if (c.is_null() || c.is_string()) return c;
    if (!c.is_array()) bad(param, "must be a string, a list of text parts or null");
    std::string text;
    for (const Json& part : c) {
        if (!part.is_object() || part.value("type", Json()) != "text" || !part.contains("text") ||
            !part["text"].is_string())
            bad(param, "parts must be {\"type\": \"text\", \"text\": ...}: only text is supported");
        text += part["text"].get<std::string>();
    }
    return text;
}

Json parse_messages(const Json* messages) {
    if (!messages) bad("messages", "is required");
    if (!messages->is_array()) bad("messages", "must be a list");
    if (messages->empty()) bad("messages", "must not be empty");
    Json out = Json::array();
    for (size_t i = 0; i < messages->size(); ++i) {
        const Json& m = (*messages)[i];
        const std::string p = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) bad(p, "must be an object");
        const auto role = m.find("role");
        if (role == m.end() || !role->is_string()) bad(p + ".role", "must be a string");
        const std::string r = role->get<std::string>();
        if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool")
            bad(p + ".role", "is '" + r + "'; it must be system, developer, user, assistant or tool");
        Json msg = {{"role", r == "developer" ? "system" : r}};
        const auto content = m.find("content");
        msg["content"] = content == m.end() ? Json() : message_content(*content, i);
        if (msg["content"].is_null() && r != "assistant") bad(p + ".content", "is required for role " + r);
        // Templates test and split content as a string (an assistant turn with only tool calls
        // sends null).
        if (msg["content"].is_null()) msg["content"] = "";
        if (const auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
            if (r != "assistant" || !tc->is_array()) bad(p + ".tool_calls", "must be a list (assistant messages)");
            Json calls = Json::array();
            for (const Json& c : *tc) {
                if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
                    !c["function"].contains("name") || !c["function"]["name"].is_string())
                    bad(p + ".tool_calls", "entries must be {\"function\": {\"name\": ..., \"arguments\": ...}}");
                Json fn = c["function"];
                // Templates read arguments as an object; the API sends a JSON string.
                if (fn.contains("arguments") && fn["arguments"].is_string()) {
                    Json a = Json::parse(fn["arguments"].get<std::string>(), nullptr, false);
                    if (!a.is_discarded()) fn["arguments"] = a;
                }
                calls.push_back({{"type", "function"}, {"id", c.value("id", Json())}, {"function", fn}});
            }
            msg["tool_calls"] = calls;
        }
        if (r == "tool") {
            if (const auto id = m.find("tool_call_id"); id != m.end() && id->is_string()) msg["tool_call_id"] = *id;
        }
        out.push_back(msg);
    }
    return out;
}

}  // namespace

Job parse_chat_request(const std::string& body, const ServedModel& served) {
    const Json j = parse_body(body);
    const Fields f(j);
    check_model(f, served);
    Job job;
    job.chat = true;
    chat::ChatRequest req;
    req.messages = parse_messages(f.get("messages"));
    const std::string tool_choice = [&] {
        const Json* tc = f.get("tool_choice");
        return tc && tc->is_string() ? tc->get<std::string>() : std::string("auto");
    }();
    if (tool_choice != "auto" && tool_choice != "none" && tool_choice != "required")
        bad("tool_choice", "must be auto, none or required");
    if (const Json* tools = f.get("tools")) {
        if (!tools->is_array()) bad("tools", "must be a list");
        for (const Json& t : *tools)
            if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
                !t["function"].contains("name") || !t["function"]["name"].is_string())
                bad("tools", "entries must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        if (!tools->empty() && tool_choice != "none") {
            req.tools = *tools;
            job.parse_tools = true;
        }
    }
    if (const Json* kw = f.get("chat_template_kwargs")) {
        if (!kw->is_object()) bad("chat_template_kwargs", "must be an object");
        if (auto t = Fields(*kw).boolean("enable_thinking")) req.enable_thinking = *t;
    }
    if (const Json* rf = f.get("response_format")) {
        if (!rf->is_object() || rf->value("type", Json()) != "text")
            bad("response_format", "is not supported except {\"type\": \"text\"}");
    }
    parse_stream(f, job);
    parse_sampling(f, served, job.options);
    if (f.boolean("logprobs").value_or(false)) job.top_logprobs = 0;
    if (auto k = f.integer("top_logprobs", 0, 20)) {
        if (job.top_logprobs < 0) bad("top_logprobs", "needs logprobs: true");
        job.top_logprobs = static_cast<int>(*k);
    }
    if (!served.chat_template)
        throw ApiError(400, "the model has no chat template; use /v1/completions", "messages", "no_chat_template");
    std::string text;
    try {
        text = served.chat_template->render(req);
    } catch (const Error& e) {
        throw ApiError(400, e.what(), "messages");
    }
    const size_t end = text.find_last_not_of(" \t\r\n");
    job.starts_in_reasoning = end != std::string::npos && end >= 6 && text.compare(end - 6, 7, "<think>") == 0;
    job.prompt = encode(served, text, "messages");
    check_prompt_fits(job, served);
    parse_max_tokens(f, job, served.ctx_size);
    job.options.top_logprobs = job.top_logprobs;
    return job;
}

Job parse_completion_request(const std::string& body, const ServedModel& served) {
    const Json j = parse_body(body);
    const Fields f(j);
    check_model(f, served);
    Job job;
    const Json* p = f.get("prompt");
    if (!p) bad("prompt", "is required");
    const auto vocab = served.model->config().vocab_size;
    auto ids_from = [&](const Json& arr) {
        std::vector<int32_t> ids;
        for (const Json& x : arr) {
            if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= vocab)
                bad("prompt", "token ids must be integers in [0, " + std::to_string(vocab) + ")");
            ids.push_back(static_cast<int32_t>(x.get<int64_t>()));
        }
        return ids;
    };
    const Json* one = p;
    if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
        if (p->size() != 1) bad("prompt", "must be one prompt (a string or a list of token ids)");
        one = &p->front();
    }
    if (one->is_string()) {
        job.prompt = encode(served, one->get<std::string>(), "prompt");
    } else if (one->is_array()) {
        job.prompt = ids_from(*one);
    } else {
        bad("prompt", "must be a string or a list of token ids");
    }
    if (f.boolean("echo").value_or(false)) bad("echo", "is not supported");
    if (f.get("suffix")) bad("suffix", "is not supported");
    f.integer("best_of", 1, 1);
    parse_stream(f, job);
    parse_sampling(f, served, job.options);
    if (auto k = f.integer("logprobs", 0, 5)) job.top_logprobs = static_cast<int>(*k);
    check_prompt_fits(job, served);
    parse_max_tokens(f, job, 16);
    job.options.top_logprobs = job.top_logprobs;
    return job;
}

std::string finish_reason(const engine::GenerateStats& st, bool tool_calls) {
    if (tool_calls) return "tool_calls";
    return st.stop_reason == "length" || st.stop_reason == "context" ? "length" : "stop";
}

Json usage_json(const engine::GenerateStats& st) {
    return {{"prompt_tokens", st.prompt_tokens},
            {"completion_tokens", st.generated_tokens},
            {"total_tokens", st.prompt_tokens + st.generated_tokens},
            {"prompt_tokens_details", {{"cached_tokens", st.cached_prompt_tokens}}}};
}

namespace {

// onebit's timings (an extension, like llama-server's): where the time went.
Json timings_json(const engine::GenerateStats& st) {
    return {{"prompt_n", st.prompt_tokens - st.cached_prompt_tokens},
            {"cached_n", st.cached_prompt_tokens},
            {"prompt_ms", st.prefill_s * 1e3},
            {"first_token_ms", st.first_token_s * 1e3},
            {"predicted_n", st.generated_tokens},
            {"predicted_ms", st.decode_s * 1e3}};
}

Json bytes_of(const std::string& s) {
    Json b = Json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
}

std::string token_text(const tok::Tokenizer& t, int32_t id) {
    return id < t.vocab_size() ? t.decode(std::span<const int32_t>(&id, 1)) : std::string();
}

}  // namespace

Json tool_calls_json(const std::vector<ToolCall>& calls, const std::string& id, size_t first_index) {
    Json out = Json::array();
    for (size_t i = 0; i < calls.size(); ++i)
        out.push_back({{"index", first_index + i},
                       {"id", "call_" + id + "_" + std::to_string(first_index + i)},
                       {"type", "function"},
                       {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
    return out;
}

Json chat_logprobs(const tok::Tokenizer& t, const std::vector<engine::TokenEvent>& tokens) {
    Json content = Json::array();
    for (const engine::TokenEvent& ev : tokens) {
        Json top = Json::array();
        for (const engine::TokenLogprob& c : ev.top) {
            const std::string s = token_text(t, c.id);
            top.push_back({{"token", s}, {"logprob", c.logprob}, {"bytes", bytes_of(s)}});
        }
        content.push_back({{"token", ev.text}, {"logprob", ev.logprob}, {"bytes", bytes_of(ev.text)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
}

Json completion_logprobs(const tok::Tokenizer& t, const std::vector<engine::TokenEvent>& tokens, size_t offset) {
    Json toks = Json::array(), lps = Json::array(), tops = Json::array(), offs = Json::array();
    for (const engine::TokenEvent& ev : tokens) {
        toks.push_back(ev.text);
        lps.push_back(ev.logprob);
        Json top = Json::object();
        for (const engine::TokenLogprob& c : ev.top) top[token_text(t, c.id)] = c.logprob;
        tops.push_back(top);
        offs.push_back(offset);
        offset += ev.text.size();
    }
    return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

Json chat_response(const Job& job, const ServedModel& served, const std::string& id, int64_t created,
                   const Output& out) {
    const bool tools = !out.parsed.tool_calls.empty();
    Json msg = {{"role", "assistant"}, {"content", out.parsed.content.empty() && tools ? Json() : Json(out.parsed.content)}};
    if (!out.parsed.reasoning.empty()) msg["reasoning_content"] = out.parsed.reasoning;
    if (tools) msg["tool_calls"] = tool_calls_json(out.parsed.tool_calls, id, 0);
    Json choice = {{"index", 0},
                   {"message", msg},
                   {"logprobs", job.top_logprobs >= 0 ? chat_logprobs(*served.tokenizer, out.tokens) : Json()},
                   {"finish_reason", finish_reason(out.stats, tools)}};
    return {{"id", "chatcmpl-" + id},     {"object", "chat.completion"}, {"created", created},
            {"model", served.id},         {"choices", Json::array({choice})},
            {"usage", usage_json(out.stats)}, {"timings", timings_json(out.stats)}};
}

Json completion_response(const Job& job, const ServedModel& served, const std::string& id, int64_t created,
                         const Output& out) {
    Json choice = {{"index", 0},
                   {"text", out.text},
                   {"logprobs", job.top_logprobs >= 0 ? completion_logprobs(*served.tokenizer, out.tokens, 0) : Json()},
                   {"finish_reason", finish_reason(out.stats, false)}};
    return {{"id", "cmpl-" + id},         {"object", "text_completion"}, {"created", created},
            {"model", served.id},         {"choices", Json::array({choice})},
            {"usage", usage_json(out.stats)}, {"timings", timings_json(out.stats)}};
}

Json chat_chunk(const ServedModel& served, const std::string& id, int64_t created, const Json& delta,
                const std::vector<engine::TokenEvent>& tokens, bool logprobs, const std::string& finish) {
    Json choice = {{"index", 0},
                   {"delta", delta},
                   {"logprobs", logprobs && !tokens.empty() ? chat_logprobs(*served.tokenizer, tokens) : Json()},
                   {"finish_reason", finish.empty() ? Json() : Json(finish)}};
    return {{"id", "chatcmpl-" + id}, {"object", "chat.completion.chunk"}, {"created", created},
            {"model", served.id},     {"choices", Json::array({choice})}};
}

Json completion_chunk(const ServedModel& served, const std::string& id, int64_t created, const std::string& text,
                      const std::vector<engine::TokenEvent>& tokens, bool logprobs, const std::string& finish) {
    Json choice = {{"index", 0},
                   {"text", text},
                   {"logprobs", logprobs && !tokens.empty() ? completion_logprobs(*served.tokenizer, tokens, 0) : Json()},
                   {"finish_reason", finish.empty() ? Json() : Json(finish)}};
    return {{"id", "cmpl-" + id}, {"object", "text_completion"}, {"created", created},
            {"model", served.id}, {"choices", Json::array({choice})}};
}

}  // namespace onebit::server
