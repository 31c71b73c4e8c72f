// GGUF reading and writing (io/gguf.h): a file written with every value type and tensor type
// reads back identical; every truncation and a sweep of corrupted bytes give a [gguf] error or a
// valid parse, never a crash or an out-of-bounds read (ASan in CI); bad writer input is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/error.h"
#include "io/gguf.h"
#include "scratch_dir.h"

namespace onebit {
namespace {

namespace fs = std::filesystem;
using io::GgufType;
using io::GgufValue;

std::string sample(const fs::path& path) {
    std::vector<std::pair<std::string, GgufValue>> meta = {
        {"general.architecture", {GgufType::string, GgufType::u32, "qwen3"}},
        {"a.u8", {GgufType::u8, GgufType::u32, 200}},
        {"a.i16", {GgufType::i16, GgufType::u32, -300}},
        {"a.f32", {GgufType::f32, GgufType::u32, 0.25}},
        {"a.f64", {GgufType::f64, GgufType::u32, -1.5}},
        {"a.u64", {GgufType::u64, GgufType::u32, uint64_t(1) << 40}},
        {"a.bool", {GgufType::boolean, GgufType::u32, true}},
        {"a.tokens", {GgufType::array, GgufType::string, nlohmann::json::array({"<s>", "héllo", ""})}},
        {"a.ints", {GgufType::array, GgufType::i32, nlohmann::json::array({1, -2, 3})}},
    };
    std::vector<io::GgufTensor> tensors(3);
    tensors[0].name = "w1", tensors[0].type = io::kGgmlQ1_0, tensors[0].ne = {256, 3};
    tensors[1].name = "w8", tensors[1].type = io::kGgmlQ8_0, tensors[1].ne = {64, 2};
    tensors[2].name = "n", tensors[2].type = io::kGgmlF32, tensors[2].ne = {5};
    io::GgufWriter w(path.string(), meta, tensors);
    std::mt19937 rng(3);
    for (size_t bytes : {size_t(3 * 2 * 18), size_t(2 * 2 * 34), size_t(5 * 4)}) {
        std::vector<uint8_t> d(bytes);
        for (auto& x : d) x = static_cast<uint8_t>(rng());
        w.write(d.data(), d.size());
    }
    w.finish();
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Gguf, RoundTripsEveryValueAndTensorType) {
    const fs::path p = test::scratch_dir("gguf") / "gguf.gguf";
    const std::string bytes = sample(p);
    const io::GgufFile f = io::GgufFile::open(p.string());
    EXPECT_EQ(f.version(), 3u);
    ASSERT_EQ(f.metadata().size(), 9u);
    EXPECT_EQ(f.find("general.architecture")->value, "qwen3");
    EXPECT_EQ(f.find("a.u8")->value, 200);
    EXPECT_EQ(f.find("a.i16")->value, -300);
    EXPECT_EQ(f.find("a.f32")->value, 0.25);
    EXPECT_EQ(f.find("a.u64")->value, uint64_t(1) << 40);
    EXPECT_EQ(f.find("a.bool")->value, true);
    EXPECT_EQ(f.find("a.tokens")->value[1], "héllo");
    EXPECT_EQ(f.find("a.tokens")->element, GgufType::string);
    EXPECT_EQ(f.find("a.ints")->value[1], -2);
    ASSERT_EQ(f.tensors().size(), 3u);
    const io::GgufTensor* w1 = f.tensor("w1");
    ASSERT_NE(w1, nullptr);
    EXPECT_EQ(w1->nbytes, 3u * 2 * 18);
    EXPECT_EQ(w1->ne, (std::vector<int64_t>{256, 3}));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w1->data) % 32, 0u);
    EXPECT_EQ(f.tensor("n")->nbytes, 20u);
    fs::remove(p);
}

TEST(Gguf, TruncatedAndCorruptedFilesAreErrors) {
    const fs::path p = test::scratch_dir("gguf") / "gguf_c.gguf";
    const std::string bytes = sample(p);
    fs::remove(p);
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
    // every cut before the last tensor's end is an error (the trailing alignment padding is not
    // needed)
    const io::GgufFile whole = io::GgufFile::from_bytes("whole", b, bytes.size());
    const size_t end = static_cast<size_t>(whole.tensor("n")->data - b) + whole.tensor("n")->nbytes;
    ASSERT_LE(end, bytes.size());
    for (size_t n = 0; n < end; ++n)
        EXPECT_THROW(io::GgufFile::from_bytes("cut", b, n), Error) << "truncated to " << n;
    std::mt19937 rng(9);
    int errors = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::string m = bytes;
        for (int k = 0; k < 1 + trial % 4; ++k) m[rng() % m.size()] = static_cast<char>(rng());
        try {
            io::GgufFile::from_bytes("mutated", reinterpret_cast<const uint8_t*>(m.data()), m.size());
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("[gguf]"), std::string::npos) << e.what();
            ++errors;
        }
    }
    EXPECT_GT(errors, 100);
}

TEST(Gguf, WriterRefusesBadInput) {
    const fs::path p = test::scratch_dir("gguf") / "gguf_w.gguf";
    std::vector<io::GgufTensor> t(1);
    t[0].name = "x", t[0].type = io::kGgmlQ1_0, t[0].ne = {100};  // not whole blocks of 128
    EXPECT_THROW(io::GgufWriter(p.string(), {}, t), Error);
    t[0].type = 40;
    t[0].ne = {128};
    try {
        io::GgufWriter w(p.string(), {}, t);
        ADD_FAILURE() << "type 40 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("type 40"), std::string::npos);
    }
    t[0].type = io::kGgmlF32;
    {
        io::GgufWriter w(p.string(), {}, t);
        const float x[3] = {1, 2, 3};
        EXPECT_THROW(w.write(x, sizeof x), Error);  // 128 floats declared
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_FALSE(fs::exists(p.string() + ".tmp"));
}

}  // namespace
}  // namespace onebit
