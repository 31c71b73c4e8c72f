#include "server/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "core/error.h"

namespace onebit::server {

namespace {

using Clock = std::chrono::steady_clock;

// What the worker hands a request's HTTP thread: text and tokens as they come, then the end.
struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    std::vector<engine::TokenEvent> tokens;
    std::optional<engine::GenerateStats> done;

    void push_text(std::string_view s) {
        {
            std::lock_guard<std::mutex> lock(mu);
            text += s;
        }
        cv.notify_all();
    }
    void push_token(const engine::TokenEvent& ev) {
        std::lock_guard<std::mutex> lock(mu);
        tokens.push_back(ev);
    }
    void finish(const engine::GenerateStats& st) {
        {
            std::lock_guard<std::mutex> lock(mu);
            done = st;
        }
        cv.notify_all();
    }
};

void send_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

std::string sse(const Json& j) {
    return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

// cpp-httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian built
// the library): a burst of clients connecting at once overflows it and some connections are
// reset. listen() again on the bound socket raises it.
class HttpServer : public httplib::Server {
  public:
    void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

}  // namespace

struct Server::Impl {
    ServedModel served;
    ServerOptions options;
    engine::Batcher batcher;
    HttpServer http;
    std::atomic<uint64_t> next_id{0};
    std::string id_prefix;
    std::mutex metrics_mu;
    std::map<std::pair<std::string, int>, uint64_t> responses;  // (path, status) -> count
    Clock::time_point started = Clock::now();

    Impl(ServedModel s, const ServerOptions& o)
        : served(std::move(s)), options(o), batcher(*served.model, *served.tokenizer, o.batcher) {
        served.ctx_size = batcher.context_size();
        std::mt19937_64 rng(std::random_device{}());
        std::ostringstream os;
        os << std::hex << (rng() & 0xffffffffu);
        id_prefix = os.str();
        routes();
    }

    std::string new_id() { return id_prefix + std::to_string(next_id++); }

    void routes();
    void generate(const httplib::Request& req, httplib::Response& res, bool chat);
    void stream(httplib::Response& res, const Job& job, const std::string& id, int64_t created,
                std::shared_ptr<Channel> ch, std::shared_ptr<engine::Ticket> ticket);
    void wait_chunked(httplib::Response& res, const Job& job, const std::string& id, int64_t created,
                      std::shared_ptr<Channel> ch, std::shared_ptr<engine::Ticket> ticket);
    std::pair<int, Json> final_response(const Job& job, const std::string& id, int64_t created, Channel& ch);
    std::string metrics();
};

void Server::Impl::routes() {
    const int threads = options.http_threads > 0
                            ? options.http_threads
                            : static_cast<int>(options.batcher.n_parallel + options.batcher.queue_capacity + 16);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (options.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
        if (req.get_header_value("Authorization") == "Bearer " + options.api_key)
            return httplib::Server::HandlerResponse::Unhandled;
        send_json(res, 401, ApiError(401, "a valid API key is required: Authorization: Bearer KEY", "", "invalid_api_key").body());
        return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        const std::string what = res.status == 404   ? "no route for " + req.method + " " + req.path
                                 : res.status == 413 ? std::string("the request body is too large")
                                                     : "the request is malformed (HTTP " + std::to_string(res.status) + ")";
        send_json(res, res.status, ApiError(res.status, what).body());
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_json(res, 500, ApiError(500, what).body());
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        std::lock_guard<std::mutex> lock(metrics_mu);
        const bool known = req.path == "/v1/chat/completions" || req.path == "/v1/completions" ||
                           req.path == "/v1/models" || req.path == "/health" || req.path == "/metrics";
        ++responses[{known ? req.path : "other", res.status}];
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });
    http.Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        const Json m = {{"id", served.id},
                        {"object", "model"},
                        {"created", static_cast<int64_t>(std::time(nullptr))},
                        {"owned_by", "onebit"},
                        {"meta", {{"context_length", served.ctx_size},
                                  {"vocab_size", served.model->config().vocab_size},
                                  {"weight_bytes", served.model->weight_bytes()}}}};
        send_json(res, 200, {{"object", "list"}, {"data", Json::array({m})}});
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        const engine::BatcherStats s = batcher.stats();
        send_json(res, 200, {{"status", "ok"},
                             {"slots_idle", s.slots - s.active},
                             {"slots_processing", s.active},
                             {"queue_depth", s.queued}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics(), "text/plain; version=0.0.4");
    });
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    Job job;
    try {
        job = chat ? parse_chat_request(req.body, served) : parse_completion_request(req.body, served);
    } catch (const ApiError& e) {
        return send_json(res, e.status, e.body());
    }
    auto ch = std::make_shared<Channel>();
    engine::Request r;
    r.prompt = job.prompt;
    r.options = job.options;
    r.on_text = [ch](std::string_view s) { ch->push_text(s); };
    if (job.top_logprobs >= 0) r.on_token = [ch](const engine::TokenEvent& ev) { ch->push_token(ev); };
    r.on_done = [ch](const engine::GenerateStats& st) { ch->finish(st); };
    std::shared_ptr<engine::Ticket> ticket;
    try {
        ticket = batcher.submit(std::move(r));
    } catch (const Error& e) {
        return send_json(res, 400, ApiError(400, e.what()).body());
    }
    if (!ticket) return send_json(res, 503, ApiError(503, "the server is busy: the request queue is full; retry later").body());
    const std::string id = new_id();
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    if (job.stream) return stream(res, job, id, created, ch, ticket);
    {
        std::unique_lock<std::mutex> lock(ch->mu);
        if (ch->cv.wait_for(lock, std::chrono::seconds(1), [&] { return ch->done.has_value(); })) {
            lock.unlock();
            const auto [status, body] = final_response(job, id, created, *ch);
            return send_json(res, status, body);
        }
    }
    wait_chunked(res, job, id, created, ch, ticket);
}

// The whole answer of a finished non-streaming request: status and body.
std::pair<int, Json> Server::Impl::final_response(const Job& job, const std::string& id, int64_t created,
                                                  Channel& ch) {
    Output out;
    {
        std::lock_guard<std::mutex> lock(ch.mu);
        out.text = std::move(ch.text);
        out.tokens = std::move(ch.tokens);
        out.stats = *ch.done;
    }
    if (out.stats.stop_reason == "error") return {500, ApiError(500, "generation failed: " + out.stats.error).body()};
    if (!job.chat) return {200, completion_response(job, served, id, created, out)};
    OutputParser parser(job.starts_in_reasoning, job.parse_tools);
    out.parsed = parser.push(out.text);
    const ParsedDelta rest = parser.finish();
    out.parsed.content += rest.content;
    out.parsed.reasoning += rest.reasoning;
    out.parsed.tool_calls.insert(out.parsed.tool_calls.end(), rest.tool_calls.begin(), rest.tool_calls.end());
    return {200, chat_response(job, served, id, created, out)};
}

// A non-streaming request still running after a second: cpp-httplib cannot tell that a client
// waiting for one response has gone away, so the answer goes out chunked, led by a space (JSON
// allows whitespace before a value) each second until it is ready. A write that fails cancels
// the request and frees its slot. The status is then 200 even for a generation that fails; its
// body is still the OpenAI error object.
void Server::Impl::wait_chunked(httplib::Response& res, const Job& job, const std::string& id, int64_t created,
                                std::shared_ptr<Channel> ch, std::shared_ptr<engine::Ticket> ticket) {
    auto finished = std::make_shared<bool>(false);
    res.status = 200;
    res.set_chunked_content_provider(
        "application/json",
        [this, job, id, created, ch, ticket, finished](size_t, httplib::DataSink& sink) {
            bool ready;
            {
                std::unique_lock<std::mutex> lock(ch->mu);
                ready = ch->cv.wait_for(lock, std::chrono::seconds(1), [&] { return ch->done.has_value(); });
            }
            if (!ready) {
                if (sink.write(" ", 1)) return true;
                ticket->cancel();
                return false;
            }
            const std::string body =
                final_response(job, id, created, *ch).second.dump(-1, ' ', false, Json::error_handler_t::replace);
            *finished = true;
            if (!sink.write(body.data(), body.size())) return false;
            sink.done();
            return true;
        },
        [ticket, finished](bool) {
            if (!*finished) ticket->cancel();
        });
}

// Server-sent events: one chunk per piece of text (with its tokens' logprobs), the finish reason,
// usage when asked, then [DONE]. While nothing comes a comment line keeps the connection checked,
// so a client that went away is noticed within a second or two.
void Server::Impl::stream(httplib::Response& res, const Job& job, const std::string& id, int64_t created,
                          std::shared_ptr<Channel> ch, std::shared_ptr<engine::Ticket> ticket) {
    struct State {
        bool started = false, finished = false;
        OutputParser parser;
        size_t n_tools = 0;
        std::vector<engine::TokenEvent> tokens;  // logprobs not yet sent
        size_t text_offset = 0;
    };
    auto st = std::make_shared<State>(State{false, false, OutputParser(job.starts_in_reasoning, job.parse_tools), 0, {}, 0});
    const bool logprobs = job.top_logprobs >= 0;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, id, created, ch, ticket, st, logprobs](size_t, httplib::DataSink& sink) {
            auto write = [&](const std::string& s) {
                if (sink.write(s.data(), s.size())) return true;
                ticket->cancel();
                return false;
            };
            // Chunks for what the parser released (chat) or the text (completions).
            auto send = [&](const ParsedDelta& d, const std::string& text) {
                if (!job.chat) {
                    if (text.empty()) return true;
                    Json c = completion_chunk(served, id, created, text, st->tokens, logprobs, "");
                    if (logprobs) c["choices"][0]["logprobs"] = completion_logprobs(*served.tokenizer, st->tokens, st->text_offset);
                    st->text_offset += text.size();
                    st->tokens.clear();
                    return write(sse(c));
                }
                if (!d.reasoning.empty() && !write(sse(chat_chunk(served, id, created, {{"reasoning_content", d.reasoning}}, {}, false, ""))))
                    return false;
                if (!d.content.empty()) {
                    if (!write(sse(chat_chunk(served, id, created, {{"content", d.content}}, st->tokens, logprobs, ""))))
                        return false;
                    st->tokens.clear();
                }
                if (!d.tool_calls.empty()) {
                    const Json calls = tool_calls_json(d.tool_calls, id, st->n_tools);
                    st->n_tools += d.tool_calls.size();
                    if (!write(sse(chat_chunk(served, id, created, {{"tool_calls", calls}}, {}, false, "")))) return false;
                }
                return true;
            };
            if (!st->started) {
                st->started = true;
                if (job.chat && !write(sse(chat_chunk(served, id, created, {{"role", "assistant"}, {"content", ""}}, {}, false, ""))))
                    return false;
            }
            std::string text;
            std::optional<engine::GenerateStats> done;
            {
                std::unique_lock<std::mutex> lock(ch->mu);
                const bool any = ch->cv.wait_for(lock, std::chrono::seconds(1),
                                                 [&] { return !ch->text.empty() || ch->done.has_value(); });
                if (!any) {
                    lock.unlock();
                    return write(": keep-alive\n\n");
                }
                text.swap(ch->text);
                st->tokens.insert(st->tokens.end(), ch->tokens.begin(), ch->tokens.end());
                ch->tokens.clear();
                done = ch->done;
            }
            ParsedDelta d = job.chat ? st->parser.push(text) : ParsedDelta{};
            if (!send(d, text)) return false;
            if (!done) return true;
            if (done->stop_reason == "error") {
                write(sse(ApiError(500, "generation failed: " + done->error).body()));
                write("data: [DONE]\n\n");
                sink.done();
                return true;
            }
            if (job.chat && !send(st->parser.finish(), "")) return false;
            const std::string finish = finish_reason(*done, st->n_tools > 0);
            Json last = job.chat ? chat_chunk(served, id, created, Json::object(), {}, false, finish)
                                 : completion_chunk(served, id, created, "", {}, false, finish);
            if (!write(sse(last))) return false;
            if (job.include_usage) {
                Json u = last;
                u["choices"] = Json::array();
                u["usage"] = usage_json(*done);
                if (!write(sse(u))) return false;
            }
            if (!write("data: [DONE]\n\n")) return false;
            st->finished = true;
            sink.done();
            return true;
        },
        [ticket, st](bool) {
            // The response is gone: a request still running has lost its client.
            if (!st->finished) ticket->cancel();
        });
}

std::string Server::Impl::metrics() {
    const engine::BatcherStats s = batcher.stats();
    std::ostringstream os;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
        os << "# HELP onebit_" << name << ' ' << help << "\n# TYPE onebit_" << name << ' ' << type << "\nonebit_"
           << name << ' ' << value << '\n';
    };
    os << "# HELP onebit_http_responses_total HTTP responses by path and status.\n"
          "# TYPE onebit_http_responses_total counter\n";
    {
        std::lock_guard<std::mutex> lock(metrics_mu);
        for (const auto& [key, n] : responses)
            os << "onebit_http_responses_total{path=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
    }
    metric("requests_finished_total", "counter", "Generation requests finished (any reason).", static_cast<double>(s.requests_done));
    metric("requests_cancelled_total", "counter", "Requests cancelled (their client went away).",
           static_cast<double>(s.requests_cancelled));
    metric("prompt_tokens_total", "counter", "Prompt tokens of finished requests.", static_cast<double>(s.prompt_tokens));
    metric("prompt_tokens_cached_total", "counter", "Prompt tokens whose KV was reused.", static_cast<double>(s.cached_prompt_tokens));
    metric("generated_tokens_total", "counter", "Tokens generated by finished requests.", static_cast<double>(s.generated_tokens));
    metric("queue_depth", "gauge", "Requests waiting for a slot.", static_cast<double>(s.queued));
    metric("active_slots", "gauge", "Slots running a request.", static_cast<double>(s.active));
    metric("slots", "gauge", "Slots (--parallel).", static_cast<double>(s.slots));
    os << "# HELP onebit_time_to_first_token_seconds Time from submission to the first token.\n"
          "# TYPE onebit_time_to_first_token_seconds summary\n"
       << "onebit_time_to_first_token_seconds_sum " << s.first_token_s_sum << "\n"
       << "onebit_time_to_first_token_seconds_count " << s.first_token_count << "\n";
    metric("decode_steps_total", "counter", "Batched decode steps run.", static_cast<double>(s.decode_steps));
    metric("decode_busy_seconds_total", "counter", "Time spent in batched decode steps.", s.decode_busy_s);
    const double uptime = std::chrono::duration<double>(Clock::now() - started).count();
    metric("tokens_per_second", "gauge", "Generated tokens per second of uptime.",
           uptime > 0 ? static_cast<double>(s.generated_tokens) / uptime : 0.0);
    return os.str();
}

Server::Server(ServedModel served, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(std::move(served), options)) {}

Server::~Server() = default;

int Server::bind() {
    const ServerOptions& o = impl_->options;
    const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port <= 0) fail("serve", "cannot listen on ", o.host, ":", o.port);
    impl_->http.widen_backlog();
    return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

}  // namespace onebit::server
