// Splits a chat model's generated text, as it streams, into what the OpenAI API returns
// separately: content, reasoning (between <think> and </think>) and tool calls (each
// <tool_call>{"name": ..., "arguments": ...}</tool_call>, Qwen3 / Hermes style).
//
// Text that may be the start of a tag is held back until it is known not to be one. A tool call's
// text is held until its closing tag; a block that is not valid JSON with a string "name" is
// returned as content, unchanged. Pure text processing: no model, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onebit::server {

struct ToolCall {
    std::string name;
    std::string arguments;  // JSON text of the arguments object
};

// What one push() or finish() released.
struct ParsedDelta {
    std::string content, reasoning;
    std::vector<ToolCall> tool_calls;
    bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

class OutputParser {
  public:
    // in_reasoning: the prompt ended inside a <think> block (templates that open it themselves).
    // parse_tools: recognise <tool_call> blocks (the request passed tools).
    OutputParser(bool in_reasoning, bool parse_tools) : reasoning_(in_reasoning), tools_(parse_tools) {}
    ParsedDelta push(std::string_view text);
    // The end of the output: whatever is held back is released (an unclosed tool call as content).
    ParsedDelta finish();

  private:
    void drain(ParsedDelta& out, bool final);
    void emit(ParsedDelta& out, std::string_view s) { (reasoning_ ? out.reasoning : out.content) += s; }
    std::string pending_;
    bool reasoning_, tools_, in_tool_ = false;
    bool strip_space_ = false;  // just after </think>: leading whitespace is dropped
};

}  // namespace onebit::server
