// `onebit serve`: the OpenAI-compatible HTTP server. Transport only (STYLE.md): HTTP (cpp-httplib)
// <-> typed request (openai.h) <-> the Batcher's queue <-> its worker running the engine.
//
// Endpoints: POST /v1/chat/completions and /v1/completions (JSON or server-sent events),
// GET /v1/models, /health and /metrics (Prometheus text). With an API key every /v1 request needs
// "Authorization: Bearer KEY". Every error is an OpenAI-shaped JSON body with its status; a
// client that disconnects mid-stream has its request cancelled and its slot freed.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine/batcher.h"
#include "server/openai.h"

namespace onebit::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (bind() returns it)
    std::string api_key;
    engine::BatcherOptions batcher;
    size_t max_body_bytes = 8u << 20;
    // 0: one per slot and queued request (each holds its connection's thread), plus 16. Every
    // thread that has served a request keeps its touched stack pages resident.
    int http_threads = 0;
};

class Server {
  public:
    // served.ctx_size is set from the batcher's context. Errors: "[batcher] ..." for bad options.
    Server(ServedModel served, const ServerOptions& options);
    ~Server();
    // Binds the socket; returns the port. Errors: "[serve] cannot listen on HOST:PORT".
    int bind();
    // Serves until stop() (from another thread or a signal handler's thread).
    void run();
    void stop();

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace onebit::server
