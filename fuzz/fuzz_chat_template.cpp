// libFuzzer target for the Jinja parser and renderer: the input is a template, rendered with a
// conversation (messages of every kind, tools). It must render or fail with onebit::Error; other
// exceptions, crashes, sanitizer reports and hangs are bugs.
#include <cstdint>
#include <string>

#include "chat/chat_template.h"
#include "core/error.h"

namespace {
const nlohmann::ordered_json& context() {
    static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi <tool_response>x</tool_response>"},
        {"role": "assistant", "content": "<think>\nr\n</think>\n\nok", "reasoning_content": "r",
         "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]},
        {"role": "tool", "content": "42"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
      "add_generation_prompt": true, "enable_thinking": false, "bos_token": "<s>", "n": 3,
      "s": "héllo wörld", "xs": [3, 1, 2], "d": {"k": "v", "n": {"m": 1}}})");
    return ctx;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string source(reinterpret_cast<const char*>(data), size);
    try {
        volatile size_t n = onebit::chat::render_jinja(source, context()).size();
        (void)n;
    } catch (const onebit::Error&) {
    }
    return 0;
}
