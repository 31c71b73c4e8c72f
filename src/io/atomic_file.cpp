#include "io/atomic_file.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace onebit::io {

AtomicFile::AtomicFile(std::string path, std::string component)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), component_(std::move(component)) {
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) fail(component_.c_str(), "'", path_, "': cannot open '", tmp_, "' for writing");
}

AtomicFile::~AtomicFile() {
    if (!out_.is_open()) return;
    out_.close();
    std::remove(tmp_.c_str());
}

void AtomicFile::commit() {
    if (!out_.is_open()) fail(component_.c_str(), "'", path_, "': written twice");
    out_.flush();
    const bool ok = static_cast<bool>(out_);
    out_.close();
    if (!ok) {
        std::remove(tmp_.c_str());
        fail(component_.c_str(), "'", path_, "': write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) {
        std::remove(tmp_.c_str());
        fail(component_.c_str(), "'", path_, "': cannot rename the finished file into place: ", ec.message());
    }
}

}  // namespace onebit::io
