// L2-resident write / read bandwidth on the GPU: repeated writes of a buffer of B bytes.
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
__global__ void wr(uint4* p, size_t n, uint32_t v) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
        p[i] = make_uint4(v, v + 1, v + 2, v + 3);
}
__global__ void rd(const uint4* p, size_t n, uint32_t* out) {
    uint32_t a = 0;
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        uint4 x = p[i]; a ^= x.x ^ x.y ^ x.z ^ x.w;
    }
    if (a == 0x12345678) *out = a;
}
__global__ void discard_l2(char* p, size_t bytes) {
    for (size_t i = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) * 128; i < bytes; i += size_t(gridDim.x) * blockDim.x * 128)
        asm volatile("discard.global.L2 [%0], 128;" ::"l"(p + i) : "memory");
}
int main() {
    char* buf; cudaMalloc(&buf, 256 << 20);
    uint32_t* o; cudaMalloc(&o, 4);
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    for (size_t mb : {8, 16, 24, 32, 48, 96, 192}) {
        size_t bytes = mb << 20, n = bytes / 16;
        for (int mode = 0; mode < 4; ++mode) {
            const int reps = 50;
            for (int w = 0; w < 3; ++w) wr<<<132 * 8, 256>>>((uint4*)buf, n, w);
            cudaEventRecord(a);
            for (int r = 0; r < reps; ++r) {
                if (mode == 0) wr<<<132 * 8, 256>>>((uint4*)buf, n, r);
                else if (mode == 1) rd<<<132 * 8, 256>>>((const uint4*)buf, n, o);
                else if (mode == 2) cudaMemsetAsync(buf, r, bytes);
                else { wr<<<132 * 8, 256>>>((uint4*)buf, n, r); discard_l2<<<132 * 4, 256>>>(buf, bytes); }
            }
            cudaEventRecord(b); cudaEventSynchronize(b);
            float ms; cudaEventElapsedTime(&ms, a, b);
            const char* name[] = {"write", "read", "memset", "write+discard"};
            printf("%4zu MB %-14s %7.2f us  %6.0f GB/s\n", mb, name[mode], ms * 1e3 / reps, bytes * reps / (ms * 1e-3) / 1e9);
        }
    }
    printf("err %s\n", cudaGetErrorString(cudaGetLastError()));
}
