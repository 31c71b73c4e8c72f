// onebit: one command for everything (op, demo; generate, chat, serve, convert, bench later).
#include <cstdio>
#include <exception>

#include "tools/commands.h"

int main(int argc, char** argv) {
    CLI::App app{"onebit: fast 1-bit (and 2-8 bit) MLX-format quantized models"};
    app.set_version_flag("--version", "onebit 0.1.0");
    app.require_subcommand(1);
    onebit::tools::Runner run;
    onebit::tools::add_op_command(app, run);
    onebit::tools::add_demo_command(app, run);
    onebit::tools::add_bench_command(app, run);
    onebit::tools::add_tokenize_commands(app, run);
    onebit::tools::add_chat_template_command(app, run);
    onebit::tools::add_generate_commands(app, run);
    onebit::tools::add_convert_command(app, run);
    onebit::tools::add_serve_command(app, run);
    onebit::tools::add_perplexity_command(app, run);
    onebit::tools::add_gguf_command(app, run);
    try {
        app.parse(argc, argv);
        if (run) run();
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "onebit: %s\n", e.what());
        return 1;
    }
    return 0;
}
