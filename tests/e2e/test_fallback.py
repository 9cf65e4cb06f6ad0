"""Fallback to the next model inside one request, and stream-aware timeouts (docs/failover.md,
``## Fallback``), against the real Envoy 1.40, the built ``.wasm`` and the real mock provider.

The gateways here are envoy/demo.yaml as shipped — the same ``.wasm`` as the listener's filter
and as the upstream HTTP filter of the aggregate cluster ``mock`` (``root_id:
ai_gateway_upstream``, one configuration and VM through YAML anchors) — plus a file access log of
the filter state ``wasm.ai_gateway`` (one JSON object per request). Two mocks: ``primary``
(``mock_primary``) and ``secondary`` (``mock_secondary``); Envoy sends attempt 1 to the primary,
attempt 2 to the secondary (``previous_priorities``), attempt 3 to the primary again.

Models (the demo's, A with settings of its own so that B's can be told apart):

- A = ``claude-sonnet-4.5@1.4.0``: system prompt, ``max_tokens`` cap 1000, ``temperature`` 0.2,
  ``fallback: [gpt-4.1]``;
- B = ``gpt-4.1@1.0.0``: cap 4096, ``temperature`` 0.7, no system prompt, no fallback;
- X = ``o3@1.0.0``: no settings, ``fallback: [claude-sonnet-4.5]`` (a fallback to a longer name).

A model is made to fail with the mock's ``/__control`` (``fail_models`` / ``delay_models``
match the body's ``model`` after the gateway's rewrite): that is how A fails while B answers.
The breaker of the shared gateway never opens (``min_requests`` 100 000); the test of an open
circuit has its own gateway. Timing assertions are orders of magnitude, never tight durations.
"""

from __future__ import annotations

import copy
import subprocess
import json
import threading
import time
import types
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from harness import envoy as harness_envoy
from harness import REPO, TEST_KEY, Gateway, Reply, chat, demo_plugin_config, free_port, load_demo_yaml
from harness.metrics import scrape
from harness.secrets import assert_reply_clean, log_lines_with

A, A_VERSION = "claude-sonnet-4.5", "1.4.0"
B, B_VERSION = "gpt-4.1", "1.0.0"
X, X_VERSION = "o3", "1.0.0"
A_PROMPT = "You are a concise assistant."
A_CAP, A_TEMP = 1000, 0.2
B_CAP, B_TEMP = 4096, 0.7
MAX_ATTEMPTS = 3
#: The header the access log's line is keyed by (a test's own request id).
ID_HEADER = "x-fallback-test-id"

FALLBACKS = "ai_gateway_fallbacks_total"
MODEL_ERRORS = "ai_gateway_model_errors_total"
REQUESTS = "ai_gateway_requests_total"
TOKENS = "ai_gateway_tokens_total"
COST = "ai_gateway_cost_microdollars_total"
CIRCUIT = "ai_gateway_circuit_open"


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


def plugin_config(**top) -> dict:
    """The demo's plugin configuration, A with its own cap and temperature, X added, a breaker
    that never opens (unless ``failover`` is overridden), and any top-level field in ``top``."""
    cfg = demo_plugin_config()
    (a,) = [m for m in cfg["models"] if m["name"] == A]
    assert a.get("fallback") == [B] and a.get("system_prompt") == A_PROMPT, a
    a.update(max_tokens=A_CAP, temperature=A_TEMP)
    (b,) = [m for m in cfg["models"] if m["name"] == B]
    assert b.get("max_tokens") == B_CAP and b.get("temperature") == B_TEMP and "system_prompt" not in b, b
    cfg["models"].append({"name": X, "version": X_VERSION, "cluster": "mock", "fallback": [A]})
    cfg["prices"][X] = {"input": 1.00, "output": 4.00}
    cfg["failover"] = {"window_s": 30, "min_requests": 100_000, "cooldown_s": 30}
    cfg.update(top)
    return cfg


def hcm(doc: dict) -> dict:
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def route_cfg(doc: dict) -> dict:
    return hcm(doc)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]


def with_access_log(doc: dict, path: Path) -> dict:
    """Adds a file access log: ``<test id> <status> <filter state wasm.ai_gateway>`` per request."""
    hcm(doc)["access_log"] = [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(path),
                "log_format": {
                    "text_format_source": {
                        "inline_string": f"%REQ({ID_HEADER.upper()})% %RESPONSE_CODE% %FILTER_STATE(wasm.ai_gateway:PLAIN)%\n"
                    }
                },
            },
        }
    ]
    return doc


class Setup:
    """A gateway, its two mocks and its access log."""

    def __init__(self, gw: Gateway, primary, secondary, access_log: Path):
        self.gw, self.primary, self.secondary, self.access_log = gw, primary, secondary, access_log

    def mocks(self) -> list:
        return [m for m in (self.primary, self.secondary) if m.url]

    def control(self, doc: dict) -> None:
        for m in self.mocks():
            m.control(doc)

    def reset(self) -> None:
        self.control({})

    def fail(self, models: dict[str, int], *, primary: bool = True, secondary: bool = True) -> None:
        """``fail_models`` on the primary and/or the secondary (the other one is healed)."""
        self.primary.control({"fail_models": models} if primary else {})
        self.secondary.control({"fail_models": models} if secondary else {})

    def marks(self) -> tuple[int, int]:
        return tuple(m.last_id() if m.url else 0 for m in (self.primary, self.secondary))

    def since(self, marks: tuple[int, int]) -> tuple[list, list]:
        """What the primary and the secondary recorded after ``marks`` (a dead endpoint: [])."""
        return tuple(
            [m.received(i) for i in range(mark + 1, m.last_id() + 1)] if m.url else []
            for m, mark in zip((self.primary, self.secondary), marks)
        )

    def access_entry(self, test_id: str, timeout: float = 10.0) -> tuple[int, dict]:
        """The access-log line of the request sent with ``ID_HEADER: test_id``: (status, the
        filter state ``wasm.ai_gateway`` as JSON)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.access_log.read_text(errors="replace") if self.access_log.exists() else ""
            for line in text.splitlines():
                rid, _, rest = line.partition(" ")
                if rid == test_id:
                    status, _, state = rest.partition(" ")
                    assert state not in ("", "-"), f"no filter state wasm.ai_gateway in the access log: {line!r}"
                    return int(status), json.loads(state)
            if time.monotonic() > deadline:
                raise AssertionError(f"no access-log line for {test_id} after {timeout}s:\n{text[-2000:]}")
            time.sleep(0.05)


def dead_endpoint() -> types.SimpleNamespace:
    """Stands in for a Mock: a loopback port nothing listens on (connection refused)."""
    return types.SimpleNamespace(name="dead", port=free_port(), url=None)


def start_setup(launcher, cfg: dict, *, doc: dict | None = None, primary=None, **kw) -> Setup:
    primary = primary or launcher.mock("primary")
    secondary = launcher.mock("secondary")
    access_log = launcher.workdir / f"access-{uuid.uuid4().hex[:8]}.log"
    doc = with_access_log(doc if doc is not None else load_demo_yaml(), access_log)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
        gw = launcher.envoy(
            {"mock_primary": primary, "mock_secondary": secondary},
            cfg,
            extra_args=("--file-flush-interval-msec", "50", *kw.pop("extra_args", ())),
            **kw,
        )
    return Setup(gw, primary, secondary, access_log)


@pytest.fixture(scope="module")
def shared(module_launcher) -> Setup:
    """The demo configuration (see the module doc), default timeouts, ``fallback_on`` all."""
    return start_setup(module_launcher, plugin_config())


@pytest.fixture
def g(shared) -> Setup:
    shared.gw.assert_alive()
    shared.reset()
    yield shared
    shared.reset()


@pytest.fixture(scope="module")
def fast_timeouts(module_launcher) -> Setup:
    """``timeout_ms`` 500 (every model): an attempt must start answering within 0.5 s."""
    return start_setup(module_launcher, plugin_config(timeout_ms=500))


@pytest.fixture
def t(fast_timeouts) -> Setup:
    fast_timeouts.gw.assert_alive()
    fast_timeouts.reset()
    yield fast_timeouts
    fast_timeouts.reset()


# --------------------------------------------------------------------------------------------
# Requests and expectations
# --------------------------------------------------------------------------------------------


def send(s: Setup, body: bytes | dict, headers: dict | None = None, timeout: float = 60) -> tuple[Reply, str, float]:
    """One request (a fresh id in ``ID_HEADER``): (reply, its id, seconds)."""
    rid = uuid.uuid4().hex
    t0 = time.monotonic()
    reply = chat(s.gw, body, headers={ID_HEADER: rid, **(headers or {})}, timeout=timeout)
    return reply, rid, time.monotonic() - t0


def stream(s: Setup, body: dict, headers: dict | None = None, timeout: float = 60):
    """A ``stream: true`` request read to its end or to the connection's end: (status, headers,
    bytes, ended cleanly, id, seconds)."""
    rid = uuid.uuid4().hex
    t0 = time.monotonic()
    r = requests.post(
        s.gw.url + "/v1/chat/completions",
        data=json.dumps(body),
        headers={"content-type": "application/json", ID_HEADER: rid, **(headers or {})},
        stream=True,
        timeout=timeout,
    )
    got, clean = b"", True
    try:
        for chunk in r.iter_content(None):
            got += chunk
    except requests.exceptions.RequestException:
        clean = False
    r.close()
    return r.status_code, r.headers, got, clean, rid, time.monotonic() - t0


def sse_events(raw: bytes) -> list[bytes]:
    return [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]


def client_body(model: str, size: int = 0, **extra) -> bytes:
    """A chat body with the client's own spacing and escapes, padded to ``size`` bytes."""
    head = b'{ "model" : "%s" , "messages" : [ {"role":"user","content":"Gr\\u00fc\\u00dfe ' % model.encode()
    rest = {"user": "u-1", "metadata": {"k": [1, 2.5, None]}, **extra}
    tail = b'"} ] , ' + json.dumps(rest)[1:].encode()
    pad = max(0, size - len(head) - len(tail))
    return head + (b"0123456789abcdef" * (pad // 16 + 1))[:pad] + tail


def rewritten(client: bytes, model: str, *, first: str) -> bytes:
    """The client's body as the gateway sends it to ``model`` (docs/design.md, request path):
    the model's name in place, its cap and temperature default added right after ``{`` (the
    client sent neither), its system prompt first in ``messages``."""
    out = client.replace(b'"%s"' % first.encode(), b'"%s"' % model.encode(), 1)
    added = {A: (A_CAP, A_TEMP), B: (B_CAP, B_TEMP), X: None}[model]
    if added:
        out = b'{"max_tokens":%d,"temperature":%s,' % (added[0], str(added[1]).encode()) + out[1:]
    if model == A:
        system = b'{"role":"system","content":"%s"},' % A_PROMPT.encode()
        out = out.replace(b'"messages" : [', b'"messages" : [' + system, 1)
    return out


def assert_sent_exactly(rec, expected: bytes, what: str) -> None:
    assert rec.body == expected, (
        f"{what}: the body differs from the expected {len(expected)} bytes (got {len(rec.body)}): "
        f"got {rec.body[:300]!r}… expected {expected[:300]!r}…"
    )
    assert rec.content_length == len(rec.body), f"{what}: content-length {rec.content_length_raw!r}, body {len(rec.body)}"
    assert not rec.chunked, f"{what}: sent chunked"


def assert_key(rec, what: str, key: str = TEST_KEY) -> None:
    assert rec.headers("authorization") == [f"Bearer {key}"], f"{what}: {rec.header_pairs}"


def models_of(recs) -> list[str]:
    return [r.json().get("model") for r in recs]


def served(reply) -> tuple[str | None, str | None, str | None]:
    """Model, version and attempts the response names. `x-ai-gateway-attempts` is set only when
    the request took more than one attempt: absent reads as "1" (and is never sent as "1")."""
    h = reply.headers
    attempts = h.get("x-ai-gateway-attempts")
    assert attempts != "1", "x-ai-gateway-attempts is only set for more than one attempt"
    return h.get("x-ai-gateway-model"), h.get("x-ai-gateway-version"), attempts or "1"


def metric_deltas(before, after, *series: tuple) -> dict:
    """``{(name, labels…): after - before}`` for each ``(name, {labels})``."""
    out = {}
    for name, labels in series:
        out[(name, tuple(sorted(labels.items())))] = after.total(name, **labels) - before.total(name, **labels)
    return out


def wait_metrics(gw: Gateway, pred, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(gw)
        if pred(s):
            time.sleep(0.1)  # the request's other series are written one after the other
            return scrape(gw)
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s still not {what}:\n{s.lines()}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# 1. A fails on every endpoint: B answers, with B's own rewrite of the client's bytes
# --------------------------------------------------------------------------------------------


def test_a_503_on_every_endpoint_falls_back_to_b_with_bs_rewrite_and_the_key(g):
    g.fail({A: 503})
    before = g.gw.wasm_vm_health()
    marks = g.marks()
    client = client_body(A, max_tokens=8000)
    reply, _, _ = send(g, client, headers={"authorization": "Bearer client-secret"})

    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    assert reply.headers.get("x-mock-provider") == "secondary"
    assert reply.json()["model"] == B
    assert reply.json()["choices"][0]["message"]["content"] == "Hello from the mock provider"
    assert_reply_clean(reply, "fallback reply")
    assert "x-ai-gateway-answered-by" not in reply.headers, "the upstream filter's internal header reached the client"

    (first,), (second,) = g.since(marks)
    # Attempt 1: A, A's own settings; attempt 2: B, B's own settings and none of A's.
    sent_a, sent_b = first.json(), second.json()
    assert sent_a["model"] == A and second.json()["model"] == B
    assert sent_a["max_tokens"] == A_CAP and sent_a["temperature"] == A_TEMP
    assert sent_a["messages"][0] == {"role": "system", "content": A_PROMPT}
    assert sent_b["max_tokens"] == B_CAP, "B's cap (the client asked 8000)"
    assert sent_b["temperature"] == B_TEMP, "B's temperature default"
    assert [m["role"] for m in sent_b["messages"]] == ["user"], "A's system prompt went to B"
    assert sent_b["messages"][0]["content"].startswith("Grüße")
    assert sent_b["user"] == "u-1" and sent_b["metadata"] == {"k": [1, 2.5, None]}
    # Byte for byte: the client's bytes with B's edits only (the cap lowered in place).
    expected_b = client.replace(b'"%s"' % A.encode(), b'"%s"' % B.encode(), 1).replace(b'"max_tokens": 8000', b'"max_tokens": 4096', 1)
    expected_b = b'{"temperature":0.7,' + expected_b[1:]
    assert_sent_exactly(second, expected_b, "B's attempt")
    assert first.content_length == len(first.body)
    for rec, what in ((first, "A's attempt"), (second, "B's attempt")):
        assert_key(rec, what)
        assert "client-secret" not in str(rec.header_pairs), what
        assert rec.path == "/v1/chat/completions"
    g.gw.assert_no_vm_crash_since(before)


# --------------------------------------------------------------------------------------------
# 2. 429 with Retry-After
# --------------------------------------------------------------------------------------------

RETRY_AFTER = 3


def test_a_429_with_retry_after_falls_back_to_b_without_waiting(g):
    g.fail({A: 429})
    marks = g.marks()
    reply, _, took = send(g, client_body(A), headers={"x-mock-retry-after": str(RETRY_AFTER)})
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    # Envoy's rate-limited back-off would have waited RETRY_AFTER seconds before asking B.
    assert took < RETRY_AFTER, f"B answered after {took:.2f}s: the retry waited for A's Retry-After"


def test_without_429_in_fallback_on_the_same_model_is_retried_after_retry_after(launcher):
    s = start_setup(launcher, plugin_config(fallback_on=["5xx", "timeout", "reset", "connect_failure"]))
    s.fail({A: 429}, secondary=False)  # A is rate-limited on the primary only
    marks = s.marks()
    reply, _, took = send(s, client_body(A), headers={"x-mock-retry-after": str(RETRY_AFTER)})
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (A, A_VERSION, "2"), dict(reply.headers)
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [A], "a 429 moved to another model"
    assert primary[0].body == secondary[0].body, "the retry of the same model did not replay its body"
    # Envoy honoured the Retry-After the filter kept (whole seconds on Envoy's clock)…
    assert took >= 0.9 * RETRY_AFTER - 0.2, f"retried after {took:.2f}s, before the {RETRY_AFTER}s Retry-After"
    # …and not much longer (not the 10 s max_interval, nor another attempt's wait).
    assert took < 2 * RETRY_AFTER, f"retried after {took:.2f}s"
    after = wait_metrics(s.gw, lambda m: m.total(REQUESTS, model=A) >= 1, "the request counted")
    assert after.total(FALLBACKS) == 0, after.lines(FALLBACKS)
    assert after.total(MODEL_ERRORS, model=A, error_type="http_429") == 1, after.lines(MODEL_ERRORS)
    assert after.total(REQUESTS, model=A, status="200") == 1, after.lines(REQUESTS)


# --------------------------------------------------------------------------------------------
# 3. Timeout before the response starts
# --------------------------------------------------------------------------------------------


def test_a_silent_past_timeout_ms_falls_back_to_b_and_counts_a_timeout(t):
    for m in (t.primary, t.secondary):
        m.control({"delay_models": {A: 3000}})
    before = scrape(t.gw)
    marks = t.marks()
    reply, rid, took = send(t, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    assert took < 3.0, f"B answered after {took:.2f}s: not before A's 3 s answer"
    primary, secondary = t.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    after = wait_metrics(
        t.gw, lambda s: s.total(REQUESTS, model=B) > before.total(REQUESTS, model=B), "the request counted"
    )
    d = metric_deltas(
        before,
        after,
        (FALLBACKS, {"from_model": A, "to_model": B, "cause": "timeout"}),
        (FALLBACKS, {}),
        (MODEL_ERRORS, {"model": A, "error_type": "timeout"}),
        (MODEL_ERRORS, {}),
        (REQUESTS, {"model": B, "status": "200"}),
    )
    assert list(d.values()) == [1, 1, 1, 1, 1], d
    status, entry = t.access_entry(rid)
    assert status == 200 and entry["model"] == B and entry["attempts"] == 2, entry
    assert entry["fallback_cause"] == "timeout", entry


# --------------------------------------------------------------------------------------------
# 4. 5. Streams: before the first byte a fallback; after it, never
# --------------------------------------------------------------------------------------------


def test_a_stream_falls_back_before_its_first_byte_and_arrives_whole_from_b(g):
    g.fail({A: 503})
    before = scrape(g.gw)
    marks = g.marks()
    body = json.loads(client_body(A))
    body["stream"] = True
    status, headers, raw, clean, rid, _ = stream(
        g, body, {"x-mock-prompt-tokens": "100", "x-mock-completion-tokens": "100"}
    )
    assert status == 200 and clean, raw[-300:]
    assert (headers.get("x-ai-gateway-model"), headers.get("x-ai-gateway-attempts")) == (B, "2"), dict(headers)
    assert headers.get("content-type", "").startswith("text/event-stream")
    events = sse_events(raw)
    assert events[-1] == b"[DONE]", raw[-300:]
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {B}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from the mock provider"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks), "the usage chunk the client did not ask for reached it"

    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    sent_b = secondary[0].json()
    assert sent_b["stream"] is True and sent_b["stream_options"] == {"include_usage": True}
    assert sent_b["max_tokens"] == B_CAP and sent_b["temperature"] == B_TEMP
    assert secondary[0].content_length == len(secondary[0].body)

    after = wait_metrics(
        g.gw, lambda s: s.total(TOKENS, model=B) >= before.total(TOKENS, model=B) + 200, "B's tokens counted"
    )
    d = metric_deltas(
        before,
        after,
        (TOKENS, {"model": B, "type": "prompt"}),
        (TOKENS, {"model": B, "type": "completion"}),
        (TOKENS, {"model": A}),
        (REQUESTS, {"model": B, "status": "200"}),
        (REQUESTS, {"model": A}),
        (FALLBACKS, {"from_model": A, "to_model": B, "cause": "5xx"}),
    )
    assert list(d.values()) == [100, 100, 0, 1, 0, 1], d
    _, entry = g.access_entry(rid)
    assert (entry["model"], entry["prompt_tokens"], entry["completion_tokens"]) == (B, 100, 100), entry


def test_a_failure_after_the_stream_started_is_not_retried_and_counts_as_an_error_of_that_model(g):
    before = scrape(g.gw)
    marks = g.marks()
    body = json.loads(client_body(A))
    body["stream"] = True
    status, headers, raw, clean, rid, _ = stream(g, body, {"x-mock-chunks": "6", "x-mock-abort-after-chunks": "2"})
    assert status == 200, raw[:300]
    assert headers.get("x-ai-gateway-model") == A
    assert not clean and b"[DONE]" not in raw, "the stream ended normally"
    assert len([e for e in sse_events(raw) if e != b"[DONE]"]) <= 2, raw
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and secondary == [], "a started stream was retried"
    after = wait_metrics(
        g.gw, lambda s: s.total(MODEL_ERRORS, model=A) > before.total(MODEL_ERRORS, model=A), "A's error counted"
    )
    d = metric_deltas(
        before,
        after,
        (MODEL_ERRORS, {"model": A}),
        (MODEL_ERRORS, {"model": A, "error_type": "reset"}),
        (MODEL_ERRORS, {"model": B}),
        (FALLBACKS, {}),
    )
    assert list(d.values()) == [1, 1, 0, 0], d
    _, entry = g.access_entry(rid)
    assert entry["model"] == A and entry["attempts"] == 1 and entry["fallback_cause"] is None, entry


# --------------------------------------------------------------------------------------------
# 6. Every model fails
# --------------------------------------------------------------------------------------------


def test_when_the_fallback_list_is_exhausted_the_last_failure_reaches_the_client(g):
    g.fail({A: 503, B: 502})
    before = scrape(g.gw)
    marks = g.marks()
    reply, rid, _ = send(g, client_body(A))
    assert reply.status == 502, reply.body[:300]
    assert f"model {B} fails with 502" in reply.json()["error"]["message"], reply.body[:300]
    assert served(reply) == (B, B_VERSION, str(MAX_ATTEMPTS)), dict(reply.headers)
    primary, secondary = g.since(marks)
    attempts = primary + secondary
    assert len(attempts) == MAX_ATTEMPTS, (models_of(primary), models_of(secondary))
    assert models_of(primary) == [A, B] and models_of(secondary) == [B]
    after = wait_metrics(
        g.gw, lambda s: s.total(REQUESTS, model=B) > before.total(REQUESTS, model=B), "the request counted"
    )
    d = metric_deltas(
        before,
        after,
        (MODEL_ERRORS, {"model": A, "error_type": "http_5xx"}),
        (MODEL_ERRORS, {"model": B, "error_type": "http_5xx"}),
        (REQUESTS, {"model": B, "status": "502"}),
        (FALLBACKS, {"from_model": A, "to_model": B, "cause": "5xx"}),
    )
    assert list(d.values()) == [1, 2, 1, 1], d
    status, entry = g.access_entry(rid)
    assert status == 502 and entry["model"] == B and entry["attempts"] == MAX_ATTEMPTS, entry


# --------------------------------------------------------------------------------------------
# 7. A circuit already open: the first attempt goes to the first healthy fallback
# --------------------------------------------------------------------------------------------


def test_a_request_for_a_model_whose_circuit_is_open_goes_to_its_fallback_on_the_first_attempt(launcher):
    cfg = plugin_config()
    cfg["failover"] = {"window_s": 30, "min_requests": 3, "cooldown_s": 60}
    cfg["failover_threshold"] = 0.5
    s = start_setup(launcher, cfg)
    s.fail({A: 503})
    for _ in range(20):
        if scrape(s.gw).total(CIRCUIT, model=A) == 1:
            break
        reply, _, _ = send(s, client_body(A))
        assert reply.status == 200 and served(reply)[0] == B, (reply.status, dict(reply.headers))
    else:
        raise AssertionError("A's circuit did not open")
    assert scrape(s.gw).total(MODEL_ERRORS, model=A) >= 3

    s.reset()  # A is healthy again: only its open circuit keeps it out
    marks = s.marks()
    reply, rid, _ = send(s, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "1"), dict(reply.headers)
    primary, secondary = s.since(marks)
    assert models_of(primary) == [B] and secondary == [], (models_of(primary), models_of(secondary))
    assert_sent_exactly(primary[0], rewritten(client_body(A), B, first=A), "B's first attempt")
    _, entry = s.access_entry(rid)
    assert entry["model"] == B and entry["attempts"] == 1, entry


# --------------------------------------------------------------------------------------------
# 8. Client errors never fall back
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
def test_a_client_error_from_the_provider_reaches_the_client_after_one_attempt(g, status):
    g.fail({A: status})
    before = scrape(g.gw)
    marks = g.marks()
    reply, rid, _ = send(g, client_body(A))
    assert reply.status == status, reply.body[:300]
    assert served(reply) == (A, A_VERSION, "1"), dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and secondary == []
    status_logged, entry = g.access_entry(rid)
    assert status_logged == status and entry["attempts"] == 1 and entry["model"] == A, entry
    after = scrape(g.gw)
    assert after.total(FALLBACKS) == before.total(FALLBACKS)
    assert after.total(MODEL_ERRORS, model=A) == before.total(MODEL_ERRORS, model=A)


# --------------------------------------------------------------------------------------------
# 9. The body's length changes both ways
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1024, 1024 * 1024, 16 * 1024 * 1024 - 4096], ids=["1KiB", "1MiB", "16MiB"])
@pytest.mark.parametrize(
    "first,fallback", [(A, B), (X, A)], ids=["to a shorter name (A to B)", "to a longer name (X to A)"]
)
def test_a_fallback_body_is_the_clients_bytes_with_the_fallback_models_rewrite(g, size, first, fallback):
    g.fail({first: 503})
    client = client_body(first, size)
    assert abs(len(client) - size) <= 1, len(client)
    marks = g.marks()
    reply, _, _ = send(g, client)
    assert reply.status == 200, reply.body[:300]
    assert served(reply)[0] == fallback and served(reply)[2] == "2", dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [first] and len(secondary) == 1, (models_of(primary), len(secondary))
    assert_sent_exactly(primary[0], rewritten(client, first, first=first), f"{first}'s attempt")
    assert_sent_exactly(secondary[0], rewritten(client, fallback, first=first), f"{fallback}'s attempt")
    assert len(secondary[0].body) != len(primary[0].body)


# --------------------------------------------------------------------------------------------
# 10. key_injection: upstream — the key on every attempt, in no log line
# --------------------------------------------------------------------------------------------

KEY_UPSTREAM_YAML = REPO / "envoy" / "key-upstream.yaml"
UPSTREAM_KEY = "hs_fb~A+b/c=d.e-f:0123456789-XyZ/w+=="


def key_upstream_doc() -> dict:
    """envoy/key-upstream.yaml with what fallback needs, where the shipped file lacks it: the
    attempt count on requests and responses, the route's ``per_try_idle_timeout``, A's
    fallback list, and the filter as the cluster's upstream filter (the same configuration and
    VM objects as the listener's, as demo.yaml does with YAML anchors)."""
    doc = yaml.safe_load(KEY_UPSTREAM_YAML.read_text())
    vh = hcm(doc)["route_config"]["virtual_hosts"][0]
    vh.setdefault("include_request_attempt_count", True)
    vh.setdefault("include_attempt_count_in_response", True)
    route_cfg(doc)["retry_policy"].setdefault("per_try_idle_timeout", "60s")
    listener_wasm = harness_envoy.wasm_filter_config(doc)
    cfg = json.loads(listener_wasm["configuration"]["value"])
    for m in cfg["models"]:
        if m["name"] == A:
            m.setdefault("fallback", [B])
    listener_wasm["configuration"]["value"] = json.dumps(cfg)
    (mock,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == "mock"]
    opts = mock["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    present = [
        f for f in opts["http_filters"] if f.get("typed_config", {}).get("config", {}).get("root_id") == "ai_gateway_upstream"
    ]
    if not present:
        opts["http_filters"].insert(
            0,
            {
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "ai_gateway_upstream",
                        "root_id": "ai_gateway_upstream",
                        "allow_on_headers_stop_iteration": True,
                        "failure_policy": "FAIL_RELOAD",
                        "configuration": listener_wasm["configuration"],
                        "vm_config": listener_wasm["vm_config"],
                    },
                },
            },
        )
    return doc


def test_with_key_injection_upstream_every_attempt_carries_the_key_and_no_log_line_does(launcher):
    doc = key_upstream_doc()
    cfg = json.loads(harness_envoy.wasm_filter_config(doc)["configuration"]["value"])
    assert cfg["upstream"].get("key_injection") == "upstream"
    s = start_setup(launcher, cfg, doc=doc, key=UPSTREAM_KEY, log_level="trace", wasm_log_level="trace")
    auth = {"authorization": "Bearer client-secret"}
    replies, attempts = [], []
    for status in (503, 429):
        s.fail({A: status})
        marks = s.marks()
        reply, _, _ = send(s, client_body(A), headers={**auth, "x-mock-retry-after": "0"})
        replies.append(reply)
        primary, secondary = s.since(marks)
        assert reply.status == 200, (status, reply.status, reply.body[:300])
        assert served(reply) == (B, B_VERSION, "2"), (status, dict(reply.headers))
        assert models_of(primary) == [A] and models_of(secondary) == [B], status
        assert_sent_exactly(secondary[0], rewritten(client_body(A), B, first=A), f"B's attempt after {status}")
        attempts += primary + secondary
    # Every model fails: three attempts, each keyed.
    s.fail({A: 503, B: 503})
    marks = s.marks()
    reply, _, _ = send(s, client_body(A), headers=auth)
    replies.append(reply)
    assert reply.status == 503 and served(reply) == (B, B_VERSION, "3"), (reply.status, dict(reply.headers))
    primary, secondary = s.since(marks)
    assert len(primary + secondary) == 3
    attempts += primary + secondary
    for rec in attempts:
        assert_key(rec, f"attempt {rec}", UPSTREAM_KEY)
        assert "client-secret" not in str(rec.header_pairs)
        assert rec.headers("x-ai-gateway-inject-key") == []
    for reply in replies:
        assert_reply_clean(reply, "reply", UPSTREAM_KEY)
    log = s.gw.log()
    assert "[trace][wasm]" in log and "[trace][router]" in log and "router decoding headers" in log
    leaked = log_lines_with(log, UPSTREAM_KEY)
    assert not leaked, "the key is in Envoy's log:\n" + "\n".join(leaked[:20])
    assert "client-secret" in log, "the router's header dump did not run: the check above proves nothing"
    stats = s.gw.stats()
    assert stats["cluster.mock.credential_injector.injected"] == len(attempts), stats.get(
        "cluster.mock.credential_injector.injected"
    )


# --------------------------------------------------------------------------------------------
# 11. A long stream outlives timeout_ms
# --------------------------------------------------------------------------------------------


def test_a_stream_longer_than_timeout_ms_with_short_gaps_arrives_whole(t):
    marks = t.marks()
    body = json.loads(client_body(A))
    body["stream"] = True
    status, headers, raw, clean, rid, took = stream(t, body, {"x-mock-chunks": "12", "x-mock-chunk-delay-ms": "150"})
    assert status == 200 and clean, raw[-300:]
    # One attempt: no x-ai-gateway-attempts (it is set only when there were more).
    assert headers.get("x-ai-gateway-model") == A and headers.get("x-ai-gateway-attempts") is None
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    contents = [
        c["choices"][0]["delta"]["content"]
        for c in map(json.loads, events[:-1])
        if c["choices"] and "content" in c["choices"][0]["delta"]
    ]
    assert len(contents) == 12, contents
    assert took >= 1.0, f"the stream took {took:.2f}s: not longer than timeout_ms (0.5 s), proves nothing"
    primary, secondary = t.since(marks)
    assert models_of(primary) == [A] and secondary == []
    status_logged, entry = t.access_entry(rid)
    assert status_logged == 200 and entry["attempts"] == 1


# --------------------------------------------------------------------------------------------
# 12. Metrics and the access-log entry of a fallback
# --------------------------------------------------------------------------------------------


def test_a_fallback_is_counted_per_model_and_logged_with_the_model_that_answered(g):
    g.fail({A: 503})
    before = scrape(g.gw)
    reply, rid, _ = send(g, client_body(A), headers={"x-mock-prompt-tokens": "100", "x-mock-completion-tokens": "100"})
    assert reply.status == 200 and served(reply)[0] == B, reply.body[:300]
    after = wait_metrics(
        g.gw, lambda s: s.total(COST, model=B) > before.total(COST, model=B), "B's cost counted"
    )
    d = metric_deltas(
        before,
        after,
        (FALLBACKS, {"from_model": A, "to_model": B, "cause": "5xx"}),
        (FALLBACKS, {}),
        (MODEL_ERRORS, {"model": A, "version": A_VERSION, "error_type": "http_5xx"}),
        (MODEL_ERRORS, {}),
        (REQUESTS, {"route": "_direct", "model": B, "version": B_VERSION, "status": "200"}),
        (REQUESTS, {}),
        (TOKENS, {"model": B, "version": B_VERSION, "type": "prompt"}),
        (TOKENS, {"model": B, "version": B_VERSION, "type": "completion"}),
        (TOKENS, {"model": A}),
        # gpt-4.1: 2.00 $/M input, 8.00 $/M output: 100 × 2 + 100 × 8 µ$.
        (COST, {"route": "_direct", "model": B, "version": B_VERSION}),
        (COST, {"model": A}),
    )
    assert list(d.values()) == [1, 1, 1, 1, 1, 1, 100, 100, 0, 1000, 0], d
    status, entry = g.access_entry(rid)
    assert status == 200
    assert entry == {
        "route": "_direct",
        "model": B,
        "version": B_VERSION,
        "attempts": 2,
        "fallback_cause": "5xx",
        "prompt_tokens": 100,
        "completion_tokens": 100,
        "cost_usd": "0.001",
    }, entry


# --------------------------------------------------------------------------------------------
# More causes: a reset, a refused connection
# --------------------------------------------------------------------------------------------


def test_a_reset_before_the_response_falls_back_to_b_and_counts_a_reset(g):
    g.control({"reset_models": [A]})
    before = scrape(g.gw)
    marks = g.marks()
    reply, rid, _ = send(g, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    after = wait_metrics(g.gw, lambda s: s.total(REQUESTS, model=B) > before.total(REQUESTS, model=B), "counted")
    d = metric_deltas(
        before,
        after,
        (FALLBACKS, {"from_model": A, "to_model": B, "cause": "reset"}),
        (MODEL_ERRORS, {"model": A, "error_type": "reset"}),
        (MODEL_ERRORS, {"model": A}),
    )
    assert list(d.values()) == [1, 1, 1], d
    _, entry = g.access_entry(rid)
    assert entry["fallback_cause"] == "reset" and entry["attempts"] == 2, entry


def test_a_refused_connection_falls_back_to_b_and_counts_a_connect_failure(launcher):
    """The primary endpoint is down (connection refused): attempt 1 never reaches a provider;
    attempt 2 goes to the secondary with B (``connect_failure`` is in the default
    ``fallback_on``), and the cause is ``connect_failure``, not ``reset``."""
    s = start_setup(launcher, plugin_config(), primary=dead_endpoint())
    marks = s.marks()
    reply, rid, _ = send(s, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    _, secondary = s.since(marks)
    assert models_of(secondary) == [B]
    assert_sent_exactly(secondary[0], rewritten(client_body(A), B, first=A), "B's attempt")
    after = wait_metrics(s.gw, lambda m: m.total(REQUESTS, model=B) >= 1, "counted")
    assert after.total(FALLBACKS, from_model=A, to_model=B, cause="connect_failure") == 1, after.lines(FALLBACKS)
    assert after.total(MODEL_ERRORS, model=A, error_type="connect_failure") == 1, after.lines(MODEL_ERRORS)
    _, entry = s.access_entry(rid)
    assert entry["fallback_cause"] == "connect_failure", entry


def test_a_refused_connection_retries_the_same_model_when_connect_failure_is_not_in_fallback_on(launcher):
    s = start_setup(
        launcher, plugin_config(fallback_on=["5xx", "429", "timeout", "reset"]), primary=dead_endpoint()
    )
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (A, A_VERSION, "2"), dict(reply.headers)
    _, secondary = s.since(marks)
    assert models_of(secondary) == [A], "a connect failure moved to another model"
    after = wait_metrics(s.gw, lambda m: m.total(REQUESTS) >= 1, "counted")
    assert after.total(FALLBACKS) == 0, after.lines(FALLBACKS)


# --------------------------------------------------------------------------------------------
# Exhaustion with 429s; max_attempts; max_duration_ms
# --------------------------------------------------------------------------------------------


def test_when_every_model_is_rate_limited_the_last_429_and_its_retry_after_reach_the_client(g):
    """A 429 (Retry-After dropped: B is next) → B 429 (kept: B is the last model, Envoy waits
    its 1 s) → B 429 on the last attempt: the client gets it with its Retry-After."""
    g.fail({A: 429, B: 429})
    marks = g.marks()
    reply, _, took = send(g, client_body(A), headers={"x-mock-retry-after": "1"})
    assert reply.status == 429, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "3"), dict(reply.headers)
    assert reply.headers.get("retry-after") == "1", dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A, B] and models_of(secondary) == [B]
    assert took >= 0.8, f"{took:.2f}s: B's second attempt did not wait for B's Retry-After"


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_max_attempts_bounds_every_attempt_of_a_request(launcher, max_attempts):
    s = start_setup(launcher, plugin_config(max_attempts=max_attempts))
    s.fail({A: 503, B: 503})
    marks = s.marks()
    reply, rid, _ = send(s, client_body(A))
    assert reply.status == 503, reply.body[:300]
    primary, secondary = s.since(marks)
    if max_attempts == 1:
        assert served(reply) == (A, A_VERSION, "1"), dict(reply.headers)
        assert models_of(primary) == [A] and secondary == []
    else:
        assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
        assert models_of(primary) == [A] and models_of(secondary) == [B]
    _, entry = s.access_entry(rid)
    assert entry["attempts"] == max_attempts, entry


def test_max_duration_ms_bounds_the_wait_for_a_retry_after(launcher):
    """``max_duration_ms`` (x-envoy-upstream-rq-timeout-ms) covers the whole request, the
    back-off included: a 3 s Retry-After of a model retried as itself is cut at 1.5 s."""
    s = start_setup(
        launcher, plugin_config(fallback_on=["5xx", "timeout", "reset", "connect_failure"], max_duration_ms=1500)
    )
    s.fail({A: 429}, secondary=False)
    marks = s.marks()
    reply, _, took = send(s, client_body(A), headers={"x-mock-retry-after": str(RETRY_AFTER)})
    primary, secondary = s.since(marks)
    assert took < RETRY_AFTER, f"answered after {took:.2f}s: max_duration_ms (1.5 s) did not bound the wait"
    assert reply.status == 504, reply.body[:300]  # Envoy: upstream request timeout
    assert models_of(primary) == [A] and secondary == [], (reply.status, took)


# --------------------------------------------------------------------------------------------
# Other endpoints, chunked bodies, concurrent requests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,client,expected_b",
    [
        (
            "/v1/completions",
            b'{"model":"claude-sonnet-4.5","prompt":"hi"}',
            b'{"max_tokens":4096,"temperature":0.7,"model":"gpt-4.1","prompt":"hi"}',
        ),
        (
            "/v1/embeddings",
            b'{"model":"claude-sonnet-4.5","input":["a","b"]}',
            b'{"model":"gpt-4.1","input":["a","b"]}',
        ),
        (
            "/v1/responses",
            b'{"model":"claude-sonnet-4.5","input":"hi"}',
            b'{"max_output_tokens":4096,"temperature":0.7,"model":"gpt-4.1","input":"hi"}',
        ),
    ],
    ids=["completions", "embeddings", "responses"],
)
def test_every_endpoint_falls_back_with_bs_rewrite_for_that_endpoint(g, path, client, expected_b):
    g.fail({A: 503})
    marks = g.marks()
    rid = uuid.uuid4().hex
    reply = chat(g.gw, client, path=path, headers={ID_HEADER: rid})
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    assert reply.json()["model"] == B
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and len(secondary) == 1
    assert secondary[0].path == path
    assert_sent_exactly(secondary[0], expected_b, f"B's attempt on {path}")


def test_a_chunked_client_body_falls_back_with_an_exact_content_length(g):
    g.fail({A: 503})
    client = client_body(A, 64 * 1024)
    marks = g.marks()

    def chunks():
        for i in range(0, len(client), 7000):
            yield client[i : i + 7000]

    r = requests.post(
        g.gw.url + "/v1/chat/completions", data=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-ai-gateway-model") == B
    primary, secondary = g.since(marks)
    assert_sent_exactly(primary[0], rewritten(client, A, first=A), "A's attempt of a chunked request")
    assert_sent_exactly(secondary[0], rewritten(client, B, first=A), "B's attempt of a chunked request")


def test_concurrent_fallbacks_each_carry_their_own_body(g):
    g.fail({A: 503})
    marks = g.marks()
    bodies = {f"u-{i}": client_body(A, 2048 + 97 * i, user=f"u-{i}") for i in range(24)}
    errors: list[str] = []

    def work(users):
        session = requests.Session()
        for u in users:
            r = session.post(g.gw.url + "/v1/chat/completions", data=bodies[u], headers={"content-type": "application/json"}, timeout=30)
            if r.status_code != 200 or r.headers.get("x-ai-gateway-model") != B:
                errors.append(f"{u}: {r.status_code} {r.headers.get('x-ai-gateway-model')} {r.text[:200]}")

    users = sorted(bodies)
    threads = [threading.Thread(target=work, args=(users[i::6],)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    primary, secondary = g.since(marks)
    assert sorted(models_of(primary)) == [A] * 24 and len(secondary) == 24
    for rec in secondary:
        user = rec.json()["user"]
        assert_sent_exactly(rec, rewritten(bodies[user], B, first=A), f"B's attempt for {user}")


# --------------------------------------------------------------------------------------------
# The fallback list in order, skipping a model whose circuit is open
# --------------------------------------------------------------------------------------------

C, C_VERSION = "gemini-2.5-flash", "1.0.0"


def test_a_fallback_skips_a_model_whose_circuit_is_open(launcher):
    """A's list is [C, B]: attempt 2 goes to C while C's circuit is closed, to B once it is open."""
    cfg = plugin_config()
    (a,) = [m for m in cfg["models"] if m["name"] == A]
    a["fallback"] = [C, B]
    cfg["models"].append({"name": C, "version": C_VERSION, "cluster": "mock"})
    cfg["failover"] = {"window_s": 30, "min_requests": 3, "cooldown_s": 60}
    s = start_setup(launcher, cfg)

    s.fail({A: 503})
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert reply.status == 200 and served(reply) == (C, C_VERSION, "2"), (reply.status, dict(reply.headers))
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [C]

    # Open C's circuit (requests for C by name: it has no fallback list, so it is tried).
    s.fail({C: 503})
    for _ in range(20):
        if scrape(s.gw).total(CIRCUIT, model=C) == 1:
            break
        reply, _, _ = send(s, client_body(C))
        assert reply.status == 503 and served(reply)[0] == C, (reply.status, dict(reply.headers))
    else:
        raise AssertionError("C's circuit did not open")
    assert scrape(s.gw).total(CIRCUIT, model=A) == 0

    # A fails: attempt 2 skips C (open, and failing anyway) and goes to B.
    s.fail({A: 503, C: 503})
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B], (models_of(primary), models_of(secondary))
    after = scrape(s.gw)
    assert after.total(FALLBACKS, from_model=A, to_model=B, cause="5xx") == 1, after.lines(FALLBACKS)
    assert after.total(FALLBACKS, from_model=A, to_model=C, cause="5xx") == 1, after.lines(FALLBACKS)


# --------------------------------------------------------------------------------------------
# stream_idle_timeout_ms (the route's per_try_idle_timeout) on a model with a fallback list
# --------------------------------------------------------------------------------------------


def test_a_stalled_stream_is_cut_by_the_idle_timeout_and_not_retried_while_a_steady_one_is_whole(launcher):
    doc = load_demo_yaml()
    route_cfg(doc)["retry_policy"]["per_try_idle_timeout"] = "0.5s"
    s = start_setup(launcher, plugin_config(stream_idle_timeout_ms=500), doc=doc)
    body = json.loads(client_body(A))
    body["stream"] = True

    status, _, raw, clean, _, _ = stream(s, body, {"x-mock-chunks": "8", "x-mock-chunk-delay-ms": "150"})
    assert status == 200 and clean and sse_events(raw)[-1] == b"[DONE]", raw[-300:]

    before = scrape(s.gw)
    marks = s.marks()
    status, headers, raw, clean, rid, _ = stream(s, body, {"x-mock-chunks": "4", "x-mock-chunk-delay-ms": "1500"})
    assert status == 200 and b"[DONE]" not in raw, raw[-300:]
    assert headers.get("x-ai-gateway-model") == A
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and secondary == [], "a started stream was retried"
    after = wait_metrics(
        s.gw, lambda m: m.total(MODEL_ERRORS, model=A) > before.total(MODEL_ERRORS, model=A), "A's error counted"
    )
    d = metric_deltas(before, after, (MODEL_ERRORS, {"model": A, "error_type": "timeout"}), (FALLBACKS, {}))
    assert list(d.values()) == [1, 0], d


# --------------------------------------------------------------------------------------------
# `ai-gateway canary analyze` against a real Prometheus: fallback hides a failing canary from
# its clients, not from the analysis
# --------------------------------------------------------------------------------------------

CANARY, CANARY_VERSION = "deepseek-v3.2", "2.0.0-canary.1"


def test_canary_analyze_rolls_back_a_canary_whose_every_attempt_fails_though_fallback_served_every_client(launcher):
    from harness import AI_GATEWAY_BIN
    from harness.prometheus import start_prometheus

    if not AI_GATEWAY_BIN.exists():
        pytest.fail(f"{AI_GATEWAY_BIN} missing: run `make cli-build`", pytrace=False)
    cfg = plugin_config()
    (canary,) = [m for m in cfg["models"] if m["name"] == CANARY]
    canary["fallback"] = [B]
    cfg["routes"] = [{"name": "chat", "targets": [{"model": B, "weight": 50}, {"model": CANARY, "weight": 50}]}]
    s = start_setup(launcher, cfg)
    prom = start_prometheus(launcher.workdir, [s.gw.admin_url.removeprefix("http://")], procs=launcher.procs)
    prom.wait_scraped()
    s.fail({CANARY: 503})
    marks = s.marks()
    n = 200
    replies = [send(s, client_body("chat"))[0] for _ in range(n)]
    assert {(r.status, served(r)[0]) for r in replies} == {(200, B)}, "fallback did not serve every client"
    attempts = [int(served(r)[2]) for r in replies]
    canary_picks = attempts.count(2)
    assert 50 <= canary_picks <= 150, canary_picks
    primary, secondary = s.since(marks)
    assert models_of(primary).count(CANARY) == canary_picks

    deadline = time.monotonic() + 30
    while True:
        total = prom.first_value('sum(ai_gateway_requests_total{route="chat"})') or 0
        errs = prom.first_value(f'sum(ai_gateway_model_errors_total{{model="{CANARY}"}})') or 0
        if total >= n and errs >= canary_picks:
            break
        assert time.monotonic() < deadline, f"Prometheus has {total} requests, {errs} canary errors"
        time.sleep(0.5)
    r = subprocess.run(
        [
            str(AI_GATEWAY_BIN), "canary", "analyze", "--prometheus", prom.url, "--route", "chat",
            "--canary", f"{CANARY}@{CANARY_VERSION}", "--window", "2m", "--min-requests", "10",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    print(r.stdout)
    assert r.returncode == 20, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.rstrip().endswith("verdict: rollback"), r.stdout
    assert "failed attempts per request: canary" in r.stdout and "> 0.02" in r.stdout, r.stdout
    assert "circuit breaker opened" not in r.stdout, "the breaker is configured never to open here"


# --------------------------------------------------------------------------------------------
# Escaped JSON, the client's own include_usage, a half-open probe that fails
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client,expected_b",
    [
        (
            b'{"mod\\u0065l":"claude-sonnet-4.5","messages":[{"role":"user","content":"hi"}]}',
            b'{"max_tokens":4096,"temperature":0.7,"mod\\u0065l":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}',
        ),
        (
            b'{"model":"claude\\u002dsonnet-4.5","messages":[{"role":"user","content":"hi"}],"temperature":null}',
            b'{"max_tokens":4096,"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"temperature":0.7}',
        ),
    ],
    ids=["escaped key", "escaped name, null temperature"],
)
def test_escaped_json_falls_back_with_bs_rewrite(g, client, expected_b):
    g.fail({A: 503})
    marks = g.marks()
    reply, _, _ = send(g, client)
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    primary, secondary = g.since(marks)
    assert models_of(primary) == [A] and len(secondary) == 1
    assert_sent_exactly(secondary[0], expected_b, "B's attempt")


def test_a_stream_whose_client_asked_for_usage_gets_bs_usage_chunk(g):
    g.fail({A: 503})
    body = json.loads(client_body(A))
    body.update(stream=True, stream_options={"include_usage": True})
    status, headers, raw, clean, rid, _ = stream(g, body, {"x-mock-prompt-tokens": "7", "x-mock-completion-tokens": "9"})
    assert status == 200 and clean, raw[-300:]
    assert headers.get("x-ai-gateway-model") == B
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    usage = json.loads(events[-2])
    assert usage["model"] == B and usage["choices"] == [], usage
    assert usage["usage"] == {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}, usage
    _, entry = g.access_entry(rid)
    assert (entry["model"], entry["prompt_tokens"], entry["completion_tokens"]) == (B, 7, 9), entry


def test_a_failing_half_open_probe_reopens_the_circuit_and_its_client_is_served_by_the_fallback(launcher):
    cooldown = 2
    cfg = plugin_config()
    cfg["failover"] = {"window_s": 30, "min_requests": 3, "cooldown_s": cooldown}
    s = start_setup(launcher, cfg)
    s.fail({A: 503})
    for _ in range(20):
        if scrape(s.gw).total(CIRCUIT, model=A) == 1:
            break
        send(s, client_body(A))
    else:
        raise AssertionError("A's circuit did not open")
    opened = time.monotonic()
    # Open: straight to B.
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert served(reply) == (B, B_VERSION, "1") and models_of(s.since(marks)[0]) == [B], dict(reply.headers)

    # After the cooldown: the probe goes to A, fails, B answers it; the circuit is open again.
    time.sleep(max(0.0, opened + cooldown + 0.3 - time.monotonic()))
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert reply.status == 200 and served(reply) == (B, B_VERSION, "2"), (reply.status, dict(reply.headers))
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    reopened = time.monotonic()
    assert scrape(s.gw).total(CIRCUIT, model=A) == 1
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert time.monotonic() - reopened < cooldown, "too slow to see the reopened circuit"
    assert served(reply) == (B, B_VERSION, "1") and models_of(s.since(marks)[0]) == [B], dict(reply.headers)

    # Healed: the next probe succeeds on A and closes the circuit.
    s.reset()
    time.sleep(max(0.0, reopened + cooldown + 0.3 - time.monotonic()))
    marks = s.marks()
    reply, _, _ = send(s, client_body(A))
    assert reply.status == 200 and served(reply) == (A, A_VERSION, "1"), (reply.status, dict(reply.headers))
    assert models_of(s.since(marks)[0]) == [A]
    deadline = time.monotonic() + 5
    while scrape(s.gw).total(CIRCUIT, model=A) != 0:
        assert time.monotonic() < deadline, "A's circuit did not close after a successful probe"
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Per-model timeout_ms across a fallback; a last attempt that times out
# --------------------------------------------------------------------------------------------


def test_every_attempt_gets_the_plans_longest_timeout_so_a_slower_fallback_can_answer(launcher):
    """A: timeout_ms 300, B: timeout_ms 1500. Envoy reads the per-try timeout once per request,
    so the filter gives every attempt of a request that may fall back the longest of its plan
    (docs/failover.md#timeouts): A, silent for 3 s, is cut at 1.5 s, and B, which takes 1 s,
    answers within it. (With A's 300 ms for every attempt B could never answer.)"""
    cfg = plugin_config()
    for m in cfg["models"]:
        if m["name"] == A:
            m["timeout_ms"] = 300
        if m["name"] == B:
            m["timeout_ms"] = 1500
    s = start_setup(launcher, cfg)
    s.control({"delay_models": {A: 3000, B: 1000}})
    before = scrape(s.gw)
    marks = s.marks()
    reply, rid, took = send(s, client_body(A))
    primary, secondary = s.since(marks)
    assert reply.status == 200, (
        f"{reply.status} after {took:.2f}s, headers {served(reply)}, attempts: primary {models_of(primary)}, "
        f"secondary {models_of(secondary)}; {reply.body[:200]!r}"
    )
    assert served(reply) == (B, B_VERSION, "2"), dict(reply.headers)
    assert models_of(primary) == [A] and models_of(secondary) == [B]
    after = wait_metrics(s.gw, lambda m: m.total(REQUESTS) > before.total(REQUESTS), "counted")
    assert after.total(MODEL_ERRORS, model=B) == 0, after.lines(MODEL_ERRORS)


def test_when_every_attempt_times_out_the_504_names_the_last_attempts_model_as_the_access_log_does(t):
    """A and B both silent past timeout_ms (500): A, B, B time out; Envoy answers 504. The
    client's x-ai-gateway-model / -attempts agree with the access-log entry and the metrics:
    the last attempt's model, 3 attempts, every failed attempt a timeout."""
    t.control({"delay_models": {A: 3000, B: 3000}})
    before = scrape(t.gw)
    marks = t.marks()
    reply, rid, took = send(t, client_body(A))
    assert reply.status == 504, reply.body[:300]
    assert took < 3.0, f"{took:.2f}s: the timeouts did not cut the attempts"
    primary, secondary = t.since(marks)
    assert models_of(primary) == [A, B] and models_of(secondary) == [B]
    status, entry = t.access_entry(rid)
    assert status == 504 and (entry["model"], entry["attempts"]) == (B, MAX_ATTEMPTS), entry
    after = wait_metrics(t.gw, lambda m: m.total(REQUESTS) > before.total(REQUESTS), "counted")
    d = metric_deltas(
        before,
        after,
        (MODEL_ERRORS, {"model": A, "error_type": "timeout"}),
        (MODEL_ERRORS, {"model": B, "error_type": "timeout"}),
        (MODEL_ERRORS, {}),
        (REQUESTS, {"model": B, "status": "504"}),
    )
    assert list(d.values()) == [1, 2, 3, 1], d
    # What the client is told agrees with the log and the metrics.
    assert served(reply) == (B, B_VERSION, str(MAX_ATTEMPTS)), dict(reply.headers)


def test_with_every_fallback_open_a_429_keeps_its_retry_after_and_the_same_model_is_retried(launcher):
    """B's circuit is open: a 429 of A has nowhere else to go, so its Retry-After is kept (Envoy
    waits it) and attempt 2 asks A again."""
    cfg = plugin_config()
    cfg["failover"] = {"window_s": 30, "min_requests": 3, "cooldown_s": 60}
    s = start_setup(launcher, cfg)
    s.fail({B: 503})
    for _ in range(20):
        if scrape(s.gw).total(CIRCUIT, model=B) == 1:
            break
        send(s, client_body(B))
    else:
        raise AssertionError("B's circuit did not open")
    s.fail({A: 429}, secondary=False)
    marks = s.marks()
    reply, _, took = send(s, client_body(A), headers={"x-mock-retry-after": "2"})
    assert reply.status == 200, reply.body[:300]
    assert served(reply) == (A, A_VERSION, "2"), dict(reply.headers)
    primary, secondary = s.since(marks)
    assert models_of(primary) == [A] and models_of(secondary) == [A]
    assert took >= 0.9 * 2 - 0.2, f"retried after {took:.2f}s: A's Retry-After (2 s) was dropped"


@pytest.mark.parametrize("size", [1024, 1024 * 1024], ids=["1KiB", "1MiB"])
def test_a_body_whose_model_comes_last_and_ends_with_a_newline_falls_back_byte_exact(g, size):
    """The first model's edits then span the whole body (system prompt at the start, the name at
    the end): the handoff carries the client's whole original prefix."""
    g.fail({A: 503})
    head = b'{"messages": [{"role": "user", "content": "'
    tail = b'"}], "stream": false, "model": "claude-sonnet-4.5"}\n'
    client = head + b"x" * (size - len(head) - len(tail)) + tail
    marks = g.marks()
    reply, _, _ = send(g, client)
    assert reply.status == 200 and served(reply) == (B, B_VERSION, "2"), (reply.status, dict(reply.headers))
    primary, secondary = g.since(marks)
    expected_a = (
        b'{"max_tokens":1000,"temperature":0.2,'
        + client[1:].replace(b'"messages": [', b'"messages": [{"role":"system","content":"%s"},' % A_PROMPT.encode(), 1)
    )
    expected_b = b'{"max_tokens":4096,"temperature":0.7,' + client[1:].replace(b'"claude-sonnet-4.5"', b'"gpt-4.1"')
    assert_sent_exactly(primary[0], expected_a, "A's attempt")
    assert_sent_exactly(secondary[0], expected_b, "B's attempt")


def test_a_stream_whose_first_model_is_silent_past_timeout_ms_streams_from_b(t):
    t.control({"delay_models": {A: 3000}})
    body = json.loads(client_body(A))
    body["stream"] = True
    status, headers, raw, clean, rid, took = stream(t, body)
    assert status == 200 and clean and sse_events(raw)[-1] == b"[DONE]", raw[-300:]
    assert (headers.get("x-ai-gateway-model"), headers.get("x-ai-gateway-attempts")) == (B, "2"), dict(headers)
    assert took < 3.0
    _, entry = t.access_entry(rid)
    assert entry["fallback_cause"] == "timeout" and entry["model"] == B, entry
