// The Jinja interpreter's state and the built-in filters, tests, methods and globals it offers.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "chat/ast.h"
#include "chat/value.h"
#include "core/error.h"

namespace onebit::chat {

class Interp {
  public:
    explicit Interp(std::unordered_map<std::string, Value> globals);
    // Renders `body` into the returned string. Errors: "[chat-template] line N: ...".
    std::string render(const Body& body);

    Value eval(const Expr& e);
    Value lookup(const std::string& name) const;

    template <typename... A>
    [[noreturn]] void error(int line, A&&... a) const;

  private:
    enum class Flow { Normal, Break, Continue };
    Flow exec(const Body& body, std::string& out);
    Flow exec_for(const Node& n, std::string& out);
    void assign(const std::vector<std::string>& targets, const Value& v, int line);
    Value call(const Expr& e);
    Value call_macro(const Node& macro, std::vector<Value>& args, Kwargs& kwargs, int line);
    Value get_attr(const Value& obj, const std::string& name, int line);
    Value get_item(const Value& obj, const Value& key, int line);
    Value binary(const Expr& e);
    void check_output(const std::string& out, int line) const;

    std::vector<std::unordered_map<std::string, Value>> scopes_;
    int call_depth_ = 0;
    int current_line_ = 0;
};

// Built-ins (builtins.cpp). Each throws "[chat-template] ..." for bad arguments; `line` is for
// error messages.
Value apply_filter(Interp& in, const std::string& name, Value v, std::vector<Value>& args,
                   Kwargs& kwargs, int line);
bool apply_test(Interp& in, const std::string& name, const Value& v, std::vector<Value>& args,
                int line);
// Methods of str, list and dict (and dict-like). Returns false when `name` is not one.
bool has_method(const Value& obj, const std::string& name);
Value call_method(Interp& in, const Value& obj, const std::string& name, std::vector<Value>& args,
                  Kwargs& kwargs, int line);
// Globals: range, namespace, dict, raise_exception, strftime_now.
std::unordered_map<std::string, Value> builtin_globals();

// Python slicing / indexing of strings and lists.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line,
            Interp& in);

constexpr size_t kMaxOutputBytes = size_t{64} << 20;
constexpr int kMaxCallDepth = 64;
constexpr int64_t kMaxRange = 1 << 20;

template <typename... A>
[[noreturn]] void Interp::error(int line, A&&... a) const {
    fail("chat-template", "line ", line, ": ", std::forward<A>(a)...);
}

}  // namespace onebit::chat
