// Device discovery, errors, memory and scratch of the CUDA backend.
#include <mutex>

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

void synchronize() { check(cudaDeviceSynchronize(), "running queued work"); }

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
    check(cudaMemcpy(static_cast<char*>(p_) + offset, host, bytes, cudaMemcpyHostToDevice),
          "copy to the device");
}

void Buffer::download(void* host, size_t bytes, size_t offset) const {
    if (offset + bytes > n_) fail("cuda", "download of ", bytes, " bytes past the buffer's ", n_);
    check(cudaMemcpy(host, static_cast<const char*>(p_) + offset, bytes, cudaMemcpyDeviceToHost),
          "copy from the device");
}

void Buffer::fill(uint8_t byte) { check(cudaMemset(p_, byte, n_), "cudaMemset"); }

void* workspace(int slot, size_t bytes) {
    static std::mutex mu;
    static Buffer buffers[kWorkspaceSlots];
    std::lock_guard<std::mutex> lock(mu);
    Buffer& b = buffers[slot];
    if (b.size() < bytes) {
        synchronize();  // queued work may still read the old buffer
        b = Buffer(bytes);
    }
    return b.data();
}

}  // namespace onebit::cuda
