#!/usr/bin/env python3
"""`onebit serve` on loopback with the stories260K model, driven by the official `openai`
Python client: chat and text completions (plain and streamed), usage and logprobs, 16 concurrent
greedy requests identical to the same requests run one by one, a streaming client that
disconnects frees its slot, a follow-up turn reuses the KV prefix, the API key, and 500+ malformed
or hostile requests that must all get a 4xx while the server stays healthy.

Also: reasoning and tool calls through the real Qwen3 chat template on a tiny test checkpoint
(toolcall_model.py), and 503 when the queue is full.

Usage: test_server.py ONEBIT_BINARY [DATA_DIR]
Exit 77 (skipped) when the openai package is missing.
"""
import concurrent.futures as cf
import http.client
import json
import random
import re
import os
import socket
import subprocess
import sys
import tempfile
import time

try:
    import openai
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)

KEY = "test-key-123"


STORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "stories260K")


def start(onebit, *args):
    """`onebit serve` on a free port; stories260K (as "stories260K") unless args name a model."""
    if "--model" not in args:
        args = ("--model", STORIES, "--alias", "stories260K", *args)
    proc = subprocess.Popen([onebit, "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"serve did not start: {line!r}")
    return proc, int(m.group(1))


def raw(port, method, path, body=b"", headers=None, timeout=30):
    """One HTTP request; returns (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def health(port):
    status, body = raw(port, "GET", "/health")
    assert status == 200, status
    return json.loads(body)


def metric(port, name):
    _, body = raw(port, "GET", "/metrics")
    m = re.search(rf"^onebit_{name} (\S+)$", body.decode(), re.M)
    return float(m.group(1))


def check_basics(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["stories260K"], models
    r = client.chat.completions.create(model="stories260K", messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=12, temperature=0, logprobs=True, top_logprobs=3)
    c = r.choices[0]
    assert c.finish_reason == "length" and r.usage.completion_tokens == 12, r
    assert len(c.logprobs.content) == 12 and all(len(t.top_logprobs) == 3 for t in c.logprobs.content)
    assert "".join(t.token for t in c.logprobs.content) == c.message.content
    # greedy: the chosen token is the most likely one
    assert all(t.logprob == t.top_logprobs[0].logprob for t in c.logprobs.content)
    stream = client.chat.completions.create(model="stories260K", messages=[{"role": "user", "content": "Hi"}],
                                            max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == c.message.content and finish == "length" and usage.completion_tokens == 12, (text, finish, usage)
    comp = client.completions.create(model="stories260K", prompt="Once upon a time", max_tokens=20, temperature=0,
                                     stop=[" park"])
    assert comp.choices[0].finish_reason in ("stop", "length") and " park" not in comp.choices[0].text
    streamed = "".join(ch.choices[0].text for ch in client.completions.create(
        model="stories260K", prompt="Once upon a time", max_tokens=20, temperature=0, stop=[" park"], stream=True)
        if ch.choices)
    assert streamed == comp.choices[0].text, (streamed, comp.choices[0].text)
    # seeded sampling is reproducible
    a, b = (client.completions.create(model="stories260K", prompt="The dog", max_tokens=24, temperature=1.0, seed=7,
                                      top_p=0.9, presence_penalty=0.5).choices[0].text for _ in range(2))
    assert a == b
    print("basics: ok")


def prompts(i):
    first = ["Lily", "Tom", "The cat", "A bird", "Once", "Ben and Mia", "The sun", "A big dog"]
    return f"{first[i % 8]} {'went to the park' if i % 2 else 'saw a tree'}"


def check_concurrent_equals_sequential(port, client):
    def ask(i):
        if i % 2:
            r = client.chat.completions.create(model="stories260K", max_tokens=150 + i, temperature=0,
                                               messages=[{"role": "user", "content": prompts(i)}])
            return r.choices[0].message.content
        r = client.completions.create(model="stories260K", prompt=prompts(i), max_tokens=150 + i, temperature=0)
        return r.choices[0].text
    one_by_one = [ask(i) for i in range(16)]
    steps, tokens = metric(port, "decode_steps_total"), metric(port, "generated_tokens_total")
    with cf.ThreadPoolExecutor(16) as ex:
        together = list(ex.map(ask, range(16)))
    for i, (a, b) in enumerate(zip(one_by_one, together)):
        assert a == b, f"request {i}: alone {a!r} vs concurrent {b!r}"
    steps = metric(port, "decode_steps_total") - steps
    tokens = metric(port, "generated_tokens_total") - tokens
    # batched: well over one sequence per decode step (4 slots)
    assert tokens > 2 * steps, (tokens, steps)
    print(f"16 concurrent greedy requests == one by one: ok ({tokens:.0f} tokens in {steps:.0f} decode steps)")


def check_disconnect_frees_slot(port, client):
    before = metric(port, "requests_finished_total")
    stream = client.completions.create(model="stories260K", prompt="Once upon a time", max_tokens=480,
                                       temperature=0.8, seed=3, stream=True)
    next(iter(stream))
    stream.response.close()  # the client goes away mid-stream
    deadline = time.time() + 10
    while time.time() < deadline:
        h = health(port)
        if h["slots_processing"] == 0 and metric(port, "requests_finished_total") == before + 1:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"slot not freed after the client disconnected: {h}")
    assert metric(port, "requests_cancelled_total") >= 1
    print("disconnect frees the slot: ok")


def check_prefix_reuse(client):
    msgs = [{"role": "system", "content": "You tell stories about animals."},
            {"role": "user", "content": "Tell me about a cat who found a ball in the garden."}]
    r1 = client.chat.completions.create(model="stories260K", messages=msgs, max_tokens=30, temperature=0)
    msgs += [{"role": "assistant", "content": r1.choices[0].message.content},
             {"role": "user", "content": "And then?"}]
    r2 = client.chat.completions.create(model="stories260K", messages=msgs, max_tokens=30, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    t1, t2 = r1.model_extra["timings"], r2.model_extra["timings"]
    assert cached >= r1.usage.prompt_tokens, (cached, r1.usage)
    assert t2["prompt_n"] == r2.usage.prompt_tokens - cached
    print(f"first turn: prefill {t1['prompt_n']} tokens in {t1['prompt_ms']:.2f} ms, first token "
          f"{t1['first_token_ms']:.2f} ms; follow-up: {cached} of {r2.usage.prompt_tokens} prompt tokens reused, "
          f"prefill {t2['prompt_n']} tokens in {t2['prompt_ms']:.2f} ms, first token {t2['first_token_ms']:.2f} ms: ok")


def hostile_requests():
    """(method, path, body bytes, headers) that must each get a 4xx."""
    ok = {"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    cases = []
    chat = "/v1/chat/completions"
    for body in [b"", b"{", b"[]", b"null", b"42", b'"x"', b"{'a': 1}", b'{"messages": [}', b"\xff\xfe{}",
                 b'{"messages": "' + b"\xc3\x28" + b'"}', b'{"a":' * 5000]:
        cases.append(("POST", chat, body, {}))
        cases.append(("POST", "/v1/completions", body, {}))
    bad_values = {
        "model": [1, "other-model", [], {}],
        "messages": [[], "hi", 1, [1], [{}], [{"role": "wizard", "content": "x"}], [{"role": "user"}],
                     [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "image_url"}]}],
                     [{"role": 1, "content": "x"}], [{"role": "assistant", "content": None, "tool_calls": 3}]],
        "max_tokens": [0, -1, 1.5, "10", True, 10**30, -10**30, []],
        "max_completion_tokens": [0, "x", 2.5],
        "temperature": [-0.1, 2.5, "hot", [], 1e300],
        "top_p": [-1, 1.5, "x"], "top_k": [-1, 1.5, "x"], "min_p": [1, -0.5, "x"],
        "presence_penalty": [3, -3, "x"], "frequency_penalty": [2.1, "x"], "repetition_penalty": [0, -1, "x"],
        "seed": ["x", 1.5, 2**70], "n": [2, 0, "x"], "stop": [1, [1], [""], ["a"] * 17, {}],
        "stream": ["yes", 1], "stream_options": ["x", {"include_usage": "yes"}],
        "logprobs": ["x", 1], "top_logprobs": [21, -1, "x"], "tools": ["x", [1], [{"type": "function"}]],
        "tool_choice": ["sometimes", 5], "chat_template_kwargs": ["x", {"enable_thinking": "no"}],
        "response_format": [{"type": "json_object"}, "x"],
    }
    for field, values in bad_values.items():
        for v in values:
            body = dict(ok)
            body[field] = v
            cases.append(("POST", chat, json.dumps(body).encode(), {}))
    comp_ok = {"model": "stories260K", "prompt": "hi", "max_tokens": 4}
    for field, values in {"prompt": [None, 5, [], [[1, 2], [3]], ["a", "b"], [-1], [10**9], [1.5], {}],
                          "logprobs": [6, -1, True, "x"], "echo": [True], "suffix": ["x"], "best_of": [2],
                          "max_tokens": [0, "x"], "temperature": [5]}.items():
        for v in values:
            body = dict(comp_ok)
            body[field] = v
            cases.append(("POST", "/v1/completions", json.dumps(body).encode(), {}))
    # a prompt longer than the context, and a huge body
    cases.append(("POST", "/v1/completions", json.dumps({"prompt": "story " * 2000}).encode(), {}))
    cases.append(("POST", chat, json.dumps({"messages": [{"role": "user", "content": "a " * 1000}]}).encode(), {}))
    cases.append(("POST", chat, b'{"messages": [{"role": "user", "content": "' + b"a" * (9 << 20) + b'"}]}', {}))
    # authentication and routes
    cases.append(("POST", chat, json.dumps(ok).encode(), {"Authorization": "Bearer wrong"}))
    cases.append(("POST", chat, json.dumps(ok).encode(), {"Authorization": ""}))
    cases.append(("GET", "/v1/models", b"", {"Authorization": "Basic abc"}))
    cases.append(("GET", "/v1/nothing", b"", {}))
    cases.append(("GET", chat, b"", {}))
    cases.append(("DELETE", "/v1/models", b"", {}))
    # generated: random bytes, random JSON values in random fields, invalid UTF-8 in strings
    rng = random.Random(1234)
    fields = list(bad_values) + ["prompt", "user", "x"]
    junk = [None, True, -1, 0, 2**63, -2**63 - 1, 1e308, -1e-308, "", "\u0000", "\ud7ff" * 3, [], {}, [[]],
            {"a": {"b": []}}, "x" * 10000]
    while len(cases) < 640:
        kind = rng.randrange(4)
        if kind == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:
            body = dict(ok)
            for _ in range(rng.randrange(1, 4)):
                body[rng.choice(fields)] = rng.choice(junk)
            body = json.dumps(body).encode()
        elif kind == 2:
            s = json.dumps(ok).encode()
            i = rng.randrange(len(s))
            body = s[:i] + bytes([rng.choice([0x80, 0xc0, 0xff, 0xed, 0xf5])]) + s[i:]
        else:
            body = json.dumps({"model": "stories260K", "messages": [{"role": "user", "content": "hi"}],
                               "max_tokens": rng.choice([0, -5, 10**40, "many", None]) or 0}).encode()
        cases.append(("POST", rng.choice([chat, "/v1/completions"]), body, {}))
    return cases


def check_hostile(port):
    cases = hostile_requests()
    failures, n_4xx, n_2xx = [], 0, 0
    for method, path, body, headers in cases:
        try:
            status, data = raw(port, method, path, body, headers)
        except (ConnectionError, socket.timeout, http.client.HTTPException) as e:
            if len(body) > (8 << 20):  # the server may close on an oversized body
                n_4xx += 1
                continue
            failures.append((path, body[:80], repr(e)))
            continue
        if 400 <= status < 500:
            n_4xx += 1
            err = json.loads(data)["error"]
            assert err["message"] and err["type"], data
        elif status == 200:
            n_2xx += 1  # a random mutation can still be a valid request
        else:
            failures.append((path, body[:80], status, data[:200]))
    assert not failures, failures[:5]
    assert n_4xx >= 500, n_4xx
    assert health(port)["status"] == "ok"
    print(f"{len(cases)} malformed or hostile requests: {n_4xx} got 4xx, {n_2xx} were valid, none failed; "
          f"server healthy: ok")


def check_tool_calls(onebit, data_dir):
    """Reasoning and tool calls through the real Qwen3 template on a tiny checkpoint whose greedy
    answer is a fixed <think> block and tool call (toolcall_model.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import toolcall_model
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "qwen3-toolcall")
        toolcall_model.write(model_dir, os.path.join(data_dir, "qwen3-tokenizer"))
        proc, port = start(onebit, "--model", model_dir)
        try:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=60)
            tools = [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
            msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
            r = client.chat.completions.create(model="qwen3-toolcall", messages=msgs, tools=tools, temperature=0)
            c = r.choices[0]
            assert c.finish_reason == "tool_calls", c
            assert c.message.content is None, c.message
            assert c.message.model_extra["reasoning_content"] == "Check the weather.", c.message
            call = c.message.tool_calls[0]
            assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
            # streamed: the same pieces as deltas
            reasoning, calls, finish = "", [], None
            for chunk in client.chat.completions.create(model="qwen3-toolcall", messages=msgs, tools=tools,
                                                        temperature=0, stream=True):
                for ch in chunk.choices:
                    reasoning += (ch.delta.model_extra or {}).get("reasoning_content") or ""
                    calls += ch.delta.tool_calls or []
                    finish = ch.finish_reason or finish
            assert reasoning == "Check the weather." and finish == "tool_calls", (reasoning, finish)
            assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [
                ("get_weather", {"city": "Paris"})]
            # the tool's answer goes back through the template
            msgs += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                     {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
            r2 = client.chat.completions.create(model="qwen3-toolcall", messages=msgs, tools=tools, temperature=0)
            assert r2.usage.prompt_tokens > r.usage.prompt_tokens
            # without tools the same text is plain content
            r3 = client.chat.completions.create(model="qwen3-toolcall", messages=msgs[:1], temperature=0)
            assert r3.choices[0].finish_reason == "stop" and "<tool_call>" in r3.choices[0].message.content
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print("reasoning_content and tool_calls through the Qwen3 template (plain and streamed): ok")


def check_slow_non_streaming(onebit, data_dir):
    """A non-streaming request that runs for seconds (a bigger model of toolcall_model.py's kind
    that never ends): its answer, led by whitespace heartbeats, parses in the openai client; a
    client that closes its connection while waiting gets its request cancelled and its slot freed
    long before max_tokens."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import toolcall_model
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "qwen3-slow")
        toolcall_model.write(model_dir, os.path.join(data_dir, "qwen3-tokenizer"), width=1024, layers=8, cycle=True)
        proc, port = start(onebit, "--model", model_dir, "--parallel", "1")
        try:
            # under the sanitizers the 400 tokens take about 145 s (the client's timeout bounds the
            # whole request)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=600)
            msgs = [{"role": "user", "content": "Weather?"}]
            # long enough for heartbeats (one a second): more tokens where the machine is fast
            for max_tokens in (400, 800, 1600):
                t0 = time.time()
                raw_r = client.chat.completions.with_raw_response.create(
                    model="qwen3-slow", messages=msgs, max_tokens=max_tokens, temperature=0)
                slow = time.time() - t0
                if slow > 1.5:
                    break
            assert slow > 1.5 and raw_r.headers.get("transfer-encoding") == "chunked", (slow, raw_r.headers)
            r = raw_r.parse()
            assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == max_tokens, r
            assert "get_weather" in r.choices[0].message.content
            # the disconnecting client
            body = json.dumps({"messages": msgs, "max_tokens": 1900, "temperature": 0}).encode()
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            time.sleep(2.5)
            conn.close()
            deadline = time.time() + 15
            while time.time() < deadline:
                h = health(port)
                if h["slots_processing"] == 0 and metric(port, "requests_cancelled_total") == 1:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"the request of a client that left still runs: {h}")
            generated = metric(port, "generated_tokens_total") - 400
            assert generated < 1900, generated
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"slow non-streaming answer ({slow:.1f} s) parses; a client that leaves is cancelled after "
          f"{generated:.0f} of 1900 tokens: ok")


def check_queue_full(onebit):
    """--parallel 1 --queue 2 and 24 requests at once: the overflow gets 503 in the OpenAI error
    shape, everything else completes, the server stays healthy."""
    proc, port = start(onebit, "--parallel", "1", "--queue", "2")
    try:
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 300, "temperature": 0}).encode()
        with cf.ThreadPoolExecutor(24) as ex:
            results = list(ex.map(lambda _: raw(port, "POST", "/v1/completions", body), range(24)))
        statuses = sorted(s for s, _ in results)
        busy = [json.loads(b)["error"] for s, b in results if s == 503]
        assert set(statuses) <= {200, 503} and busy and statuses.count(200) >= 3, statuses
        assert all(e["type"] and e["message"] for e in busy)
        assert health(port)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"queue full: {len(busy)} of 24 got 503, {statuses.count(200)} completed: ok")


def main():
    onebit = sys.argv[1]
    data_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../data")
    proc, port = start(onebit, "--parallel", "4", "--api-key", KEY, "--threads", "1", "--prefill-chunk", "16")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=60)
        check_basics(client)
        check_concurrent_equals_sequential(port, client)
        check_disconnect_frees_slot(port, client)
        check_prefix_reuse(client)
        try:
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
            raise AssertionError("a wrong API key was accepted")
        except openai.AuthenticationError:
            pass
        check_hostile(port)
        r = client.completions.create(model="stories260K", prompt="Once", max_tokens=5, temperature=0)
        assert r.usage.completion_tokens == 5
        assert proc.poll() is None, "the server exited"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    check_tool_calls(onebit, data_dir)
    check_slow_non_streaming(onebit, data_dir)
    check_queue_full(onebit)
    print("server: all checks passed")


if __name__ == "__main__":
    main()
