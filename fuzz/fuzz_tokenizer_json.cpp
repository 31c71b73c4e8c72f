// libFuzzer target for the tokenizer.json reader (and the llama2.c importer, for inputs that do
// not start with '{'): a file either loads, and then encodes and decodes a fixed text, or is
// rejected with onebit::Error. Anything else is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        if (onebit::tok::is_llama2c_tokenizer(text))
            text = onebit::tok::llama2c_tokenizer_to_json(text, "fuzz");
        const auto t = onebit::tok::Tokenizer::from_json(text, "fuzz");
        const std::vector<int32_t> ids = t.encode("Hello wörld <s> 日本 \t\n 123");
        volatile size_t n = t.decode(ids).size();
        (void)n;
    } catch (const onebit::Error&) {
    }
    return 0;
}
