#!/usr/bin/env python3
"""Chat-template fixtures from the real oracle, transformers' apply_chat_template (and, for single
Jinja features, the jinja2 environment transformers compiles templates with).

Writes tests/fixtures/chat/qwen3_cases.json (conversations x add_generation_prompt x
enable_thinking, rendered with data/qwen3-tokenizer) and tests/fixtures/chat/jinja_cases.json
(small templates and their renders; "error": true where jinja2 raises).
With --check ONEBIT: renders everything again and compares with both the committed fixtures and
`onebit chat-template` (exit 77 when transformers is missing).
Usage: gen_chat_fixtures.py [--check path/to/onebit]
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "data", "qwen3-tokenizer")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web; returns «snippets».",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                         "max_results": {"type": "integer", "default": 5},
                                                         "threshold": {"type": "number", "default": 0.25}},
                       "required": ["query"]}}},
]

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are a terse assistant."},
                    {"role": "user", "content": "Name three primes."}],
    "multi_turn": [{"role": "system", "content": "Be kind."},
                   {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."}],
    "assistant_think_in_content": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nTwo plus two.\n</think>\n\nIt is 4."},
        {"role": "user", "content": "And 3+3?"}],
    "assistant_reasoning_content": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris.", "reasoning_content": "The user asks a geography question."},
        {"role": "user", "content": "Of Spain?"},
        {"role": "assistant", "content": "Madrid.", "reasoning_content": "\nAnother one.\n"}],
    "assistant_last": [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "<think>\nsimple\n</think>\n\nhi"}],
    "tools_no_system": [{"role": "user", "content": "Weather in Paris?"}],
    "tools_with_system": [{"role": "system", "content": "Use tools when needed."},
                          {"role": "user", "content": "Search for onebit."}],
    "tool_call_dict_args": [
        {"role": "user", "content": "Weather in Paris in celsius?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather",
                                              "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"}],
    "tool_call_string_args_multi": [
        {"role": "user", "content": "Weather in Rome and Oslo?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "content": "sunny, 25"},
        {"role": "tool", "content": "snow, -3"},
        {"role": "assistant", "content": "Rome is sunny; Oslo has snow."},
        {"role": "user", "content": "Thanks!"}],
    "tool_call_without_function_wrapper": [
        {"role": "user", "content": "Find docs"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"name": "search", "arguments": {"query": "onebit docs", "max_results": 3}}]},
        {"role": "tool", "content": "[1] onebit.dev"}],
    "tool_call_no_wrapper_empty_content": [
        {"role": "user", "content": "Find docs"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"name": "search", "arguments": {"query": "onebit docs", "max_results": 3}}]},
        {"role": "tool", "content": "[1] onebit.dev"}],
    "multi_step_tool_response_user": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Plan a trip"},
        {"role": "assistant", "content": "<think>\nneed weather\n</think>\n\nLet me check.",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Kyoto"}}}]},
        {"role": "user", "content": "<tool_response>\nrain\n</tool_response>"},
        {"role": "assistant", "content": "<think>\nrain means umbrella\n</think>\n\nBring an umbrella."}],
    "unicode_and_whitespace": [
        {"role": "system", "content": "  Réponds en français.  \n"},
        {"role": "user", "content": "日本語で？ 🦙\n\n\tTabs and\r\nCRLF"},
        {"role": "assistant", "content": "\n\nはい。"},
        {"role": "user", "content": ""}],
    "system_not_first": [
        {"role": "user", "content": "first"},
        {"role": "system", "content": "late system"},
        {"role": "user", "content": "second"}],
}

# Small templates for single features: (name, template, context).
JINJA = [
    ("loop_vars", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("loop_prev_next", "{% for x in xs %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_else_and_filter", "{% for x in xs if x > 1 %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("tuple_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% set a, b = [1, 2] %}{{ a + b }}", {"d": {"z": 1, "a": [1, 2]}}),
    ("namespace", "{% set ns = namespace(n=0, s='') %}{% for x in xs %}{% set ns.n = ns.n + x %}{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.n }} {{ ns.s }}", {"xs": [1, 2, 3]}),
    ("scope", "{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% set y = 3 %}{% endif %}{{ y }}", {}),
    ("slicing", "{{ s[::-1] }}|{{ s[1:3] }}|{{ s[-2:] }}|{{ xs[::-1] }}|{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::2] }}|{{ s[0] }}{{ s[-1] }}", {"s": "héllo✓", "xs": [1, 2, 3, 4]}),
    ("string_methods", "{{ s.startswith('ab') }} {{ s.endswith('yz') }} {{ s.split(',') }} {{ s.strip('a') }} {{ ' x '.strip() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}| {{ s.upper() }} {{ s.replace(',', ';') }} {{ 'a b  c'.split() }} {{ s.split(',', 1) }}", {"s": "ab,cd,yz"}),
    ("string_methods_2", "{{ 'Hello World'.lower() }} {{ 'hello world'.title() }} {{ 'hello'.capitalize() }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('b') }} {{ '-'.join(['a', 'b']) }} {{ 'x\\ny'.splitlines() }}", {}),
    ("strip_newlines", "[{{ s.strip('\\n') }}][{{ s.lstrip('\\n') }}][{{ s.rstrip('\\n') }}]", {"s": "\n\nbody\n"}),
    ("filters", "{{ xs | length }} {{ s | length }} {{ xs | first }} {{ xs | last }} {{ xs | join(', ') }} {{ '  t  ' | trim }} {{ s | upper }} {{ xs | reverse | list }} {{ none | default('d') }} {{ undefined_thing | default('u') }} {{ '' | default('e', true) }}", {"xs": [3, 1, 2], "s": "héllo"}),
    ("filters_2", "{{ '3' | int + 1 }} {{ 2 | float }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ [1, 1, 2] | unique | list }} {{ xs | map(attribute='n') | list }} {{ xs | selectattr('n', 'gt', 1) | map(attribute='n') | join(',') }} {{ xs | rejectattr('n', 'equalto', 1) | list | length }} {{ [3, 1, 2] | sort }} {{ d | dictsort }} {{ d | items | list }}", {"xs": [{"n": 1}, {"n": 2}, {"n": 3}], "d": {"b": 1, "a": 2}}),
    ("tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ 'é\"\\\\\\n' | tojson }}|{{ [1.0, 0.1, 1e-7, 1e22, 3, true, none] | tojson }}", {"d": {"b": [1, {"x": None}], "a": "ü", "c": 2.5}}),
    ("tests", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ n is none }} {{ s is string }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ d is mapping }} {{ xs is iterable }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is in [1, 2] }} {{ true is true }} {{ false is false }} {{ x is not none }}", {"x": 1, "n": None, "s": "s", "d": {}, "xs": []}),
    ("operators", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ not 1 }} {{ 1 and 'x' }} {{ 0 or 'y' }} {{ 'b' in 'abc' }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }} {{ -(2) }}", {}),
    ("conditional_expr", "{{ 'yes' if x else 'no' }} {{ 'yes' if not x else 'no' }} [{{ 'only' if false }}] {{ 1 if x > 5 else 2 if x > 1 else 3 }}", {"x": 3}),
    ("printing", "{{ none }} {{ true }} {{ 1.0 }} {{ 0.1 }} {{ 1e-5 }} {{ 1e16 }} {{ 123456789012345678 }} {{ [1, 'a', none, true] }} {{ {'a': 'b\\'c'} }} {{ 'x' }} {{ [\"it's\"] }}", {}),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true -%}\n  d  \n  {%- endif -%}\n  e {#- comment -#} f", {}),
    ("trim_lstrip_blocks", "<ul>\n  {% for x in xs %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n  {# note #}\nend\n", {"xs": [1, 2]}),
    ("lstrip_plus_disables", "x\n    {%+ if true %}y{% endif %}\n", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(name='Cy', punct='.') }}", {}),
    ("set_block", "{% set body %}<{{ x }}>{% endset %}{{ body }}{{ body | length }}", {"x": "y"}),
    ("dict_access", "{{ d.a }} {{ d['a'] }} {{ d.get('b', 'dflt') }} {{ d.get('a') }} {{ d.keys() | list }} {{ d.values() | list }} [{{ d.missing }}] {{ d.missing is defined }} {{ xs[5] is defined }}", {"d": {"a": 1}, "xs": [1]}),
    ("string_iter_and_in", "{% for c in 'añb' %}[{{ c }}]{% endfor %}{{ 'ñ' in 'añb' }}", {}),
    ("raw", "{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("filter_block", "{% filter upper %}shout {{ x }}{% endfilter %}", {"x": "it"}),
    ("comparisons_chain_safe", "{{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ none == none }} {{ 1 != 2 }} {{ 2 >= 2 }} {{ [1, 2] < [1, 3] }}", {}),
    ("error_undefined_attr", "{{ missing.attr }}", {}),
    ("error_unknown_filter", "{{ 1 | no_such_filter }}", {}),
    ("error_raise_exception", "{{ raise_exception('bad request') }}", {}),
    ("error_unclosed_tag", "{% if x %}never closed", {"x": 1}),
    ("error_compare_types", "{{ 1 < 'a' }}", {}),
    ("error_namespace_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
]


def qwen_cases():
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(MODEL)
    cases = []
    for name, messages in CONVERSATIONS.items():
        with_tools = name.startswith("tool")
        for gen in (True, False):
            for think in (None, False):
                kwargs = {} if think is None else {"enable_thinking": think}
                request = {"messages": messages}
                if with_tools:
                    request["tools"] = TOOLS
                case = {"name": name, "request": request, "add_generation_prompt": gen,
                        "enable_thinking": think}
                try:
                    case["expected"] = tok.apply_chat_template(
                        messages, tools=TOOLS if with_tools else None, tokenize=False,
                        add_generation_prompt=gen, **kwargs)
                except Exception as e:  # the template rejects it: onebit must give an error too
                    case["error"] = True
                    case["oracle_error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    return cases


def jinja_cases():
    from transformers.utils.chat_template_utils import _compile_jinja_template
    out = []
    for name, template, context in JINJA:
        case = {"name": name, "template": template, "context": context}
        try:
            case["expected"] = _compile_jinja_template(template).render(**context)
        except Exception as e:  # jinja2 rejects it: onebit must give an error too
            case["error"] = True
            case["oracle_error"] = f"{type(e).__name__}: {e}"
        out.append(case)
    return out


def check(binary, qwen, jinja):
    failures = 0
    for name, new in (("qwen3_cases.json", qwen), ("jinja_cases.json", jinja)):
        old = json.load(open(os.path.join(OUT, name), encoding="utf-8"))
        if old != new:
            failures += 1
            print(f"committed {name} differs from what the installed oracle renders now")
    with tempfile.TemporaryDirectory() as tmp:
        for case in qwen:
            path = os.path.join(tmp, "m.json")
            json.dump(case["request"], open(path, "w", encoding="utf-8"), ensure_ascii=False)
            args = [binary, "chat-template", "--model", MODEL, "--messages", path]
            if not case["add_generation_prompt"]:
                args.append("--no-generation-prompt")
            if case["enable_thinking"] is False:
                args.append("--no-think")
            r = subprocess.run(args, capture_output=True)
            if case.get("error"):
                if r.returncode == 0:
                    failures += 1
                    print(f"MISSING ERROR {case['name']}: transformers raised {case['oracle_error']}")
                continue
            got = r.stdout.decode("utf-8")
            if r.returncode != 0 or got != case["expected"]:
                failures += 1
                print(f"MISMATCH {case['name']} gen={case['add_generation_prompt']} "
                      f"think={case['enable_thinking']}\n--- onebit\n{got}\n--- transformers\n{case['expected']}")
    print(f"{len(qwen)} conversations, {len(jinja)} jinja cases, {failures} failures")
    return 1 if failures else 0


def main():
    try:
        qwen, jinja = qwen_cases(), jinja_cases()
    except ImportError as e:
        print(f"skipped: {e}")
        return 77
    if len(sys.argv) > 2 and sys.argv[1] == "--check":
        return check(sys.argv[2], qwen, jinja)
    os.makedirs(OUT, exist_ok=True)
    for name, data in (("qwen3_cases.json", qwen), ("jinja_cases.json", jinja)):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
    print(f"wrote {len(qwen)} conversations and {len(jinja)} jinja cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
