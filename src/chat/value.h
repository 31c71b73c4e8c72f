// Values of the Jinja interpreter, with Python's semantics where Jinja defers to Python (truth,
// equality, ordering, str() and repr() of every type, code-point indexing of strings). Lists and
// dicts are shared by reference, as in Python; dicts keep insertion order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace onebit::chat {

struct Value;
using List = std::vector<Value>;
struct Dict;
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(std::vector<Value>& args, Kwargs& kwargs)>;

struct Value {
    enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Function };
    Type type = Type::Undefined;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;  // String; for Undefined, the name that was looked up
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    std::shared_ptr<Function> fn;
    bool is_namespace = false;  // a Dict made by namespace(): attributes may be assigned
    bool is_tuple = false;      // a List that Python would hold as a tuple (printed with "()")

    static Value undefined(std::string name = {});
    static Value none();
    static Value boolean(bool v);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value string(std::string v);
    static Value make_list(List v = {});
    static Value make_tuple(List v);
    static Value make_dict();
    static Value function(Function f);

    bool is_undefined() const { return type == Type::Undefined; }
    bool is_none() const { return type == Type::None; }
    bool is_string() const { return type == Type::String; }
    bool is_number() const { return type == Type::Int || type == Type::Float; }
    bool is_list() const { return type == Type::List; }
    bool is_dict() const { return type == Type::Dict; }
    double as_double() const { return type == Type::Int ? static_cast<double>(i) : f; }

    bool truthy() const;
    // Python's str(): what {{ value }} prints ("" for Undefined, "None", "True", 1.0, ['a']).
    std::string str() const;
    // Python's repr().
    std::string repr() const;
    // Python's type name, for error messages.
    const char* type_name() const;
};

struct Dict {
    std::vector<std::pair<std::string, Value>> items;
    const Value* find(const std::string& key) const;
    void set(const std::string& key, Value v);
};

// Python ==, and <, > for numbers, strings and lists (other pairs are an error).
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // -1, 0, 1

// JSON conversion (ordered objects keep their key order).
Value from_json(const nlohmann::ordered_json& j);
// json.dumps(v, ensure_ascii=False, indent, separators, sort_keys) as Python writes it.
std::string to_json(const Value& v, int indent, bool sort_keys);

// Code-point helpers for Python string indexing.
std::vector<std::string> code_points(const std::string& s);
size_t code_point_count(const std::string& s);

// Python's repr() of a float ("1.0", "0.1", "1e-05", "inf").
std::string python_float_repr(double d);

}  // namespace onebit::chat
