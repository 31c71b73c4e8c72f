#include "core/threads.h"

#include <cstdlib>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#define ONEBIT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define ONEBIT_PAUSE() asm volatile("yield")
#else
#define ONEBIT_PAUSE() \
    do {               \
    } while (0)
#endif

namespace onebit {

namespace {
constexpr int kSpinIterations = 20000;  // ~100 us of waiting before sleeping
constexpr int kSpinBeforeYield = 2000;  // pause instructions before yielding the core
}

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(sleep_mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::work() {
    for (;;) {
        int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
        if (t >= n_tasks_) break;
        call_(ctx_, t);
        done_.fetch_add(1, std::memory_order_release);
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int i = 0; g == seen && i < kSpinIterations; ++i) {
            if (i < kSpinBeforeYield) ONEBIT_PAUSE();
            else std::this_thread::yield();
            g = generation_.load(std::memory_order_acquire);
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lk(sleep_mutex_);
            sleeping_.fetch_add(1);
            wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            sleeping_.fetch_sub(1);
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load()) return;
        work();
        active_.fetch_sub(1, std::memory_order_release);
    }
}

void ThreadPool::run_impl(int64_t n_tasks, void (*call)(void*, int64_t), void* ctx) {
    if (n_tasks <= 0) return;
    std::lock_guard<std::mutex> guard(run_mutex_);
    if (workers_.empty()) {
        for (int64_t t = 0; t < n_tasks; ++t) call(ctx, t);
        return;
    }
    call_ = call;
    ctx_ = ctx;
    n_tasks_ = n_tasks;
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
        // publish under the lock so a worker about to sleep cannot miss the new generation
        std::lock_guard<std::mutex> lk(sleep_mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleeping_.load() > 0) wake_.notify_all();
    work();
    // Every worker leaves the job before the next one may reuse the fields. After a short spin,
    // yield: when the machine is oversubscribed (other processes, an emulator) the worker we
    // wait for may need this core to run at all.
    for (int spins = 0; done_.load(std::memory_order_acquire) < n_tasks ||
                        active_.load(std::memory_order_acquire) > 0;
         ++spins) {
        if (spins < kSpinBeforeYield) ONEBIT_PAUSE();
        else std::this_thread::yield();
    }
}

namespace {

int default_thread_count() {
    if (const char* env = std::getenv("ONEBIT_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw ? static_cast<int>(hw) : 1;
}

std::unique_ptr<ThreadPool>& pool_slot() {
    static std::unique_ptr<ThreadPool> pool;
    return pool;
}

std::mutex& pool_mutex() {
    static std::mutex m;
    return m;
}

}  // namespace

ThreadPool& default_pool() {
    std::lock_guard<std::mutex> lk(pool_mutex());
    auto& p = pool_slot();
    if (!p) p = std::make_unique<ThreadPool>(default_thread_count());
    return *p;
}

void set_num_threads(int n) {
    std::lock_guard<std::mutex> lk(pool_mutex());
    pool_slot() = std::make_unique<ThreadPool>(n > 0 ? n : default_thread_count());
}

int num_threads() { return default_pool().size(); }

}  // namespace onebit
