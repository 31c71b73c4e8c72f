// The H100's mma.sync m16n8k16 (float16 in, float32 accumulators) throughput with no memory
// traffic: every warp runs R rounds of 16 independent MMAs on register operands. Build:
//   nvcc -O3 -gencode=arch=compute_90a,code=sm_90a mma_sync_peak.cu -o mma_sync_peak
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

__global__ void mma_loop(int rounds, float* out) {
    uint32_t a[4], b[2];
    for (int i = 0; i < 4; ++i) a[i] = 0x3c003c00u ^ (threadIdx.x * 2654435761u >> (8 + i));
    b[0] = 0x3c003c00u ^ (threadIdx.x << 3); b[1] = 0x38003800u ^ threadIdx.x;
    float c[16][4] = {};
    for (int r = 0; r < rounds; ++r) {
#pragma unroll
        for (int j = 0; j < 16; ++j)
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                         "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                         : "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    float s = 0;
    for (int j = 0; j < 16; ++j) s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

int main() {
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const int rounds = 4096;
    float* out;
    cudaMalloc(&out, sizeof(float) * 132 * 8 * 1024);
    for (int warps : {4, 8, 16}) {
        const int blocks = sms * 2;
        mma_loop<<<blocks, warps * 32>>>(rounds, out);  // warm-up
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0), cudaEventCreate(&e1);
        cudaEventRecord(e0);
        mma_loop<<<blocks, warps * 32>>>(rounds, out);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        const double flop = 2.0 * 16 * 8 * 16 * 16.0 * rounds * warps * blocks;
        std::printf("%d SMs, %d blocks x %d warps: %.1f TFLOPS (mma.sync m16n8k16 f16 -> f32)\n",
                    sms, blocks, warps, flop / (ms * 1e-3) / 1e12);
    }
    return 0;
}
