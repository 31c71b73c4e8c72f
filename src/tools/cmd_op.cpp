// `onebit op`: the three ops on safetensors files, so any oracle (MLX, numpy) can check them.
//   quantize:          reads w                            -> writes weight, scales, biases
//   dequantize:        reads weight, scales, biases       -> writes w
//   quantized-matmul:  reads x, weight, scales, biases    -> writes y
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "tools/commands.h"

namespace onebit::tools {

namespace {

struct OpOptions {
    std::string input, output;
    int bits = 4;
    int group_size = 64;
    std::string transpose = "true";
};

void run_op(const std::string& which, const OpOptions& o) {
    auto in = io::SafetensorsFile::open(o.input);
    std::vector<const char*> needed = {"w"};
    if (which == "dequantize") needed = {"weight", "scales", "biases"};
    if (which == "quantized-matmul") needed = {"x", "weight", "scales", "biases"};
    for (const char* name : needed)
        if (!in.contains(name))
            fail("op", "'", o.input, "' has no tensor '", name, "' (", which, " reads ",
                 join(needed), ")");
    auto need = [&](const char* name) { return in.get(name); };
    if (which == "quantize") {
        Quantized q = quantize(need("w"), o.group_size, o.bits);
        io::save_safetensors(o.output, {{"weight", q.weight.view()},
                                        {"scales", q.scales.view()},
                                        {"biases", q.biases.view()}});
    } else if (which == "dequantize") {
        Tensor w = dequantize(need("weight"), need("scales"), need("biases"), o.group_size, o.bits);
        io::save_safetensors(o.output, {{"w", w.view()}});
    } else {
        if (o.transpose != "true" && o.transpose != "false")
            fail("op", "--transpose ", o.transpose, " is not allowed; allowed: true, false");
        Tensor y = quantized_matmul(need("x"), need("weight"), need("scales"), need("biases"),
                                    o.transpose == "true", o.group_size, o.bits);
        io::save_safetensors(o.output, {{"y", y.view()}});
    }
}

}  // namespace

void add_op_command(CLI::App& app, Runner& run) {
    auto* op = app.add_subcommand("op", "Run one op on safetensors files");
    op->allow_extras();
    op->callback([op] {
        if (!op->get_subcommands().empty()) return;
        if (op->remaining().empty())
            fail("op", "an op is required; allowed: quantize, dequantize, quantized-matmul");
        fail("op", "unknown op '", join(op->remaining(), " "),
             "'; allowed: quantize, dequantize, quantized-matmul");
    });
    auto opts = std::make_shared<OpOptions>();
    for (const char* name : {"quantize", "dequantize", "quantized-matmul"}) {
        auto* sub = op->add_subcommand(name);
        sub->add_option("--input", opts->input, "input .safetensors")->required();
        sub->add_option("--output", opts->output, "output .safetensors")->required();
        sub->add_option("--bits", opts->bits, "bits per weight (1, 2, 3, 4, 5, 6, 8)")
            ->capture_default_str();
        sub->add_option("--group-size", opts->group_size, "group size (32, 64, 128)")
            ->capture_default_str();
        if (std::string(name) == "quantized-matmul")
            sub->add_option("--transpose", opts->transpose, "true: y = x w^T; false: y = x w")
                ->capture_default_str();
        std::string which = name;
        sub->callback([&run, opts, which] { run = [opts, which] { run_op(which, *opts); }; });
    }
}

}  // namespace onebit::tools
