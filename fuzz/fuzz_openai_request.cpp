// libFuzzer target for the server's request parsing and output parsing: the input is a request
// body, parsed as a chat completion (rendered through the real Qwen3 chat template) and as a text
// completion; then the same bytes go through the output parser in pieces. Parsing must succeed or
// throw ApiError with a 4xx status; other exceptions, crashes, sanitizer reports and hangs are bugs.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/openai.h"

namespace {

struct Env {
    onebit::model::Model model = onebit::model::Model::load(ONEBIT_DATA_DIR "/../models/stories260K");
    onebit::tok::Tokenizer tokenizer =
        onebit::tok::Tokenizer::from_file(ONEBIT_DATA_DIR "/qwen3-tokenizer/tokenizer.json");
    onebit::chat::ChatTemplate tmpl = onebit::chat::ChatTemplate::from_model_dir(ONEBIT_DATA_DIR "/qwen3-tokenizer");
    onebit::server::ServedModel served;
    Env() {
        served.model = &model;
        served.tokenizer = &tokenizer;
        served.chat_template = &tmpl;
        served.id = "m";
        served.ctx_size = 512;
    }
};

Env& env() {
    static Env e;
    return e;
}

void parse(const std::string& body, bool chat) {
    try {
        const onebit::server::Job j = chat ? onebit::server::parse_chat_request(body, env().served)
                                           : onebit::server::parse_completion_request(body, env().served);
        if (j.prompt.empty() || static_cast<int64_t>(j.prompt.size()) > env().served.ctx_size) std::abort();
    } catch (const onebit::server::ApiError& e) {
        if (e.status < 400 || e.status >= 500) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    parse(body, true);
    parse(body, false);
    onebit::server::OutputParser p(size % 2 == 1, true);
    for (size_t i = 0; i < body.size(); i += 1 + (i % 7)) p.push(std::string_view(body).substr(i, 1 + (i % 7)));
    p.finish();
    return 0;
}
