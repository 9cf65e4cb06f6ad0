"""Streaming responses and `stream_usage` (docs/design.md#request-path, docs/metrics.md).

With `stream_usage: inject` the gateway adds `stream_options.include_usage: true` to stream
requests so the provider reports usage, and removes the usage-only chunk from what a client
that did not ask for it receives: that client gets what the provider would have sent it
without the gateway, while `ai_gateway_tokens_total` still counts the usage. A client that
asked gets the usage chunk; `stream_usage: off` leaves the request and the stream untouched.

"What the provider would have sent" is measured, not assumed: the same request is sent
straight to the mock provider (no gateway, no `include_usage`) and the two bodies are compared
byte for byte, after replacing the two things that differ between any two requests — the
object id (it carries the mock's request number) and the `created` timestamp.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from harness import Mock, demo_plugin_config, upstream_request
from harness.metrics import COST, REQUESTS, TOKENS, MODEL_ERRORS, delta, request_body, scrape, wait_for

PROMPT, COMPLETION = 1000, 500
TOKENS_HEADERS = {"x-mock-prompt-tokens": str(PROMPT), "x-mock-completion-tokens": str(COMPLETION)}

#: How the mock frames the stream, i.e. how the bytes reach the filter's body callbacks.
FRAMINGS = {
    # As fast as it can write: several events may share a body chunk.
    "burst": {},
    # 15 ms between events: each event (the usage chunk too) in a body chunk of its own.
    "paced": {"x-mock-chunk-delay-ms": "15"},
    # 24 KiB words: events span several body chunks, so the usage chunk may start mid-chunk.
    "large": {"x-mock-chunk-bytes": "24576", "x-mock-chunk-delay-ms": "5"},
    # No content at all: the final chunk, (the usage chunk), [DONE].
    "empty": {"x-mock-chunks": "0"},
}

STREAM_PATHS = ["/v1/chat/completions", "/v1/completions"]


def normalize(body: bytes) -> bytes:
    """Replace what differs between any two requests to the mock: ids and timestamps."""
    body = re.sub(rb'"id":"(chatcmpl|cmpl)-mock-\d+"', rb'"id":"\1-mock-N"', body)
    body = re.sub(rb"(resp|msg)_mock_\d+", rb"\1_mock_N", body)
    body = re.sub(rb'"(created|created_at)":\d+', rb'"\1":0', body)
    return body


def direct(mock: Mock, path: str, body: dict, headers: dict[str, str]) -> bytes:
    """What the mock sends a client that talks to it without the gateway."""
    r = requests.post(mock.url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.content


def through(gw, path: str, body: dict, headers: dict[str, str]):
    """(the raw body bytes the client got, the response)."""
    r = gw.session.post(gw.url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.content, r


def events(body: bytes) -> list[bytes]:
    """The SSE events of a body (each `data: ...` payload), in order."""
    out = []
    for block in body.split(b"\n\n"):
        if block.strip():
            lines = [line for line in block.split(b"\n") if line.startswith(b"data:")]
            assert lines, f"an event without data: {block[:200]!r}"
            out.append(b"\n".join(line[5:].lstrip() for line in lines))
    return out


def usage_chunks(body: bytes) -> list[dict]:
    return [d for d in (json.loads(e) for e in events(body) if e != b"[DONE]") if d.get("usage")]


def drop_null_usage(doc):
    return {k: v for k, v in doc.items() if not (k == "usage" and v is None)}


# --------------------------------------------------------------------------------------------
# Gateways
# --------------------------------------------------------------------------------------------


#: `stream_usage: inject` (as in every shipped config), a model with parameters to apply (so the
#: usage request is one edit among others) and a canary route.
INJECT_CONFIG = {
    "models": [
        {"name": "gpt-4.1", "version": "1.0.0", "weight": 90, "max_tokens": 4096, "temperature": 0.7, "cluster": "mock"},
        {"name": "deepseek-v3.2", "version": "2.0.0-canary.1", "weight": 10, "cluster": "mock"},
    ],
    "routes": [{"name": "chat", "targets": [{"model": "gpt-4.1", "weight": 50}, {"model": "deepseek-v3.2", "weight": 50}]}],
    "default_route": "chat",
    "unknown_models": "reject",
    "upstream": {"cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY"},
    "stream_usage": "inject",
    "prices": {"gpt-4.1": {"input": 2.00, "output": 8.00}, "deepseek-v3.2": {"input": 0.28, "output": 0.42}},
}


@pytest.fixture(scope="module")
def inject_gw(module_launcher, demo_mock):
    return module_launcher.envoy(demo_mock, INJECT_CONFIG)


def test_the_shipped_demo_config_injects_stream_usage():
    assert demo_plugin_config()["stream_usage"] == "inject"


#: Models with nothing else to change, so with `stream_usage: off` the provider must receive
#: the client's body byte for byte.
OFF_CONFIG = {
    "models": [{"name": "gpt-4.1", "version": "1.0.0", "weight": 1, "cluster": "mock"}],
    "upstream": {"cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY"},
    "stream_usage": "off",
    "prices": {"gpt-4.1": {"input": 2.00, "output": 8.00}},
}


@pytest.fixture(scope="module")
def off_gw(module_launcher, demo_mock):
    return module_launcher.envoy(demo_mock, OFF_CONFIG)


# --------------------------------------------------------------------------------------------
# stream_usage: inject, client did not ask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("path", STREAM_PATHS)
def test_a_client_that_did_not_ask_for_usage_gets_the_providers_events_without_the_usage_chunk(inject_gw, demo_mock, path, framing):
    """The same events, in the same order, with the same content; no usage chunk; tokens
    counted anyway. (Byte-level identity is the next test.)"""
    headers = {**TOKENS_HEADERS, **FRAMINGS[framing]}
    body = request_body(path, "gpt-4.1", stream=True)
    before = scrape(inject_gw)
    got, r = through(inject_gw, path, body, headers)
    want = direct(demo_mock, path, body, headers)
    upstream = demo_mock.received(r.headers["x-mock-request-id"]).json()
    assert upstream["stream_options"] == {"include_usage": True}, "usage was not asked of the provider"

    assert r.headers["content-type"].startswith("text/event-stream")
    assert not usage_chunks(got), "the client got the usage chunk it did not ask for"
    got_events, want_events = events(normalize(got)), events(normalize(want))
    assert got_events[-1] == want_events[-1] == b"[DONE]"
    assert len(got_events) == len(want_events), f"{len(got_events)} events, the provider alone sends {len(want_events)}"
    for g, w in zip(got_events[:-1], want_events[:-1]):
        assert drop_null_usage(json.loads(g)) == json.loads(w)

    after = wait_for(inject_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS, model="gpt-4.1", type="prompt") == PROMPT
    assert delta(before, after, TOKENS, model="gpt-4.1", type="completion") == COMPLETION
    assert delta(before, after, COST, model="gpt-4.1") == PROMPT * 2 + COMPLETION * 8


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("path", STREAM_PATHS)
def test_a_client_that_did_not_ask_for_usage_gets_the_providers_stream_byte_for_byte(inject_gw, demo_mock, path, framing):
    """The client sees exactly what it would have seen without the gateway.
    Asking for usage makes the provider (OpenAI, and the mock like it) add `"usage":null` to
    every other chunk; those members must go too, not only the usage-only chunk."""
    headers = {**TOKENS_HEADERS, **FRAMINGS[framing]}
    body = request_body(path, "gpt-4.1", stream=True)
    got, _ = through(inject_gw, path, body, headers)
    want = direct(demo_mock, path, body, headers)
    got, want = normalize(got), normalize(want)
    if got != want:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        raise AssertionError(
            f"the client got {len(got)} bytes, the provider alone sends {len(want)}; first difference at byte {i}:\n"
            f"  gateway : {got[max(0, i - 80):i + 80]!r}\n  provider: {want[max(0, i - 80):i + 80]!r}"
        )


def test_a_client_that_sent_include_usage_false_is_a_client_that_did_not_ask(inject_gw, demo_mock):
    body = request_body("/v1/chat/completions", "gpt-4.1", stream=True, stream_options={"include_usage": False})
    before = scrape(inject_gw)
    got, r = through(inject_gw, "/v1/chat/completions", body, TOKENS_HEADERS)
    assert demo_mock.received(r.headers["x-mock-request-id"]).json()["stream_options"] == {"include_usage": True}
    assert not usage_chunks(got)
    assert events(got)[-1] == b"[DONE]"
    after = wait_for(inject_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS, model="gpt-4.1", type="prompt") == PROMPT


def test_a_stream_through_a_route_is_the_served_models_stream_without_the_usage_chunk(inject_gw, demo_mock):
    body = request_body("/v1/chat/completions", "chat", stream=True)
    got, r = through(inject_gw, "/v1/chat/completions", body, {**TOKENS_HEADERS, **FRAMINGS["paced"]})
    served = r.headers["x-ai-gateway-model"]
    want = direct(demo_mock, "/v1/chat/completions", {**body, "model": served}, {**TOKENS_HEADERS, **FRAMINGS["paced"]})
    assert not usage_chunks(got)
    assert [drop_null_usage(json.loads(e)) for e in events(normalize(got))[:-1]] == [json.loads(e) for e in events(normalize(want))[:-1]]


# --------------------------------------------------------------------------------------------
# stream_usage: inject, client asked
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["burst", "paced", "large"])
@pytest.mark.parametrize("path", STREAM_PATHS)
def test_a_client_that_asked_for_usage_gets_the_usage_chunk_and_the_stream_byte_for_byte(inject_gw, demo_mock, path, framing):
    headers = {**TOKENS_HEADERS, **FRAMINGS[framing]}
    body = request_body(path, "gpt-4.1", stream=True, stream_options={"include_usage": True})
    before = scrape(inject_gw)
    got, r = through(inject_gw, path, body, headers)
    want = direct(demo_mock, path, body, headers)
    assert normalize(got) == normalize(want)
    (u,) = usage_chunks(got)
    assert (u["usage"]["prompt_tokens"], u["usage"]["completion_tokens"]) == (PROMPT, COMPLETION)
    assert u["choices"] == []
    upstream = demo_mock.received(r.headers["x-mock-request-id"]).json()
    assert upstream["stream_options"] == {"include_usage": True}
    after = wait_for(inject_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS, model="gpt-4.1", type="completion") == COMPLETION


def test_the_responses_api_stream_is_left_alone_and_its_usage_counted(inject_gw, demo_mock):
    """`/v1/responses` reports usage in `response.completed` on its own: nothing to inject or
    remove."""
    body = request_body("/v1/responses", "gpt-4.1", stream=True)
    before = scrape(inject_gw)
    got, r = through(inject_gw, "/v1/responses", body, {**TOKENS_HEADERS, **FRAMINGS["paced"]})
    want = direct(demo_mock, "/v1/responses", body, {**TOKENS_HEADERS, **FRAMINGS["paced"]})
    assert normalize(got) == normalize(want)
    assert "stream_options" not in demo_mock.received(r.headers["x-mock-request-id"]).json()
    after = wait_for(inject_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS, model="gpt-4.1", type="prompt") == PROMPT
    assert delta(before, after, TOKENS, model="gpt-4.1", type="completion") == COMPLETION


# --------------------------------------------------------------------------------------------
# stream_usage: off
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAM_PATHS)
def test_stream_usage_off_leaves_the_request_and_the_stream_untouched(off_gw, demo_mock, path):
    raw = json.dumps(request_body(path, "gpt-4.1", stream=True), separators=(",", ":")).encode()
    headers = {**TOKENS_HEADERS, **FRAMINGS["paced"]}
    before = scrape(off_gw)
    r = off_gw.session.post(off_gw.url + path, data=raw, headers={"content-type": "application/json", **headers}, timeout=30)
    assert r.status_code == 200
    _, received = upstream_request(r, demo_mock)
    assert received.body == raw, "stream_usage: off changed the request body"
    want = direct(demo_mock, path, json.loads(raw), headers)
    assert normalize(r.content) == normalize(want)
    assert not usage_chunks(r.content)
    # Nothing reported usage: nothing to count (and nothing invented).
    after = wait_for(off_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS) == 0 and delta(before, after, COST) == 0


def test_stream_usage_off_still_counts_the_usage_a_client_asked_for(off_gw, demo_mock):
    body = request_body("/v1/chat/completions", "gpt-4.1", stream=True, stream_options={"include_usage": True})
    before = scrape(off_gw)
    got, _ = through(off_gw, "/v1/chat/completions", body, TOKENS_HEADERS)
    assert normalize(got) == normalize(direct(demo_mock, "/v1/chat/completions", body, TOKENS_HEADERS))
    assert len(usage_chunks(got)) == 1
    after = wait_for(off_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    assert delta(before, after, TOKENS, model="gpt-4.1", type="prompt") == PROMPT
    assert delta(before, after, COST, model="gpt-4.1") == PROMPT * 2 + COMPLETION * 8


# --------------------------------------------------------------------------------------------
# A stream cut by the provider
# --------------------------------------------------------------------------------------------


def read_until_cut(r: requests.Response) -> bytes:
    out = b""
    try:
        for chunk in r.raw.stream(1024, decode_content=False):
            out += chunk
    except Exception:  # noqa: BLE001 - the cut is the point
        pass
    return out


def test_a_stream_cut_by_the_provider_reaches_the_client_as_sent_and_counts_a_reset(inject_gw, demo_mock):
    path = "/v1/chat/completions"
    body = json.dumps(request_body(path, "gpt-4.1", stream=True)).encode()
    headers = {"content-type": "application/json", "x-mock-abort-after-chunks": "2", **TOKENS_HEADERS, **FRAMINGS["paced"]}
    before = scrape(inject_gw)
    with requests.post(inject_gw.url + path, data=body, headers=headers, stream=True, timeout=30) as r:
        assert r.status_code == 200
        got = read_until_cut(r)
    with requests.post(demo_mock.url + path, data=body, headers=headers, stream=True, timeout=30) as r:
        want = read_until_cut(r)
    assert len(events(want)) == 2
    assert [drop_null_usage(json.loads(e)) for e in events(normalize(got))] == [json.loads(e) for e in events(normalize(want))]
    after = wait_for(inject_gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "the stream counted")
    # No usage came: no tokens; the model failed mid-stream.
    assert delta(before, after, TOKENS) == 0
    assert delta(before, after, MODEL_ERRORS, model="gpt-4.1", error_type="reset") == 1
