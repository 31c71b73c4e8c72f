// `onebit convert`: a Hugging Face float folder to an MLX quantized folder or a GGUF file, an MLX
// folder to GGUF, a GGUF file to an MLX folder, or a llama2.c checkpoint to a folder.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/gguf_export.h"
#include "convert/gguf_import.h"
#include "convert/llama2c.h"
#include "convert/quantize_folder.h"
#include "core/error.h"
#include "io/gguf.h"
#include "core/mmap.h"
#include "tools/commands.h"
#include "tools/progress.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct ConvOpts {
    std::string input, tokenizer, output, mode = "affine", dtype;
    int bits = 4, group_size = 64;
    bool group_size_given = false, quantize_given = false;  // --bits or --mode given
    std::vector<std::string> keep;
    double shard_gb = 5;
};

bool ends_with_gguf(const std::string& p) { return fs::path(p).extension() == ".gguf"; }

bool is_quantized_folder(const std::string& dir) {
    const auto j = nlohmann::json::parse(read_file(dir + "/config.json", "convert"), nullptr, false);
    return j.is_object() && (j.contains("quantization") || j.contains("quantization_config"));
}

void run_convert(const ConvOpts& co) {
    const ProgressBar bar("convert");
    if (!co.tokenizer.empty()) return convert::llama2c_to_folder(co.input, co.tokenizer, co.output);
    if (fs::is_regular_file(co.input)) {
        if (!io::is_gguf_file(co.input))
            fail("convert", "'", co.input, "' is neither a checkpoint folder nor a GGUF file (a llama2.c .bin needs --tokenizer)");
        if (ends_with_gguf(co.output)) fail("convert", "GGUF to GGUF is `onebit gguf --input IN --copy OUT`");
        convert::gguf_to_folder(co.input, co.output, bar);
        std::fprintf(stderr, "[convert] wrote %s\n", co.output.c_str());
        return;
    }
    if (!fs::is_directory(co.input)) fail("convert", "'", co.input, "' does not exist");
    const bool to_gguf = ends_with_gguf(co.output);
    // a quantized folder, or a float one kept in float (F32 / F16 / BF16 tensors)
    if (to_gguf && (is_quantized_folder(co.input) || !co.quantize_given)) {
        convert::folder_to_gguf(co.input, co.output, bar);
        std::fprintf(stderr, "[convert] wrote %s\n", co.output.c_str());
        return;
    }
    convert::QuantizeFolderOptions qo;
    qo.bits = co.bits;
    qo.group_size = co.group_size;
    // GGUF holds the symmetric forms with ggml's block sizes
    if (to_gguf && !co.group_size_given) qo.group_size = co.bits == 1 ? 128 : 32;
    qo.mode = co.mode == "symmetric" ? convert::QuantMode::symmetric : convert::QuantMode::affine;
    if (to_gguf && qo.mode != convert::QuantMode::symmetric)
        fail("convert", "a GGUF output holds ggml's symmetric forms: give --mode symmetric with --bits 1 (Q1_0) or 8 (Q8_0)");
    if (!co.dtype.empty()) {
        qo.dtype = dtype_from_name(co.dtype);
        if (!qo.dtype) fail("convert", "--dtype '", co.dtype, "' is not a dtype name");
    }
    qo.keep = co.keep;
    if (!(co.shard_gb > 0)) fail("convert", "--shard-gb must be > 0");
    qo.max_shard_bytes = static_cast<uint64_t>(co.shard_gb * 1e9);
    if (!to_gguf) {
        convert::quantize_folder(co.input, co.output, qo, bar);
        std::fprintf(stderr, "[convert] wrote %s\n", co.output.c_str());
        return;
    }
    // float -> GGUF: through an MLX folder beside the output (float16 scales, as GGUF holds them),
    // removed afterwards
    qo.scale_dtype = DType::float16;
    if (fs::exists(co.output)) fail("convert", "'", co.output, "' exists; the output must be a new file");
    const std::string mid = co.output + ".mlx-" + std::to_string(::getpid());
    try {
        convert::quantize_folder(co.input, mid, qo, bar);
        convert::folder_to_gguf(mid, co.output, bar);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(mid, ec);
        throw;
    }
    fs::remove_all(mid);
    std::fprintf(stderr, "[convert] wrote %s\n", co.output.c_str());
}

}  // namespace

void add_convert_command(CLI::App& app, Runner& run) {
    auto co = std::make_shared<ConvOpts>();
    auto* conv = app.add_subcommand(
        "convert", "Hugging Face float folder -> MLX folder or GGUF; MLX folder <-> GGUF; llama2.c -> folder");
    conv->add_option("--input", co->input,
                     "Float or MLX checkpoint folder, a GGUF file, or a llama2.c model .bin (with --tokenizer)")
        ->required();
    conv->add_option("--output", co->output, "Output folder, or FILE.gguf (must not exist)")->required();
    conv->add_option("--tokenizer", co->tokenizer, "llama2.c tokenizer .bin: import a llama2.c checkpoint");
    conv->add_option("--bits", co->bits, "Bits per weight: 1, 2, 3, 4, 5, 6 or 8")->capture_default_str();
    conv->add_option("--group-size", co->group_size,
                     "Weights per scale and bias: 32, 64 or 128 (for a GGUF output: 128 for 1 bit, 32 for 8)")
        ->capture_default_str();
    conv->add_option("--mode", co->mode,
                     "affine (MLX's quantizer) or symmetric (ggml's Q1_0 / Q8_0 rules, 1 or 8 bits)")
        ->check(CLI::IsMember({"affine", "symmetric"}))
        ->capture_default_str();
    conv->add_option("--dtype", co->dtype, "float16, bfloat16 or float32 for scales, biases and float tensors "
                                           "(default: config.json's torch_dtype)");
    conv->add_option("--keep", co->keep, "Regular expression over module paths to leave in float (repeatable)");
    conv->add_option("--shard-gb", co->shard_gb, "Largest safetensors shard, GB")->capture_default_str();
    conv->callback([co, conv, &run] {
        co->group_size_given = conv->count("--group-size") > 0;
        co->quantize_given = conv->count("--bits") > 0 || conv->count("--mode") > 0;
        run = [co] { run_convert(*co); };
    });
}

}  // namespace onebit::tools
