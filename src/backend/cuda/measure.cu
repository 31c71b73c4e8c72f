// Measurements for the benchmarks: device read bandwidth and event timing.
#include <algorithm>
#include <vector>

#include "backend/cuda/internal.h"

namespace onebit::cuda {

namespace {

// Every thread XORs 16-byte loads over a grid-stride loop; one word per block keeps the loads.
__global__ void read_kernel(const uint4* p, size_t n, uint32_t* sink) {
    uint32_t acc = 0;
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        const uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // practically never: no stores, not dead
}

struct Events {
    cudaEvent_t a, b;
    Events() {
        check(cudaEventCreate(&a), "cudaEventCreate");
        check(cudaEventCreate(&b), "cudaEventCreate");
    }
    ~Events() { cudaEventDestroy(a), cudaEventDestroy(b); }
    float ms() {
        check(cudaEventSynchronize(b), "cudaEventSynchronize");
        float t = 0;
        check(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
        return t;
    }
};

}  // namespace

double measure_read_bandwidth_gbps(size_t bytes) {
    const size_t n = bytes / 16;
    Buffer buf(n * 16), sink(4096 * 4);
    buf.fill(0x5a);
    const DeviceInfo info = device_info();
    const unsigned blocks = static_cast<unsigned>(info.sm_count * 8);
    Events ev;
    std::vector<float> ms;
    for (int rep = 0; rep < 11; ++rep) {
        check(cudaEventRecord(ev.a, stream()), "cudaEventRecord");
        read_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const uint4*>(buf.data()), n,
                                     static_cast<uint32_t*>(sink.data()));
        check_launch("read_kernel");
        check(cudaEventRecord(ev.b, stream()), "cudaEventRecord");
        if (rep) ms.push_back(ev.ms());
    }
    std::sort(ms.begin(), ms.end());
    return double(n * 16) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

double time_ms_per_call(void (*fn)(void* ctx, int rep), void* ctx, int reps, bool graph) {
    fn(ctx, 0);  // first-call setup (scratch, library handles) outside the timing and the capture
    synchronize();
    Graph g;
    if (graph) {
        g.capture([&] {
            for (int r = 0; r < reps; ++r) fn(ctx, r);
        });
        g.launch();  // the first replay uploads the graph
        synchronize();
    }
    Events ev;
    check(cudaEventRecord(ev.a, stream()), "cudaEventRecord");
    if (graph)
        g.launch();
    else
        for (int r = 0; r < reps; ++r) fn(ctx, r);
    check(cudaEventRecord(ev.b, stream()), "cudaEventRecord");
    const float t = ev.ms();
    synchronize();
    return double(t) / reps;
}

}  // namespace onebit::cuda
