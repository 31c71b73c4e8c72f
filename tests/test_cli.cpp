// `onebit op` end to end through the binary: results equal the library's, and every bad input
// is one line on stderr and a non-zero exit.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "io/safetensors.h"
#include "ops/ops.h"
#include "scratch_dir.h"
#include "test_util.h"

using namespace onebit;
namespace fs = std::filesystem;

namespace {

struct Run {
    int status;
    std::string err;
};

Run run(const std::string& args) {
    const fs::path err = test::scratch_dir("cli") / "stderr";
    std::string cmd = std::string(ONEBIT_BINARY) + " " + args + " >/dev/null 2>" + err.string();
    int rc = std::system(cmd.c_str());
    std::ifstream in(err);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, text};
}

fs::path dir() { return test::scratch_dir("cli"); }

void expect_fail(const std::string& args, const std::string& fragment) {
    Run r = run(args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << args << "\nstderr: " << r.err;
    size_t lines = std::count(r.err.begin(), r.err.end(), '\n');
    EXPECT_LE(lines, 3u) << "a short message, not a dump: " << r.err;
}

}  // namespace

TEST(Cli, OpsMatchTheLibrary) {
    fs::path d = dir();
    std::mt19937 rng(4);
    Tensor w(DType::bfloat16, {8, 256}), x(DType::bfloat16, {3, 256});
    test::fill_normal(w.view(), rng);
    test::fill_normal(x.view(), rng, 0.5f);
    io::save_safetensors((d / "w.safetensors").string(), {{"w", w.view()}});
    ASSERT_EQ(run("op quantize --input " + (d / "w.safetensors").string() + " --output " +
                  (d / "q.safetensors").string() + " --bits 3 --group-size 32")
                  .status,
              0);
    auto q = io::SafetensorsFile::open((d / "q.safetensors").string());
    EXPECT_EQ(q.metadata().at("format"), "mlx");
    Quantized ref = quantize(w.view(), 32, 3);
    ASSERT_EQ(q.get("weight").shape, ref.weight.shape());
    EXPECT_EQ(std::memcmp(q.get("weight").data, ref.weight.data(), ref.weight.nbytes()), 0);
    EXPECT_EQ(std::memcmp(q.get("scales").data, ref.scales.data(), ref.scales.nbytes()), 0);
    EXPECT_EQ(q.get("scales").dtype, DType::bfloat16);

    ASSERT_EQ(run("op dequantize --input " + (d / "q.safetensors").string() + " --output " +
                  (d / "d.safetensors").string() + " --bits 3 --group-size 32")
                  .status,
              0);
    Tensor dref = dequantize(ref.weight.view(), ref.scales.view(), ref.biases.view(), 32, 3);
    auto dq = io::SafetensorsFile::open((d / "d.safetensors").string());
    EXPECT_EQ(std::memcmp(dq.get("w").data, dref.data(), dref.nbytes()), 0);

    io::save_safetensors((d / "mm.safetensors").string(), {{"x", x.view()},
                                                           {"weight", ref.weight.view()},
                                                           {"scales", ref.scales.view()},
                                                           {"biases", ref.biases.view()}});
    ASSERT_EQ(run("op quantized-matmul --input " + (d / "mm.safetensors").string() + " --output " +
                  (d / "y.safetensors").string() + " --bits 3 --group-size 32")
                  .status,
              0);
    Tensor yref = quantized_matmul(x.view(), ref.weight.view(), ref.scales.view(),
                                   ref.biases.view(), true, 32, 3);
    auto y = io::SafetensorsFile::open((d / "y.safetensors").string());
    ASSERT_EQ(y.get("y").shape, (Shape{3, 8}));
    EXPECT_EQ(std::memcmp(y.get("y").data, yref.data(), yref.nbytes()), 0);
}

TEST(Cli, BadInputIsOneLineAndNonZeroExit) {
    fs::path d = dir();
    std::string in = (d / "w2.safetensors").string(), out = (d / "o.safetensors").string();
    Tensor w(DType::float32, {2, 64});
    std::mt19937 rng(5);
    test::fill_normal(w.view(), rng);
    io::save_safetensors(in, {{"w", w.view()}});
    expect_fail("op quantize --input " + in + " --output " + out + " --bits 7",
                "[quantize] bits 7 is not supported; supported: 1, 2, 3, 4, 5, 6, 8");
    expect_fail("op quantize --input " + in + " --output " + out + " --group-size 100",
                "group_size 100 is not supported");
    expect_fail("op quantize --input " + in + " --output " + out + " --group-size 128",
                "not a multiple of group_size 128");
    expect_fail("op dequantize --input " + in + " --output " + out, "has no tensor 'weight'");
    expect_fail("op quantized-matmul --input " + in + " --output " + out, "has no tensor 'x'");
    expect_fail("op quantize --input " + (d / "missing").string() + " --output " + out,
                "cannot open");
    { std::ofstream(d / "junk.safetensors") << "not a safetensors file at all"; }
    expect_fail("op quantize --input " + (d / "junk.safetensors").string() + " --output " + out,
                "[safetensors]");
    expect_fail("op quantize --input " + in + " --output " + (d / "no" / "x").string(),
                "cannot open");
    expect_fail("op quantize --output " + out, "--input");
    expect_fail("op frobnicate", "unknown op 'frobnicate'; allowed: quantize");
    expect_fail("op", "allowed: quantize, dequantize, quantized-matmul");
    expect_fail("op quantize --input " + in + " --output " + out + " --bits four", "four");
    EXPECT_FALSE(fs::exists(out)) << "no output after a failure";
}

TEST(Cli, TransposeFlagIsValidated) {
    fs::path d = dir();
    std::mt19937 rng(6);
    Tensor x(DType::float32, {1, 64});
    test::fill_normal(x.view(), rng);
    Tensor w(DType::float32, {2, 64});
    test::fill_normal(w.view(), rng);
    Quantized q = quantize(w.view(), 64, 4);
    std::string in = (d / "t.safetensors").string();
    io::save_safetensors(in, {{"x", x.view()},
                              {"weight", q.weight.view()},
                              {"scales", q.scales.view()},
                              {"biases", q.biases.view()}});
    expect_fail("op quantized-matmul --input " + in + " --output " + (d / "y").string() +
                    " --transpose maybe",
                "--transpose maybe is not allowed; allowed: true, false");
    expect_fail("op quantized-matmul --input " + in + " --output " + (d / "y").string() +
                    " --transpose false",
                "expects K = 2");
}
