// A folder for a test process's files: <temp>/onebit_<tag>_<pid>, emptied when first asked for (a
// process of an earlier run may have had the same id and left files there) and removed when the
// process exits, so runs neither see each other's files nor pile folders up in /tmp.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace onebit::test {

class ScratchDir {
public:
    explicit ScratchDir(const std::string& tag)
        : path_(std::filesystem::temp_directory_path() /
                ("onebit_" + tag + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;  // nothing to report at exit
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// The process's scratch folder (one tag per test binary).
inline const std::filesystem::path& scratch_dir(const std::string& tag) {
    static const ScratchDir dir(tag);
    return dir.path();
}

}  // namespace onebit::test
