// safetensors reading and writing: round trips, and one corrupted file per defect, each of which
// must be a clear [safetensors] error naming the file (and the tensor where there is one).
#include <gtest/gtest.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"
#include "scratch_dir.h"
#include "test_util.h"

using namespace onebit;
namespace fs = std::filesystem;

namespace {

// A fresh folder for the test: emptied first, since a process of an earlier run may have had the
// same id (an "ok.safetensors" left there once made the atomicity check fail).
fs::path temp_dir() {
    fs::path d = test::scratch_dir("st") / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// Writes an 8-byte length (header.size() unless `len` is given), the header and the data.
std::string write_raw(const fs::path& path, const std::string& header, const std::string& data,
                      int64_t len = -1) {
    std::ofstream out(path, std::ios::binary);
    uint64_t n = len < 0 ? header.size() : static_cast<uint64_t>(len);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << data;
    return path.string();
}

// Expects opening `path` to throw an Error whose message contains every fragment.
void expect_error(const std::string& path, std::initializer_list<std::string> fragments) {
    try {
        io::SafetensorsFile::open(path);
        ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("[safetensors]", 0), 0u) << msg;
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
        for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    }
}

const std::string k16(16, '\x01');

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeWithMlxMetadata) {
    fs::path dir = temp_dir();
    std::mt19937 rng(1);
    std::vector<Tensor> ts;
    std::vector<std::pair<std::string, TensorView>> named;
    for (DType dt : {DType::float32, DType::float16, DType::bfloat16, DType::uint32, DType::int32,
                     DType::uint8, DType::int64, DType::float64, DType::int8}) {
        ts.emplace_back(dt, Shape{3, 5});
        auto* p = static_cast<uint8_t*>(ts.back().data());
        for (size_t i = 0; i < ts.back().nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
        named.emplace_back(dtype_name(dt), ts.back().view());
    }
    ts.emplace_back(DType::float32, Shape{0, 4});  // empty tensors are legal
    named.emplace_back("empty", ts.back().view());
    std::string path = (dir / "all.safetensors").string();
    io::save_safetensors(path, named);
    auto f = io::SafetensorsFile::open(path);
    EXPECT_EQ(f.metadata().at("format"), "mlx");
    ASSERT_EQ(f.names().size(), named.size());
    for (const auto& [name, t] : named) {
        TensorView v = f.get(name);
        EXPECT_EQ(v.dtype, t.dtype) << name;
        EXPECT_EQ(v.shape, t.shape) << name;
        EXPECT_EQ(std::memcmp(v.data, t.data, t.nbytes()), 0) << name;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype), 0u) << name;
    }
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    EXPECT_THROW(f.get("nope"), Error);
}

TEST(Safetensors, MisalignedDataIsRealigned) {
    fs::path dir = temp_dir();
    // header of 5 bytes after the length puts data at offset 13: float32 data is misaligned
    std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    if ((8 + h.size()) % 4 == 0) h += " ";
    float v[2] = {1.5f, -2.25f};
    std::string data(reinterpret_cast<const char*>(v), 8);
    auto f = io::SafetensorsFile::open(write_raw(dir / "m.safetensors", h, data));
    TensorView t = f.get("a");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 4, 0u);
    EXPECT_EQ(t.ptr<float>()[0], 1.5f);
    EXPECT_EQ(t.ptr<float>()[1], -2.25f);
}

TEST(Safetensors, NullMetadataAsMlxWritesIt) {
    fs::path dir = temp_dir();
    auto f = io::SafetensorsFile::open(
        write_raw(dir / "n.safetensors",
                  R"({"__metadata__":null,"w":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})",
                  std::string(4, '\0')));
    EXPECT_TRUE(f.metadata().empty());
    EXPECT_EQ(f.get("w").ptr<float>()[0], 0.0f);
}

TEST(Safetensors, CorruptFilesAreClearErrors) {
    fs::path dir = temp_dir();
    auto p = [&](const char* name) { return dir / name; };
    const std::string ok_a = R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";

    {
        std::ofstream(p("short")) << "abc";
        expect_error(p("short").string(), {"too short"});
        std::ofstream(p("empty")).close();
        expect_error(p("empty").string(), {"too short"});
    }
    expect_error(write_raw(p("len_big"), "{}", "", 1000), {"header length 1000", "exceeds"});
    expect_error(write_raw(p("len_absurd"), "{}", "", int64_t(1) << 40), {"absurdly large"});
    expect_error(write_raw(p("json"), R"({"a": {"dtype": )", ""), {"malformed JSON"});
    expect_error(write_raw(p("array"), "[1, 2]", ""), {"not a JSON object"});
    expect_error(
        write_raw(p("dtype"), R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", "xx"),
        {"tensor 'w'", "unknown dtype 'Q4'", "supported"});
    expect_error(
        write_raw(p("neg"), R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}})", k16),
        {"tensor 'w'", "shape dimension -1"});
    expect_error(
        write_raw(p("overflow"),
                  R"({"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})",
                  k16),
        {"tensor 'w'", "overflows"});
    expect_error(write_raw(p("float_dim"),
                           R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", k16),
                 {"tensor 'w'", "not a non-negative integer"});
    expect_error(write_raw(p("range"), "{" + ok_a + "}", "short"),
                 {"tensor 'a'", "outside the 5-byte data buffer"});
    expect_error(
        write_raw(p("overlap"),
                  "{" + ok_a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                  k16 + k16),
        {"tensor 'b'", "overlap"});
    expect_error(write_raw(p("gap"),
                           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                           k16),
                 {"tensor 'b'", "gap"});
    expect_error(
        write_raw(p("reversed"), R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", k16),
        {"tensor 'a'", "end before they begin"});
    expect_error(
        write_raw(p("length"), R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", k16),
        {"tensor 'a'", "span 12 bytes", "needs 16"});
    expect_error(write_raw(p("dup"), "{" + ok_a + "," + ok_a + "}", k16),
                 {"duplicate tensor name 'a'"});
    expect_error(write_raw(p("trailing"), "{" + ok_a + "}", k16 + "xyz"), {"3 trailing bytes"});
    expect_error(write_raw(p("missing"), R"({"a":{"dtype":"F32","shape":[4]}})", k16),
                 {"tensor 'a'", "missing 'data_offsets'"});
    expect_error(write_raw(p("offsets3"),
                           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}})", k16),
                 {"tensor 'a'", "two integers"});
    expect_error(write_raw(p("meta"), R"({"__metadata__":{"format":1}})", ""),
                 {"__metadata__ value 'format'"});
    expect_error(write_raw(p("entry"), R"({"a":[1]})", ""), {"tensor 'a'", "not a JSON object"});
    try {
        io::SafetensorsFile::open((dir / "does_not_exist").string());
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
    }
}

TEST(Safetensors, WriterRejectsBadInput) {
    fs::path dir = temp_dir();
    Tensor t(DType::float32, {2});
    EXPECT_THROW(io::save_safetensors((dir / "d").string(), {{"a", t.view()}, {"a", t.view()}}),
                 Error);
    TensorView strided(DType::float32, {2, 2}, t.data(), {1, 2});
    EXPECT_THROW(io::save_safetensors((dir / "s").string(), {{"a", strided}}), Error);
    EXPECT_THROW(io::save_safetensors((dir / "nodir" / "x").string(), {{"a", t.view()}}), Error);
}

// The streaming writer: tensors must come as declared; an unfinished file never appears, and
// its partial copy is removed.
TEST(Safetensors, StreamingWriterChecksAndIsAtomic) {
    fs::path dir = temp_dir();
    Tensor a(DType::float32, {2, 3}), b(DType::uint32, {4});
    for (int i = 0; i < 6; ++i) a.ptr<float>()[i] = 0.5f * i;
    for (int i = 0; i < 4; ++i) b.ptr<uint32_t>()[i] = 7u * i;
    const std::vector<io::TensorSpec> specs = {{"a", DType::float32, {2, 3}}, {"b", DType::uint32, {4}}};
    {
        io::SafetensorsWriter w((dir / "ok.safetensors").string(), specs);
        w.write(a.view());
        EXPECT_FALSE(fs::exists(dir / "ok.safetensors"));
        w.write(b.view());
        w.finish();
    }
    const io::SafetensorsFile f = io::SafetensorsFile::open((dir / "ok.safetensors").string());
    EXPECT_EQ(0, std::memcmp(f.get("a").data, a.data(), a.nbytes()));
    EXPECT_EQ(0, std::memcmp(f.get("b").data, b.data(), b.nbytes()));
    {
        io::SafetensorsWriter w((dir / "bad.safetensors").string(), specs);
        EXPECT_THROW(w.write(b.view()), Error);  // not the declared dtype / shape
        w.write(a.view());
        EXPECT_THROW(w.finish(), Error);  // b missing
    }
    EXPECT_FALSE(fs::exists(dir / "bad.safetensors"));
    EXPECT_FALSE(fs::exists(dir / "bad.safetensors.tmp"));
}

TEST(Safetensors, ShardedCheckpoint) {
    fs::path dir = temp_dir();
    Tensor a(DType::float32, {2}), b(DType::float16, {3});
    a.ptr<float>()[0] = 1.0f;
    io::save_safetensors((dir / "model-00001-of-00002.safetensors").string(), {{"a", a.view()}});
    io::save_safetensors((dir / "model-00002-of-00002.safetensors").string(), {{"b", b.view()}});
    auto write_index = [&](const std::string& body) {
        std::ofstream(dir / "model.safetensors.index.json") << body;
    };
    write_index(R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",
                   "b":"model-00002-of-00002.safetensors"}})");
    auto c = io::Checkpoint::open(dir.string());
    EXPECT_EQ(c.names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(c.get("a").ptr<float>()[0], 1.0f);
    EXPECT_EQ(c.get("b").dtype, DType::float16);
    EXPECT_THROW(c.get("c"), Error);

    auto expect_fail = [&](const std::string& body, const std::string& fragment) {
        write_index(body);
        try {
            io::Checkpoint::open(dir.string());
            ADD_FAILURE() << body;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    expect_fail(R"({"weight_map":{"a":"model-00002-of-00002.safetensors"}})",
                "tensor 'a' is not in shard");
    expect_fail(R"({"weight_map":{"a":"missing.safetensors"}})", "cannot open");
    expect_fail(R"({"weight_map":{"a":"../x.safetensors"}})", "not a file name");
    expect_fail(R"({"weight_map": 3})", "weight_map");
    expect_fail(R"({"weight_map": {)", "malformed JSON");

    fs::path empty = dir / "empty";
    fs::create_directories(empty);
    EXPECT_THROW(io::Checkpoint::open(empty.string()), Error);
}
