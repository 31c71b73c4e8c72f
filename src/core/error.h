// Errors: every failure the user can cause is an onebit::Error whose message starts with the
// component in brackets, names the bad value and, where there is one, the allowed set:
//   [quantize] bits 7 is not supported; supported: 1, 2, 3, 4, 5, 6, 8
// Thrown at load and validation time only; kernels are noexcept and trust validated input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace onebit {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Concatenates any streamable values into one string.
template <typename... Args>
std::string cat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

// Throws Error("[component] " + message parts).
template <typename... Args>
[[noreturn]] void fail(const char* component, Args&&... args) {
    throw Error(cat("[", component, "] ", std::forward<Args>(args)...));
}

// Joins a container's elements with ", " for "supported: ..." lists.
template <typename Container>
std::string join(const Container& c, const char* sep = ", ") {
    std::ostringstream os;
    bool first = true;
    for (const auto& v : c) {
        if (!first) os << sep;
        os << v;
        first = false;
    }
    return os.str();
}

}  // namespace onebit

// Always-on invariant check: a failure here is a bug in onebit, not bad input.
#define ONEBIT_CHECK(cond)                                                                      \
    do {                                                                                        \
        if (!(cond))                                                                            \
            ::onebit::fail("internal", "check failed: " #cond " at ", __FILE__, ":", __LINE__); \
    } while (0)

// Debug-only invariant check, compiled out of release builds.
#ifdef NDEBUG
#define ONEBIT_DCHECK(cond) \
    do {                    \
    } while (0)
#else
#define ONEBIT_DCHECK(cond) ONEBIT_CHECK(cond)
#endif
