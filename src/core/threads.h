// A thread pool created once and reused: the caller runs tasks too, workers spin briefly before
// sleeping (decode-sized jobs last tens of microseconds, shorter than a futex wake-up), and
// running a job allocates nothing. Tasks are claimed dynamically; each task must write disjoint
// outputs, so results do not depend on which thread ran what.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace onebit {

class ThreadPool {
  public:
    // n_threads in total, the calling thread included (>= 1).
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Runs fn(task) for task in [0, n_tasks) and returns when all have finished. Not reentrant:
    // one job at a time (calls from several threads are serialised).
    template <typename F>
    void run(int64_t n_tasks, F&& fn) {
        run_impl(
            n_tasks, [](void* ctx, int64_t t) { (*static_cast<F*>(ctx))(t); },
            const_cast<void*>(static_cast<const void*>(&fn)));
    }

  private:
    void run_impl(int64_t n_tasks, void (*call)(void*, int64_t), void* ctx);
    void worker_loop();
    void work();

    std::vector<std::thread> workers_;
    std::mutex run_mutex_;  // one job at a time
    std::mutex sleep_mutex_;
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> sleeping_{0};
    std::atomic<int> active_{0};
    std::atomic<bool> stop_{false};
    // the current job
    void (*call_)(void*, int64_t) = nullptr;
    void* ctx_ = nullptr;
    int64_t n_tasks_ = 0;
    std::atomic<int64_t> next_{0};
    std::atomic<int64_t> done_{0};
};

// The process-wide pool: ONEBIT_THREADS threads, else the hardware's count. Created on first use.
ThreadPool& default_pool();

// Replaces the default pool with one of n threads (n <= 0: the hardware's count). Must not be
// called while another thread is running a job on it.
void set_num_threads(int n);
int num_threads();

// Splits [0, n) into one chunk per thread, each a multiple of `align` (except the last), and
// runs fn(begin, end) on the default pool. Runs inline for one chunk. One chunk a thread: each
// further chunk restarts a matmul's weight stream; on the 2-core AVX-512 machine 4 -> 2 -> 1 chunks
// a thread took decoding from 129.5 to 133 to 137.5 tokens/s (each step measured against the one
// before; BENCHMARKS.md, 2026-12-07). The price is no dynamic balancing on machines whose cores
// run at unequal speeds.
template <typename F>
void parallel_for(int64_t n, int64_t align, F&& fn) {
    ThreadPool& pool = default_pool();
    int64_t threads = pool.size();
    int64_t chunk = (n + threads - 1) / threads;
    chunk = (chunk + align - 1) / align * align;
    if (chunk <= 0) chunk = align;
    int64_t n_chunks = (n + chunk - 1) / chunk;
    if (n_chunks <= 1 || threads == 1) {
        if (n > 0) fn(int64_t{0}, n);
        return;
    }
    pool.run(n_chunks, [&](int64_t c) {
        int64_t b = c * chunk;
        fn(b, std::min(n, b + chunk));
    });
}

}  // namespace onebit
