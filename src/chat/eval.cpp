// Evaluation of parsed templates with jinja2's semantics: for loops open a scope (hence
// namespace()), if blocks do not; undefined names print as "" but fail on attribute access;
// `and` / `or` return an operand; `loop` carries index, index0, revindex, first, last, length,
// previtem and nextitem.
#include <cmath>

#include "chat/interp.h"

namespace onebit::chat {

Interp::Interp(std::unordered_map<std::string, Value> globals) {
    scopes_.push_back(builtin_globals());
    scopes_.push_back(std::move(globals));
    scopes_.emplace_back();  // template scope
}

std::string Interp::render(const Body& body) {
    std::string out;
    exec(body, out);
    return out;
}

Value Interp::lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
        auto f = it->find(name);
        if (f != it->end()) return f->second;
    }
    return Value::undefined(name);
}

void Interp::spend(int64_t units, int line) {
    steps_ += units;
    if (steps_ > kMaxSteps)
        error(line, "the template does too much work (more than ", kMaxSteps,
              " steps: loops, calls, or data built or scanned)");
}

int64_t Interp::size_units(const Value& v) {
    switch (v.type) {
        case Value::Type::String: return static_cast<int64_t>(v.s.size()) / kBytesPerUnit;
        case Value::Type::List: return static_cast<int64_t>(v.list->size());
        case Value::Type::Dict: return static_cast<int64_t>(v.dict->items.size());
        default: return 0;
    }
}

void Interp::check_storable(const Value& v, const Dict* target, int depth, int line) {
    spend(1, line);
    if (depth > kMaxNesting) error(line, "values nested deeper than ", kMaxNesting);
    if (v.is_dict()) {
        if (v.dict.get() == target) error(line, "a namespace cannot contain itself");
        for (const auto& kv : v.dict->items) check_storable(kv.second, target, depth + 1, line);
    } else if (v.is_list()) {
        for (const Value& x : *v.list) check_storable(x, target, depth + 1, line);
    }
}

void Interp::check_output(const std::string& out, int line) const {
    if (out.size() > kMaxOutputBytes) error(line, "output exceeds ", kMaxOutputBytes, " bytes");
}

void Interp::assign(const std::vector<std::string>& targets, const Value& v, int line) {
    auto& scope = scopes_.back();
    if (targets.size() == 1) {
        scope[targets[0]] = v;
        return;
    }
    if (!v.is_list()) error(line, "cannot unpack ", v.type_name(), " into ", targets.size(), " names");
    if (v.list->size() != targets.size())
        error(line, "cannot unpack ", v.list->size(), " values into ", targets.size(), " names");
    for (size_t k = 0; k < targets.size(); ++k) scope[targets[k]] = (*v.list)[k];
}

Interp::Flow Interp::exec(const Body& body, std::string& out) {
    for (const Node& n : body) {
        current_line_ = n.line;
        spend(1, n.line);
        switch (n.kind) {
            case Node::Text: out += n.text; break;
            case Node::Output: out += eval(*n.expr).str(); break;
            case Node::If:
                for (const auto& [cond, b] : n.branches) {
                    if (cond && !eval(*cond).truthy()) continue;
                    const Flow f = exec(b, out);
                    if (f != Flow::Normal) return f;
                    break;
                }
                break;
            case Node::For: {
                const Flow f = exec_for(n, out);
                (void)f;
                break;
            }
            case Node::Set: {
                Value v = eval(*n.expr);
                if (n.attr.empty()) {
                    assign(n.targets, v, n.line);
                } else {
                    Value ns = lookup(n.targets[0]);
                    if (!ns.is_dict() || !ns.is_namespace)
                        error(n.line, "can only set attributes of a namespace, not of ",
                              ns.type_name(), " '", n.targets[0], "'");
                    if (n.attr[0] == '_')
                        error(n.line, "namespace attributes may not start with '_' ('", n.attr, "')");
                    check_storable(v, ns.dict.get(), 0, n.line);
                    ns.dict->set(n.attr, std::move(v));
                }
                break;
            }
            case Node::SetBlock: {
                std::string captured;
                exec(n.body, captured);
                assign(n.targets, Value::string(std::move(captured)), n.line);
                break;
            }
            case Node::Macro: {
                const Node* macro = &n;
                scopes_.back()[n.text] = Value::function(
                    [this, macro](std::vector<Value>& args, Kwargs& kwargs) {
                        return call_macro(*macro, args, kwargs, macro->line);
                    });
                break;
            }
            case Node::Break: return Flow::Break;
            case Node::Continue: return Flow::Continue;
            case Node::FilterBlock: {
                std::string captured;
                exec(n.body, captured);
                std::vector<Value> args;
                Kwargs kwargs;
                const Expr& f = *n.expr;
                spend(static_cast<int64_t>(captured.size()) / kBytesPerUnit, n.line);
                for (size_t k = 1; k < f.args.size(); ++k) args.push_back(eval(*f.args[k]));
                for (const auto& [key, e] : f.kwargs) kwargs.emplace_back(key, eval(*e));
                out += apply_filter(*this, f.name, Value::string(std::move(captured)), args, kwargs,
                                    n.line)
                           .str();
                break;
            }
        }
        check_output(out, n.line);
    }
    return Flow::Normal;
}

Interp::Flow Interp::exec_for(const Node& n, std::string& out) {
    Value seq = eval(*n.expr);
    List items;
    if (seq.is_list()) {
        items = *seq.list;
    } else if (seq.is_dict() && !seq.is_namespace) {
        for (const auto& kv : seq.dict->items) items.push_back(Value::string(kv.first));
    } else if (seq.is_string()) {
        for (std::string& c : code_points(seq.s)) items.push_back(Value::string(std::move(c)));
    } else if (seq.is_undefined()) {
        if (!seq.s.empty()) error(n.line, "'", seq.s, "' is undefined");
    } else {
        error(n.line, "'", seq.type_name(), "' object is not iterable");
    }
    if (n.filter) {  // `for x in xs if cond`: filter first, so loop.length counts what remains
        List kept;
        for (const Value& v : items) {
            spend(1, n.line);
            scopes_.emplace_back();
            assign(n.targets, v, n.line);
            const bool keep = eval(*n.filter).truthy();
            scopes_.pop_back();
            if (keep) kept.push_back(v);
        }
        items.swap(kept);
    }
    if (items.empty()) {
        scopes_.emplace_back();
        exec(n.else_body, out);
        scopes_.pop_back();
        return Flow::Normal;
    }
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
        spend(kLoopTurnUnits, n.line);
        Value loop = Value::make_dict();
        Dict& d = *loop.dict;
        d.items.reserve(9);
        d.set("index", Value::integer(k + 1));
        d.set("index0", Value::integer(k));
        d.set("revindex", Value::integer(len - k));
        d.set("revindex0", Value::integer(len - k - 1));
        d.set("first", Value::boolean(k == 0));
        d.set("last", Value::boolean(k == len - 1));
        d.set("length", Value::integer(len));
        d.set("previtem", k > 0 ? items[k - 1] : Value::undefined("previtem"));
        d.set("nextitem", k + 1 < len ? items[k + 1] : Value::undefined("nextitem"));
        scopes_.emplace_back();
        scopes_.back()["loop"] = loop;
        assign(n.targets, items[k], n.line);
        const Flow f = exec(n.body, out);
        scopes_.pop_back();
        if (f == Flow::Break) break;
    }
    return Flow::Normal;
}

Value Interp::call_macro(const Node& m, std::vector<Value>& args, Kwargs& kwargs, int line) {
    if (call_depth_ >= kMaxCallDepth) error(line, "macro calls nested deeper than ", kMaxCallDepth);
    if (args.size() > m.targets.size())
        error(line, "macro '", m.text, "' takes ", m.targets.size(), " arguments, got ", args.size());
    std::unordered_map<std::string, Value> scope;
    for (size_t k = 0; k < m.targets.size(); ++k) {
        if (k < args.size()) {
            scope[m.targets[k]] = args[k];
            continue;
        }
        bool found = false;
        for (const auto& [key, v] : kwargs)
            if (key == m.targets[k]) scope[key] = v, found = true;
        if (!found)
            scope[m.targets[k]] = m.defaults[k] ? eval(*m.defaults[k]) : Value::undefined(m.targets[k]);
    }
    for (const auto& [key, v] : kwargs) {
        bool known = false;
        for (const std::string& t : m.targets) known |= t == key;
        if (!known) error(line, "macro '", m.text, "' has no parameter '", key, "'");
    }
    ++call_depth_;
    scopes_.push_back(std::move(scope));
    std::string out;
    try {
        exec(m.body, out);
    } catch (...) {
        scopes_.pop_back();
        --call_depth_;
        throw;
    }
    scopes_.pop_back();
    --call_depth_;
    return Value::string(std::move(out));
}

Value Interp::get_attr(const Value& obj, const std::string& name, int line) {
    switch (obj.type) {
        case Value::Type::Undefined:
            error(line, "'", obj.s.empty() ? std::string("value") : obj.s, "' is undefined (reading '.",
                  name, "')");
        case Value::Type::Dict:
            if (!obj.is_namespace && has_method(obj, name)) break;
            if (const Value* v = obj.dict->find(name)) return *v;
            return Value::undefined(name);
        default: break;
    }
    if (has_method(obj, name)) {
        Value self = obj;
        return Value::function([this, self, name, line](std::vector<Value>& args, Kwargs& kwargs) {
            return call_method(*this, self, name, args, kwargs, line);
        });
    }
    return Value::undefined(name);
}

Value Interp::get_item(const Value& obj, const Value& key, int line) {
    switch (obj.type) {
        case Value::Type::Undefined:
            error(line, "'", obj.s.empty() ? std::string("value") : obj.s, "' is undefined (reading [",
                  key.repr(), "])");
        case Value::Type::Dict:
            if (key.is_string()) {
                if (const Value* v = obj.dict->find(key.s)) return *v;
                if (!obj.is_namespace && has_method(obj, key.s)) return get_attr(obj, key.s, line);
            }
            return Value::undefined(key.is_string() ? key.s : key.repr());
        case Value::Type::List:
        case Value::Type::String: {
            if (key.type != Value::Type::Int && key.type != Value::Type::Bool) {
                if (key.is_string()) return get_attr(obj, key.s, line);
                error(line, obj.type_name(), " indices must be integers, not ", key.type_name());
            }
            const Value one = Value::integer(1);
            const int64_t k = key.type == Value::Type::Bool ? key.b : key.i;
            const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list->size())
                                            : static_cast<int64_t>(code_point_count(obj.s));
            const int64_t idx = k < 0 ? k + n : k;
            if (idx < 0 || idx >= n) return Value::undefined(key.repr());
            if (obj.is_list()) return (*obj.list)[idx];
            return slice(obj, Value::integer(idx), Value::integer(idx + 1), one, line, *this);
        }
        default: return Value::undefined(key.repr());
    }
}

Value Interp::call(const Expr& e) {
    std::vector<Value> args;
    Kwargs kwargs;
    for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
    for (const auto& [key, x] : e.kwargs) kwargs.emplace_back(key, eval(*x));
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::GetAttr) {
        const Value obj = eval(*callee.args[0]);
        spend(size_units(obj), e.line);  // string and list methods scan their object
        if (has_method(obj, callee.name) &&
            !(obj.is_dict() && (obj.is_namespace)))
            return call_method(*this, obj, callee.name, args, kwargs, e.line);
        const Value f = get_attr(obj, callee.name, e.line);
        if (f.type != Value::Type::Function)
            error(e.line, "'", obj.type_name(), "' object has no method '", callee.name, "'");
        return (*f.fn)(args, kwargs);
    }
    const Value f = eval(callee);
    if (f.type != Value::Type::Function) {
        if (f.is_undefined()) error(e.line, "'", f.s, "' is undefined");
        error(e.line, "'", f.type_name(), "' object is not callable");
    }
    return (*f.fn)(args, kwargs);
}

// Filters that neither scan their input nor copy it.
static bool constant_time_filter(const std::string& name) {
    return name == "length" || name == "count" || name == "first" || name == "last" ||
           name == "default" || name == "d";
}

Value Interp::eval(const Expr& e) {
    spend(1, e.line);
    Value v = eval_node(e);
    switch (e.kind) {  // the kinds that build new lists, dicts or strings
        case Expr::Slice:
        case Expr::Call:
        case Expr::Filter:
        case Expr::Binary:
        case Expr::ListLit:
        case Expr::DictLit: spend(size_units(v), e.line); break;
        default: break;
    }
    return v;
}

Value Interp::eval_node(const Expr& e) {
    switch (e.kind) {
        case Expr::Literal: return e.literal;
        case Expr::Name: return lookup(e.name);
        case Expr::GetAttr: return get_attr(eval(*e.args[0]), e.name, e.line);
        case Expr::GetItem: return get_item(eval(*e.args[0]), eval(*e.args[1]), e.line);
        case Expr::Slice: {
            const Value obj = eval(*e.args[0]);
            auto part = [&](int k) { return e.args[k] ? eval(*e.args[k]) : Value::none(); };
            return slice(obj, part(1), part(2), part(3), e.line, *this);
        }
        case Expr::Call: return call(e);
        case Expr::Filter: {
            std::vector<Value> args;
            Kwargs kwargs;
            Value v = eval(*e.args[0]);
            for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
            for (const auto& [key, x] : e.kwargs) kwargs.emplace_back(key, eval(*x));
            if (!constant_time_filter(e.name)) spend(size_units(v), e.line);
            return apply_filter(*this, e.name, std::move(v), args, kwargs, e.line);
        }
        case Expr::Test: {
            std::vector<Value> args;
            const Value v = eval(*e.args[0]);
            for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
            spend(size_units(v), e.line);  // `in`, `eq` and friends scan their operands
            for (const Value& a : args) spend(size_units(a), e.line);
            return Value::boolean(apply_test(*this, e.name, v, args, e.line) != e.negate);
        }
        case Expr::Unary: {
            const Value v = eval(*e.args[0]);
            if (e.name == "not") return Value::boolean(!v.truthy());
            if (v.type == Value::Type::Int) {
                if (e.name == "-" && v.i == INT64_MIN) error(e.line, "integer overflow in unary -");
                return Value::integer(e.name == "-" ? -v.i : v.i);
            }
            if (v.type == Value::Type::Float) return Value::number(e.name == "-" ? -v.f : v.f);
            if (v.type == Value::Type::Bool) return Value::integer(e.name == "-" ? -int64_t{v.b} : v.b);
            error(e.line, "bad operand type for unary ", e.name, ": '", v.type_name(), "'");
        }
        case Expr::Binary: return binary(e);
        case Expr::Cond:
            if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
            return e.args[2] ? eval(*e.args[2]) : Value::undefined();
        case Expr::ListLit: {
            List l;
            for (const auto& x : e.args) l.push_back(eval(*x));
            return e.name == "tuple" ? Value::make_tuple(std::move(l)) : Value::make_list(std::move(l));
        }
        case Expr::DictLit: {
            Value d = Value::make_dict();
            for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
                const Value key = eval(*e.args[k]);
                if (!key.is_string()) error(e.line, "dict keys must be strings here, not ", key.type_name());
                d.dict->set(key.s, eval(*e.args[k + 1]));
            }
            return d;
        }
    }
    return Value::undefined();
}

Value Interp::binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
        Value a = eval(*e.args[0]);
        return a.truthy() ? eval(*e.args[1]) : a;
    }
    if (op == "or") {
        Value a = eval(*e.args[0]);
        return a.truthy() ? a : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
    spend(size_units(a) + size_units(b), e.line);  // comparisons and `in` scan their operands
    using T = Value::Type;
    if (op == "==") return Value::boolean(equals(a, b));
    if (op == "!=") return Value::boolean(!equals(a, b));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
        if (a.is_undefined() || b.is_undefined())
            error(e.line, "'", (a.is_undefined() ? a : b).s, "' is undefined (in a comparison)");
        int c = 0;
        try {
            c = compare(a, b);
        } catch (const std::exception& ex) {
            error(e.line, ex.what());
        }
        return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "in" || op == "not in") {
        bool found = false;
        if (b.is_string()) {
            if (!a.is_string()) error(e.line, "'in <string>' requires string as left operand, not ", a.type_name());
            found = b.s.find(a.s) != std::string::npos;
        } else if (b.is_list()) {
            for (const Value& x : *b.list) found |= equals(a, x);
        } else if (b.is_dict()) {
            found = a.is_string() && b.dict->find(a.s) != nullptr;
        } else if (b.is_undefined()) {
            error(e.line, "'", b.s, "' is undefined (right of 'in')");
        } else {
            error(e.line, "argument of type '", b.type_name(), "' is not iterable");
        }
        return Value::boolean(found == (op == "in"));
    }
    if (op == "~") {
        Value r = Value::string(a.str() + b.str());
        if (r.s.size() > kMaxOutputBytes) error(e.line, "string too long");
        return r;
    }
    const bool num = (a.is_number() || a.type == T::Bool) && (b.is_number() || b.type == T::Bool);
    auto as_int = [](const Value& v) { return v.type == T::Bool ? int64_t{v.b} : v.i; };
    const bool ints = num && a.type != T::Float && b.type != T::Float;
    int64_t r = 0;
    auto checked = [&](bool overflow) {
        if (overflow) error(e.line, "integer overflow in ", op);
        return Value::integer(r);
    };
    if (op == "+") {
        if (ints) return checked(__builtin_add_overflow(as_int(a), as_int(b), &r));
        if (num) return Value::number(a.as_double() + b.as_double());
        if (a.is_string() && b.is_string()) {
            Value r = Value::string(a.s + b.s);
            if (r.s.size() > kMaxOutputBytes) error(e.line, "string too long");
            return r;
        }
        if (a.is_list() && b.is_list()) {
            List l = *a.list;
            l.insert(l.end(), b.list->begin(), b.list->end());
            return Value::make_list(std::move(l));
        }
    } else if (op == "-") {
        if (ints) return checked(__builtin_sub_overflow(as_int(a), as_int(b), &r));
        if (num) return Value::number(a.as_double() - b.as_double());
    } else if (op == "*") {
        if (ints) return checked(__builtin_mul_overflow(as_int(a), as_int(b), &r));
        if (num) return Value::number(a.as_double() * b.as_double());
        const Value* s = a.is_string() ? &a : b.is_string() ? &b : nullptr;
        const Value* n = a.type == T::Int ? &a : b.type == T::Int ? &b : nullptr;
        if (s && n) {
            if (s->s.empty() || n->i <= 0) return Value::string("");
            if (static_cast<uint64_t>(n->i) > kMaxOutputBytes / s->s.size())
                error(e.line, "string too long");
            std::string r;
            for (int64_t k = 0; k < n->i; ++k) r += s->s;
            return Value::string(std::move(r));
        }
    } else if (op == "/") {
        if (num) {
            if (b.as_double() == 0) error(e.line, "division by zero");
            return Value::number(a.as_double() / b.as_double());
        }
    } else if (op == "//" || op == "%") {
        if (num) {
            if (b.as_double() == 0) error(e.line, "division by zero");
            if (ints) {
                const int64_t x = as_int(a), y = as_int(b);
                if (x == INT64_MIN && y == -1) error(e.line, "integer overflow in ", op);
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
                return Value::integer(op == "//" ? q : x - q * y);
            }
            const double q = std::floor(a.as_double() / b.as_double());
            return Value::number(op == "//" ? q : a.as_double() - q * b.as_double());
        }
    } else if (op == "**") {
        if (ints && as_int(b) >= 0) {
            const int64_t base = as_int(a), n = as_int(b);
            if (base == 0 || base == 1) return Value::integer(n == 0 ? 1 : base);
            if (base == -1) return Value::integer(n % 2 ? -1 : 1);
            int64_t p = 1;  // |base| >= 2: overflows within 63 steps
            for (int64_t k = 0; k < n; ++k)
                if (__builtin_mul_overflow(p, base, &p)) error(e.line, "integer overflow in **");
            return Value::integer(p);
        }
        if (num) return Value::number(std::pow(a.as_double(), b.as_double()));
    }
    error(e.line, "unsupported operand types for ", op, ": '", a.type_name(), "' and '",
          b.type_name(), "'");
}

}  // namespace onebit::chat
