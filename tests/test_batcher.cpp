// Continuous batching (engine/batcher.h) on the embedded stories260K model: concurrent requests
// give exactly the tokens they give one by one (greedy and seeded sampling), a follow-up prompt
// reuses a finished request's KV prefix, cancellation frees the slot, a full queue refuses, and
// errors surface at submit.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/batcher.h"
#include "engine/generate.h"
#include "engine/sequence.h"

namespace onebit {
namespace {

const std::string kStories = std::string(ONEBIT_DATA_DIR) + "/../models/stories260K";

struct Fixture {
    model::Model m = model::Model::load(kStories);
    tok::Tokenizer t = tok::Tokenizer::from_file(kStories + "/tokenizer.json");
};

Fixture& fx() {
    static Fixture f;
    return f;
}

engine::GenerateOptions options(int i) {
    engine::GenerateOptions o;
    o.max_tokens = 20 + 7 * (i % 5);
    if (i % 3 == 0) {
        o.sampler.temperature = 0;
    } else {
        o.sampler.temperature = 0.9f;
        o.sampler.seed = 1000 + i;
        o.sampler.presence_penalty = i % 2 ? 0.5f : 0.0f;
    }
    return o;
}

std::vector<int32_t> prompt(int i) {
    const std::string texts[] = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
                                 "One day, a bird", "Tom had a big red ball"};
    std::vector<int32_t> ids = {1};
    for (int32_t id : fx().t.encode(texts[i % 5])) ids.push_back(id);
    return ids;
}

struct Result {
    std::string text;
    engine::GenerateStats stats;
};

// Submits requests [0, n) at once and waits for all.
std::vector<Result> run_batched(engine::Batcher& b, int n,
                                engine::GenerateOptions (*opts)(int) = options) {
    std::vector<Result> out(n);
    std::vector<std::promise<void>> done(n);
    for (int i = 0; i < n; ++i) {
        engine::Request r;
        r.prompt = prompt(i);
        r.options = opts(i);
        r.on_text = [&out, i](std::string_view s) { out[i].text += s; };
        r.on_done = [&out, &done, i](const engine::GenerateStats& st) {
            out[i].stats = st;
            done[i].set_value();
        };
        EXPECT_NE(b.submit(std::move(r)), nullptr);
    }
    for (auto& d : done) d.get_future().wait();
    return out;
}

TEST(Batcher, ConcurrentRequestsEqualOneByOne) {
    const int n = 16;
    engine::Batcher b(fx().m, fx().t, {.n_parallel = 6, .ctx_size = 256, .prefill_chunk = 3, .queue_capacity = 32});
    const std::vector<Result> together = run_batched(b, n);
    for (int i = 0; i < n; ++i) {
        engine::GenerateOptions o = options(i);
        o.ctx_size = 256;
        std::string text;
        const engine::GenerateStats st = engine::generate(fx().m, fx().t, prompt(i), o, [&](std::string_view s) { text += s; });
        EXPECT_EQ(together[i].text, text) << "request " << i;
        EXPECT_EQ(together[i].stats.tokens, st.tokens) << "request " << i;
        EXPECT_EQ(together[i].stats.stop_reason, st.stop_reason) << "request " << i;
        EXPECT_GT(st.generated_tokens, 0);
    }
    const engine::BatcherStats s = b.stats();
    EXPECT_EQ(s.requests_done, static_cast<uint64_t>(n));
    EXPECT_EQ(s.active, 0u);
    EXPECT_EQ(s.queued, 0u);
    // More than one sequence per decode step on average: the steps were batched.
    uint64_t generated = 0;
    for (const Result& r : together) generated += r.stats.generated_tokens;
    EXPECT_LT(s.decode_steps * 2, generated);
}

TEST(Batcher, TopKSamplingEqualsTheWholeRowPath) {
    // Requests that sample from their top-k (k 5, 40 or 300, some with penalties) let the model
    // hand back only the candidates; asking for log-probabilities forces the whole-row path.
    // Both, batched or alone, give the same tokens seed for seed.
    const int n = 9;
    auto opts = [](int i) -> engine::GenerateOptions {
        engine::GenerateOptions o;
        o.max_tokens = 30;
        o.sampler.temperature = 0.8f;
        o.sampler.top_k = i % 3 == 0 ? 5 : i % 3 == 1 ? 40 : 300;
        o.sampler.seed = 2000 + i;
        if (i % 2) o.sampler.repeat_penalty = 1.3f, o.sampler.presence_penalty = 0.4f;
        if (i % 4 == 1) o.sampler.frequency_penalty = 0.6f;
        o.ctx_size = 256;
        return o;
    };
    engine::Batcher b(fx().m, fx().t, {.n_parallel = 4, .ctx_size = 256, .prefill_chunk = 4, .queue_capacity = 16});
    const std::vector<Result> together = run_batched(b, n, opts);
    for (int i = 0; i < n; ++i) {
        engine::GenerateOptions o = opts(i);
        const engine::GenerateStats top = engine::generate(fx().m, fx().t, prompt(i), o, [](std::string_view) {});
        o.top_logprobs = 0;
        const engine::GenerateStats whole = engine::generate(fx().m, fx().t, prompt(i), o, [](std::string_view) {});
        EXPECT_GT(whole.generated_tokens, 0);
        EXPECT_EQ(top.tokens, whole.tokens) << "request " << i;
        EXPECT_EQ(together[i].stats.tokens, whole.tokens) << "request " << i;
    }
}

TEST(Sequence, ShortcutsAreRefusedWhereTheyWouldChangeTheChoice) {
    // accept_greedy needs a greedy sequence, accept_top a top-k one without log-probabilities;
    // their answers say so instead of sampling differently.
    engine::GenerateOptions o;
    o.max_tokens = 5;
    o.sampler.temperature = 0.8f, o.sampler.top_k = 10;
    engine::Sequence top(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {});
    EXPECT_FALSE(top.greedy());
    EXPECT_EQ(top.top_k(), 10);
    EXPECT_THROW(top.accept_greedy(3), Error);
    o.sampler.top_k = 0;
    engine::Sequence no_k(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {});
    EXPECT_EQ(no_k.top_k(), 0);
    const nn::Candidate cands[2] = {{2.0f, 5}, {1.0f, 6}};
    EXPECT_THROW(no_k.accept_top(cands), Error);
    o.sampler.top_k = 10, o.sampler.presence_penalty = 0.5f;
    engine::Sequence penalized(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {});
    EXPECT_EQ(penalized.top_k(), 10);  // penalties are edits made before the selection
    EXPECT_TRUE(penalized.edits().empty());
    const std::optional<int32_t> took = penalized.accept_top(cands);
    ASSERT_TRUE(took && (*took == 5 || *took == 6));
    const std::vector<nn::LogitEdit> e = penalized.edits();
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, *took);
    EXPECT_EQ(e[0].minus, 0.5f);
    o.sampler.presence_penalty = 0, o.top_logprobs = 2;
    EXPECT_EQ(engine::Sequence(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {}).top_k(), 0);
    o.top_logprobs = -1, o.sampler.top_k = engine::Sequence::kMaxTopCandidates + 1;
    EXPECT_EQ(engine::Sequence(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {}).top_k(), 0);
    o.sampler.temperature = 0, o.sampler.top_k = 10;
    engine::Sequence greedy(fx().m, fx().t, prompt(0), o, 64, [](std::string_view) {});
    EXPECT_TRUE(greedy.greedy());
    EXPECT_EQ(greedy.top_k(), 0);
    EXPECT_THROW(greedy.accept_top(cands), Error);
    EXPECT_EQ(greedy.accept_greedy(5), std::optional<int32_t>(5));
}

TEST(Batcher, FollowUpReusesThePrefix) {
    engine::Batcher b(fx().m, fx().t, {.n_parallel = 2, .ctx_size = 256});
    auto ask = [&](const std::vector<int32_t>& p) {
        std::promise<engine::GenerateStats> done;
        engine::Request r;
        r.prompt = p;
        r.options.max_tokens = 10;
        r.options.sampler.temperature = 0;
        r.on_done = [&](const engine::GenerateStats& st) { done.set_value(st); };
        EXPECT_NE(b.submit(std::move(r)), nullptr);
        return done.get_future().get();
    };
    std::vector<int32_t> first = prompt(2);
    const engine::GenerateStats a = ask(first);
    EXPECT_EQ(a.cached_prompt_tokens, 0);
    // The next turn: the first prompt, its answer, and more text.
    std::vector<int32_t> second = first;
    second.insert(second.end(), a.tokens.begin(), a.tokens.end());
    for (int32_t id : fx().t.encode(" Then they")) second.push_back(id);
    const engine::GenerateStats c = ask(second);
    // Every token fed before (the prompt and all generated ids but the last, never fed).
    EXPECT_EQ(c.cached_prompt_tokens, static_cast<int64_t>(first.size() + a.tokens.size() - 1));
    // Same tokens as a fresh run.
    engine::GenerateOptions o;
    o.max_tokens = 10;
    o.ctx_size = 256;
    o.sampler.temperature = 0;
    EXPECT_EQ(c.tokens, engine::generate(fx().m, fx().t, second, o, nullptr).tokens);
}

TEST(Batcher, CancelFreesTheSlotAndFullQueueRefuses) {
    engine::Batcher b(fx().m, fx().t, {.n_parallel = 1, .ctx_size = 512, .queue_capacity = 1});
    std::promise<engine::GenerateStats> first_done, second_done;
    std::promise<void> started, cancel_sent;
    std::shared_future<void> cancelled = cancel_sent.get_future().share();
    bool once = false;
    engine::Request r;
    r.prompt = prompt(0);
    r.options.max_tokens = 400;
    r.options.sampler.temperature = 0;
    // The worker waits in the first callback until the test has cancelled, so the request
    // cannot finish first.
    r.on_text = [&](std::string_view) {
        if (once) return;
        once = true;
        started.set_value();
        cancelled.wait();
    };
    r.on_done = [&](const engine::GenerateStats& st) { first_done.set_value(st); };
    std::shared_ptr<engine::Ticket> t1 = b.submit(std::move(r));
    ASSERT_NE(t1, nullptr);
    started.get_future().wait();
    // The only slot is busy: one request may wait, the next is refused.
    engine::Request w;
    w.prompt = prompt(1);
    w.options.max_tokens = 5;
    w.on_done = [&](const engine::GenerateStats& st) { second_done.set_value(st); };
    ASSERT_NE(b.submit(std::move(w)), nullptr);
    engine::Request x;
    x.prompt = prompt(1);
    EXPECT_EQ(b.submit(std::move(x)), nullptr);
    t1->cancel();
    cancel_sent.set_value();
    const engine::GenerateStats st = first_done.get_future().get();
    EXPECT_EQ(st.stop_reason, "cancelled");
    EXPECT_LT(st.generated_tokens, 400);
    EXPECT_EQ(second_done.get_future().get().generated_tokens, 5);
}

TEST(Batcher, BadRequestsThrowAtSubmit) {
    engine::Batcher b(fx().m, fx().t, {.n_parallel = 1, .ctx_size = 16});
    engine::Request r;
    r.prompt = std::vector<int32_t>(17, 5);
    EXPECT_THROW(b.submit(r), Error);
    r.prompt = {};
    EXPECT_THROW(b.submit(r), Error);
    r.prompt = {1, 2};
    r.options.sampler.top_p = 2;
    EXPECT_THROW(b.submit(r), Error);
    EXPECT_THROW(engine::Batcher(fx().m, fx().t, {.n_parallel = 65}), Error);
    EXPECT_THROW(engine::Batcher(fx().m, fx().t, {.ctx_size = 1 << 20}), Error);
}

}  // namespace
}  // namespace onebit
