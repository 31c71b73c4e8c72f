// `onebit tokenize`, `detokenize`, `chat-template`, `export-tokenizer` end to end through the
// binary: stdout carries exactly the result; bad input is one line on stderr and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "scratch_dir.h"

namespace fs = std::filesystem;

namespace {

struct Result {
    int status;
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

fs::path dir() { return onebit::test::scratch_dir("cli_tok"); }

fs::path write(const std::string& name, const std::string& bytes) {
    fs::path p = dir() / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

// Runs `onebit args` (with `env` assignments before it) capturing stdout and stderr.
Result run(const std::string& args, const std::string& env = "") {
    const fs::path out = dir() / "stdout", err = dir() / "stderr";
    const std::string cmd = env + " " + std::string(ONEBIT_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string();
    const int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

const std::string kQwenDir = std::string(ONEBIT_DATA_DIR) + "/qwen3-tokenizer";
const std::string kQwen = "--tokenizer " + kQwenDir + "/tokenizer.json";

void expect_one_line_error(const Result& r, const std::string& needle) {
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // exactly one line
}

TEST(CliTokenizer, TokenizePrintsOnlyTheIds) {
    Result r = run("tokenize " + kQwen + " --text 'Hello world'");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "9707 1879\n");
    r = run("tokenize --model " + kQwenDir + " --text '<|im_start|>'");
    EXPECT_EQ(r.out, "151644\n");
    r = run("tokenize --model " + kQwenDir + " --text '<|im_start|>' --split-special");
    EXPECT_NE(r.out, "151644\n");
    EXPECT_GT(r.out.size(), 8u);
    const fs::path f = write("text.txt", "Hello world");
    r = run("tokenize " + kQwen + " --file " + f.string());
    EXPECT_EQ(r.out, "9707 1879\n");
    const fs::path b = write("b.jsonl", "\"Hello world\"\n\"\"\n\"<|im_end|>\"\n");
    r = run("tokenize " + kQwen + " --batch " + b.string());
    EXPECT_EQ(r.out, "9707 1879\n\n151645\n");
}

TEST(CliTokenizer, DetokenizePrintsOnlyTheText) {
    Result r = run("detokenize " + kQwen + " --ids '9707 1879 151645'");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "Hello world<|im_end|>");
    const fs::path b = write("ids.txt", "9707 1879\n11162 99 247\n");
    r = run("detokenize " + kQwen + " --batch " + b.string());
    EXPECT_EQ(r.out, "\"Hello world\"\n\" \xF0\x9F\xA6\x99\"\n");
}

TEST(CliTokenizer, ChatTemplateRendersExactly) {
    const auto cases = nlohmann::ordered_json::parse(slurp(std::string(ONEBIT_TEST_DATA) + "/chat/qwen3_cases.json"));
    int checked = 0;
    for (const auto& c : cases) {
        if (c.value("error", false) || !c.at("enable_thinking").is_null()) continue;
        const fs::path m = write("m.json", c.at("request").dump());
        const Result r = run("chat-template --model " + kQwenDir + " --messages " + m.string() +
                          (c.at("add_generation_prompt").get<bool>() ? "" : " --no-generation-prompt"));
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, c.at("expected").get<std::string>()) << c.at("name");
        if (++checked == 4) break;
    }
    const fs::path m = write("m.json", R"([{"role": "user", "content": "hi"}])");
    const Result r = run("chat-template --model " + kQwenDir + " --messages " + m.string() + " --no-think");
    EXPECT_EQ(r.out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(CliTokenizer, BadInputIsOneLineAndNonZeroExit) {
    expect_one_line_error(run("tokenize " + kQwen), "--text, --file or --batch is required");
    expect_one_line_error(run("tokenize --tokenizer /nonexistent.json --text x"), "cannot open");
    expect_one_line_error(run("tokenize " + kQwen + " --file " + write("bad.txt", "ok \xC3\x28").string()),
                          "not valid UTF-8 (byte offset 3)");
    expect_one_line_error(run("tokenize --tokenizer " + write("t.json", "{\"model\": 3}").string() + " --text x"),
                          "'model' is not an object");
    expect_one_line_error(run("detokenize " + kQwen + " --ids '1 abc'"), "'abc' is not a token id");
    expect_one_line_error(run("detokenize " + kQwen + " --ids '99999999'"), "is not in the vocabulary");
    expect_one_line_error(run("chat-template --model " + kQwenDir + " --messages " + write("m.json", "{").string()),
                          "not valid JSON");
    expect_one_line_error(run("chat-template --model /nonexistent --messages " + write("m2.json", "[]").string()),
                          "[chat-template]");
    const fs::path tmpl = dir() / "tmpl";
    fs::create_directories(tmpl);
    write("tmpl/chat_template.jinja", "{% include 'x' %}");
    expect_one_line_error(
        run("chat-template --model " + tmpl.string() + " --messages " + write("m3.json", "[]").string()),
        "unsupported tag 'include'");
}

TEST(CliTokenizer, ExportTokenizerWritesLoadableJson) {
    const fs::path out = dir() / "tok512.json";
    const Result r = run("export-tokenizer --tokenizer " + std::string(ONEBIT_DATA_DIR) +
                      "/stories260K/tok512.bin -o " + out.string());
    EXPECT_EQ(r.status, 0) << r.err;
    const Result a = run("tokenize --tokenizer " + out.string() + " --text 'Once upon a time'");
    const Result b = run("tokenize --tokenizer " + std::string(ONEBIT_DATA_DIR) +
                      "/stories260K/tok512.bin --text 'Once upon a time'");
    EXPECT_EQ(a.out, b.out);
    EXPECT_FALSE(a.out.empty());
}

}  // namespace

namespace {

// The embedded default is the tiny 1-bit Qwen3: without --prompt it starts after its end-of-text
// token (it has no BOS).
TEST(CliGenerate, EmbeddedModelIsTheTinyQwen3) {
    const std::string root = std::string(ONEBIT_DATA_DIR) + "/..";
    const Result a = run("generate --prompt ROMEO: --max-tokens 100 --temp 0");
    EXPECT_EQ(a.status, 0) << a.err;
    EXPECT_EQ(a.out, slurp(root + "/tests/fixtures/tiny_qwen3_greedy_romeo.txt"));
    EXPECT_NE(a.err.find("[tiny-qwen3-1bit (embedded)]"), std::string::npos) << a.err;
    const Result b = run("generate --max-tokens 20 --temp 0");
    const Result c = run("generate --model " + root + "/models/tiny-qwen3-1bit --prompt-ids 0 --max-tokens 20 --temp 0");
    EXPECT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(b.out, c.out);
    EXPECT_FALSE(b.out.empty());
}

TEST(CliGenerate, Stories260KGoldenAndStats) {
    const std::string stories = " --model " + std::string(ONEBIT_DATA_DIR) + "/../models/stories260K";
    const std::string golden = slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt");
    Result r = run("generate --temp 0 --max-tokens 200" + stories);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, golden + "\n");
    EXPECT_NE(r.err.find("prompt 1 tokens, generated 200"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("peak RSS"), std::string::npos) << r.err;
    r = run("generate --temp 0 --max-tokens 20 --json" + stories);
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(golden.rfind(j.at("text").get<std::string>(), 0), 0u);
    EXPECT_EQ(j.at("tokens").size(), 20u);
    EXPECT_EQ(j.at("stats").at("generated_tokens"), 20);
    r = run("generate --temp 0 --max-tokens 30 --prompt 'Once upon a time' --stop Lily" + stories);
    EXPECT_EQ(r.out, ", there was a little girl named \n");
    // Sampling with a seed is reproducible.
    const Result a = run("generate --temp 1 --seed 7 --max-tokens 40" + stories);
    const Result b = run("generate --temp 1 --seed 7 --max-tokens 40" + stories);
    EXPECT_EQ(a.out, b.out);
    EXPECT_FALSE(a.out.empty());
}

// The shipped tiny 1-bit Qwen3 (scripts/tiny_qwen3): its greedy text on every kernel this machine
// runs (the same text came out on AVX-512, AVX2 and CUDA when it was recorded).
TEST(CliGenerate, TinyQwen3OneBitGolden) {
    const std::string root = std::string(ONEBIT_DATA_DIR) + "/..";
    const Result r = run("generate --model " + root + "/models/tiny-qwen3-1bit --prompt ROMEO: --max-tokens 100 --temp 0");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, slurp(root + "/tests/fixtures/tiny_qwen3_greedy_romeo.txt"));
    EXPECT_NE(r.err.find("generated 100"), std::string::npos) << r.err;
}

TEST(CliGenerate, ConvertedFolderAndErrors) {
    const fs::path out = dir() / "stories";
    Result r = run("convert --input " + std::string(ONEBIT_DATA_DIR) + "/stories260K/stories260K.bin --tokenizer " +
                   std::string(ONEBIT_DATA_DIR) + "/stories260K/tok512.bin --output " + out.string());
    EXPECT_EQ(r.status, 0) << r.err;
    r = run("generate --model " + out.string() + " --temp 0 --max-tokens 200");
    EXPECT_EQ(r.out, slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt") + "\n");
    r = run("generate --model " + out.string() + " --chat --prompt hi --temp 0 --max-tokens 5");
    EXPECT_EQ(r.status, 0) << r.err;
    // generation_config.json's sampling defaults apply where no flag is given.
    std::ofstream(out / "generation_config.json") << R"({"do_sample": false, "top_k": 5, "top_p": 0.5})";
    r = run("generate --model " + out.string() + " --max-tokens 200");
    EXPECT_EQ(r.out, slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt") + "\n");
    r = run("generate --model " + out.string() + " --max-tokens 2 --json --top-p 0.9");
    auto sampler = nlohmann::json::parse(r.out).at("stats").at("sampler");
    EXPECT_EQ(sampler.at("temperature"), 0.0);
    EXPECT_EQ(sampler.at("top_k"), 5);
    EXPECT_NEAR(sampler.at("top_p").get<double>(), 0.9, 1e-6);  // the flag wins
    std::ofstream(out / "generation_config.json") << R"({"temperature": 0.7, "top_k": 3})";
    r = run("generate --model " + out.string() + " --max-tokens 2 --json");
    sampler = nlohmann::json::parse(r.out).at("stats").at("sampler");
    EXPECT_NEAR(sampler.at("temperature").get<double>(), 0.7, 1e-6);
    EXPECT_EQ(sampler.at("top_k"), 3);
    EXPECT_NEAR(sampler.at("top_p").get<double>(), 0.95, 1e-6);  // not in the file: the flag's default
    std::ofstream(out / "generation_config.json") << R"({"top_k": "many"})";
    expect_one_line_error(run("generate --model " + out.string() + " --max-tokens 2"), "top_k");
    std::ofstream(out / "generation_config.json") << R"({"do_sample": "yes"})";
    expect_one_line_error(run("generate --model " + out.string() + " --max-tokens 2"), "do_sample");
    std::ofstream(out / "generation_config.json") << R"({"temperature": 0.7)";
    expect_one_line_error(run("generate --model " + out.string() + " --max-tokens 2"), "not valid JSON");
    fs::remove(out / "generation_config.json");
    // A repo id resolves offline in the Hugging Face cache (refs/main names the snapshot).
    const fs::path hub = dir() / "hub", repo = hub / "models--someone--stories260K";
    fs::create_directories(repo / "snapshots");
    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / "main") << "0123abcd";
    fs::copy(out, repo / "snapshots" / "0123abcd", fs::copy_options::recursive);
    r = run("generate --model someone/stories260K --temp 0 --max-tokens 200", "HF_HUB_CACHE=" + hub.string());
    EXPECT_EQ(r.out, slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt") + "\n");
    // The interactive chat: two turns from stdin, an empty line ends it; replies on stdout.
    const fs::path turns = write("turns.txt", "Hello\nTell me a story\n\n");
    r = run("chat --model " + out.string() + " --temp 0 --max-tokens 8 < " + turns.string());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
    EXPECT_NE(r.err.find("chat"), std::string::npos);
    expect_one_line_error(run("generate --ctx-size 3 --prompt 'Once upon a time there was'"),
                          "the context holds 3");
    expect_one_line_error(run("generate --model /nonexistent-model"), "neither a model folder nor a repo id");
    expect_one_line_error(run("generate --temp -1"), "temperature -1 must be >= 0");
    expect_one_line_error(run("generate --prompt-ids '1 x'"), "'x' is not a token id");
    expect_one_line_error(run("convert --input " + write("short.bin", "abc").string() + " --tokenizer x --output " +
                              (dir() / "o").string()),
                          "truncated");
}

}  // namespace

namespace {

// bench model --depth: the tg test starts from a filled cache, named as llama-bench names it,
// with n_depth in its JSON record; a negative depth is refused.
TEST(CliBench, ModelDepth) {
    const std::string model = std::string(ONEBIT_DATA_DIR) + "/../models/stories260K";
    const Result r = run("bench model --model " + model + " --reps 1 --depth 40 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"test\": \"tg128 @ d40\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"n_depth\": 40"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"test\": \"pp512\""), std::string::npos) << r.out;
    expect_one_line_error(run("bench model --model " + model + " --depth -3"), "--depth");
    // --bits is the synthetic checkpoint's: a bits value the format lacks, or with --model, refused
    expect_one_line_error(run("bench model --synthetic bonsai-1.7b --bits 7"), "bits 1, 2, 3, 4, 5, 6 or 8");
    expect_one_line_error(run("bench model --model " + model + " --bits 4"), "--bits is for --synthetic");
    // bench kernels --shape: any N x K, a malformed one or a K off the group size refused
    expect_one_line_error(run("bench kernels --shape 100x100 --m 1"),
                          "[bench] --shape 100x100: K is not a multiple of the group size 128");
    expect_one_line_error(run("bench kernels --shape 12288by4096 --m 1"), "--shape takes N x K");
}

// --device cuda: the golden text where a GPU is (and the build has CUDA), else one clear error.
TEST(CliGenerate, DeviceCudaGoldenOrClearError) {
    const Result r = run("generate --device cuda --temp 0 --max-tokens 200 --model " + std::string(ONEBIT_DATA_DIR) +
                         "/../models/stories260K");
    if (r.status == 0) {
        EXPECT_EQ(r.out, slurp(std::string(ONEBIT_DATA_DIR) + "/stories260K/expected_greedy_200.txt") + "\n");
    } else {
        expect_one_line_error(r, "[cuda]");
    }
    const Result b = run("bench kernels --device cuda --shape 2048x2048 --m 1 --min-seconds 0.01");
    if (b.status != 0) expect_one_line_error(b, "CUDA");
    const Result bad = run("generate --device tpu --max-tokens 1");  // CLI11's usage error
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.err.find("--device"), std::string::npos) << bad.err;
}

}  // namespace
