// Read-only memory-mapped file. Move-only; unmaps on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace onebit {

// The whole file as bytes. Throws "[component] cannot open '<path>'".
std::string read_file(const std::string& path, const char* component);
// The same, or std::nullopt when the file cannot be opened (optional files).
std::optional<std::string> read_file_if_exists(const std::string& path);

class MappedFile {
  public:
    MappedFile() = default;
    // Maps the whole file read-only; throws [io] naming the path when it cannot be opened.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&& o) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    // True when [p, p + n) lies inside this mapping.
    bool contains(const void* p, size_t n) const {
        const auto* b = static_cast<const uint8_t*>(p);
        return data_ && b >= data_ && b + n <= data_ + size_;
    }
    // Drops the resident pages wholly inside [p, p + n) of this mapping (madvise DONTNEED): the
    // bytes stay readable and are read from the file again if touched. For weights copied into
    // another layout at load time. Ranges outside the mapping are ignored.
    void release(const void* p, size_t n) const;
    const std::string& path() const { return path_; }

  private:
    void reset();
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace onebit
