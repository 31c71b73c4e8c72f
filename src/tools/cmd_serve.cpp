// `onebit serve`: load a model and serve the OpenAI API (server/server.h) until SIGINT / SIGTERM.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "core/error.h"
#include "core/threads.h"
#include "server/server.h"
#include "tools/commands.h"
#include "tools/loaded_model.h"

namespace onebit::tools {

namespace {

struct ServeOptions {
    std::string model, device = "cpu", alias;
    bool int8 = false;
    int threads = 0;
    server::ServerOptions server;
};

void run_serve(ServeOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    // Signals are taken by one thread (sigwait), before any other thread exists; a client that
    // went away must not kill the process with SIGPIPE.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    const Loaded l = load_model(o.model, o.int8, o.device);
    server::ServedModel served;
    served.model = &l.model;
    served.tokenizer = &l.tokenizer;
    served.chat_template = l.chat_template ? &*l.chat_template : nullptr;
    served.add_bos = l.add_bos;
    served.id = !o.alias.empty()   ? o.alias
                : o.model.empty() ? std::string("tiny-qwen3-1bit")
                                  : std::filesystem::path(o.model).lexically_normal().filename().string();
    if (served.id.empty()) served.id = std::filesystem::path(o.model).lexically_normal().parent_path().filename().string();
    server::Server srv(served, o.server);
    const int port = srv.bind();
    std::fprintf(stderr, "[serve] %s on http://%s:%d (%d slots%s)\n", l.name.c_str(), o.server.host.c_str(), port,
                 o.server.batcher.n_parallel, served.chat_template ? "" : "; no chat template: completions only");
    std::fflush(stderr);
    std::thread signals([&] {
        int sig = 0;
        sigwait(&set, &sig);
        srv.stop();
    });
    srv.run();
    // run() returned without a signal (the socket failed): wake the signal thread.
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    std::fprintf(stderr, "[serve] stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ServeOptions>();
    auto* s = app.add_subcommand("serve", "Serve the OpenAI API (chat and text completions) over HTTP");
    s->add_option("--model", o->model, "Model folder, GGUF file or Hugging Face repo id (default: the embedded tiny-qwen3-1bit)");
    s->add_option("--host", o->server.host, "Address to listen on")->capture_default_str();
    s->add_option("--port", o->server.port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
    s->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
    s->add_option("--parallel", o->server.batcher.n_parallel, "Sequences decoded together (1..64)")
        ->capture_default_str()->check(CLI::Range(1, 64));
    s->add_option("--ctx-size", o->server.batcher.ctx_size, "Context per sequence (default: the model's, at most 4096)");
    s->add_option("--queue", o->server.batcher.queue_capacity, "Requests waiting for a slot before 503")
        ->capture_default_str();
    s->add_option("--prefill-chunk", o->server.batcher.prefill_chunk, "Prompt tokens per prefill step")
        ->capture_default_str();
    s->add_option("--api-key", o->server.api_key, "Require Authorization: Bearer KEY on /v1 requests");
    s->add_option("--alias", o->alias, "The model name in /v1/models (default: the folder's name)");
    s->add_option("--http-threads", o->server.http_threads, "HTTP worker threads (default: parallel + queue + 16)");
    s->add_option("--max-body-bytes", o->server.max_body_bytes, "Largest request body")->capture_default_str();
    s->add_option("--threads", o->threads, "Compute threads (default: all cores)");
    s->add_flag("--int8", o->int8, "int8 activations for the quantized matmuls (as generate --int8)");
    s->callback([o, &run] { run = [o] { run_serve(*o); }; });
}

}  // namespace onebit::tools
