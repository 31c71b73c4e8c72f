// An environment variable set (or unset) for one scope, a backend mode a test forces; its previous
// value comes back when the scope ends, also when an assertion leaves the test early.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace onebit::test {

class ScopedEnv {
  public:
    // value nullptr: unset within the scope (the backend's automatic choice)
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            setenv(name, value, 1);
        else
            unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_)
            setenv(name_, old_->c_str(), 1);
        else
            unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

}  // namespace onebit::test
