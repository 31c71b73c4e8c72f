// The parsed form of a Jinja template: plain structs, evaluated by eval.cpp.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace onebit::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum Kind {
        Literal,   // literal
        Name,      // name
        GetAttr,   // args[0].name
        GetItem,   // args[0][args[1]]
        Slice,     // args[0][args[1]:args[2]:args[3]] (null parts omitted)
        Call,      // args[0](args[1..], kwargs)
        Filter,    // args[0] | name(args[1..], kwargs)
        Test,      // args[0] is [not] name(args[1..])
        Unary,     // name in {"-", "+", "not"}, args[0]
        Binary,    // args[0] name args[1]; name is an operator, "and", "or", "in", "not in"
        Cond,      // args[1] if args[0] else args[2] (args[2] may be null)
        ListLit,   // [args...]
        DictLit,   // {args[0]: args[1], ...}
    } kind = Literal;
    int line = 0;
    Value literal;
    std::string name;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    bool negate = false;  // Test: "is not"
};

struct Node;
using Body = std::vector<Node>;

struct Node {
    enum Kind {
        Text,      // text
        Output,    // {{ expr }}
        If,        // branches: (condition, body); a null condition is the else branch
        For,       // for targets in expr [if filter]: body, else_body
        Set,       // set targets = expr; or set targets[0].attr = expr when attr is not empty
        SetBlock,  // set targets[0] %}body{% endset
        Macro,     // macro text(targets with defaults): body
        Break,
        Continue,
        FilterBlock,  // filter expr (a Filter whose args[0] is null) %}body{% endfilter
    } kind = Text;
    int line = 0;
    std::string text;
    ExprPtr expr;
    std::vector<std::string> targets;
    std::string attr;
    std::vector<std::pair<ExprPtr, Body>> branches;
    ExprPtr filter;
    Body body, else_body;
    std::vector<ExprPtr> defaults;  // Macro: default per parameter (null when required)
};

// Parses Jinja source with the settings transformers uses (trim_blocks, lstrip_blocks, one
// trailing newline removed). Errors: "[chat-template] line N: ...".
Body parse_template(const std::string& source);

}  // namespace onebit::chat
