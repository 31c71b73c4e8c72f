// An environment variable set for one scope (a backend mode a test forces), unset when it ends,
// also when an assertion leaves the test early.
#pragma once

#include <cstdlib>

namespace onebit::test {

class ScopedEnv {
  public:
    // value nullptr: left unset
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (value) setenv(name, value, 1);
    }
    ~ScopedEnv() { unsetenv(name_); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
};

}  // namespace onebit::test
