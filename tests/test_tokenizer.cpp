// The tokenizer against real oracles: llama.cpp's 46 Qwen2-vocabulary cases on the real Qwen3
// tokenizer; tokenizers built with the Hugging Face library covering every supported component
// (scripts/gen_tokenizer_fixtures.py); llama2.c's encoder on the converted stories260K tokenizer
// (scripts/llama2c_encode.py). Streaming decode, UTF-8 handling and every load error. The live
// comparison on whole corpora is tests/python/test_hf_tokenizers.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace onebit::tok {
namespace {

using Json = nlohmann::json;

std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    EXPECT_TRUE(f.good()) << path;
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

const std::string kData = ONEBIT_DATA_DIR;
const std::string kFixtures = ONEBIT_TEST_DATA;

const Tokenizer& qwen() {
    static const Tokenizer t = Tokenizer::from_file(kData + "/qwen3-tokenizer/tokenizer.json");
    return t;
}

// Streams ids through DecodeStream: every piece is valid UTF-8 and together they equal decode().
void expect_stream_matches(const Tokenizer& t, const std::vector<int32_t>& ids, const std::string& what) {
    DecodeStream ds(t);
    std::string all;
    for (int32_t id : ids) {
        const std::string piece = ds.step(id);
        EXPECT_EQ(utf8_first_invalid(piece), std::string::npos) << what;
        all += piece;
    }
    all += ds.finish();
    EXPECT_EQ(all, t.decode(ids)) << what;
}

TEST(Tokenizer, Qwen2VocabCases) {
    const std::string inp = read(kData + "/tokenizer-tests/qwen2-vocab.inp");
    const std::string out = read(kData + "/tokenizer-tests/qwen2-vocab.out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> inputs, outputs;
    for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
        inputs.push_back(inp.substr(pos, hit - pos));
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) outputs.push_back(line);
    ASSERT_EQ(inputs.size(), 46u);
    ASSERT_EQ(outputs.size(), 46u);
    for (size_t i = 0; i < inputs.size(); ++i) {
        const std::vector<int32_t> ids = qwen().encode(inputs[i]);
        std::istringstream want(outputs[i]);
        std::vector<int32_t> expected;
        for (int32_t id; want >> id;) expected.push_back(id);
        EXPECT_EQ(ids, expected) << "case " << i << ": '" << inputs[i] << "'";
        expect_stream_matches(qwen(), ids, inputs[i]);
    }
}

TEST(Tokenizer, EveryComponentMatchesHuggingFace) {
    const Json all = Json::parse(read(kFixtures + "/tokenizer/components.json"));
    ASSERT_GE(all.size(), 15u);
    for (const Json& entry : all) {
        const std::string name = entry.at("name");
        const Tokenizer t = Tokenizer::from_json(entry.at("tokenizer").dump(), name);
        for (const Json& c : entry.at("encode")) {
            const std::string text = c.at("text");
            EXPECT_EQ(t.encode(text, c.at("split_special").get<bool>()), c.at("ids").get<std::vector<int32_t>>())
                << name << ": '" << text << "' split_special=" << c.at("split_special");
        }
        for (const Json& c : entry.at("decode")) {
            const auto ids = c.at("ids").get<std::vector<int32_t>>();
            EXPECT_EQ(t.decode(ids), c.at("text").get<std::string>()) << name << ": " << c.at("ids");
            if (utf8_first_invalid(t.decode(ids)) == std::string::npos)
                expect_stream_matches(t, ids, name + " " + c.at("ids").dump());
        }
    }
}

TEST(Tokenizer, Llama2cImportEncodesAsLlama2c) {
    const Tokenizer t = Tokenizer::from_file(kData + "/stories260K/tok512.bin");
    EXPECT_EQ(t.vocab_size(), 512);
    const Json fx = Json::parse(read(kFixtures + "/tokenizer/llama2c_ids.json"));
    ASSERT_GE(fx.at("cases").size(), 300u);
    for (const Json& c : fx.at("cases")) {
        const std::string text = c.at("text");
        const auto want = c.at("ids").get<std::vector<int32_t>>();
        const auto ids = t.encode(text, /*split_special=*/true);
        EXPECT_EQ(ids, want) << "'" << text << "'";
        expect_stream_matches(t, ids, text);
    }
    // llama2.c's decode: the leading space of the first piece is dropped, bytes come back whole.
    EXPECT_EQ(t.decode(t.encode("Once upon a time")), "Once upon a time");
    EXPECT_EQ(t.decode(t.encode("日本語 🦙")), "日本語 🦙");
}

TEST(Tokenizer, StreamingDecodeOnCorpusNeverSplitsCharacters) {
    std::string text = read(kData + "/corpora/wikitext2-raw-test.txt").substr(0, 40000);
    text += "日本語のテキスト 🦙👩‍👩‍👧‍👦 ភាសាខ្មែរ";
    const auto ids = qwen().encode(text);
    expect_stream_matches(qwen(), ids, "wikitext");
    EXPECT_EQ(qwen().decode(ids), text);
}

TEST(Tokenizer, SpecialTokens) {
    const Tokenizer& t = qwen();
    const auto ids = t.encode("<|im_start|>user\nhi<|im_end|>");
    EXPECT_EQ(ids.front(), 151644);
    EXPECT_EQ(ids.back(), 151645);
    EXPECT_TRUE(t.is_special(151644));
    EXPECT_EQ(t.token_id("<|im_end|>"), 151645);
    const auto split = t.encode("<|im_start|>", /*split_special=*/true);
    EXPECT_GT(split.size(), 1u);
    EXPECT_EQ(t.decode(split), "<|im_start|>");
    EXPECT_EQ(t.decode(ids, /*skip_special=*/true), "user\nhi");
}

TEST(Tokenizer, Utf8Handling) {
    // Rust's from_utf8_lossy (maximal subparts), as Hugging Face decodes bytes.
    EXPECT_EQ(utf8_lossy("a\xE6\x97"), "a\xEF\xBF\xBD");
    EXPECT_EQ(utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(utf8_lossy("\xF0\x9F\x98x"), "\xEF\xBF\xBDx");
    EXPECT_EQ(utf8_lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\x98"), 3u);
    EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(utf8_incomplete_tail("ab\xFF"), 0u);
    for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(byte_to_unicode(static_cast<uint8_t>(b))), b);
    EXPECT_EQ(normalize("e\xCC\x81", NormalForm::NFC), "\xC3\xA9");
    try {
        qwen().encode("ok \xC3\x28 bad");
        ADD_FAILURE() << "invalid UTF-8 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not valid UTF-8 (byte offset 3)"), std::string::npos)
            << e.what();
    }
}

TEST(Tokenizer, DecodeRejectsUnknownIds) {
    const std::vector<int32_t> bad = {1, qwen().vocab_size()};
    EXPECT_THROW(qwen().decode(bad), Error);
    const std::vector<int32_t> negative = {-1};
    EXPECT_THROW(qwen().decode(negative), Error);
}

// Every malformed or unsupported file is an Error naming the problem.
TEST(Tokenizer, MalformedFilesAreClearErrors) {
    const Json good = Json::parse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
        "merges": ["a b"]}, "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
        "decoder": null})");
    EXPECT_EQ(Tokenizer::from_json(good.dump(), "good").encode("ab"), std::vector<int32_t>{2});
    auto with = [&](const std::string& pointer, const Json& value) {
        Json j = good;
        j[Json::json_pointer(pointer)] = value;
        return j.dump();
    };
    const std::pair<std::string, std::string> cases[] = {
        {"{\"model\": ", "not valid JSON"},
        {"[]", "top level is not an object"},
        {"{}", "has no 'model'"},
        {with("/model/type", "WordPiece"), "model type 'WordPiece' is not supported"},
        {with("/model/vocab", Json::array()), "model.vocab is not an object"},
        {with("/model/vocab/a", -3), "not an integer in [0, 4194303]"},
        {with("/model/vocab/a", 2000000000), "not an integer in [0, 4194303]"},
        {with("/added_tokens", Json::array({Json{{"id", 2147483647}, {"content", "x"}}})),
         "added token 'x' has id 2147483647"},
        {with("/model/merges", Json::array({"a c"})), "'c', not in the vocabulary"},
        {with("/model/merges", Json::array({"a b c"})), "not two tokens separated by one space"},
        {with("/model/merges", Json::array({Json::array({"a"})})), "neither"},
        {with("/model/dropout", 0.1), "dropout is not supported"},
        {with("/model/continuing_subword_prefix", "##"), "continuing_subword_prefix is not supported"},
        {with("/model/unk_token", "<unk>"), "unk_token '<unk>' is not in the vocabulary"},
        {with("/normalizer", Json{{"type", "BertNormalizer"}}), "normalizer type 'BertNormalizer'"},
        {with("/pre_tokenizer", Json{{"type", "Whitespace"}}), "pre_tokenizer type 'Whitespace'"},
        {with("/pre_tokenizer", Json{{"type", "Split"}, {"pattern", {{"Regex", "("}}}, {"behavior", "Isolated"}}),
         "does not compile"},
        {with("/pre_tokenizer", Json{{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}}),
         "behavior 'Sideways'"},
        {with("/decoder", Json{{"type", "WordPiece"}}), "decoder type 'WordPiece'"},
        {with("/added_tokens", Json::array({Json{{"id", 5}, {"content", ""}}})), "empty content"},
        {with("/added_tokens", Json::array({Json{{"content", "x"}}})), "has no 'id'"},
        {with("/normalizer", Json{{"type", "Replace"}, {"content", "x"}}), "has no 'pattern'"},
    };
    for (const auto& [text, msg] : cases) {
        try {
            Tokenizer::from_json(text, "t.json");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_EQ(what.rfind("[tokenizer] t.json: ", 0), 0u) << what;
            EXPECT_NE(what.find(msg), std::string::npos) << "expected '" << msg << "' in: " << what;
        }
    }
    // The real file cut short anywhere is a JSON error, never a crash or a partial tokenizer.
    const std::string real = read(kData + "/qwen3-tokenizer/tokenizer.json");
    for (size_t cut : {size_t{0}, size_t{1}, size_t{100}, real.size() / 3, real.size() - 2})
        EXPECT_THROW(Tokenizer::from_json(real.substr(0, cut), "cut"), Error) << cut;
    EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), Error);
}

TEST(Tokenizer, TruncatedLlama2cFilesAreClearErrors) {
    const std::string bytes = read(kData + "/stories260K/tok512.bin");
    for (size_t cut : {size_t{13}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
        try {
            llama2c_tokenizer_to_json(bytes.substr(0, cut), "tok.bin");
            ADD_FAILURE() << "accepted a cut at " << cut;
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind("[tokenizer] tok.bin: ", 0), 0u) << e.what();
        }
    }
    std::string bad = bytes;
    bad[0] = 0;  // max_token_length 0
    EXPECT_THROW(llama2c_tokenizer_to_json(bad, "tok.bin"), Error);
}

}  // namespace
}  // namespace onebit::tok
