// Jinja lexer and recursive-descent parser for the subset chat templates use. Operator precedence
// follows jinja2's parser: conditional < or < and < not < comparison/in < + - < ~ < * / // % <
// ** < unary - + < postfix (. [] ()) and filters / tests.
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "chat/ast.h"
#include "core/error.h"

namespace onebit::chat {

namespace {

constexpr int kMaxDepth = 200;  // expression and block nesting, so hostile input cannot overflow

struct Token {
    enum Type { Name, String, Int, Float, Op, End } type = End;
    std::string text;
    int line = 0;
};

class Parser {
  public:
    explicit Parser(const std::string& src) : src_(src) {}

    Body parse_all() {
        std::string end_tag;
        Body body = parse_body({}, end_tag);
        return body;
    }

  private:
    const std::string& src_;
    size_t pos_ = 0;
    int line_ = 1;
    bool trim_next_text_ = false;     // previous tag ended with "-"
    bool drop_next_newline_ = false;  // previous tag was a block or comment (trim_blocks)
    std::vector<Token> toks_;         // the current tag's tokens
    size_t tk_ = 0;
    int depth_ = 0;

    template <typename... A>
    [[noreturn]] void error(int line, A&&... a) const {
        fail("chat-template", "line ", line, ": ", std::forward<A>(a)...);
    }

    void advance_to(size_t p) {
        for (; pos_ < p; ++pos_)
            if (src_[pos_] == '\n') ++line_;
    }

    // --- tag-level lexing -------------------------------------------------------------------

    // Lexes expression tokens from pos_ up to the closing delimiter `close` ("}}" or "%}"),
    // consuming it; returns true when the delimiter was written with a leading '-'.
    bool lex_tag(const char* close, int open_line) {
        toks_.clear();
        tk_ = 0;
        const size_t n = src_.size();
        while (true) {
            while (pos_ < n && std::isspace(static_cast<unsigned char>(src_[pos_])))
                advance_to(pos_ + 1);
            if (pos_ >= n) error(open_line, "tag is not closed (expected '", close, "')");
            if (src_[pos_] == '-' && src_.compare(pos_ + 1, 2, close) == 0) {
                advance_to(pos_ + 3);
                break;
            }
            if (src_.compare(pos_, 2, close) == 0) {
                advance_to(pos_ + 2);
                toks_.push_back({Token::End, "", line_});
                return false;
            }
            toks_.push_back(lex_token());
        }
        toks_.push_back({Token::End, "", line_});
        return true;
    }

    Token lex_token() {
        const size_t n = src_.size();
        const char c = src_[pos_];
        Token t{Token::Op, "", line_};
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t e = pos_;
            while (e < n && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
            t.type = Token::Name;
            t.text = src_.substr(pos_, e - pos_);
            advance_to(e);
            return t;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t e = pos_;
            bool is_float = false;
            while (e < n && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
            if (e + 1 < n && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
                is_float = true;
                ++e;
                while (e < n && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
            }
            if (e < n && (src_[e] == 'e' || src_[e] == 'E')) {
                size_t k = e + 1;
                if (k < n && (src_[k] == '+' || src_[k] == '-')) ++k;
                if (k < n && std::isdigit(static_cast<unsigned char>(src_[k]))) {
                    is_float = true;
                    e = k;
                    while (e < n && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
                }
            }
            t.type = is_float ? Token::Float : Token::Int;
            for (size_t k = pos_; k < e; ++k)
                if (src_[k] != '_') t.text += src_[k];
            advance_to(e);
            return t;
        }
        if (c == '\'' || c == '"') {
            t.type = Token::String;
            size_t e = pos_ + 1;
            while (true) {
                if (e >= n) error(t.line, "string literal is not closed");
                const char d = src_[e];
                if (d == c) break;
                if (d == '\\' && e + 1 < n) {
                    const char x = src_[e + 1];
                    e += 2;
                    switch (x) {
                        case 'n': t.text += '\n'; break;
                        case 't': t.text += '\t'; break;
                        case 'r': t.text += '\r'; break;
                        case '\\': t.text += '\\'; break;
                        case '\'': t.text += '\''; break;
                        case '"': t.text += '"'; break;
                        case '\n': break;
                        default: t.text += '\\', t.text += x;
                    }
                    continue;
                }
                t.text += d;
                ++e;
            }
            advance_to(e + 1);
            return t;
        }
        static const char* ops[] = {"==", "!=", "<=", ">=", "//", "**", "(", ")", "[", "]", "{",
                                    "}",  ",",  ".",  ":",  "|",  "~",  "+", "-", "*", "/", "%",
                                    "<",  ">",  "="};
        for (const char* op : ops)
            if (src_.compare(pos_, std::strlen(op), op) == 0) {
                t.text = op;
                advance_to(pos_ + std::strlen(op));
                return t;
            }
        error(line_, "unexpected character '", std::string(1, c), "'");
    }

    // --- template-level scanning ---------------------------------------------------------------

    void emit_text(Body& body, std::string text, bool strip_right, bool lstrip_line, int line) {
        if (trim_next_text_) {
            size_t k = 0;
            while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
            text.erase(0, k);
        } else if (drop_next_newline_) {
            if (text.compare(0, 1, "\n") == 0) text.erase(0, 1);
            else if (text.compare(0, 2, "\r\n") == 0) text.erase(0, 2);
        }
        trim_next_text_ = drop_next_newline_ = false;
        if (strip_right) {
            size_t k = text.size();
            while (k > 0 && std::isspace(static_cast<unsigned char>(text[k - 1]))) --k;
            text.resize(k);
        } else if (lstrip_line) {
            size_t k = text.size();
            while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
            if (k == 0 ? at_line_start_ : text[k - 1] == '\n') text.resize(k);
        }
        if (!text.empty()) {
            Node t;
            t.kind = Node::Text;
            t.line = line;
            t.text = std::move(text);
            body.push_back(std::move(t));
        }
    }
    bool at_line_start_ = true;  // the pending text starts at the beginning of a line

    // Parses nodes until a block tag whose name is in `ends` (returned in end_tag) or the end.
    Body parse_body(const std::vector<std::string>& ends, std::string& end_tag) {
        if (++depth_ > kMaxDepth) error(line_, "blocks nested deeper than ", kMaxDepth);
        Body body;
        const size_t n = src_.size();
        while (true) {
            size_t open = pos_;
            while (open < n && !(src_[open] == '{' && open + 1 < n &&
                                 (src_[open + 1] == '{' || src_[open + 1] == '%' ||
                                  src_[open + 1] == '#')))
                ++open;
            const int text_line = line_;
            std::string text = src_.substr(pos_, open - pos_);
            const bool text_at_line_start = at_line_start_;
            advance_to(open);
            if (open >= n) {
                at_line_start_ = text_at_line_start;
                emit_text(body, std::move(text), false, false, text_line);
                if (!ends.empty()) error(line_, "missing '{% ", ends.back(), " %}'");
                end_tag.clear();
                --depth_;
                return body;
            }
            const char kind = src_[open + 1];
            const bool minus = open + 2 < n && src_[open + 2] == '-';
            const bool plus = open + 2 < n && src_[open + 2] == '+';
            at_line_start_ = text_at_line_start;
            emit_text(body, std::move(text), minus, kind != '{' && !plus, text_line);
            const int tag_line = line_;
            advance_to(open + 2 + (minus || plus ? 1 : 0));
            at_line_start_ = false;
            if (kind == '#') {
                const size_t close = src_.find("#}", pos_);
                if (close == std::string::npos) error(tag_line, "comment is not closed");
                trim_next_text_ = close > pos_ && src_[close - 1] == '-';
                drop_next_newline_ = !trim_next_text_;
                advance_to(close + 2);
                continue;
            }
            if (kind == '{') {
                trim_next_text_ = lex_tag("}}", tag_line);
                Node out;
                out.kind = Node::Output;
                out.line = tag_line;
                out.expr = parse_expression();
                expect_end();
                body.push_back(std::move(out));
                continue;
            }
            trim_next_text_ = lex_tag("%}", tag_line);
            drop_next_newline_ = !trim_next_text_;
            if (peek().type != Token::Name) error(tag_line, "expected a tag name after '{%'");
            const std::string tag = peek().text;
            for (const std::string& e : ends)
                if (e == tag) {
                    ++tk_;
                    end_tag = tag;
                    --depth_;
                    return body;
                }
            ++tk_;
            parse_statement(tag, tag_line, body);
        }
    }

    void parse_statement(const std::string& tag, int line, Body& body) {
        Node node;
        node.line = line;
        std::string end;
        if (tag == "if") {
            node.kind = Node::If;
            ExprPtr cond = parse_expression();
            expect_end();
            while (true) {
                Body b = parse_body({"elif", "else", "endif"}, end);
                node.branches.emplace_back(std::move(cond), std::move(b));
                if (end == "elif") {
                    cond = parse_expression();
                    expect_end();
                } else if (end == "else") {
                    expect_end();
                    Body eb = parse_body({"endif"}, end);
                    node.branches.emplace_back(nullptr, std::move(eb));
                    expect_end();
                    break;
                } else {
                    expect_end();
                    break;
                }
            }
        } else if (tag == "for") {
            node.kind = Node::For;
            node.targets = parse_targets();
            if (!accept_name("in")) error(line, "expected 'in' in for loop");
            node.expr = parse_or_cond(false);
            if (accept_name("if")) node.filter = parse_or();
            if (accept_name("recursive")) error(line, "recursive for loops are not supported");
            expect_end();
            node.body = parse_body({"else", "endfor"}, end);
            if (end == "else") {
                expect_end();
                node.else_body = parse_body({"endfor"}, end);
            }
            expect_end();
        } else if (tag == "set") {
            node.targets = parse_targets();
            if (node.targets.size() == 1 && accept_op(".")) {
                node.attr = expect_name("an attribute name after '.'");
            }
            if (accept_op("=")) {
                node.kind = Node::Set;
                node.expr = parse_expression();
                expect_end();
            } else {
                if (node.targets.size() != 1 || !node.attr.empty())
                    error(line, "a block set takes one name");
                node.kind = Node::SetBlock;
                expect_end();
                node.body = parse_body({"endset"}, end);
                expect_end();
            }
        } else if (tag == "macro") {
            node.kind = Node::Macro;
            node.text = expect_name("a macro name");
            expect_op("(");
            while (!accept_op(")")) {
                if (!node.targets.empty()) expect_op(",");
                if (accept_op(")")) break;
                node.targets.push_back(expect_name("a parameter name"));
                node.defaults.push_back(accept_op("=") ? parse_expression() : nullptr);
            }
            expect_end();
            node.body = parse_body({"endmacro"}, end);
            expect_end();
        } else if (tag == "break" || tag == "continue") {
            node.kind = tag == "break" ? Node::Break : Node::Continue;
            expect_end();
        } else if (tag == "filter") {
            node.kind = Node::FilterBlock;
            node.expr = parse_filter_call(nullptr);
            expect_end();
            node.body = parse_body({"endfilter"}, end);
            expect_end();
        } else if (tag == "generation") {  // transformers' assistant-mask marker: renders its body
            expect_end();
            Body b = parse_body({"endgeneration"}, end);
            expect_end();
            for (Node& x : b) body.push_back(std::move(x));
            return;
        } else if (tag == "raw") {
            expect_end();
            parse_raw(body);
            return;
        } else {
            error(line, "unsupported tag '", tag, "'");
        }
        body.push_back(std::move(node));
    }

    void parse_raw(Body& body) {
        // Text up to {% endraw %} (with optional whitespace control), verbatim.
        size_t p = pos_;
        while (true) {
            p = src_.find("{%", p);
            if (p == std::string::npos) error(line_, "missing '{% endraw %}'");
            size_t q = p + 2;
            if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
            while (q < src_.size() && std::isspace(static_cast<unsigned char>(src_[q]))) ++q;
            if (src_.compare(q, 6, "endraw") == 0) break;
            p += 2;
        }
        const int line = line_;
        std::string text = src_.substr(pos_, p - pos_);
        const bool minus = src_[p + 2] == '-';
        emit_text(body, std::move(text), minus, false, line);
        advance_to(p + 2 + (minus ? 1 : 0));
        trim_next_text_ = lex_tag("%}", line);
        drop_next_newline_ = !trim_next_text_;
        ++tk_;  // "endraw"
        expect_end();
    }

    // --- token helpers ----------------------------------------------------------------------------

    const Token& peek(size_t ahead = 0) const {
        return toks_[std::min(tk_ + ahead, toks_.size() - 1)];
    }
    bool accept_op(const char* op) {
        if (peek().type == Token::Op && peek().text == op) return ++tk_, true;
        return false;
    }
    bool accept_name(const char* name) {
        if (peek().type == Token::Name && peek().text == name) return ++tk_, true;
        return false;
    }
    void expect_op(const char* op) {
        if (!accept_op(op)) error(peek().line, "expected '", op, "', got ", describe(peek()));
    }
    std::string expect_name(const char* what) {
        if (peek().type != Token::Name) error(peek().line, "expected ", what, ", got ", describe(peek()));
        return toks_[tk_++].text;
    }
    void expect_end() {
        if (peek().type != Token::End) error(peek().line, "unexpected ", describe(peek()));
    }
    static std::string describe(const Token& t) {
        return t.type == Token::End ? std::string("end of tag") : "'" + t.text + "'";
    }
    std::vector<std::string> parse_targets() {
        std::vector<std::string> names;
        const bool paren = accept_op("(");
        do {
            names.push_back(expect_name("a name"));
        } while (accept_op(","));
        if (paren) expect_op(")");
        return names;
    }

    // --- expressions ---------------------------------------------------------------------------

    ExprPtr make(Expr::Kind k, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line;
        return e;
    }
    ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b) {
        auto e = make(Expr::Binary, a->line);
        e->name = op;
        e->args.push_back(std::move(a));
        e->args.push_back(std::move(b));
        return e;
    }

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxDepth) p.error(p.peek().line, "expression nested too deeply");
        }
        ~DepthGuard() { --p.depth_; }
    };

    ExprPtr parse_expression() { return parse_or_cond(true); }

    ExprPtr parse_or_cond(bool with_cond) {
        DepthGuard guard(*this);
        ExprPtr e = parse_or();
        while (with_cond && accept_name("if")) {
            auto c = make(Expr::Cond, e->line);
            c->args.push_back(parse_or());
            c->args.push_back(std::move(e));
            c->args.push_back(accept_name("else") ? parse_or_cond(true) : nullptr);
            e = std::move(c);
        }
        return e;
    }
    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (accept_name("or")) e = binary("or", std::move(e), parse_and());
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (accept_name("and")) e = binary("and", std::move(e), parse_not());
        return e;
    }
    ExprPtr parse_not() {
        if (peek().type == Token::Name && peek().text == "not") {
            const int line = peek().line;
            ++tk_;
            DepthGuard guard(*this);
            auto e = make(Expr::Unary, line);
            e->name = "not";
            e->args.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        while (true) {
            const Token& t = peek();
            std::string op;
            if (t.type == Token::Op &&
                (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" ||
                 t.text == "<=" || t.text == ">="))
                op = t.text, ++tk_;
            else if (accept_name("in")) op = "in";
            else if (t.type == Token::Name && t.text == "not" && peek(1).type == Token::Name &&
                     peek(1).text == "in")
                op = "not in", tk_ += 2;
            else break;
            e = binary(op, std::move(e), parse_math1());
        }
        return e;
    }
    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (peek().type == Token::Op && (peek().text == "+" || peek().text == "-")) {
            const std::string op = toks_[tk_++].text;
            e = binary(op, std::move(e), parse_concat());
        }
        return e;
    }
    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (peek().type == Token::Op && (peek().text == "*" || peek().text == "/" ||
                                            peek().text == "//" || peek().text == "%")) {
            const std::string op = toks_[tk_++].text;
            e = binary(op, std::move(e), parse_pow());
        }
        return e;
    }
    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (accept_op("**")) e = binary("**", std::move(e), parse_unary(true));
        return e;
    }
    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr e;
        if (peek().type == Token::Op && (peek().text == "-" || peek().text == "+")) {
            e = make(Expr::Unary, peek().line);
            e->name = toks_[tk_++].text;
            e->args.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filters(std::move(e));
        return e;
    }
    ExprPtr parse_primary() {
        const Token t = peek();
        if (t.type == Token::End) error(t.line, "expected an expression, got end of tag");
        ++tk_;
        auto lit = [&](Value v) {
            auto e = make(Expr::Literal, t.line);
            e->literal = std::move(v);
            return e;
        };
        switch (t.type) {
            case Token::Name:
                if (t.text == "true" || t.text == "True") return lit(Value::boolean(true));
                if (t.text == "false" || t.text == "False") return lit(Value::boolean(false));
                if (t.text == "none" || t.text == "None") return lit(Value::none());
                {
                    auto e = make(Expr::Name, t.line);
                    e->name = t.text;
                    return e;
                }
            case Token::String: {
                std::string s = t.text;
                while (peek().type == Token::String) s += toks_[tk_++].text;
                return lit(Value::string(std::move(s)));
            }
            case Token::Int:
                try {
                    return lit(Value::integer(std::stoll(t.text)));
                } catch (const std::exception&) {
                    error(t.line, "integer literal ", t.text, " is out of range");
                }
            case Token::Float:  // strtod, like Python's float(): overflow gives inf
                return lit(Value::number(std::strtod(t.text.c_str(), nullptr)));
            default: break;
        }
        if (t.text == "(") {
            ExprPtr first = parse_expression();
            if (accept_op(")")) return first;
            auto e = make(Expr::ListLit, t.line);  // a tuple
            e->name = "tuple";
            e->args.push_back(std::move(first));
            while (accept_op(",")) {
                if (peek().type == Token::Op && peek().text == ")") break;
                e->args.push_back(parse_expression());
            }
            expect_op(")");
            return e;
        }
        if (t.text == "[") {
            auto e = make(Expr::ListLit, t.line);
            while (!accept_op("]")) {
                if (!e->args.empty()) expect_op(",");
                if (accept_op("]")) break;
                e->args.push_back(parse_expression());
            }
            return e;
        }
        if (t.text == "{") {
            auto e = make(Expr::DictLit, t.line);
            while (!accept_op("}")) {
                if (!e->args.empty()) expect_op(",");
                if (accept_op("}")) break;
                e->args.push_back(parse_expression());
                expect_op(":");
                e->args.push_back(parse_expression());
            }
            return e;
        }
        error(t.line, "unexpected '", t.text, "'");
    }
    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            const int line = peek().line;
            if (accept_op(".")) {
                auto a = make(Expr::GetAttr, line);
                if (peek().type == Token::Int) a->name = toks_[tk_++].text;
                else a->name = expect_name("an attribute name after '.'");
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (accept_op("[")) {
                e = parse_subscript(std::move(e), line);
            } else if (peek().type == Token::Op && peek().text == "(") {
                auto c = make(Expr::Call, line);
                c->args.push_back(std::move(e));
                parse_call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }
    ExprPtr parse_subscript(ExprPtr obj, int line) {
        ExprPtr parts[3];
        int n = 0;
        bool is_slice = false;
        while (true) {
            if (peek().type == Token::Op && (peek().text == ":" || peek().text == "]")) {
                // empty part
            } else {
                parts[n] = parse_expression();
            }
            if (accept_op(":")) {
                is_slice = true;
                if (++n > 2) error(line, "a slice has at most three parts");
                continue;
            }
            expect_op("]");
            break;
        }
        auto e = make(is_slice ? Expr::Slice : Expr::GetItem, line);
        e->args.push_back(std::move(obj));
        if (is_slice) {
            for (auto& p : parts) e->args.push_back(std::move(p));
        } else {
            if (!parts[0]) error(line, "empty subscript");
            e->args.push_back(std::move(parts[0]));
        }
        return e;
    }
    void parse_call_args(Expr& call) {
        expect_op("(");
        bool first = true;
        while (!accept_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (accept_op(")")) break;
            if (peek().type == Token::Name && peek(1).type == Token::Op && peek(1).text == "=") {
                std::string key = toks_[tk_].text;
                tk_ += 2;
                call.kwargs.emplace_back(std::move(key), parse_expression());
            } else {
                if (!call.kwargs.empty()) error(peek().line, "positional argument after keyword");
                call.args.push_back(parse_expression());
            }
        }
    }
    ExprPtr parse_filter_call(ExprPtr value) {
        auto f = make(Expr::Filter, peek().line);
        f->name = expect_name("a filter name");
        while (accept_op(".")) f->name += "." + expect_name("a filter name");
        f->args.push_back(std::move(value));
        if (peek().type == Token::Op && peek().text == "(") parse_call_args(*f);
        return f;
    }
    ExprPtr parse_filters(ExprPtr e) {
        while (true) {
            if (accept_op("|")) {
                e = parse_filter_call(std::move(e));
            } else if (accept_name("is")) {
                auto t = make(Expr::Test, e->line);
                t->negate = accept_name("not");
                t->name = expect_name("a test name");
                t->args.push_back(std::move(e));
                if (peek().type == Token::Op && peek().text == "(") {
                    parse_call_args(*t);
                } else if (peek().type == Token::String || peek().type == Token::Int ||
                           peek().type == Token::Float ||
                           (peek().type == Token::Op && (peek().text == "[" || peek().text == "{")) ||
                           (peek().type == Token::Name && peek().text != "and" &&
                            peek().text != "or" && peek().text != "if" && peek().text != "else" &&
                            peek().text != "in" && peek().text != "not" && peek().text != "is")) {
                    t->args.push_back(parse_postfix(parse_primary()));
                }
                e = std::move(t);
            } else {
                return e;
            }
        }
    }
};

}  // namespace

Body parse_template(const std::string& source) {
    std::string src = source;
    // jinja2's default keep_trailing_newline=False drops one trailing newline.
    if (src.size() >= 2 && src.compare(src.size() - 2, 2, "\r\n") == 0) src.resize(src.size() - 2);
    else if (!src.empty() && src.back() == '\n') src.pop_back();
    Parser p(src);
    return p.parse_all();
}

}  // namespace onebit::chat
