// A file that appears only when complete: written beside its path ("<path>.tmp"), renamed into
// place by commit(); destroyed uncommitted, it removes the partial file. The one mechanism behind
// every writer of model files (safetensors, GGUF) and of tool outputs.
#pragma once

#include <fstream>
#include <string>

namespace onebit::io {

class AtomicFile {
  public:
    // component names the caller in errors: "[component] '<path>': ...".
    AtomicFile(std::string path, std::string component);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    std::ofstream& stream() { return out_; }
    bool open() const { return out_.is_open(); }
    // Flushes, checks every write succeeded, renames into place. Errors name the path.
    void commit();

  private:
    std::string path_, tmp_, component_;
    std::ofstream out_;
};

}  // namespace onebit::io
