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

    // Counts `units` of work against kMaxSteps, so that a hostile or broken template ends in an
    // error instead of running for hours. A unit: a node or expression evaluated, a loop turn, a
    // list element or dict item built or scanned, kBytesPerUnit bytes of string built or scanned.
    void spend(int64_t units, int line);
    // What building or scanning `v` costs in those units.
    static int64_t size_units(const Value& v);

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
    Value eval_node(const Expr& e);
    void check_output(const std::string& out, int line) const;
    // Before `v` is stored into the namespace `target`: refuses a value that holds `target` (a
    // reference cycle, which shared ownership would never free) or that nests deeper than
    // kMaxNesting (its destruction recurses).
    void check_storable(const Value& v, const Dict* target, int depth, int line);

    std::vector<std::unordered_map<std::string, Value>> scopes_;
    int call_depth_ = 0;
    int64_t steps_ = 0;
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
constexpr int64_t kMaxRange = 1 << 18;
// About half a second of work in a release build (a few seconds under the sanitizers). The tests'
// 10,000-message conversation with tools and tool calls takes 44% of it through Qwen3's template.
constexpr int64_t kMaxSteps = int64_t{1} << 21;
constexpr int64_t kBytesPerUnit = 256;
constexpr int64_t kLoopTurnUnits = 8;  // a loop turn costs about what eight expressions do
constexpr int kMaxNesting = 256;

template <typename... A>
[[noreturn]] void Interp::error(int line, A&&... a) const {
    fail("chat-template", "line ", line, ": ", std::forward<A>(a)...);
}

}  // namespace onebit::chat
