#include "backend/cpu/machine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "backend/cpu/kernels.h"
#include "core/tensor.h"
#include "core/threads.h"

namespace onebit::cpu {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

double measure_read_bandwidth_gbps(size_t bytes, int reps) {
    bytes = bytes / 4096 * 4096;
    Buffer buf(bytes);
    std::memset(buf.data(), 1, bytes);  // fault the pages in before timing
    const auto* p = static_cast<const uint64_t*>(buf.data());
    const int64_t n = static_cast<int64_t>(bytes / 8);
    std::atomic<uint64_t> sink{0};
    double best = 0;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        parallel_for(n, 4096, [&](int64_t b, int64_t e) {
            uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int64_t i = b; i < e; i += 4) {
                a0 += p[i];
                a1 += p[i + 1];
                a2 += p[i + 2];
                a3 += p[i + 3];
            }
            sink += a0 ^ a1 ^ a2 ^ a3;
        });
        best = std::max(best, bytes / seconds_since(t0) / 1e9);
    }
    return best;
}

double measure_fma_peak_gflops() {
    Isa isa = active_isa();
    double best = 0;
    for (int r = 0; r < 3; ++r) {
        std::atomic<int64_t> flops{0};
        auto t0 = std::chrono::steady_clock::now();
        default_pool().run(num_threads(), [&](int64_t) { flops += fma_burst(isa); });
        best = std::max(best, flops.load() / seconds_since(t0) / 1e9);
    }
    return best;
}

size_t llc_bytes() {
    for (int idx = 4; idx >= 0; --idx) {
        std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/size");
        std::string s;
        if (f >> s && !s.empty()) {
            size_t v = std::stoull(s);
            char unit = s.back();
            if (unit == 'K') v <<= 10;
            if (unit == 'M') v <<= 20;
            if (v > 0) return v;
        }
    }
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t{32} << 20;
}

}  // namespace onebit::cpu
