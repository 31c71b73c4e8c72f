// The onebit command's subcommands. Each registers its options on the CLI11 app and returns the
// function that runs it; errors are onebit::Error, which main turns into one line on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace onebit::tools {

using Runner = std::function<void()>;

// `onebit op quantize|dequantize|quantized-matmul` on safetensors files.
void add_op_command(CLI::App& app, Runner& run);

// `onebit demo`: quantize a random layer at several bit widths and show size and error.
void add_demo_command(CLI::App& app, Runner& run);

// `onebit bench kernels`: kernel timings against measured bandwidth and FMA peak.
void add_bench_command(CLI::App& app, Runner& run);

// `onebit bench tokenizer`, registered under the `bench` command.
void add_bench_tokenizer_command(CLI::App* bench, Runner& run);

// `onebit generate`, `onebit chat`.
void add_generate_commands(CLI::App& app, Runner& run);

// `onebit convert`.
void add_convert_command(CLI::App& app, Runner& run);

// `onebit bench model`, registered under the `bench` command.
void add_bench_model_command(CLI::App* bench, Runner& run);

// `onebit bench serve`: continuous-batching throughput at several concurrencies.
void add_bench_serve_command(CLI::App* bench, Runner& run);

// `onebit tokenize`, `onebit detokenize`, `onebit export-tokenizer`.
void add_tokenize_commands(CLI::App& app, Runner& run);

// `onebit perplexity`: perplexity and KL divergence on a text file.
void add_perplexity_command(CLI::App& app, Runner& run);

// `onebit gguf`: inspect (and copy) a GGUF file.
void add_gguf_command(CLI::App& app, Runner& run);

// `onebit serve`: the OpenAI-compatible server.
void add_serve_command(CLI::App& app, Runner& run);

// `onebit chat-template`: render a checkpoint's chat template.
void add_chat_template_command(CLI::App& app, Runner& run);

// Space-separated token ids; anything else is an error naming `component` and the word.
std::vector<int32_t> parse_ids(const std::string& text, const char* component);

}  // namespace onebit::tools
