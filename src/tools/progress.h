// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace onebit::tools {

class ProgressBar {
  public:
    explicit ProgressBar(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO)) {}
    // done of total units; `what` follows the bar (a tensor name, "windows").
    void operator()(size_t done, size_t total, const std::string& what) const {
        if (!tty_) return;
        const int width = 30, bar = static_cast<int>(width * done / std::max<size_t>(1, total));
        std::fprintf(stderr, "\r[%s] [%s%s] %zu/%zu %-48.48s", label_.c_str(), std::string(bar, '#').c_str(),
                     std::string(width - bar, ' ').c_str(), done, total, what.c_str());
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    }

  private:
    std::string label_;
    bool tty_;
};

}  // namespace onebit::tools
