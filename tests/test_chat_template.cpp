// Chat templates against fixtures rendered by transformers (scripts/gen_chat_fixtures.py): the
// Qwen3 template over every message kind, tools and both thinking settings; single Jinja features
// against jinja2 with transformers' settings; errors for what jinja2 rejects and for constructs
// onebit does not support.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "core/error.h"

namespace onebit::chat {
namespace {

using Json = nlohmann::ordered_json;

Json load(const std::string& name) {
    std::ifstream f(std::string(ONEBIT_TEST_DATA) + "/chat/" + name);
    EXPECT_TRUE(f.good()) << name;
    return Json::parse(f);
}

const std::string kQwen = std::string(ONEBIT_DATA_DIR) + "/qwen3-tokenizer";

TEST(ChatTemplate, Qwen3MatchesTransformers) {
    const ChatTemplate t = ChatTemplate::from_model_dir(kQwen);
    const Json cases = load("qwen3_cases.json");
    ASSERT_GE(cases.size(), 48u);
    int rendered = 0, errors = 0;
    for (const Json& c : cases) {
        ChatRequest r = ChatTemplate::request_from_json(c.at("request").dump(), c.at("name"));
        r.add_generation_prompt = c.at("add_generation_prompt");
        if (!c.at("enable_thinking").is_null()) r.enable_thinking = c.at("enable_thinking").get<bool>();
        const std::string what = c.at("name").get<std::string>() + " gen=" +
                                 c.at("add_generation_prompt").dump() + " think=" +
                                 c.at("enable_thinking").dump();
        if (c.value("error", false)) {
            EXPECT_THROW(t.render(r), Error) << what;
            ++errors;
            continue;
        }
        EXPECT_EQ(t.render(r), c.at("expected").get<std::string>()) << what;
        ++rendered;
    }
    EXPECT_GE(rendered, 48);
    EXPECT_GE(errors, 1);
}

TEST(ChatTemplate, JinjaFeaturesMatchJinja2) {
    for (const Json& c : load("jinja_cases.json")) {
        const std::string name = c.at("name");
        const std::string tmpl = c.at("template");
        if (c.value("error", false)) {
            try {
                render_jinja(tmpl, c.at("context"));
                ADD_FAILURE() << name << ": no error; jinja2 raised " << c.at("oracle_error");
            } catch (const Error& e) {
                EXPECT_EQ(std::string(e.what()).rfind("[chat-template] ", 0), 0u) << e.what();
            }
            continue;
        }
        EXPECT_EQ(render_jinja(tmpl, c.at("context")), c.at("expected").get<std::string>()) << name;
    }
}

TEST(ChatTemplate, UnsupportedConstructsAreClearErrors) {
    const std::pair<const char*, const char*> cases[] = {
        {"{% include 'x.j2' %}", "unsupported tag 'include'"},
        {"{% for x in xs recursive %}{% endfor %}", "recursive for loops are not supported"},
        {"{{ x | frobnicate }}", "unknown filter 'frobnicate'"},
        {"{{ x is frobnicated }}", "unknown test 'frobnicated'"},
        {"{{ 'a' .zz() }}", "has no method 'zz'"},
        {"{{ 1 +  }}", "expected an expression"},
        {"{{ 'abc }}", "string literal is not closed"},
        {"{% if x %}", "missing '{% endif %}'"},
        {"{{ x }", "tag is not closed"},
        {"{% endfor %}", "unsupported tag 'endfor'"},
    };
    for (const auto& [tmpl, msg] : cases) {
        try {
            render_jinja(tmpl, Json{{"x", 1}, {"xs", Json::array()}});
            ADD_FAILURE() << tmpl << ": no error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << tmpl << " -> " << e.what();
            EXPECT_EQ(std::string(e.what()).rfind("[chat-template] ", 0), 0u) << e.what();
        }
    }
}

TEST(ChatTemplate, HostileTemplatesAreBounded) {
    // Deep nesting, huge outputs and runaway recursion end in errors, not crashes.
    std::string deep(5000, '(');
    EXPECT_THROW(render_jinja("{{ " + deep + "1" + std::string(5000, ')') + " }}", Json::object()), Error);
    std::string blocks;
    for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
    EXPECT_THROW(render_jinja(blocks, Json::object()), Error);
    EXPECT_THROW(render_jinja("{% for i in range(100000000) %}{% endfor %}", Json::object()), Error);
    EXPECT_THROW(render_jinja("{{ 'x' * 100000000 }}", Json::object()), Error);
    EXPECT_THROW(render_jinja("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", Json::object()),
                 Error);
    EXPECT_THROW(render_jinja("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                              "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                              Json::object()),
                 Error);
    // Work without output is bounded too: nested loops, repetition of an empty string or by a
    // count whose byte size overflows, lists doubled through a namespace, big lists rescanned.
    auto too_much_work = [](const std::string& source) {
        try {
            render_jinja(source, Json::object());
            ADD_FAILURE() << "rendered: " << source;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("too much work"), std::string::npos) << e.what();
        }
    };
    too_much_work("{% for a in range(200000) %}{% for b in range(200000) %}{% endfor %}{% endfor %}");
    too_much_work("{% for a in range(200000) %}{% if a > 3 %}{% set b = a * 2 %}{% endif %}{% endfor %}");
    too_much_work("{% set ns = namespace(x=[1]) %}{% for i in range(40) %}"
                  "{% set ns.x = ns.x + ns.x %}{% endfor %}");
    too_much_work("{% set xs = range(200000) %}{% for i in range(100) %}{{ xs|sort|length }}{% endfor %}");
    too_much_work("{{ range(200000)|unique|length }}");
    too_much_work("{% set xs = range(200000) %}{% for i in range(1000) %}{{ i in xs }}{% endfor %}");
    too_much_work("{% set xs = range(200000) %}{% for i in range(1000) %}{{ xs is eq xs }}{% endfor %}");
    // Namespaces cannot be made to hold themselves (the memory would never be freed) or to nest
    // without bound.
    EXPECT_THROW(render_jinja("{% set ns = namespace(a=1) %}{% set ns.self = ns %}", Json::object()),
                 Error);
    EXPECT_THROW(render_jinja("{% set a = namespace(x=1) %}{% set b = namespace(y=[a]) %}"
                              "{% set a.x = {'k': [b]} %}",
                              Json::object()),
                 Error);
    EXPECT_THROW(render_jinja("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}"
                              "{% set ns.x = [ns.x] %}{% endfor %}",
                              Json::object()),
                 Error);
    EXPECT_EQ(render_jinja("{% set a = namespace(x=1) %}{% set b = namespace(y=a) %}{{ b.y.x }}",
                           Json::object()),
              "1");
    EXPECT_EQ(render_jinja("[{{ '' * 99999999999 }}]", Json::object()), "[]");
    EXPECT_EQ(render_jinja("[{{ 'ab' * -3 }}]", Json::object()), "[]");
    EXPECT_THROW(render_jinja("{{ 'abcd' * 4611686018427387904 }}", Json::object()), Error);
}

TEST(ChatTemplate, LongConversationsStayWithinTheWorkBudget) {
    // The work bound must not refuse real use: 10,000 messages with tools, reasoning and tool
    // calls through the Qwen3 template.
    const ChatTemplate t = ChatTemplate::from_model_dir(kQwen);
    ChatRequest r;
    r.tools = Json::parse(R"([{"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}])");
    for (int k = 0; k < 2500; ++k) {
        r.messages.push_back({{"role", "user"}, {"content", "question " + std::to_string(k)}});
        r.messages.push_back({{"role", "assistant"}, {"content", "<think>\nr\n</think>\n\ncalling"},
                              {"tool_calls", Json::parse(R"([{"type": "function", "function":
                                  {"name": "f", "arguments": {"a": "x"}}}])")}});
        r.messages.push_back({{"role", "tool"}, {"content", std::string(2000, 'y')}});
        r.messages.push_back({{"role", "assistant"}, {"content", "answer " + std::to_string(k)}});
    }
    const std::string out = t.render(r);
    EXPECT_NE(out.find("answer 2499"), std::string::npos);
}

TEST(ChatTemplate, MalformedRequestsAreClearErrors) {
    const ChatTemplate t = ChatTemplate::from_model_dir(kQwen);
    EXPECT_THROW(ChatTemplate::request_from_json("{not json", "m.json"), Error);
    EXPECT_THROW(ChatTemplate::request_from_json("{\"msgs\": []}", "m.json"), Error);
    ChatRequest r = ChatTemplate::request_from_json("[{\"content\": \"no role\"}]", "m.json");
    EXPECT_THROW(t.render(r), Error);
    r = ChatTemplate::request_from_json("{\"messages\": [], \"tools\": {}}", "m.json");
    EXPECT_THROW(t.render(r), Error);
    EXPECT_THROW(ChatTemplate::from_model_dir("/nonexistent-dir"), Error);
}

}  // namespace
}  // namespace onebit::chat
