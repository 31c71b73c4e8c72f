// Streams generated text while holding back any tail that may begin a stop string, so a stop
// string is never emitted, not even in part.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace onebit::engine {

class StopFilter {
  public:
    using Sink = std::function<void(std::string_view)>;
    StopFilter(std::vector<std::string> stop, Sink out) : stop_(std::move(stop)), out_(std::move(out)) {}
    // Adds a piece of text; emits what can no longer begin a stop string. Returns true once a stop
    // string has appeared: the text before it is emitted, the rest dropped.
    bool push(std::string_view piece);
    // Emits whatever is held back.
    void flush();

  private:
    void emit(std::string_view s) {
        if (!s.empty() && out_) out_(s);
    }
    std::vector<std::string> stop_;
    Sink out_;
    std::string pending_;
};

}  // namespace onebit::engine
