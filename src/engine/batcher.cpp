#include "engine/batcher.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace onebit::engine {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct Batcher::Job {
    Request request;
    std::unique_ptr<Sequence> seq;
    std::shared_ptr<Ticket> ticket = std::make_shared<Ticket>();
    Clock::time_point submitted = Clock::now(), first_token;
};

struct Batcher::Slot {
    model::KVCache cache;
    std::vector<int32_t> cached;  // the tokens whose KV cache[0, cache.length) holds
    std::unique_ptr<Job> job;     // null: free
    size_t prefilled = 0;         // prompt tokens in the cache
    std::optional<int32_t> next;  // the token to feed at the next decode step
    uint64_t last_used = 0;
    Slot(int64_t ctx, const model::ModelConfig& c) : cache(ctx, c) {}
    bool decoding() const { return job && next.has_value(); }
    bool prefilling() const { return job && !next && prefilled < job->seq->prompt().size(); }
};

Batcher::Batcher(const model::Model& model, const tok::Tokenizer& tokenizer, const BatcherOptions& o)
    : model_(model), tokenizer_(tokenizer), options_(o) {
    if (o.n_parallel < 1 || o.n_parallel > 64)
        fail("batcher", "parallel sequences ", o.n_parallel, " must be in [1, 64]");
    if (o.prefill_chunk < 1) fail("batcher", "prefill chunk ", o.prefill_chunk, " must be >= 1");
    const int64_t model_ctx = model.config().max_position_embeddings;
    ctx_ = o.ctx_size > 0 ? o.ctx_size : std::min<int64_t>(model_ctx, 4096);
    if (ctx_ > model_ctx)
        fail("batcher", "context ", ctx_, " is larger than the model's ", model_ctx);
    for (int i = 0; i < o.n_parallel; ++i) slots_.push_back(std::make_unique<Slot>(ctx_, model.config()));
    stats_.slots = slots_.size();
    worker_ = std::thread([this] { run(); });
}

Batcher::~Batcher() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
    for (auto& job : queue_) {
        job->seq->abort("cancelled");
        if (job->request.on_done) job->request.on_done(job->seq->stats());
    }
    for (auto& s : slots_)
        if (s->job) {
            s->job->seq->abort("cancelled");
            finish(*s);
        }
}

std::shared_ptr<Ticket> Batcher::submit(Request r) {
    auto job = std::make_unique<Job>();
    GenerateOptions o = r.options;
    o.ctx_size = ctx_;
    // The Sequence checks the prompt against the context and the sampler's parameters.
    job->seq = std::make_unique<Sequence>(model_, tokenizer_, r.prompt, o, ctx_, r.on_text, r.on_token);
    job->request = std::move(r);
    std::shared_ptr<Ticket> ticket = job->ticket;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.size() >= options_.queue_capacity || stop_) return nullptr;
        queue_.push_back(std::move(job));
        stats_.queued = queue_.size();
    }
    cv_.notify_all();
    return ticket;
}

BatcherStats Batcher::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
}

void Batcher::run() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] {
                return stop_ || !queue_.empty() ||
                       std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->job != nullptr; });
            });
            if (stop_) return;
        }
        admit();
        drop_cancelled();
        prefill_step();
        decode_step();
    }
}

// Moves waiting requests into free slots: the slot whose cached tokens share the longest prefix
// with the prompt (the least recently used among equals), reusing that prefix's KV.
void Batcher::admit() {
    std::lock_guard<std::mutex> lock(mu_);
    while (!queue_.empty()) {
        const std::vector<int32_t>& prompt = queue_.front()->seq->prompt();
        Slot* best = nullptr;
        size_t best_common = 0;
        for (auto& s : slots_) {
            if (s->job) continue;
            const size_t n = std::min(s->cached.size(), prompt.size());
            size_t common = 0;
            while (common < n && s->cached[common] == prompt[common]) ++common;
            if (!best || common > best_common || (common == best_common && s->last_used < best->last_used)) {
                best = s.get();
                best_common = common;
            }
        }
        if (!best) break;
        // At least the prompt's last token is run again: its logits start the generation.
        const size_t reuse = std::min(best_common, prompt.size() - 1);
        best->job = std::move(queue_.front());
        queue_.pop_front();
        best->cache.length = static_cast<int64_t>(reuse);
        best->cached.resize(reuse);
        best->prefilled = reuse;
        best->next.reset();
        best->last_used = ++clock_;
        best->job->seq->stats().cached_prompt_tokens = static_cast<int64_t>(reuse);
        ++stats_.active;
    }
    stats_.queued = queue_.size();
}

void Batcher::drop_cancelled() {
    for (auto& s : slots_)
        if (s->job && s->job->ticket->cancelled()) {
            s->job->seq->abort("cancelled");
            finish(*s);
        }
}

// One chunk of one prompt (the earliest admitted still prefilling); its last chunk samples the
// first token.
void Batcher::prefill_step() {
    Slot* slot = nullptr;
    for (auto& s : slots_)
        if (s->prefilling() && (!slot || s->last_used < slot->last_used)) slot = s.get();
    if (!slot) return;
    Sequence& seq = *slot->job->seq;
    const std::vector<int32_t>& prompt = seq.prompt();
    const size_t n = std::min(prompt.size() - slot->prefilled, static_cast<size_t>(options_.prefill_chunk));
    const std::span<const int32_t> chunk(prompt.data() + slot->prefilled, n);
    std::vector<float> logits;
    const auto t0 = Clock::now();
    try {
        model_.forward(chunk, slot->cache, logits);
    } catch (const std::exception& e) {
        seq.abort("error", e.what());
        slot->cached.clear();
        finish(*slot);
        return;
    }
    seq.stats().prefill_s += seconds_between(t0, Clock::now());
    slot->cached.insert(slot->cached.end(), chunk.begin(), chunk.end());
    slot->prefilled += n;
    if (slot->prefilled < prompt.size()) return;
    slot->job->first_token = Clock::now();
    slot->next = seq.accept(logits);
    seq.stats().first_token_s = seconds_between(slot->job->submitted, Clock::now());
    if (!slot->next) finish(*slot);
}

// One token for every decoding slot, in one batched forward pass.
void Batcher::decode_step() {
    std::vector<Slot*> active;
    std::vector<model::Model::SequenceInput> in;
    for (auto& s : slots_)
        if (s->decoding()) {
            active.push_back(s.get());
            in.push_back({std::span<const int32_t>(&*s->next, 1), &s->cache});
        }
    if (active.empty()) return;
    // When every sequence decodes greedily the model makes the choices; when every one samples
    // from its top-k alone the model applies their penalties and selects the largest k asked for
    // (a sequence takes the first of them it needs). On the GPU only those come back, not the
    // logits.
    bool greedy = true;
    int32_t top_k = 0;
    for (Slot* s : active) {
        greedy = greedy && s->job->seq->greedy();
        const int32_t k = s->job->seq->top_k();
        top_k = top_k < 0 || k == 0 ? -1 : std::max(top_k, k);
    }
    std::vector<float> logits;
    std::vector<int32_t> chosen;
    std::vector<nn::Candidate> top;
    const auto t0 = Clock::now();
    try {
        if (greedy)
            model_.forward_batch_greedy(in, chosen);
        else if (top_k > 0) {
            std::vector<std::vector<nn::LogitEdit>> edits;
            for (Slot* s : active) edits.push_back(s->job->seq->edits());
            model_.forward_batch_top_k(in, top_k, top, edits);
        }
        else
            model_.forward_batch(in, logits);
    } catch (const std::exception& e) {
        for (Slot* s : active) {
            s->job->seq->abort("error", e.what());
            s->cached.clear();
            finish(*s);
        }
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.decode_busy_s += seconds_between(t0, Clock::now());
        ++stats_.decode_steps;
    }
    const int64_t vocab = model_.config().vocab_size;
    for (size_t i = 0; i < active.size(); ++i) {
        Slot& s = *active[i];
        s.cached.push_back(*s.next);
        if (greedy) {
            s.next = s.job->seq->accept_greedy(chosen[i]);
        } else if (top_k > 0) {
            const size_t k = top.size() / active.size();
            s.next = s.job->seq->accept_top(std::span<const nn::Candidate>(&top[i * k], k));
        } else {
            s.next = s.job->seq->accept(std::span<float>(&logits[i * vocab], static_cast<size_t>(vocab)));
        }
        if (!s.next) finish(s);
    }
}

// Reports the slot's request done and frees the slot (its cached tokens stay for reuse).
void Batcher::finish(Slot& slot) {
    std::unique_ptr<Job> job = std::move(slot.job);
    slot.next.reset();
    GenerateStats& st = job->seq->stats();
    if (st.generated_tokens > 0 && job->first_token != Clock::time_point{})
        st.decode_s = seconds_between(job->first_token, Clock::now());
    {
        std::lock_guard<std::mutex> lock(mu_);
        --stats_.active;
        ++stats_.requests_done;
        if (st.stop_reason == "cancelled") ++stats_.requests_cancelled;
        stats_.prompt_tokens += static_cast<uint64_t>(st.prompt_tokens);
        stats_.cached_prompt_tokens += static_cast<uint64_t>(st.cached_prompt_tokens);
        stats_.generated_tokens += static_cast<uint64_t>(st.generated_tokens);
        if (st.generated_tokens > 0) {
            stats_.first_token_s_sum += st.first_token_s;
            ++stats_.first_token_count;
        }
    }
    if (job->request.on_done) job->request.on_done(st);
}

}  // namespace onebit::engine
