// Continuous batching: up to n_parallel sequences decode together, one batched forward pass per
// step (M = the decoding sequences); new requests join between steps. Each slot owns a KV cache;
// a prompt's prefill runs in chunks of prefill_chunk tokens, one chunk per step, so running
// streams stall for at most one chunk. A finished slot keeps its tokens' KV: a new prompt that
// starts with them (the next turn of a conversation) reuses that prefix.
//
// Determinism: the model's kernels are batch invariant for M up to 64 (model.h forward_batch),
// and a prompt's prefill runs on its own, so a request's tokens do not depend on what else is
// being served.
//
// Threads: one worker thread runs the model; submit / cancel / stats may be called from any
// thread. The request's callbacks run on the worker thread and must return quickly.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/sequence.h"

namespace onebit::engine {

struct BatcherOptions {
    int n_parallel = 4;           // slots decoded together, 1..64
    int64_t ctx_size = 0;         // positions per slot; 0: min(the model's, 4096)
    int64_t prefill_chunk = 256;  // prompt tokens per prefill forward
    size_t queue_capacity = 64;   // requests waiting for a slot before submit refuses
};

struct Request {
    std::vector<int32_t> prompt;
    GenerateOptions options;  // ctx_size and prefill_batch are the batcher's
    Sequence::TextSink on_text;
    Sequence::TokenSink on_token;
    std::function<void(const GenerateStats&)> on_done;  // once, last
};

// A submitted request, to cancel it (a client that went away): its slot is freed at the next step
// and on_done reports "cancelled".
class Ticket {
  public:
    void cancel() { cancelled_ = true; }
    bool cancelled() const { return cancelled_; }

  private:
    std::atomic<bool> cancelled_{false};
};

struct BatcherStats {
    size_t queued = 0, active = 0, slots = 0;
    uint64_t requests_done = 0, requests_cancelled = 0, prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
    double first_token_s_sum = 0;  // over finished requests that produced a token
    uint64_t first_token_count = 0;
    double decode_busy_s = 0;      // time spent in batched decode steps
    uint64_t decode_steps = 0;
};

class Batcher {
  public:
    // Errors: "[batcher] ..." for options out of range.
    Batcher(const model::Model& model, const tok::Tokenizer& tokenizer, const BatcherOptions& options);
    ~Batcher();  // waiting and running requests end "cancelled"
    Batcher(const Batcher&) = delete;
    Batcher& operator=(const Batcher&) = delete;

    // Queues a request: nullptr when the queue is full. Errors ("[generate] ...", "[sampling] ...")
    // for a prompt that does not fit a slot's context or bad sampling parameters, thrown here.
    std::shared_ptr<Ticket> submit(Request request);
    BatcherStats stats() const;
    int64_t context_size() const { return ctx_; }
    int n_parallel() const { return static_cast<int>(slots_.size()); }

  private:
    struct Job;
    struct Slot;
    void run();
    void admit();
    void drop_cancelled();
    void prefill_step();
    void decode_step();
    void finish(Slot& slot);

    const model::Model& model_;
    const tok::Tokenizer& tokenizer_;
    BatcherOptions options_;
    int64_t ctx_;
    std::vector<std::unique_ptr<Slot>> slots_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Job>> queue_;
    BatcherStats stats_;
    uint64_t clock_ = 0;  // admissions so far: a slot's last use, for reuse ties
    bool stop_ = false;
    std::thread worker_;
};

}  // namespace onebit::engine
