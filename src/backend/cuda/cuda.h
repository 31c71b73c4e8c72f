// The CUDA backend's public interface: device memory, the kernel registration table and the
// entry points. No CUDA header is needed to use it, and it links in every build: configured
// without ONEBIT_CUDA (the default) a stub answers available() == false and every entry point
// throws [cuda] saying so, so no code outside the backend has #ifdefs.
//
// All pointers passed to the entry points are device pointers (Buffer::data()); shapes and
// dtypes are validated by the caller (ops), as for the CPU backend. Work runs on one stream in
// order; synchronize() waits for it and reports any error it raised. Buffer's copies go through
// the same stream and wait for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/kernel_support.h"
#include "quant/reference.h"

namespace onebit::cuda {

using quant::Precision;

// Whether this build has the CUDA backend.
bool built();
// Whether a CUDA device is usable (false in a build without CUDA or on a machine without a GPU).
bool available();

struct DeviceInfo {
    std::string name;
    int sm_count = 0, cc_major = 0, cc_minor = 0;
    size_t memory_bytes = 0, l2_bytes = 0;
};
// The device in use; throws [cuda] when none is available.
DeviceInfo device_info();

// Waits for the queued work; throws [cuda] naming the error when a kernel failed.
void synchronize();

// A CUDA graph of the backend's queued work: capture() records what `work` queues (nothing runs
// then; work must not allocate, copy through host memory or synchronize), launch() replays it.
// Decode steps replay one captured step so the launches of ~20 kernels a layer cost one.
class Graph {
public:
    Graph() = default;
    ~Graph();
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    void capture(const std::function<void()>& work);
    void launch();
    void reset();
    bool ready() const { return exec_ != nullptr; }

private:
    void* graph_ = nullptr;
    void* exec_ = nullptr;
};

// Increases whenever the backend reallocates its scratch (activation planes and the like): a
// graph captured before then holds stale pointers and must be captured again.
uint64_t scratch_generation();

// Device memory of `bytes` bytes (uninitialised), released by the destructor.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(size_t bytes);
    ~Buffer();
    Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() const { return p_; }
    size_t size() const { return n_; }
    void upload(const void* host, size_t bytes, size_t offset = 0);
    void download(void* host, size_t bytes, size_t offset = 0) const;
    // Every byte set to `byte` (tests poison outputs with 0xff: NaN in every float dtype).
    void fill(uint8_t byte);

private:
    void* p_ = nullptr;
    size_t n_ = 0;
};

enum class Op : uint8_t { quantize, dequantize, qmm_t, qmm_n };
const char* op_name(Op op);

using QuantizeFn = void (*)(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                            uint32_t* weight, void* scales, void* biases);
using DequantizeFn = void (*)(const uint32_t* weight, const void* scales, const void* biases,
                              DType sdt, int64_t rows, int64_t K, int g, int bits, void* out);
using QmmFn = void (*)(const quant::QmmArgs& a);

// One row of the registration table (the CPU backend's design: tests and benchmarks iterate it).
struct Kernel {
    const char* name;
    Op op;
    uint32_t bits_mask;   // quant::bits_bit(b) for each supported bits value
    uint32_t group_mask;  // quant::group_bit(g) for each supported group size
    uint32_t dtype_mask;  // activation (qmm), input (quantize) or scales (dequantize) dtypes
    int64_t max_m;        // largest M it is chosen for (0: any); qmm only
    Precision precision;  // qmm only
    QuantizeFn quantize = nullptr;
    DequantizeFn dequantize = nullptr;
    QmmFn qmm = nullptr;
    int64_t min_m = 0;  // smallest M it is chosen for (0: any); qmm only

    bool supports(int bits, int g, DType dt) const {
        return (bits_mask & quant::bits_bit(bits)) && (group_mask & quant::group_bit(g)) &&
               (dtype_mask & quant::dtype_bit(dt));
    }
};

// Every registered kernel, most preferred first within an op (empty without CUDA).
const std::vector<Kernel>& kernels();

// The first kernel for op supporting (bits, g, dt, m, precision). Throws [cuda] naming the
// combination when none does.
const Kernel& select(Op op, int bits, int g, DType dt, int64_t m = 1,
                     Precision precision = Precision::float32);

// Entry points (device pointers), as the CPU backend's: quantize is bit-exact with
// quant::quantize_ref, dequantize with quant::dequantize_ref; quantized_matmul is within
// FORMAT.md's bound (float32) or quant::qmm_t_int8_ref's (int8) and batch invariant.
void quantize(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits, uint32_t* weight,
              void* scales, void* biases);
void dequantize(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                int64_t rows, int64_t K, int g, int bits, void* out);
void quantized_matmul(const quant::QmmArgs& a, Precision precision = Precision::float32);

}  // namespace onebit::cuda

namespace onebit::cuda {

// Device read bandwidth in GB/s: a kernel streaming `bytes` of device memory (median of runs).
double measure_read_bandwidth_gbps(size_t bytes);
// Milliseconds per call of fn (which queues device work), timed with device events over `reps`
// back-to-back calls after one warm-up call; with `graph` the calls are captured once into a CUDA
// graph and replayed (as the model's decode step runs them), else launched one by one.
double time_ms_per_call(void (*fn)(void* ctx, int rep), void* ctx, int reps, bool graph);

}  // namespace onebit::cuda

namespace onebit::cuda {

// A 1-bit, group-size-128 weight matrix repacked for the decode kernel (packed_mma.cu): per 16-row
// tile and 512-k chunk, the words in the tensor cores' fragment order followed by the float16 /
// bfloat16 scales (and biases, unless symmetric), so each warp streams one contiguous record with
// 16-byte loads. K is padded to a whole chunk and N to a whole tile with zero words and scales.
struct PackedOneBit {
    Buffer data;
    int64_t N = 0, K = 0;
    DType sdt = DType::float16;
    bool symmetric = false;  // biases not stored: every bias is -scale / 2
    int64_t tiles() const { return (N + 15) / 16; }
    int64_t chunks() const { return (K + 511) / 512; }
};

// Whether pack_one_bit takes these parameters: bits 1, group size 128, float16 / bfloat16 scales.
bool packable_one_bit(int bits, int g, DType sdt);
// Repacks host weights w [N, K / 32] with scales / biases [N, K / 128] (biases nullptr: symmetric)
// and uploads them. Throws [cuda] for parameters packable_one_bit refuses.
PackedOneBit pack_one_bit(const uint32_t* w, const void* scales, const void* biases, DType sdt,
                          int64_t N, int64_t K, int g);
// y [M, N] (ydt) = x [M, K] (xdt) @ w_hat.T with int8 activations (quant::qmm_t_int8_ref's
// numerics up to float32 rounding; past kDecodeMaxM rows see PrefillMode); x and y are device
// pointers. Batch invariant up to kDecodeMaxM rows.
void qmm_packed_one_bit(const PackedOneBit& p, const void* x, DType xdt, int64_t M, void* y,
                        DType ydt);

// The same in two steps, so that several matrices with the same input (q / k / v, gate / up)
// share one activation quantization: pack_activations writes the int8 bit planes of x [M, K] to
// the backend's scratch, valid until the next pack_activations call.
struct PackedActivations {
    const void* planes = nullptr;
    const void* scales = nullptr;  // per group: dx and the sum of x
    const void* q8 = nullptr;      // int8 values [M][chunks * 512], past kDecodeMaxM rows
    int64_t M = 0, K = 0;
};
// The largest decode batch: up to this many rows the packed matmul runs its decode kernel, whose
// rows are bit-identical to M = 1 (a sequence decodes the same tokens alone or in a batch).
inline constexpr int64_t kDecodeMaxM = 64;
// Past kDecodeMaxM rows (a prompt's prefill: it runs on its own, never beside decoding rows) the
// packed matmul runs, by ONEBIT_CUDA_PREFILL:
//   gemm   (default, or unset) the weights dequantized to float16 in slabs and a cuBLAS float16
//          GEMM with float32 accumulation over the int8 activations dequantized to float16
//          (q * dx, scaled by a power of two so the largest fits): |y - x_hat . w_hat| <=
//          2^-9 sum |x_hat w_hat| with x_hat = q * dx (the int8-rounded x, also in the bias
//          term, where qmm_t_int8_ref uses the exact sum of x) and w_hat the dequantized weights
//   exact  an int8 tensor-core kernel that gives the decode kernel's bits (slower)
//   decode the decode kernel for every M
// Any other value is an error ([cuda]). In gemm mode the model's prompt attention runs on cuBLAS
// too (nn.h: attention_prefill).
enum class PrefillMode : uint8_t { gemm, exact, decode };
PrefillMode prefill_mode();
// Sets cuBLAS up now (its handle, a small product of each kind), so that a model's first prefill
// does not pay for it (about 0.15 s on the H100): called when a model is uploaded.
void prepare_prefill();
PackedActivations pack_activations(const void* x, DType xdt, int64_t M, int64_t K);
void qmm_packed_one_bit(const PackedOneBit& p, const PackedActivations& xa, void* y, DType ydt);

// Several matrices with one input packed as one (pack_one_bit over their rows concatenated, e.g.
// q / k / v): the result's rows split into consecutive segments, each written to its own
// [M, rows] array, so one launch serves them all.
inline constexpr int kMaxSegments = 3;
struct OutSegment {
    void* y;
    int64_t rows;
};
void qmm_packed_one_bit(const PackedOneBit& p, const PackedActivations& xa,
                        const OutSegment* out, int segments, DType ydt);

}  // namespace onebit::cuda
