// The OpenAI API's JSON, both ways: request bodies of /v1/chat/completions and /v1/completions
// parsed and validated into a typed Job (prompt ids, generation options, response shape), and the
// response objects and stream chunks built from generated text. Pure functions of their inputs,
// so the HTTP layer stays transport only and the parsing can be fuzzed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "engine/sequence.h"
#include "model/model.h"
#include "server/output_parser.h"
#include "tokenizer/tokenizer.h"

namespace onebit::server {

using Json = nlohmann::ordered_json;

// An error as the OpenAI API returns it: HTTP status and {"error": {message, type, param, code}}.
struct ApiError : std::runtime_error {
    int status;
    std::string type, param, code;
    ApiError(int status, std::string message, std::string param = {}, std::string code = {});
    Json body() const;
};

// What the server serves: the model, its tokenizer and chat template (null: chat requests are
// refused), and the context each request gets.
struct ServedModel {
    const model::Model* model = nullptr;
    const tok::Tokenizer* tokenizer = nullptr;
    const chat::ChatTemplate* chat_template = nullptr;
    bool add_bos = false;
    std::string id;  // the name in /v1/models and the "model" field requests must match
    int64_t ctx_size = 0;
};

// A validated request.
struct Job {
    bool chat = false, stream = false, include_usage = false;
    std::vector<int32_t> prompt;
    engine::GenerateOptions options;
    int top_logprobs = -1;  // -1: no logprobs
    bool parse_tools = false, starts_in_reasoning = false;
};

// Errors: ApiError 400 (malformed JSON, wrong types, values out of range, empty messages, no chat
// template, a prompt longer than the context: code context_length_exceeded), 404 (unknown model).
Job parse_chat_request(const std::string& body, const ServedModel& served);
Job parse_completion_request(const std::string& body, const ServedModel& served);

// The finished output of a request, what the responses are built from.
struct Output {
    std::string text;  // everything generated (completions)
    ParsedDelta parsed;  // content, reasoning, tool calls (chat)
    std::vector<engine::TokenEvent> tokens;
    engine::GenerateStats stats;
};

// "stop", "length" or "tool_calls".
std::string finish_reason(const engine::GenerateStats& stats, bool tool_calls);
Json usage_json(const engine::GenerateStats& stats);
Json chat_response(const Job& job, const ServedModel& served, const std::string& id, int64_t created,
                   const Output& out);
Json completion_response(const Job& job, const ServedModel& served, const std::string& id, int64_t created,
                         const Output& out);
// Stream chunks. delta: {"role"}, {"content"}, {"reasoning_content"} or {"tool_calls"};
// tokens: the logprobs to attach (chat); finish: set on the last chunk.
Json chat_chunk(const ServedModel& served, const std::string& id, int64_t created, const Json& delta,
                const std::vector<engine::TokenEvent>& tokens, bool logprobs, const std::string& finish);
Json completion_chunk(const ServedModel& served, const std::string& id, int64_t created, const std::string& text,
                      const std::vector<engine::TokenEvent>& tokens, bool logprobs, const std::string& finish);
// The tool_calls list of a message or a delta, ids call_<id>_<index>.
Json tool_calls_json(const std::vector<ToolCall>& calls, const std::string& id, size_t first_index);
// The logprobs object of a chat choice, and of a completion choice (the legacy shape).
Json chat_logprobs(const tok::Tokenizer& tokenizer, const std::vector<engine::TokenEvent>& tokens);
Json completion_logprobs(const tok::Tokenizer& tokenizer, const std::vector<engine::TokenEvent>& tokens,
                         size_t text_offset);

}  // namespace onebit::server
