// `onebit chat-template --model DIR --messages FILE.json [--no-think] [--no-generation-prompt]`:
// prints exactly the prompt the checkpoint's chat template renders (nothing else on stdout).
#include <cstdio>

#include "chat/chat_template.h"
#include "core/error.h"
#include "core/mmap.h"
#include "tools/commands.h"

namespace onebit::tools {

void add_chat_template_command(CLI::App& app, Runner& run) {
    struct Opts {
        std::string model_dir, messages;
        bool no_think = false, no_generation_prompt = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("chat-template", "Render a model's chat template");
    cmd->add_option("--model", o->model_dir, "Model directory")->required();
    cmd->add_option("--messages", o->messages,
                    "JSON file: a list of messages, or {\"messages\": [...], \"tools\": [...]}")
        ->required();
    cmd->add_flag("--no-think", o->no_think, "Pass enable_thinking = false");
    cmd->add_flag("--no-generation-prompt", o->no_generation_prompt,
                  "Do not open an assistant turn at the end");
    cmd->callback([o, &run] {
        run = [o] {
            const chat::ChatTemplate t = chat::ChatTemplate::from_model_dir(o->model_dir);
            chat::ChatRequest r = chat::ChatTemplate::request_from_json(
                read_file(o->messages, "chat-template"), o->messages);
            r.add_generation_prompt = !o->no_generation_prompt;
            if (o->no_think) r.enable_thinking = false;
            const std::string s = t.render(r);
            std::fwrite(s.data(), 1, s.size(), stdout);
        };
    });
}

}  // namespace onebit::tools
