// A compiled PCRE2 pattern in UTF + UCP mode (Unicode classes such as \p{L}, Unicode \s), with
// JIT where the platform has it. Matches the Oniguruma patterns Hugging Face files use.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onebit::tok {

class Regex {
  public:
    // Errors: "[tokenizer] regex <pattern> does not compile: <reason> at offset N".
    explicit Regex(const std::string& pattern);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Every non-overlapping match in s (valid UTF-8), as [begin, end) byte ranges, left to right.
    // Empty matches are skipped. Thread-safe.
    void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
    const std::string& pattern() const { return pattern_; }

  private:
    std::string pattern_;
    void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace onebit::tok
