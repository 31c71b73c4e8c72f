// The CUDA backend in a build without CUDA (ONEBIT_CUDA=OFF): no device, no kernels; every entry
// point throws [cuda] (common.cpp) and Buffer refuses to allocate.
#include "backend/cuda/cuda.h"
#include "backend/cuda/nn.h"
#include "core/error.h"

namespace onebit::cuda {

namespace {
[[noreturn]] void not_built() {
    fail("cuda", "this onebit was built without CUDA (configure with -DONEBIT_CUDA=ON)");
}
}  // namespace

bool built() { return false; }
bool available() { return false; }
DeviceInfo device_info() { not_built(); }
void synchronize() {}

Buffer::Buffer(size_t) { not_built(); }
Buffer::~Buffer() = default;
Buffer& Buffer::operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
}
void Buffer::upload(const void*, size_t, size_t) { not_built(); }
void Buffer::download(void*, size_t, size_t) const { not_built(); }
void Buffer::fill(uint8_t) { not_built(); }

uint64_t scratch_generation() { return 0; }
PrefillMode prefill_mode() { not_built(); }
void prepare_prefill() { not_built(); }
Graph::~Graph() = default;
void Graph::reset() {}
void Graph::capture(const std::function<void()>&) { not_built(); }
void Graph::launch() { not_built(); }

const std::vector<Kernel>& kernels() {
    static const std::vector<Kernel> none;
    return none;
}

}  // namespace onebit::cuda

namespace onebit::cuda {
double measure_read_bandwidth_gbps(size_t) { not_built(); }
double time_ms_per_call(void (*)(void*, int), void*, int, bool) { not_built(); }
}  // namespace onebit::cuda

namespace onebit::cuda {
bool packable_one_bit(int, int, DType) { return false; }
PackedOneBit pack_one_bit(const uint32_t*, const void*, const void*, DType, int64_t, int64_t, int) {
    not_built();
}
void qmm_packed_one_bit(const PackedOneBit&, const void*, DType, int64_t, void*, DType) {
    not_built();
}
PackedActivations pack_activations(const void*, DType, int64_t, int64_t) { not_built(); }
void qmm_packed_one_bit(const PackedOneBit&, const PackedActivations&, void*, DType) {
    not_built();
}
void qmm_packed_one_bit(const PackedOneBit&, const PackedActivations&, const OutSegment*, int, DType) {
    not_built();
}
}  // namespace onebit::cuda


namespace onebit::cuda::nn {
void embed_dense(const void*, DType, const int32_t*, int64_t, int64_t, float*) { not_built(); }
void embed_quantized(const uint32_t*, const void*, const void*, DType, const int32_t*, int64_t,
                     int64_t, int, int, float*) {
    not_built();
}
void rms_norm(const float*, const float*, int64_t, int64_t, float, float*) { not_built(); }
void rope(float*, int64_t, int64_t, int64_t, const int32_t*, const float*, float) { not_built(); }
void attention(const float*, int64_t, int64_t, int64_t, int64_t, CacheRows, const int32_t*, int64_t,
               float*, float, AttentionSplit) {
    not_built();
}
AttentionMath prefill_attention_math() { not_built(); }
void attention_prefill(const float*, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                       int64_t, float*, float, int64_t, AttentionMath) {
    not_built();
}
PackedActivations attention_pack(const float*, int64_t, int64_t, int64_t, int64_t, CacheRows,
                                 const int32_t*, int64_t, float*, float, AttentionSplit) {
    not_built();
}
void kv_store(const float*, const float*, CacheRows, const int32_t*, int64_t, int64_t) {
    not_built();
}
void silu_mul(const float*, const float*, int64_t, float*) { not_built(); }
void add(float*, const float*, int64_t) { not_built(); }
void argmax_rows(const float*, int64_t, int64_t, int32_t*) { not_built(); }
void top_k_rows(const float*, int64_t, int64_t, int64_t, float*, int32_t*) { not_built(); }
void apply_edits(float*, int64_t, const RowEdit*, int64_t) { not_built(); }
void linear_dense(const float*, int64_t, int64_t, const void*, DType, int64_t, float*) {
    not_built();
}
PackedActivations norm_pack(const float*, const float*, float*, const float*, int64_t, int64_t,
                            float) {
    not_built();
}
PackedActivations silu_pack(const float*, const float*, int64_t, int64_t) { not_built(); }
PackedActivations attention_qk_pack(float*, float*, const float*, const float*,
                                    const float*, int64_t, int64_t, int64_t, int64_t, float,
                                    const int32_t*, const float*, float, CacheRows, int64_t,
                                    float*, float, AttentionSplit) {
    not_built();
}
PackedActivations gate_up_silu_pack(const PackedOneBit&, const PackedActivations&, int64_t, float*,
                                    float*) {
    not_built();
}
void qk_norm_rope_store(float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                        int64_t, int64_t, float, const int32_t*, const float*, float, CacheRows) {
    not_built();
}
}  // namespace onebit::cuda::nn
