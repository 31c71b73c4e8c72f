// libFuzzer target for the encoder and decoder, on the real Qwen3 tokenizer and the converted
// stories260K one. The first byte picks the tokenizer and split_special; the rest is the text.
// Invalid UTF-8 must be rejected with onebit::Error; valid text must encode, and for text already
// in NFC decode(encode(text)) must give it back. The same bytes, read as ids, must stream-decode
// to exactly what decode() gives, in valid UTF-8 pieces. Anything else aborts.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

using onebit::tok::Tokenizer;

namespace {
std::unique_ptr<Tokenizer> g_qwen, g_stories;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_qwen = std::make_unique<Tokenizer>(
        Tokenizer::from_file(std::string(ONEBIT_DATA_DIR) + "/qwen3-tokenizer/tokenizer.json"));
    g_stories = std::make_unique<Tokenizer>(
        Tokenizer::from_file(std::string(ONEBIT_DATA_DIR) + "/stories260K/tok512.bin"));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Tokenizer& t = (data[0] & 1) ? *g_stories : *g_qwen;
    const bool split_special = data[0] & 2;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool valid = onebit::tok::utf8_first_invalid(text) == std::string::npos;
    try {
        const std::vector<int32_t> ids = t.encode(text, split_special);
        if (!valid) std::abort();  // invalid UTF-8 accepted
        for (int32_t id : ids)
            if (id < 0 || id >= t.vocab_size()) std::abort();
        // Lossless round trip: byte-level BPE and byte_fallback lose nothing but normalization.
        // (stories260K drops one leading space, as llama2.c does.)
        if (onebit::tok::normalize(text, onebit::tok::NormalForm::NFC) == text && &t == g_qwen.get())
            if (t.decode(ids) != text) std::abort();
    } catch (const onebit::Error&) {
        if (valid) std::abort();  // valid text must always encode
    }
    // The bytes as ids: streaming equals whole decoding, every piece valid UTF-8.
    std::vector<int32_t> ids;
    for (size_t i = 1; i + 1 < size; i += 2)
        ids.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) % t.vocab_size()));
    onebit::tok::DecodeStream ds(t);
    std::string streamed;
    try {
        for (int32_t id : ids) {
            const std::string piece = ds.step(id);
            if (onebit::tok::utf8_first_invalid(piece) != std::string::npos) std::abort();
            streamed += piece;
        }
        streamed += ds.finish();
        if (streamed != t.decode(ids)) std::abort();
    } catch (const onebit::Error&) {
        // ids in a vocabulary hole are rejected
    }
    return 0;
}
