// GGUF (version 2 and 3), llama.cpp's model file: reading (memory-mapped, every length and
// offset checked against the file) and writing (tensor by tensor, atomic).
//
// Layout: "GGUF", uint32 version, uint64 tensor count, uint64 key-value count; the key-values
// (string key, uint32 value type, value; arrays: uint32 element type, uint64 count, elements);
// the tensor infos (name, uint32 n_dims, uint64 ne[n_dims] innermost first, uint32 ggml type,
// uint64 offset into the data); the data, starting at a multiple of general.alignment
// (default 32), each tensor at an aligned offset. Strings: uint64 length, bytes.
//
// Tensor types handled: F32 (0), F16 (1), Q8_0 (8: blocks of 32, float16 d + 32 int8), BF16 (30),
// Q1_0 (41: blocks of 128, float16 d + 16 bytes of sign bits). Type 40 was a 32-value Q1_0 in
// early PrismML builds and is another type upstream: refused by name.
//
// Errors: "[gguf] '<path>': ..." naming the key or tensor; nothing is read out of bounds.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "io/atomic_file.h"

namespace onebit::io {

enum class GgufType : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
    u64 = 10, i64 = 11, f64 = 12,
};

// A metadata value: its GGUF type (and the element type of an array) with the value as JSON.
struct GgufValue {
    GgufType type = GgufType::u32;
    GgufType element = GgufType::u32;  // arrays
    nlohmann::json value;
};

enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30, kGgmlQ1_0 = 41 };

// Values per block and bytes per block of a tensor type; errors for other types.
struct GgmlBlock {
    int64_t values;
    size_t bytes;
};
GgmlBlock ggml_block(uint32_t type, const std::string& context);
const char* ggml_type_name(uint32_t type);

struct GgufTensor {
    std::string name;
    uint32_t type = 0;
    std::vector<int64_t> ne;  // innermost (row length) first, as GGUF stores it
    uint64_t offset = 0;      // in the data section
    size_t nbytes = 0;
    const uint8_t* data = nullptr;  // into the mapping (reading)
};

// Whether the file starts with GGUF's magic.
bool is_gguf_file(const std::string& path);

class GgufFile {
  public:
    static GgufFile open(const std::string& path);
    // The same over bytes in memory (fuzzing, tests); they must outlive the object.
    static GgufFile from_bytes(const std::string& label, const uint8_t* bytes, size_t size);
    uint32_t version() const { return version_; }
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(const std::string& key) const;
    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* tensor(const std::string& name) const;
    const std::string& path() const { return label_; }
    // Drops the resident pages of a tensor's data (MappedFile::release); no-op for from_bytes.
    void release(const GgufTensor& t) const { file_.release(t.data, t.nbytes); }

  private:
    void parse(const uint8_t* p, size_t n);
    std::string label_;
    MappedFile file_;
    uint32_t version_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<GgufTensor> tensors_;
};

// Writes a GGUF v3 file: metadata, then tensors one at a time in the order of `tensors` (whose
// data pointers are ignored). The file is written beside `path` and renamed by finish(); a writer
// destroyed unfinished removes its partial file.
class GgufWriter {
  public:
    GgufWriter(std::string path, std::vector<std::pair<std::string, GgufValue>> metadata,
               std::vector<GgufTensor> tensors, uint32_t alignment = 32);
    ~GgufWriter();
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;
    // The next tensor's bytes (exactly its nbytes).
    void write(const void* data, size_t nbytes);
    void finish();

  private:
    void pad();
    std::string path_;
    std::vector<GgufTensor> tensors_;
    uint32_t alignment_;
    size_t next_ = 0;
    uint64_t written_ = 0;  // bytes of the data section so far
    AtomicFile file_;
};

}  // namespace onebit::io
