#include "chat/value.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace onebit::chat {

Value Value::undefined(std::string name) {
    Value v;
    v.s = std::move(name);
    return v;
}
Value Value::none() {
    Value v;
    v.type = Type::None;
    return v;
}
Value Value::boolean(bool x) {
    Value v;
    v.type = Type::Bool;
    v.b = x;
    return v;
}
Value Value::integer(int64_t x) {
    Value v;
    v.type = Type::Int;
    v.i = x;
    return v;
}
Value Value::number(double x) {
    Value v;
    v.type = Type::Float;
    v.f = x;
    return v;
}
Value Value::string(std::string x) {
    Value v;
    v.type = Type::String;
    v.s = std::move(x);
    return v;
}
Value Value::make_list(List x) {
    Value v;
    v.type = Type::List;
    v.list = std::make_shared<List>(std::move(x));
    return v;
}
Value Value::make_tuple(List x) {
    Value v = make_list(std::move(x));
    v.is_tuple = true;
    return v;
}
Value Value::make_dict() {
    Value v;
    v.type = Type::Dict;
    v.dict = std::make_shared<Dict>();
    return v;
}
Value Value::function(Function f) {
    Value v;
    v.type = Type::Function;
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
}

bool Value::truthy() const {
    switch (type) {
        case Type::Undefined:
        case Type::None: return false;
        case Type::Bool: return b;
        case Type::Int: return i != 0;
        case Type::Float: return f != 0;
        case Type::String: return !s.empty();
        case Type::List: return !list->empty();
        case Type::Dict: return !dict->items.empty();
        case Type::Function: return true;
    }
    return false;
}

const char* Value::type_name() const {
    switch (type) {
        case Type::Undefined: return "Undefined";
        case Type::None: return "NoneType";
        case Type::Bool: return "bool";
        case Type::Int: return "int";
        case Type::Float: return "float";
        case Type::String: return "str";
        case Type::List: return "list";
        case Type::Dict: return is_namespace ? "Namespace" : "dict";
        case Type::Function: return "function";
    }
    return "?";
}

std::string python_float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, r.ptr);  // "-1.2345e+02"
    const bool neg = sci[0] == '-';
    if (neg) sci.erase(0, 1);
    const size_t e = sci.find('e');
    std::string digits = sci.substr(0, e);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    const int exp10 = std::stoi(sci.substr(e + 1));
    const int decpt = exp10 + 1;  // value = 0.digits * 10^decpt
    std::string out = neg ? "-" : "";
    if (decpt > 16 || decpt < -3) {
        out += digits[0];
        if (digits.size() > 1) out += "." + digits.substr(1);
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
        return out + eb;
    }
    if (decpt <= 0) return out + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    if (static_cast<size_t>(decpt) >= digits.size())
        return out + digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
    return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

namespace {

std::string python_str_repr(const std::string& s) {
    const bool has_single = s.find('\'') != std::string::npos;
    const bool has_double = s.find('"') != std::string::npos;
    const char q = has_single && !has_double ? '"' : '\'';
    std::string out(1, q);
    for (size_t i = 0; i < s.size();) {
        int32_t cp = 0;
        const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                        static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
        if (n <= 0) {  // not reachable for validated text; keep the byte visible
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", static_cast<uint8_t>(s[i]));
            out += b;
            ++i;
            continue;
        }
        const std::string raw = s.substr(i, static_cast<size_t>(n));
        i += static_cast<size_t>(n);
        if (cp == '\\') out += "\\\\";
        else if (cp == q) out += std::string("\\") + q;
        else if (cp == '\n') out += "\\n";
        else if (cp == '\r') out += "\\r";
        else if (cp == '\t') out += "\\t";
        else {
            const auto cat = utf8proc_category(cp);
            const bool printable =
                cp == ' ' || !(cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                               cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
                               cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_ZL ||
                               cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_ZS);
            if (printable) {
                out += raw;
            } else {
                char b[16];
                if (cp <= 0xFF) std::snprintf(b, sizeof b, "\\x%02x", cp);
                else if (cp <= 0xFFFF) std::snprintf(b, sizeof b, "\\u%04x", cp);
                else std::snprintf(b, sizeof b, "\\U%08x", cp);
                out += b;
            }
        }
    }
    return out + q;
}

void json_string(std::string& out, const std::string& s) {
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (static_cast<uint8_t>(c) < 0x20) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\u%04x", c);
                    out += b;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

void json_dump(std::string& out, const Value& v, int indent, bool sort_keys, int depth) {
    if (depth > 256) fail("chat-template", "tojson: nesting deeper than 256");
    const auto newline = [&](int d) {
        if (indent < 0) return;
        out += '\n';
        out.append(static_cast<size_t>(indent * d), ' ');
    };
    const char* item_sep = indent < 0 ? ", " : ",";
    switch (v.type) {
        case Value::Type::Undefined:
        case Value::Type::Function:
            fail("chat-template", "tojson: Object of type ", v.type_name(),
                 " is not JSON serializable");
        case Value::Type::None: out += "null"; return;
        case Value::Type::Bool: out += v.b ? "true" : "false"; return;
        case Value::Type::Int: out += std::to_string(v.i); return;
        case Value::Type::Float:
            if (std::isnan(v.f)) out += "NaN";
            else if (std::isinf(v.f)) out += v.f < 0 ? "-Infinity" : "Infinity";
            else out += python_float_repr(v.f);
            return;
        case Value::Type::String: json_string(out, v.s); return;
        case Value::Type::List:
            if (v.list->empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k) out += item_sep;
                newline(depth + 1);
                json_dump(out, (*v.list)[k], indent, sort_keys, depth + 1);
            }
            newline(depth);
            out += ']';
            return;
        case Value::Type::Dict: {
            if (v.dict->items.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<std::string, Value>*> items;
            for (const auto& kv : v.dict->items) items.push_back(&kv);
            if (sort_keys)
                std::stable_sort(items.begin(), items.end(),
                                 [](auto* a, auto* b) { return a->first < b->first; });
            out += '{';
            for (size_t k = 0; k < items.size(); ++k) {
                if (k) out += item_sep;
                newline(depth + 1);
                json_string(out, items[k]->first);
                out += ": ";
                json_dump(out, items[k]->second, indent, sort_keys, depth + 1);
            }
            newline(depth);
            out += '}';
            return;
        }
    }
}

}  // namespace

std::string Value::repr() const {
    switch (type) {
        case Type::String: return python_str_repr(s);
        case Type::Undefined: return "Undefined";
        case Type::List: {
            std::string out = is_tuple ? "(" : "[";
            for (size_t k = 0; k < list->size(); ++k) out += (k ? ", " : "") + (*list)[k].repr();
            if (is_tuple) return out + (list->size() == 1 ? ",)" : ")");
            return out + "]";
        }
        case Type::Dict: {
            std::string out = is_namespace ? "<Namespace {" : "{";
            for (size_t k = 0; k < dict->items.size(); ++k)
                out += (k ? ", " : "") + python_str_repr(dict->items[k].first) + ": " +
                       dict->items[k].second.repr();
            return out + (is_namespace ? "}>" : "}");
        }
        default: return str();
    }
}

std::string Value::str() const {
    switch (type) {
        case Type::Undefined: return "";
        case Type::None: return "None";
        case Type::Bool: return b ? "True" : "False";
        case Type::Int: return std::to_string(i);
        case Type::Float: return python_float_repr(f);
        case Type::String: return s;
        case Type::Function: return "<function>";
        default: return repr();
    }
}

const Value* Dict::find(const std::string& key) const {
    for (const auto& kv : items)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

void Dict::set(const std::string& key, Value v) {
    for (auto& kv : items)
        if (kv.first == key) {
            kv.second = std::move(v);
            return;
        }
    items.emplace_back(key, std::move(v));
}

bool equals(const Value& a, const Value& b) {
    using T = Value::Type;
    const auto numeric = [](const Value& v) {
        return v.type == T::Int || v.type == T::Float || v.type == T::Bool;
    };
    if (numeric(a) && numeric(b)) {
        const auto d = [](const Value& v) { return v.type == T::Bool ? (v.b ? 1.0 : 0.0) : v.as_double(); };
        if (a.type != T::Float && b.type != T::Float) {
            const auto n = [](const Value& v) { return v.type == T::Bool ? int64_t{v.b} : v.i; };
            return n(a) == n(b);
        }
        return d(a) == d(b);
    }
    if (a.type != b.type) return false;
    switch (a.type) {
        case T::Undefined:
        case T::None: return true;
        case T::String: return a.s == b.s;
        case T::List:
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equals((*a.list)[k], (*b.list)[k])) return false;
            return true;
        case T::Dict:
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [k, v] : a.dict->items) {
                const Value* o = b.dict->find(k);
                if (!o || !equals(v, *o)) return false;
            }
            return true;
        case T::Function: return a.fn == b.fn;
        default: return false;
    }
}

int compare(const Value& a, const Value& b) {
    using T = Value::Type;
    const auto numeric = [](const Value& v) {
        return v.type == T::Int || v.type == T::Float || v.type == T::Bool;
    };
    if (numeric(a) && numeric(b)) {
        const auto d = [](const Value& v) { return v.type == T::Bool ? (v.b ? 1.0 : 0.0) : v.as_double(); };
        return d(a) < d(b) ? -1 : d(a) > d(b) ? 1 : 0;
    }
    if (a.type == T::String && b.type == T::String) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    if (a.type == T::List && b.type == T::List) {
        for (size_t k = 0; k < a.list->size() && k < b.list->size(); ++k) {
            if (equals((*a.list)[k], (*b.list)[k])) continue;
            return compare((*a.list)[k], (*b.list)[k]);
        }
        return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
    }
    fail("chat-template", "ordering is not supported between instances of '", a.type_name(),
         "' and '", b.type_name(), "'");
}

Value from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::null: return Value::none();
        case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned: return Value::integer(j.get<int64_t>());
        case nlohmann::json::value_t::number_float: return Value::number(j.get<double>());
        case nlohmann::json::value_t::string: return Value::string(j.get<std::string>());
        case nlohmann::json::value_t::array: {
            List l;
            for (const auto& e : j) l.push_back(from_json(e));
            return Value::make_list(std::move(l));
        }
        case nlohmann::json::value_t::object: {
            Value d = Value::make_dict();
            for (auto it = j.begin(); it != j.end(); ++it) d.dict->set(it.key(), from_json(it.value()));
            return d;
        }
        default: fail("chat-template", "unsupported JSON value");
    }
}

std::string to_json(const Value& v, int indent, bool sort_keys) {
    std::string out;
    json_dump(out, v, indent, sort_keys, 0);
    return out;
}

std::vector<std::string> code_points(const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        size_t n = 1;
        const uint8_t c = static_cast<uint8_t>(s[i]);
        if (c >= 0xF0) n = 4;
        else if (c >= 0xE0) n = 3;
        else if (c >= 0xC0) n = 2;
        n = std::min(n, s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

size_t code_point_count(const std::string& s) {
    size_t n = 0;
    for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    return n;
}

}  // namespace onebit::chat
