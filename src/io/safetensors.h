// safetensors: memory-mapped reading with full validation, and writing.
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
// then the data buffer; offsets are relative to the buffer start.
// Every defect a hostile file can carry is an Error "[safetensors] '<path>': ..." naming the
// tensor; nothing is read out of bounds.
#pragma once

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/mmap.h"
#include "io/atomic_file.h"
#include "core/tensor.h"

namespace onebit::io {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

class SafetensorsFile {
  public:
    // Maps and validates the file; throws [safetensors] on any defect.
    static SafetensorsFile open(const std::string& path);
    // Validates an in-memory copy of a file's bytes; `label` names it in errors (fuzzing, tests).
    static SafetensorsFile from_bytes(const std::string& label, const uint8_t* bytes, size_t size);

    const std::string& path() const { return label_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    // Tensor names in file order (by data offset).
    const std::vector<std::string>& names() const { return names_; }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    // A read-only view of the named tensor (writing through it is undefined). Valid while this
    // object lives. Throws [safetensors] naming the file when absent.
    TensorView get(const std::string& name) const;
    // Drops the resident pages of a tensor viewed from this file's mapping (see
    // MappedFile::release); no-op for in-memory files and realigned copies.
    void release(const TensorView& t) const { file_.release(t.data, t.nbytes()); }

  private:
    void index(const uint8_t* base, uint64_t size);

    std::string label_;
    MappedFile file_;
    Buffer owned_;  // the bytes, for from_bytes
    std::map<std::string, std::string> metadata_;
    std::map<std::string, TensorView> tensors_;
    std::vector<std::string> names_;
    std::vector<Buffer> realigned_;  // copies of tensors whose offset breaks element alignment
};

// Writes tensors (contiguous views) in the given order with `metadata` (MLX's {"format": "mlx"}
// by default). The file appears atomically: written beside `path`, then renamed.
// Throws [safetensors] on duplicate names, non-contiguous views or I/O failure.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "mlx"}});

// What a tensor will be, for writing a file whose tensors are made one at a time.
struct TensorSpec {
    std::string name;
    DType dtype;
    Shape shape;
    size_t nbytes() const;
};

// A safetensors file written tensor by tensor (memory stays near the largest tensor): the header
// comes from the specs, then write() takes the tensors in spec order. finish() renames the
// finished file into place; a writer destroyed unfinished removes its partial file.
class SafetensorsWriter {
  public:
    // Errors: [safetensors] for duplicate names or a file that cannot be created.
    SafetensorsWriter(std::string path, std::vector<TensorSpec> specs,
                      const std::map<std::string, std::string>& metadata = {{"format", "mlx"}});
    ~SafetensorsWriter();
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
    // The next tensor: its dtype and shape must be the spec's. Errors: [safetensors].
    void write(const TensorView& t);
    void finish();

  private:
    std::string path_;
    std::vector<TensorSpec> specs_;
    size_t next_ = 0;
    AtomicFile file_;
};

// A checkpoint: one safetensors file, or a folder holding model.safetensors or the shards named
// by model.safetensors.index.json.
class Checkpoint {
  public:
    static Checkpoint open(const std::string& path);
    std::vector<std::string> names() const;
    bool contains(const std::string& name) const { return where_.count(name) != 0; }
    TensorView get(const std::string& name) const;
    // Drops the resident pages of the named tensor (SafetensorsFile::release).
    void release(const std::string& name) const;

  private:
    std::string path_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::map<std::string, const SafetensorsFile*> where_;
};

}  // namespace onebit::io
