// Device discovery, errors, memory and scratch of the CUDA backend.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>

#include "backend/cuda/internal.h"
#include "core/error.h"

namespace onebit::cuda {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) fail("cuda", what, ": ", cudaGetErrorString(e));
}

void check_launch(const char* kernel) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) fail("cuda", "launching ", kernel, ": ", cudaGetErrorString(e));
}

bool built() { return true; }

bool available() {
    static const bool ok = [] {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
            cudaGetLastError();  // clear the sticky "no device" error
            return false;
        }
        return n > 0;
    }();
    return ok;
}

DeviceInfo device_info() {
    if (!available()) fail("cuda", "no CUDA device is available");
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    cudaDeviceProp p{};
    check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
    DeviceInfo info;
    info.name = p.name;
    info.sm_count = p.multiProcessorCount;
    info.cc_major = p.major;
    info.cc_minor = p.minor;
    info.memory_bytes = p.totalGlobalMem;
    info.l2_bytes = static_cast<size_t>(p.l2CacheSize);
    return info;
}

bool switched_off(const char* name) {
    const char* env = std::getenv(name);
    return env && std::strcmp(env, "0") == 0;
}

bool programmatic_launch() {
    static const bool on = device_info().cc_major >= 9 && !switched_off("ONEBIT_CUDA_PDL");
    return on;
}

PrefillMode prefill_mode() {
    const char* env = std::getenv("ONEBIT_CUDA_PREFILL");
    if (!env || !*env || std::strcmp(env, "gemm") == 0) return PrefillMode::gemm;
    if (std::strcmp(env, "exact") == 0) return PrefillMode::exact;
    if (std::strcmp(env, "decode") == 0) return PrefillMode::decode;
    fail("cuda", "ONEBIT_CUDA_PREFILL must be gemm, exact or decode, got '", env, "'");
}

cudaStream_t stream() {
    static const cudaStream_t s = [] {
        cudaStream_t st = nullptr;
        // non-blocking: a blocking stream would tie every launch to the legacy default stream,
        // which graph capture forbids; Buffer's copies go through this stream instead
        check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
        return st;
    }();
    return s;
}

void synchronize() { check(cudaStreamSynchronize(stream()), "running queued work"); }

Graph::~Graph() { reset(); }

void Graph::reset() {
    if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
    exec_ = graph_ = nullptr;
}

void Graph::capture(const std::function<void()>& work) {
    reset();
    // global mode: any stray launch on another stream during capture is an error, not a silent gap
    check(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeGlobal), "beginning a graph capture");
    try {
        work();
    } catch (...) {
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(stream(), &g);
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();  // the failed capture's error is not the next launch's
        throw;
    }
    cudaGraph_t g = nullptr;
    check(cudaStreamEndCapture(stream(), &g), "ending a graph capture");
    graph_ = g;
    cudaGraphExec_t e = nullptr;
    check(cudaGraphInstantiate(&e, g, 0), "instantiating a graph");
    exec_ = e;
}

void Graph::launch() {
    if (!exec_) fail("cuda", "launching a graph that was not captured");
    check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), stream()), "launching a graph");
}

Buffer::Buffer(size_t bytes) : n_(bytes) {
    if (!available()) fail("cuda", "no CUDA device is available");
    if (bytes) check(cudaMalloc(&p_, bytes), "cudaMalloc");
}

Buffer::~Buffer() {
    if (p_) cudaFree(p_);
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
}

void Buffer::upload(const void* host, size_t bytes, size_t offset) {
    if (offset + bytes > n_) fail("cuda", "upload of ", bytes, " bytes past the buffer's ", n_);
    check(cudaMemcpyAsync(static_cast<char*>(p_) + offset, host, bytes, cudaMemcpyHostToDevice,
                          stream()),
          "copy to the device");
    synchronize();  // the host memory may go once this returns
}

void Buffer::download(void* host, size_t bytes, size_t offset) const {
    if (offset + bytes > n_) fail("cuda", "download of ", bytes, " bytes past the buffer's ", n_);
    check(cudaMemcpyAsync(host, static_cast<const char*>(p_) + offset, bytes,
                          cudaMemcpyDeviceToHost, stream()),
          "copy from the device");
    synchronize();
}

void Buffer::fill(uint8_t byte) { check(cudaMemsetAsync(p_, byte, n_, stream()), "cudaMemset"); }

namespace {
std::atomic<uint64_t> g_scratch_generation{0};
}  // namespace

uint64_t scratch_generation() { return g_scratch_generation.load(); }

void* workspace(int slot, size_t bytes) {
    static std::mutex mu;
    static Buffer buffers[kWorkspaceSlots];
    std::lock_guard<std::mutex> lock(mu);
    Buffer& b = buffers[slot];
    if (b.size() < bytes) {
        synchronize();  // queued work may still read the old buffer
        b = Buffer(bytes);
        ++g_scratch_generation;
    }
    return b.data();
}

}  // namespace onebit::cuda
