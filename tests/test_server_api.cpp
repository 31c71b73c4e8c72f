// The server's pure parts: the OpenAI request parser (typed jobs, validation errors with their
// status, tools and thinking passed to a real Qwen3 chat template) and the output parser that
// splits generated text into content, reasoning and tool calls, whatever the streaming pieces.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "server/openai.h"

namespace onebit::server {
namespace {

const std::string kData = ONEBIT_DATA_DIR;
const std::string kStories = kData + "/../models/stories260K";

struct Env {
    model::Model model = model::Model::load(kStories);
    tok::Tokenizer qwen = tok::Tokenizer::from_file(kData + "/qwen3-tokenizer/tokenizer.json");
    chat::ChatTemplate tmpl = chat::ChatTemplate::from_model_dir(kData + "/qwen3-tokenizer");
    ServedModel served() {
        ServedModel s;
        s.model = &model;
        s.tokenizer = &qwen;
        s.chat_template = &tmpl;
        s.id = "m";
        s.ctx_size = 4096;
        return s;
    }
};

Env& env() {
    static Env e;
    return e;
}

std::string prompt_text(const Job& j) { return env().qwen.decode(j.prompt); }

int status_of(const std::string& body, bool chat = true) {
    try {
        chat ? parse_chat_request(body, env().served()) : parse_completion_request(body, env().served());
    } catch (const ApiError& e) {
        EXPECT_FALSE(std::string(e.what()).empty());
        return e.status;
    }
    return 200;
}

TEST(ServerApi, ChatRequestRendersTheTemplateWithToolsAndThinking) {
    const std::string body = R"({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C"}],
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
      "chat_template_kwargs": {"enable_thinking": false},
      "max_tokens": 7, "temperature": 0.5, "top_k": 3, "seed": 11, "stop": ["END"], "logprobs": true,
      "top_logprobs": 2, "stream": true, "stream_options": {"include_usage": true}})";
    const Job j = parse_chat_request(body, env().served());
    const std::string p = prompt_text(j);
    EXPECT_NE(p.find("<tools>"), std::string::npos) << p;
    EXPECT_NE(p.find("Current weather"), std::string::npos);
    EXPECT_NE(p.find("Weather in Paris?"), std::string::npos);
    EXPECT_NE(p.find("\"city\": \"Paris\""), std::string::npos) << "tool call arguments rendered as JSON";
    EXPECT_NE(p.find("<tool_response>\n18 C\n</tool_response>"), std::string::npos);
    EXPECT_NE(p.find("<think>\n\n</think>"), std::string::npos) << "enable_thinking false";
    EXPECT_TRUE(j.parse_tools && j.chat && j.stream && j.include_usage);
    EXPECT_FALSE(j.starts_in_reasoning);
    EXPECT_EQ(j.options.max_tokens, 7);
    EXPECT_EQ(j.options.sampler.top_k, 3);
    EXPECT_EQ(j.options.sampler.seed, 11u);
    EXPECT_EQ(j.options.stop, std::vector<std::string>{"END"});
    EXPECT_EQ(j.top_logprobs, 2);
    // tool_choice none: the tools are neither shown nor parsed
    const Job none = parse_chat_request(
        R"({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "none",
            "tools": [{"type": "function", "function": {"name": "f"}}]})",
        env().served());
    EXPECT_EQ(prompt_text(none).find("<tools>"), std::string::npos);
    EXPECT_FALSE(none.parse_tools);
    // defaults: the context bounds the answer; OpenAI's sampling defaults
    EXPECT_EQ(none.options.max_tokens, 4096);
    EXPECT_EQ(none.top_logprobs, -1);
}

TEST(ServerApi, CompletionRequestTakesTextOrIds) {
    const Job t = parse_completion_request(R"({"prompt": "Hello world", "logprobs": 3})", env().served());
    EXPECT_EQ(prompt_text(t), "Hello world");
    EXPECT_EQ(t.options.max_tokens, 16);
    EXPECT_EQ(t.top_logprobs, 3);
    const Job ids = parse_completion_request(R"({"prompt": [[1, 2, 3]], "max_tokens": 5})", env().served());
    EXPECT_EQ(ids.prompt, (std::vector<int32_t>{1, 2, 3}));
    EXPECT_FALSE(ids.chat);
}

TEST(ServerApi, BadRequestsGetTheirStatus) {
    EXPECT_EQ(status_of(R"({"model": "other", "messages": [{"role": "user", "content": "x"}]})"), 404);
    EXPECT_EQ(status_of(R"({"messages": []})"), 400);
    EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})"), 400);
    EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "1"})"), 400);
    EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "seed": 1e30})"), 400);
    EXPECT_EQ(status_of("{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\"}]}"), 400);
    EXPECT_EQ(status_of(R"({"prompt": [999999999]})", false), 400);
    EXPECT_EQ(status_of(R"({"prompt": "x", "echo": true})", false), 400);
    EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}]})"), 200);
    std::string long_prompt = R"({"prompt": ")";
    for (int i = 0; i < 5000; ++i) long_prompt += "word ";
    long_prompt += "\"}";
    try {
        parse_completion_request(long_prompt, env().served());
        ADD_FAILURE() << "a prompt longer than the context was accepted";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.code, "context_length_exceeded");
        EXPECT_EQ(e.body()["error"]["code"], "context_length_exceeded");
    }
    ServedModel no_template = env().served();
    no_template.chat_template = nullptr;
    EXPECT_THROW(parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}]})", no_template), ApiError);
    EXPECT_NO_THROW(parse_completion_request(R"({"prompt": "x"})", no_template));
}

// Runs the parser over text cut into pieces at the given points; returns everything released.
ParsedDelta run(bool in_reasoning, bool tools, const std::string& text, std::vector<size_t> cuts) {
    OutputParser p(in_reasoning, tools);
    ParsedDelta all;
    auto add = [&](const ParsedDelta& d) {
        all.content += d.content;
        all.reasoning += d.reasoning;
        all.tool_calls.insert(all.tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
    };
    size_t at = 0;
    for (size_t c : cuts) {
        add(p.push(text.substr(at, c - at)));
        at = c;
    }
    add(p.push(text.substr(at)));
    add(p.finish());
    return all;
}

TEST(OutputParser, SplitsReasoningContentAndToolCallsWhateverThePieces) {
    struct Case {
        bool in_reasoning, tools;
        std::string text, content, reasoning;
        std::vector<std::string> calls;  // name + " " + arguments
    };
    const std::vector<Case> cases = {
        {false, false, "Just text <b>bold</b> < think", "Just text <b>bold</b> < think", "", {}},
        {false, false, "<think>\nplan it\n</think>\n\nThe answer.", "The answer.", "\nplan it\n", {}},
        {true, false, "still thinking</think>\n\nDone.", "Done.", "still thinking", {}},
        {false, true,
         "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
         "Let me check.\n", "", {"get_weather {\"city\":\"Paris\"}"}},
        {false, true, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\"}</tool_call>",
         "", "", {"a {}", "b {}"}},
        {false, true, "<tool_call>not json</tool_call> after", "<tool_call>not json</tool_call> after", "", {}},
        {false, true, "cut short <tool_call>{\"name\": \"a\"", "cut short <tool_call>{\"name\": \"a\"", "", {}},
        {false, false, "<tool_call>{\"name\": \"a\"}</tool_call>", "<tool_call>{\"name\": \"a\"}</tool_call>", "", {}},
        {false, true, "<think>x</think><tool_call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>", "", "x", {"f {}"}},
    };
    std::mt19937 rng(7);
    for (const Case& c : cases) {
        for (int trial = 0; trial < 40; ++trial) {
            std::vector<size_t> cuts;
            if (trial == 1)
                for (size_t i = 1; i < c.text.size(); ++i) cuts.push_back(i);  // byte by byte
            else if (trial > 1)
                for (size_t i = 1; i < c.text.size(); ++i)
                    if (rng() % 4 == 0) cuts.push_back(i);
            const ParsedDelta d = run(c.in_reasoning, c.tools, c.text, cuts);
            SCOPED_TRACE(c.text + " trial " + std::to_string(trial));
            EXPECT_EQ(d.content, c.content);
            EXPECT_EQ(d.reasoning, c.reasoning);
            std::vector<std::string> calls;
            for (const ToolCall& t : d.tool_calls) calls.push_back(t.name + " " + t.arguments);
            EXPECT_EQ(calls, c.calls);
        }
    }
}

TEST(ServerApi, ResponsesHaveTheOpenAiShape) {
    Job job;
    job.chat = true;
    Output out;
    out.parsed.tool_calls = {{"f", "{\"x\":1}"}};
    out.stats.prompt_tokens = 5;
    out.stats.generated_tokens = 3;
    out.stats.cached_prompt_tokens = 2;
    out.stats.stop_reason = "eos";
    const Json r = chat_response(job, env().served(), "7", 100, out);
    EXPECT_EQ(r["object"], "chat.completion");
    EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_TRUE(r["choices"][0]["message"]["content"].is_null());
    EXPECT_EQ(r["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
    EXPECT_EQ(r["usage"]["total_tokens"], 8);
    EXPECT_EQ(r["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    out.parsed.tool_calls.clear();
    out.stats.stop_reason = "context";
    EXPECT_EQ(chat_response(job, env().served(), "7", 100, out)["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace onebit::server
