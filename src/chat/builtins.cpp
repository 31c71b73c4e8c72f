// Built-in filters, tests, methods and globals, each as jinja2 (and transformers, for tojson,
// raise_exception and strftime_now) defines it. Anything else is an error naming it.
#include <algorithm>
#include <bit>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>

#include <utf8proc.h>

#include "chat/interp.h"

namespace onebit::chat {

namespace {

const char* kWhitespace = " \t\n\r\v\f";

bool is_py_space(const std::string& cp) {
    // Python str.strip()/split() with no argument: Unicode whitespace.
    static const char* spaces[] = {" ", "\t", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e",
                                   "\x1f", "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80",
                                   "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf",
                                   "\xe2\x81\x9f", "\xe3\x80\x80"};
    for (const char* s : spaces)
        if (cp == s) return true;
    if (cp.size() == 3 && cp[0] == '\xe2' && cp[1] == '\x80' &&
        static_cast<uint8_t>(cp[2]) >= 0x80 && static_cast<uint8_t>(cp[2]) <= 0x8a)
        return true;
    return false;
}

// Python's str.strip / lstrip / rstrip, with or without a set of characters.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
    const std::vector<std::string> cps = code_points(s);
    std::vector<std::string> set;
    if (chars && chars->is_string()) set = code_points(chars->s);
    auto strip_it = [&](const std::string& c) {
        if (chars && chars->is_string()) return std::find(set.begin(), set.end(), c) != set.end();
        return is_py_space(c);
    };
    size_t b = 0, e = cps.size();
    if (left)
        while (b < e && strip_it(cps[b])) ++b;
    if (right)
        while (e > b && strip_it(cps[e - 1])) --e;
    std::string out;
    for (size_t k = b; k < e; ++k) out += cps[k];
    return out;
}

std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep && sep->is_string()) {
        if (sep->s.empty()) fail("chat-template", "split: empty separator");
        size_t pos = 0;
        for (size_t hit; (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) &&
                         (hit = s.find(sep->s, pos)) != std::string::npos;
             pos = hit + sep->s.size())
            out.push_back(s.substr(pos, hit - pos));
        out.push_back(s.substr(pos));
        return out;
    }
    const std::vector<std::string> cps = code_points(s);
    size_t k = 0;
    while (k < cps.size()) {
        while (k < cps.size() && is_py_space(cps[k])) ++k;
        if (k >= cps.size()) break;
        std::string word;
        if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
            for (; k < cps.size(); ++k) word += cps[k];
            // Python keeps trailing whitespace of the remainder? No: rstrip is not applied.
            out.push_back(word);
            break;
        }
        while (k < cps.size() && !is_py_space(cps[k])) word += cps[k++];
        out.push_back(word);
    }
    return out;
}

// Python's str.upper() / str.lower(), code point by code point (Unicode simple case mapping).
std::string ascii_case(const std::string& s, bool upper) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        utf8proc_int32_t cp = 0;
        const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                        static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
        if (n <= 0) {
            out += s[i++];
            continue;
        }
        i += static_cast<size_t>(n);
        cp = upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        utf8proc_uint8_t buf[4];
        out.append(reinterpret_cast<const char*>(buf),
                   static_cast<size_t>(utf8proc_encode_char(cp, buf)));
    }
    return out;
}

std::string title_case(const std::string& s) {
    std::string out;
    bool prev_cased = false;
    for (char c : s) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        out += static_cast<char>(alpha ? (prev_cased ? std::tolower(static_cast<unsigned char>(c))
                                                     : std::toupper(static_cast<unsigned char>(c)))
                                       : c);
        prev_cased = alpha || static_cast<uint8_t>(c) >= 0x80;
    }
    return out;
}

std::string replace_str(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
    if (from.empty()) return s;
    std::string out;
    size_t pos = 0;
    int64_t done = 0;
    for (size_t hit; (count < 0 || done < count) && (hit = s.find(from, pos)) != std::string::npos;
         pos = hit + from.size(), ++done) {
        out.append(s, pos, hit - pos).append(to);
        if (out.size() > kMaxOutputBytes) fail("chat-template", "replace: result too long");
    }
    return out.append(s, pos, std::string::npos);
}

const Value* kwarg(Kwargs& kw, const char* name) {
    for (auto& [k, v] : kw)
        if (k == name) return &v;
    return nullptr;
}

const Value* arg(std::vector<Value>& args, Kwargs& kw, size_t i, const char* name) {
    if (i < args.size()) return &args[i];
    return kwarg(kw, name);
}

int64_t int_arg(Interp& in, const Value* v, int64_t dflt, int line, const char* what) {
    if (!v || v->is_none()) return dflt;
    if (v->type == Value::Type::Int) return v->i;
    if (v->type == Value::Type::Bool) return v->b;
    in.error(line, what, " must be an integer, not ", v->type_name());
}

List iterable(Interp& in, const Value& v, int line, const char* what) {
    if (v.is_list()) return *v.list;
    List out;
    if (v.is_dict()) {
        for (const auto& kv : v.dict->items) out.push_back(Value::string(kv.first));
    } else if (v.is_string()) {
        for (std::string& c : code_points(v.s)) out.push_back(Value::string(std::move(c)));
    } else if (!v.is_undefined()) {
        in.error(line, what, ": '", v.type_name(), "' object is not iterable");
    }
    return out;
}

// attribute="a.b" lookups of map / selectattr / join / sort.
Value attr_path(Interp& in, Value v, const std::string& path, int line) {
    size_t pos = 0;
    while (pos <= path.size()) {
        const size_t dot = path.find('.', pos);
        const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (v.is_dict()) {
            const Value* x = v.dict->find(part);
            v = x ? *x : Value::undefined(part);
        } else if (v.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
            const size_t k = std::stoul(part);
            v = k < v.list->size() ? (*v.list)[k] : Value::undefined(part);
        } else {
            v = Value::undefined(part);
        }
        if (dot == std::string::npos) break;
        pos = dot + 1;
    }
    (void)in;
    (void)line;
    return v;
}

}  // namespace

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line,
            Interp& in) {
    if (!obj.is_list() && !obj.is_string())
        in.error(line, "'", obj.type_name(), "' object is not subscriptable");
    std::vector<std::string> cps;
    if (obj.is_string()) cps = code_points(obj.s);
    const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list->size()) : static_cast<int64_t>(cps.size());
    const int64_t st = int_arg(in, &step, 1, line, "slice step");
    if (st == 0) in.error(line, "slice step cannot be zero");
    auto clamp = [&](const Value& v, int64_t dflt) {
        if (v.is_none()) return dflt;
        int64_t x = int_arg(in, &v, dflt, line, "slice index");
        if (x < 0) x += n;
        if (st > 0) return std::clamp<int64_t>(x, 0, n);
        return std::clamp<int64_t>(x, -1, n - 1);
    };
    const int64_t b = clamp(start, st > 0 ? 0 : n - 1), e = clamp(stop, st > 0 ? n : -1);
    List items;
    std::string s;
    for (int64_t k = b; st > 0 ? k < e : k > e; k += st) {
        if (obj.is_list()) items.push_back((*obj.list)[k]);
        else s += cps[k];
    }
    return obj.is_list() ? Value::make_list(std::move(items)) : Value::string(std::move(s));
}

bool has_method(const Value& obj, const std::string& name) {
    static const char* str_methods[] = {"startswith", "endswith", "split", "rsplit", "strip",
                                        "lstrip", "rstrip", "upper", "lower", "title",
                                        "capitalize", "replace", "find", "count", "join",
                                        "splitlines", "isdigit", "isalpha", "isspace"};
    static const char* dict_methods[] = {"items", "keys", "values", "get"};
    static const char* list_methods[] = {"index", "count"};
    auto in = [&](auto& arr) {
        for (const char* m : arr)
            if (name == m) return true;
        return false;
    };
    if (obj.is_string()) return in(str_methods);
    if (obj.is_dict() && !obj.is_namespace) return in(dict_methods);
    if (obj.is_list()) return in(list_methods);
    return false;
}

Value call_method(Interp& in, const Value& obj, const std::string& name, std::vector<Value>& args,
                  Kwargs& kw, int line) {
    auto need_str = [&](const Value* v, const char* what) -> const std::string& {
        if (!v || !v->is_string()) in.error(line, name, "() ", what, " must be a string");
        return v->s;
    };
    if (obj.is_string()) {
        const std::string& s = obj.s;
        if (name == "startswith" || name == "endswith") {
            const Value* p = arg(args, kw, 0, "prefix");
            if (!p) in.error(line, name, "() takes a prefix");
            List options = p->is_list() ? *p->list : List{*p};
            for (const Value& o : options) {
                const std::string& x = need_str(&o, "argument");
                if (name == "startswith" ? s.compare(0, x.size(), x) == 0
                                         : s.size() >= x.size() &&
                                               s.compare(s.size() - x.size(), x.size(), x) == 0)
                    return Value::boolean(true);
            }
            return Value::boolean(false);
        }
        if (name == "split" || name == "rsplit") {
            const Value* sep = arg(args, kw, 0, "sep");
            const int64_t maxsplit = int_arg(in, arg(args, kw, 1, "maxsplit"), -1, line, "maxsplit");
            if (name == "rsplit" && maxsplit >= 0)
                in.error(line, "rsplit() with maxsplit is not supported");
            List out;
            for (std::string& p : py_split(s, sep && !sep->is_none() ? sep : nullptr, maxsplit))
                out.push_back(Value::string(std::move(p)));
            return Value::make_list(std::move(out));
        }
        if (name == "strip" || name == "lstrip" || name == "rstrip") {
            const Value* chars = arg(args, kw, 0, "chars");
            if (chars && !chars->is_none()) need_str(chars, "argument");
            return Value::string(py_strip(s, chars && !chars->is_none() ? chars : nullptr,
                                          name != "rstrip", name != "lstrip"));
        }
        if (name == "upper" || name == "lower") return Value::string(ascii_case(s, name == "upper"));
        if (name == "title") return Value::string(title_case(s));
        if (name == "capitalize") {
            std::string r = ascii_case(s, false);
            if (!r.empty() && static_cast<uint8_t>(r[0]) < 0x80)
                r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
            return Value::string(r);
        }
        if (name == "replace") {
            const std::string& from = need_str(arg(args, kw, 0, "old"), "old");
            const std::string& to = need_str(arg(args, kw, 1, "new"), "new");
            return Value::string(
                replace_str(s, from, to, int_arg(in, arg(args, kw, 2, "count"), -1, line, "count")));
        }
        if (name == "find") {
            const size_t p = s.find(need_str(arg(args, kw, 0, "sub"), "sub"));
            return Value::integer(p == std::string::npos
                                      ? -1
                                      : static_cast<int64_t>(code_point_count(s.substr(0, p))));
        }
        if (name == "count") {
            const std::string& sub = need_str(arg(args, kw, 0, "sub"), "sub");
            int64_t n = 0;
            if (sub.empty()) return Value::integer(static_cast<int64_t>(code_point_count(s)) + 1);
            for (size_t p = 0; (p = s.find(sub, p)) != std::string::npos; p += sub.size()) ++n;
            return Value::integer(n);
        }
        if (name == "join") {
            const Value* items = arg(args, kw, 0, "iterable");
            if (!items) in.error(line, "join() takes an iterable");
            std::string out;
            const List l = iterable(in, *items, line, "join");
            for (size_t k = 0; k < l.size(); ++k) {
                if (!l[k].is_string()) in.error(line, "join(): item ", k, " is ", l[k].type_name(), ", not str");
                out += (k ? s : "") + l[k].s;
                if (out.size() > kMaxOutputBytes) in.error(line, "join(): result too long");
            }
            return Value::string(std::move(out));
        }
        if (name == "splitlines") {
            List out;
            size_t pos = 0;
            while (pos < s.size()) {
                size_t e = s.find_first_of("\r\n", pos);
                if (e == std::string::npos) {
                    out.push_back(Value::string(s.substr(pos)));
                    break;
                }
                out.push_back(Value::string(s.substr(pos, e - pos)));
                pos = e + (s.compare(e, 2, "\r\n") == 0 ? 2 : 1);
            }
            return Value::make_list(std::move(out));
        }
        if (name == "isdigit" || name == "isalpha" || name == "isspace") {
            if (s.empty()) return Value::boolean(false);
            for (char c : s) {
                const auto u = static_cast<unsigned char>(c);
                const bool ok = name == "isdigit" ? std::isdigit(u) : name == "isalpha" ? std::isalpha(u) : std::strchr(kWhitespace, c) != nullptr;
                if (!ok) return Value::boolean(false);
            }
            return Value::boolean(true);
        }
    }
    if (obj.is_dict()) {
        if (name == "items" || name == "keys" || name == "values") {
            List out;
            for (const auto& [k, v] : obj.dict->items) {
                if (name == "items") out.push_back(Value::make_tuple({Value::string(k), v}));
                else if (name == "keys") out.push_back(Value::string(k));
                else out.push_back(v);
            }
            return Value::make_list(std::move(out));
        }
        if (name == "get") {
            const Value* key = arg(args, kw, 0, "key");
            if (!key) in.error(line, "get() takes a key");
            const Value* dflt = arg(args, kw, 1, "default");
            if (key->is_string())
                if (const Value* v = obj.dict->find(key->s)) return *v;
            return dflt ? *dflt : Value::none();
        }
    }
    if (obj.is_list()) {
        const Value* x = arg(args, kw, 0, "value");
        if (!x) in.error(line, name, "() takes a value");
        int64_t n = 0;
        for (size_t k = 0; k < obj.list->size(); ++k)
            if (equals((*obj.list)[k], *x)) {
                if (name == "index") return Value::integer(static_cast<int64_t>(k));
                ++n;
            }
        if (name == "index") in.error(line, x->repr(), " is not in list");
        return Value::integer(n);
    }
    in.error(line, "'", obj.type_name(), "' object has no method '", name, "'");
}

bool apply_test(Interp& in, const std::string& name, const Value& v, std::vector<Value>& args,
                int line) {
    using T = Value::Type;
    auto need = [&](size_t n) {
        if (args.size() < n) in.error(line, "test '", name, "' takes ", n, " argument(s)");
    };
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "boolean") return v.type == T::Bool;
    if (name == "true") return v.type == T::Bool && v.b;
    if (name == "false") return v.type == T::Bool && !v.b;
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.type == T::Int;
    if (name == "float") return v.type == T::Float;
    if (name == "mapping") return v.is_dict();
    if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
    if (name == "iterable") return v.is_list() || v.is_string() || v.is_dict();
    if (name == "callable") return v.type == T::Function;
    if (name == "lower") return v.is_string() && ascii_case(v.s, false) == v.s;
    if (name == "upper") return v.is_string() && ascii_case(v.s, true) == v.s;
    if (name == "odd" || name == "even") {
        if (v.type != T::Int) in.error(line, "test '", name, "' needs an integer");
        return (v.i % 2 != 0) == (name == "odd");
    }
    if (name == "divisibleby") {
        need(1);
        const int64_t d = int_arg(in, &args[0], 1, line, "divisibleby");
        if (v.type != T::Int || d == 0) in.error(line, "divisibleby needs integers, non-zero divisor");
        return v.i % d == 0;
    }
    if (name == "eq" || name == "equalto" || name == "==") return need(1), equals(v, args[0]);
    if (name == "ne" || name == "!=") return need(1), !equals(v, args[0]);
    if (name == "sameas") {
        need(1);
        if (v.type != args[0].type) return false;
        if (v.is_list()) return v.list == args[0].list;
        if (v.is_dict()) return v.dict == args[0].dict;
        return equals(v, args[0]);
    }
    if (name == "lt" || name == "gt" || name == "le" || name == "ge" || name == "lessthan" ||
        name == "greaterthan") {
        need(1);
        const int c = compare(v, args[0]);
        if (name == "lt" || name == "lessthan") return c < 0;
        if (name == "gt" || name == "greaterthan") return c > 0;
        return name == "le" ? c <= 0 : c >= 0;
    }
    if (name == "in") {
        need(1);
        const Value& c = args[0];
        if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
        if (c.is_dict()) return v.is_string() && c.dict->find(v.s);
        for (const Value& x : iterable(in, c, line, "in")) if (equals(v, x)) return true;
        return false;
    }
    in.error(line, "unknown test '", name, "'");
}

// What sorting n values costs in Interp::spend's units: n log2 n comparisons.
static int64_t sort_units(size_t n) {
    return static_cast<int64_t>(n) * std::bit_width(n);
}

Value apply_filter(Interp& in, const std::string& name, Value v, std::vector<Value>& args,
                   Kwargs& kw, int line) {
    if (name == "tojson") {
        const Value* indent = arg(args, kw, 0, "indent");
        const Value* sort = kwarg(kw, "sort_keys");
        return Value::string(to_json(v, static_cast<int>(int_arg(in, indent, -1, line, "indent")),
                                     sort && sort->truthy()));
    }
    if (name == "trim") {
        const Value* chars = arg(args, kw, 0, "chars");
        return Value::string(py_strip(v.str(), chars && !chars->is_none() ? chars : nullptr, true, true));
    }
    if (name == "length" || name == "count") {
        if (v.is_string()) return Value::integer(static_cast<int64_t>(code_point_count(v.s)));
        if (v.is_list()) return Value::integer(static_cast<int64_t>(v.list->size()));
        if (v.is_dict()) return Value::integer(static_cast<int64_t>(v.dict->items.size()));
        if (v.is_undefined()) return Value::integer(0);
        in.error(line, "object of type '", v.type_name(), "' has no length");
    }
    if (name == "string") return Value::string(v.str());
    if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
        if (name == "safe") return v;
        in.error(line, "filter '", name, "' is not supported (autoescape is off in chat templates)");
    }
    if (name == "upper" || name == "lower") return Value::string(ascii_case(v.str(), name == "upper"));
    if (name == "capitalize") {
        std::vector<Value> none;
        Kwargs nk;
        return call_method(in, Value::string(v.str()), "capitalize", none, nk, line);
    }
    if (name == "title") return Value::string(title_case(v.str()));
    if (name == "replace") {
        if (args.size() < 2) in.error(line, "replace takes old and new");
        if (!args[0].is_string() || !args[1].is_string()) in.error(line, "replace takes strings");
        return Value::string(replace_str(v.str(), args[0].s, args[1].s,
                                         int_arg(in, arg(args, kw, 2, "count"), -1, line, "count")));
    }
    if (name == "default" || name == "d") {
        const Value* dflt = arg(args, kw, 0, "default_value");
        const Value* boolean = arg(args, kw, 1, "boolean");
        const bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
        return use ? (dflt ? *dflt : Value::string("")) : v;
    }
    if (name == "first" || name == "last") {
        const List l = iterable(in, v, line, name.c_str());
        if (l.empty()) return Value::undefined(name);
        return name == "first" ? l.front() : l.back();
    }
    if (name == "list") return Value::make_list(iterable(in, v, line, "list"));
    if (name == "reverse") {
        if (v.is_string()) return slice(v, Value::none(), Value::none(), Value::integer(-1), line, in);
        List l = iterable(in, v, line, "reverse");
        std::reverse(l.begin(), l.end());
        return Value::make_list(std::move(l));
    }
    if (name == "join") {
        const Value* sep = arg(args, kw, 0, "d");
        const Value* attribute = arg(args, kw, 1, "attribute");
        std::string out;
        const List l = iterable(in, v, line, "join");
        for (size_t k = 0; k < l.size(); ++k) {
            const Value item = attribute ? attr_path(in, l[k], attribute->str(), line) : l[k];
            out += (k && sep ? sep->str() : "") + item.str();
            if (out.size() > kMaxOutputBytes) in.error(line, "join: result too long");
        }
        return Value::string(std::move(out));
    }
    if (name == "items") {
        if (v.is_undefined()) return Value::make_list();
        if (!v.is_dict()) in.error(line, "items needs a mapping, not ", v.type_name());
        std::vector<Value> none;
        Kwargs nk;
        return call_method(in, v, "items", none, nk, line);
    }
    if (name == "dictsort") {
        if (!v.is_dict()) in.error(line, "dictsort needs a mapping");
        std::vector<std::pair<std::string, Value>> items = v.dict->items;
        in.spend(sort_units(items.size()), line);
        std::stable_sort(items.begin(), items.end(), [](auto& a, auto& b) {
            return ascii_case(a.first, false) < ascii_case(b.first, false);
        });
        List out;
        for (auto& [k, x] : items) out.push_back(Value::make_tuple({Value::string(k), x}));
        return Value::make_list(std::move(out));
    }
    if (name == "int") {
        if (v.type == Value::Type::Int) return v;
        if (v.type == Value::Type::Float && std::isfinite(v.f) && std::fabs(v.f) < 9e18)
            return Value::integer(static_cast<int64_t>(v.f));
        if (v.type == Value::Type::Bool) return Value::integer(v.b);
        if (v.is_string()) {
            try {
                size_t used = 0;
                const long long x = std::stoll(py_strip(v.s, nullptr, true, true), &used);
                return Value::integer(x);
            } catch (const std::exception&) {
            }
        }
        return args.empty() ? Value::integer(0) : args[0];
    }
    if (name == "float") {
        if (v.is_number()) return Value::number(v.as_double());
        if (v.is_string()) {
            try {
                return Value::number(std::stod(v.s));
            } catch (const std::exception&) {
            }
        }
        return args.empty() ? Value::number(0) : args[0];
    }
    if (name == "abs") {
        if (v.type == Value::Type::Int) return Value::integer(v.i < 0 && v.i != INT64_MIN ? -v.i : v.i);
        if (v.type == Value::Type::Float) return Value::number(std::fabs(v.f));
        in.error(line, "abs needs a number");
    }
    if (name == "round") {
        if (!v.is_number()) in.error(line, "round needs a number");
        const int64_t digits = int_arg(in, arg(args, kw, 0, "precision"), 0, line, "precision");
        const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(digits, -300, 300)));
        return Value::number(std::nearbyint(v.as_double() * scale) / scale);
    }
    if (name == "unique") {
        List out;
        for (const Value& x : iterable(in, v, line, "unique")) {
            in.spend(static_cast<int64_t>(out.size()), line);  // quadratic: charged as it goes
            bool seen = false;
            for (const Value& y : out) seen |= equals(x, y);
            if (!seen) out.push_back(x);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "map") {
        const Value* attribute = kwarg(kw, "attribute");
        List out;
        for (const Value& x : iterable(in, v, line, "map")) {
            if (attribute) {
                out.push_back(attr_path(in, x, attribute->str(), line));
            } else {
                if (args.empty() || !args[0].is_string()) in.error(line, "map needs a filter name or attribute=");
                std::vector<Value> rest(args.begin() + 1, args.end());
                Kwargs none;
                out.push_back(apply_filter(in, args[0].s, x, rest, none, line));
            }
        }
        return Value::make_list(std::move(out));
    }
    if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
        const bool by_attr = name == "selectattr" || name == "rejectattr";
        const bool keep_if = name == "selectattr" || name == "select";
        List out;
        for (const Value& x : iterable(in, v, line, name.c_str())) {
            size_t k = 0;
            Value subject = x;
            if (by_attr) {
                if (args.empty()) in.error(line, name, " needs an attribute name");
                subject = attr_path(in, x, args[0].str(), line);
                k = 1;
            }
            bool ok;
            if (k < args.size()) {
                if (!args[k].is_string()) in.error(line, name, ": the test name must be a string");
                std::vector<Value> targs(args.begin() + static_cast<std::ptrdiff_t>(k) + 1, args.end());
                ok = apply_test(in, args[k].s, subject, targs, line);
            } else {
                ok = subject.truthy();
            }
            if (ok == keep_if) out.push_back(x);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "sort") {
        List l = iterable(in, v, line, "sort");
        const Value* reverse = arg(args, kw, 0, "reverse");
        const Value* attribute = kwarg(kw, "attribute");
        in.spend(sort_units(l.size()), line);
        std::stable_sort(l.begin(), l.end(), [&](const Value& a, const Value& b) {
            const Value x = attribute ? attr_path(in, a, attribute->str(), line) : a;
            const Value y = attribute ? attr_path(in, b, attribute->str(), line) : b;
            return compare(x, y) < 0;
        });
        if (reverse && reverse->truthy()) std::reverse(l.begin(), l.end());
        return Value::make_list(std::move(l));
    }
    if (name == "indent") {
        const int64_t width = int_arg(in, arg(args, kw, 0, "width"), 4, line, "width");
        const Value* first = arg(args, kw, 1, "first");
        const std::string pad(static_cast<size_t>(std::clamp<int64_t>(width, 0, 1024)), ' ');
        const std::string s = v.str();
        std::string out;
        for (size_t k = 0; k < s.size(); ++k) {
            out += s[k];
            if (s[k] == '\n' && k + 1 < s.size() && s[k + 1] != '\n') out += pad;
        }
        return Value::string(first && first->truthy() ? pad + out : out);
    }
    if (name == "wordcount") return Value::integer(static_cast<int64_t>(py_split(v.str(), nullptr, -1).size()));
    in.error(line, "unknown filter '", name, "'");
}

std::unordered_map<std::string, Value> builtin_globals() {
    std::unordered_map<std::string, Value> g;
    g["range"] = Value::function([](std::vector<Value>& a, Kwargs&) {
        int64_t start = 0, stop = 0, step = 1;
        auto num = [](const Value& v) {
            if (v.type != Value::Type::Int) fail("chat-template", "range() takes integers");
            return v.i;
        };
        if (a.size() == 1) stop = num(a[0]);
        else if (a.size() == 2) start = num(a[0]), stop = num(a[1]);
        else if (a.size() == 3) start = num(a[0]), stop = num(a[1]), step = num(a[2]);
        else fail("chat-template", "range() takes 1 to 3 arguments");
        if (step == 0) fail("chat-template", "range() step must not be zero");
        List out;
        for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
            if (static_cast<int64_t>(out.size()) >= kMaxRange)
                fail("chat-template", "range() longer than ", kMaxRange);
            out.push_back(Value::integer(k));
        }
        return Value::make_list(std::move(out));
    });
    g["namespace"] = Value::function([](std::vector<Value>& a, Kwargs& kw) {
        Value ns = Value::make_dict();
        ns.is_namespace = true;
        for (const auto& [k, v] : kw)
            if (!k.empty() && k[0] == '_')
                fail("chat-template", "namespace attributes may not start with '_' ('", k, "')");
        for (const Value& x : a)
            if (x.is_dict())
                for (const auto& [k, v] : x.dict->items) ns.dict->set(k, v);
        for (const auto& [k, v] : kw) ns.dict->set(k, v);
        return ns;
    });
    g["dict"] = Value::function([](std::vector<Value>& a, Kwargs& kw) {
        Value d = Value::make_dict();
        for (const Value& x : a)
            if (x.is_dict())
                for (const auto& [k, v] : x.dict->items) d.dict->set(k, v);
        for (const auto& [k, v] : kw) d.dict->set(k, v);
        return d;
    });
    g["raise_exception"] = Value::function([](std::vector<Value>& a, Kwargs&) -> Value {
        fail("chat-template", "the template raised: ", a.empty() ? std::string() : a[0].str());
    });
    g["strftime_now"] = Value::function([](std::vector<Value>& a, Kwargs&) {
        if (a.empty() || !a[0].is_string()) fail("chat-template", "strftime_now() takes a format");
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[256];
        const size_t n = std::strftime(buf, sizeof buf, a[0].s.c_str(), &tm);
        return Value::string(std::string(buf, n));
    });
    return g;
}

}  // namespace onebit::chat
