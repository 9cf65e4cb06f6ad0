"""Each OpenAI endpoint gets only the parameters it has: max_tokens/temperature on chat and
completions, max_output_tokens on responses, nothing on embeddings, the system prompt on chat
only. And stream requests get usage reporting injected (`stream_usage: inject`)."""

from __future__ import annotations

import json

from harness import chat, demo_plugin_config, upstream_request, rawjson

DEMO = demo_plugin_config()
GPT = next(m for m in DEMO["models"] if m["name"] == "gpt-4.1")


def send(gw, mock, path: str, raw: bytes):
    reply = chat(gw, raw, path=path)
    assert reply.status == 200, f"{path}: {reply.status} {reply.body[:300]!r}"
    _, got = upstream_request(reply, mock)
    assert got.path == path
    assert got.content_length == len(got.body)
    return reply, got


def test_completions_get_the_token_cap_and_temperature(gw, demo_mock):
    raw = b'{"model": "gpt-4.1", "prompt": "Say \\"hi\\"", "echo" : false}'
    _, got = send(gw, demo_mock, "/v1/completions", raw)
    up = rawjson.member_map(got.body)
    assert json.loads(up["max_tokens"]) == GPT["max_tokens"]
    assert json.loads(up["temperature"]) == GPT["temperature"]
    assert up["prompt"] == b'"Say \\"hi\\""' and up["echo"] == b"false"


def test_completions_get_no_system_prompt(gw, demo_mock):
    raw = b'{"model":"claude-sonnet-4.5","prompt":"hi"}'
    _, got = send(gw, demo_mock, "/v1/completions", raw)
    assert got.body == raw


def test_embeddings_get_only_the_model_rewritten(gw, demo_mock):
    raw = b'{ "input" : ["a", "b\\u00e9"], "model":"gpt-4.1", "encoding_format":"float" }'
    _, got = send(gw, demo_mock, "/v1/embeddings", raw)
    assert got.body == raw


def test_embeddings_through_the_alias_change_only_the_model(gw, demo_mock):
    raw = b'{ "input" : "x", "model":"chat" }'
    reply, got = send(gw, demo_mock, "/v1/embeddings", raw)
    model = reply.headers["x-ai-gateway-model"]
    assert got.body == raw.replace(b'"chat"', json.dumps(model).encode())


def test_responses_get_max_output_tokens_not_max_tokens(gw, demo_mock):
    raw = b'{"model":"gpt-4.1","input":"hi","max_output_tokens":100000}'
    _, got = send(gw, demo_mock, "/v1/responses", raw)
    up = rawjson.member_map(got.body)
    assert json.loads(up["max_output_tokens"]) == GPT["max_tokens"]
    assert "max_tokens" not in up
    assert up["input"] == b'"hi"'


def stream(gw, raw: bytes):
    r = gw.session.post(gw.url + "/v1/chat/completions", data=raw, stream=True, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.content[:300]
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line for line in r.iter_lines() if line.startswith(b"data: ")]
    assert events[-1] == b"data: [DONE]", events[-3:]
    return r, [json.loads(e[6:]) for e in events[:-1]]


def test_a_stream_request_gets_usage_reporting_injected_without_the_client_seeing_it(gw, demo_mock):
    """`stream_usage: inject`: the provider is asked for usage (the gateway counts tokens from
    it), and the client, which did not ask, gets the stream it would have got without the
    gateway: no usage chunk."""
    r, chunks = stream(gw, b'{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}')
    got = demo_mock.received(r.headers["x-mock-request-id"])
    assert got.json()["stream_options"] == {"include_usage": True}
    assert got.content_length == len(got.body)
    assert chunks and any(c["choices"] and c["choices"][0]["delta"].get("content") for c in chunks)
    assert not any(c.get("usage") for c in chunks), "the client got a usage chunk it did not ask for"


def test_a_stream_request_that_asks_for_usage_gets_it(gw, demo_mock):
    raw = b'{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[]}'
    r, chunks = stream(gw, raw)
    got = demo_mock.received(r.headers["x-mock-request-id"])
    assert rawjson.member_map(got.body)["stream_options"] == b'{"include_usage":true}'
    assert chunks[-1].get("usage"), "no usage chunk at the end of the stream"
