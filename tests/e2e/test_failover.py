"""Failover under injected faults (docs/failover.md), against the real Envoy 1.40.

Between endpoints of a provider Envoy does the work (envoy/demo.yaml: the aggregate cluster
``mock`` → ``mock_primary`` / ``mock_secondary``, the route's retry policy with
``previous_priorities`` and ``rate_limited_retry_back_off``, outlier detection). Between models
the filter's circuit breaker does (src/breaker.rs). Every scenario checks what the client saw
*and* what the provider(s) recorded, and that no wasm VM trapped or was reloaded.

The plugin configurations here use a small breaker (``window_s`` 5, ``min_requests`` 5,
``cooldown_s`` 2 or longer) so the circuit's whole life fits in a few seconds. Timing
assertions are lower bounds (a retry waits *at least* its ``Retry-After``) or bounds that
prove *which* mechanism answered (a 504 comes before the slow provider would have answered),
never a speed requirement.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
import types

import pytest
import requests
from harness import envoy as harness_envoy
from harness import (
    TEST_KEY,
    Gateway,
    assert_openai_error,
    chat,
    chat_body,
    demo_plugin_config,
    free_port,
    load_demo_yaml,
)

STABLE = "gpt-4.1"
STABLE_VERSION = "1.0.0"
CANARY = "deepseek-v3.2"
CANARY_VERSION = "2.0.0-canary.1"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def plugin_config(
    *,
    window_s: int = 5,
    min_requests: int = 5,
    cooldown_s: int = 2,
    threshold: float = 0.5,
    split: tuple[int, int] = (50, 50),
) -> dict:
    """The demo's plugin configuration with a fast circuit breaker and route ``chat`` split
    ``split`` between the stable model and the canary."""
    cfg = demo_plugin_config()
    cfg["failover_threshold"] = threshold
    cfg["failover"] = {"window_s": window_s, "min_requests": min_requests, "cooldown_s": cooldown_s}
    cfg["routes"] = [
        {
            "name": "chat",
            "targets": [
                {"model": STABLE, "weight": split[0]},
                {"model": CANARY, "weight": split[1]},
            ],
        }
    ]
    return cfg


_PROM_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_PROM_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prom(gw: Gateway, name: str, **labels: str) -> float:
    """The value of the ``/stats/prometheus`` series ``name`` whose labels include ``labels``
    (summed over the matching series); 0 when there is none."""
    total = 0.0
    for line in gw.prometheus().splitlines():
        m = _PROM_LINE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_PROM_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def circuit_open(gw: Gateway, model: str, version: str) -> float:
    return prom(gw, "ai_gateway_circuit_open", model=model, version=version)


def wait_for(pred, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def served_model(reply) -> str | None:
    return reply.headers.get("x-ai-gateway-model")


def recorded_models(mock, after_id: int) -> list[str]:
    """The body ``model`` of every request ``mock`` recorded after id ``after_id``."""
    return [mock.received(i).json().get("model") for i in range(after_id + 1, mock.last_id() + 1)]


def dead_endpoint() -> types.SimpleNamespace:
    """Stands in for a Mock in ``envoy({cluster: ...})``: a loopback port nothing listens on
    (connection refused)."""
    return types.SimpleNamespace(name="dead", port=free_port(), url=None)


def worker_connections(gw: Gateway) -> dict[str, int]:
    """Downstream connections accepted so far, by Envoy worker (listener per-worker stats)."""
    out = {}
    for k, v in gw.stats().items():
        m = re.match(r"^listener\..*\.(worker_\d+)\.downstream_cx_total$", k)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + v
    return out


def route_cfg(doc: dict) -> dict:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]


@contextlib.contextmanager
def envoy_config(monkeypatch, doc: dict):
    """Makes the harness start Envoy from ``doc`` instead of envoy/demo.yaml (ports, the .wasm
    and the plugin configuration are still substituted by ``build_envoy_config``)."""
    with monkeypatch.context() as mp:
        mp.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
        yield


def stream_request(gw: Gateway, model: str, headers: dict, timeout: float = 60):
    """A ``stream: true`` chat request read to its end (or to the connection's end).
    Returns (status, response headers, bytes received, complete?, seconds)."""
    t0 = time.monotonic()
    r = requests.post(
        gw.url + "/v1/chat/completions",
        json=chat_body(model, stream=True),
        headers=headers,
        stream=True,
        timeout=timeout,
    )
    got, complete = b"", True
    try:
        for chunk in r.iter_content(None):
            got += chunk
    except requests.exceptions.ChunkedEncodingError:
        complete = False
    return r.status_code, r.headers, got, complete and b"data: [DONE]" in got, time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# Between endpoints: Envoy's aggregate cluster and retry policy
# --------------------------------------------------------------------------------------------


def test_primary_503_is_retried_on_the_secondary_with_the_same_body_and_key(mock, envoy):
    primary = mock("primary", "--fail-status", "503")
    secondary = mock("secondary")
    gw = envoy({"mock_primary": primary, "mock_secondary": secondary}, plugin_config())
    before = gw.wasm_vm_health()

    body = chat_body(STABLE, content="Grüße — failover ✓", user="u-1", metadata={"k": [1, 2.5, None]})
    reply = chat(gw, body, headers={"authorization": "Bearer client-secret"})

    # The client: a normal 200 from the secondary, served as the model it asked for.
    assert reply.status == 200, reply.body[:300]
    assert reply.headers.get("x-mock-provider") == "secondary"
    assert served_model(reply) == STABLE
    assert reply.json()["choices"][0]["message"]["content"] == "Hello from the mock provider"
    assert TEST_KEY not in reply.body.decode() and TEST_KEY not in str(dict(reply.headers))

    # The providers: one attempt each, the very same rewritten request, the gateway's key.
    assert primary.last_id() == 1, "the primary should have seen exactly one attempt"
    assert secondary.last_id() == 1, "the secondary should have seen exactly one attempt"
    first, second = primary.received(1), secondary.received(1)
    for rec in (first, second):
        assert rec.method == "POST" and rec.path == "/v1/chat/completions"
        assert rec.headers("authorization") == [f"Bearer {TEST_KEY}"], rec.header_pairs
        assert rec.content_length == len(rec.body), (rec.content_length_raw, len(rec.body))
        assert "client-secret" not in str(rec.header_pairs)
        sent = rec.json()
        assert sent["model"] == STABLE
        assert sent["messages"] == body["messages"], "the messages changed on the way"
        assert sent["user"] == "u-1" and sent["metadata"] == {"k": [1, 2.5, None]}
        assert sent["max_tokens"] == 4096 and sent["temperature"] == 0.7  # the target's settings
    assert first.body == second.body, "the retry did not replay the same bytes"

    stats = gw.stats()
    assert stats.get("cluster.mock.upstream_rq_retry", 0) >= 1, "Envoy did not count a retry"
    # The model answered in the end: no error for the circuit.
    assert prom(gw, "ai_gateway_model_errors_total", model=STABLE) == 0
    assert prom(gw, "ai_gateway_requests_total", model=STABLE, status="200") == 1
    gw.assert_no_vm_crash_since(before)


def test_primary_down_connection_refused_is_served_by_the_secondary(mock, envoy):
    secondary = mock("secondary")
    gw = envoy({"mock_primary": dead_endpoint(), "mock_secondary": secondary}, plugin_config())
    before = gw.wasm_vm_health()

    for i in range(3):
        body = chat_body(STABLE, content=f"request {i}")
        reply = chat(gw, body)
        assert reply.status == 200, reply.body[:300]
        assert reply.headers.get("x-mock-provider") == "secondary"
        assert served_model(reply) == STABLE
        rec = secondary.received(reply.headers["x-mock-request-id"])
        assert rec.headers("authorization") == [f"Bearer {TEST_KEY}"]
        assert rec.json()["messages"] == body["messages"]
        assert rec.json()["model"] == STABLE
    assert secondary.last_id() == 3

    stats = gw.stats()
    assert stats.get("cluster.mock_primary.upstream_cx_connect_fail", 0) >= 1, {
        k: v for k, v in stats.items() if k.startswith("cluster.mock")
    }
    assert prom(gw, "ai_gateway_model_errors_total", model=STABLE) == 0
    gw.assert_no_vm_crash_since(before)


@pytest.mark.parametrize("seconds", [1, 2])
def test_a_429_with_retry_after_is_retried_no_sooner_than_it_says(mock, envoy, seconds):
    """``rate_limited_retry_back_off``: the retry waits for ``Retry-After`` (seconds) instead of
    the 100 ms exponential back-off. Two values, so the wait is shown to follow the header."""
    primary = mock("primary", "--fail-status", "429")
    secondary = mock("secondary")
    gw = envoy({"mock_primary": primary, "mock_secondary": secondary}, plugin_config())
    before = gw.wasm_vm_health()

    t0 = time.monotonic()
    reply = chat(gw, chat_body(STABLE), headers={"x-mock-retry-after": str(seconds)})
    took = time.monotonic() - t0

    assert reply.status == 200, reply.body[:300]
    assert reply.headers.get("x-mock-provider") == "secondary"
    assert primary.last_id() == 1 and secondary.last_id() == 1
    # The primary's 429 carried the Retry-After Envoy honoured.
    direct = requests.post(
        f"{primary.url}/v1/chat/completions", json=chat_body(STABLE), headers={"x-mock-retry-after": str(seconds)}, timeout=5
    )
    assert direct.status_code == 429 and direct.headers.get("retry-after") == str(seconds)
    assert took >= seconds, f"the retry came after {took:.2f}s, before the {seconds}s Retry-After"
    assert primary.received(1).body == secondary.received(1).body
    assert secondary.received(1).headers("authorization") == [f"Bearer {TEST_KEY}"]
    gw.assert_no_vm_crash_since(before)


def test_a_429_with_x_ratelimit_reset_is_retried_no_sooner_than_the_reset_time(mock, envoy):
    """``X-RateLimit-Reset`` is a Unix time (whole seconds): the retry waits until then."""
    primary = mock("primary", "--fail-status", "429")
    secondary = mock("secondary")
    gw = envoy({"mock_primary": primary, "mock_secondary": secondary}, plugin_config())
    before = gw.wasm_vm_health()

    reset_at = int(time.time()) + 3
    t0 = time.time()
    reply = chat(gw, chat_body(STABLE), headers={"x-mock-ratelimit-reset": str(reset_at)})
    took = time.time() - t0

    assert reply.status == 200, reply.body[:300]
    assert reply.headers.get("x-mock-provider") == "secondary"
    assert primary.last_id() == 1 and secondary.last_id() == 1
    # Envoy counts whole seconds from its own clock: allow one second of truncation.
    assert took >= (reset_at - t0) - 1.0, f"retried after {took:.2f}s, reset was {reset_at - t0:.2f}s away"
    gw.assert_no_vm_crash_since(before)


# --------------------------------------------------------------------------------------------
# Between models: the circuit breaker
# --------------------------------------------------------------------------------------------


def _drive_until_canary_served(gw, n: int, *, limit: int = 400):
    """Sends ``chat`` requests until the canary has served ``n`` of them; returns every reply.
    Each canary reply is checked to leave the circuit closed until the ``min_requests``-th."""
    replies, canary = [], 0
    for _ in range(limit):
        reply = chat(gw, chat_body("chat"))
        replies.append(reply)
        if served_model(reply) == CANARY:
            canary += 1
            if canary == n:
                return replies
        else:
            assert reply.status == 200, (served_model(reply), reply.status, reply.body[:200])
    raise AssertionError(f"the canary served {canary} of {limit} requests, expected {n}")


def _send_until(gw, pred, *, limit: int = 80):
    """Sends ``chat`` requests until ``pred(reply)``; returns (the replies before, that reply)."""
    before = []
    for _ in range(limit):
        reply = chat(gw, chat_body("chat"))
        if pred(reply):
            return before, reply
        before.append(reply)
    raise AssertionError(f"no matching reply in {limit} requests: {[served_model(r) for r in before][:20]}")


def test_a_failing_canary_opens_its_circuit_then_half_opens_and_closes_when_healed(mock, envoy):
    m = mock("provider")
    cooldown = 3
    cfg = plugin_config(window_s=5, min_requests=5, cooldown_s=cooldown)
    gw = envoy(m, cfg, concurrency=2)
    before = gw.wasm_vm_health()
    assert circuit_open(gw, CANARY, CANARY_VERSION) == 0

    # 1. The canary fails 100 % (every attempt, on both endpoints of the provider).
    m.control({"fail_models": {CANARY: 503}})
    replies = _drive_until_canary_served(gw, 4)
    canary_replies = [r for r in replies if served_model(r) == CANARY]
    assert all(r.status == 503 for r in canary_replies), [r.status for r in canary_replies]
    assert all(r.headers.get("x-ai-gateway-version") == CANARY_VERSION for r in canary_replies)
    # Four failures < min_requests: still closed, and the fifth canary pick happens.
    assert circuit_open(gw, CANARY, CANARY_VERSION) == 0
    replies = _drive_until_canary_served(gw, 1)
    assert replies[-1].status == 503
    wait_for(lambda: circuit_open(gw, CANARY, CANARY_VERSION) == 1, what="the canary's circuit to open")
    opened = time.monotonic()
    assert prom(gw, "ai_gateway_model_errors_total", model=CANARY, error_type="http_5xx") == 5
    assert circuit_open(gw, STABLE, STABLE_VERSION) == 0

    # 2. Open: every request goes to the stable model; the provider sees no canary request.
    mark = m.last_id()
    sent = []
    while len(sent) < 40 and time.monotonic() - opened < cooldown - 0.5:
        sent.append(chat(gw, chat_body("chat")))
    assert len(sent) >= 20, f"only {len(sent)} requests fit in the cooldown: the machine is too slow"
    assert {served_model(r) for r in sent} == {STABLE}, [served_model(r) for r in sent]
    assert all(r.status == 200 for r in sent)
    assert set(recorded_models(m, mark)) == {STABLE}
    # About half of them were picked as the canary and failed over (P(none) = 2^-20).
    assert prom(gw, "ai_gateway_failovers_total", route="chat", from_model=CANARY, to_model=STABLE) >= 1

    # 3. After the cooldown the circuit half-opens: one probe reaches the canary. It still
    #    fails, so the circuit opens again for a full cooldown.
    time.sleep(max(0.0, opened + cooldown + 0.2 - time.monotonic()))
    mark = m.last_id()
    _, probe = _send_until(gw, lambda r: served_model(r) == CANARY)
    reopened = time.monotonic()
    assert probe.status == 503, probe.body[:200]
    assert CANARY in recorded_models(m, mark)
    assert circuit_open(gw, CANARY, CANARY_VERSION) == 1
    mark = m.last_id()
    after_probe = [chat(gw, chat_body("chat")) for _ in range(20)]
    assert time.monotonic() - reopened < cooldown, "too slow to observe the reopened circuit"
    assert {served_model(r) for r in after_probe} == {STABLE}
    assert set(recorded_models(m, mark)) == {STABLE}
    assert prom(gw, "ai_gateway_model_errors_total", model=CANARY, error_type="http_5xx") == 6

    # 4. The canary heals; after the next cooldown the probe succeeds and the circuit closes.
    m.control({})
    time.sleep(max(0.0, reopened + cooldown + 0.2 - time.monotonic()))
    _, probe = _send_until(gw, lambda r: served_model(r) == CANARY)
    assert probe.status == 200, probe.body[:200]
    assert m.received(probe.headers["x-mock-request-id"]).json()["model"] == CANARY
    wait_for(lambda: circuit_open(gw, CANARY, CANARY_VERSION) == 0, what="the canary's circuit to close")
    # Closed: the canary is back in the split (P(no canary in 60) = 2^-60).
    mark = m.last_id()
    after = [chat(gw, chat_body("chat")) for _ in range(60)]
    assert all(r.status == 200 for r in after)
    models = [served_model(r) for r in after]
    assert models.count(CANARY) > 0 and models.count(STABLE) > 0, models
    assert sorted(recorded_models(m, mark)) == sorted(models)
    gw.assert_no_vm_crash_since(before)


def test_the_circuit_state_is_shared_by_every_worker(mock, envoy):
    m = mock("provider")
    # A long cooldown: this test only looks at the open phase.
    gw = envoy(m, plugin_config(min_requests=5, cooldown_s=30), concurrency=4)
    before = gw.wasm_vm_health()
    m.control({"fail_models": {CANARY: 503}})

    # Open the circuit from one keep-alive connection (so: from one worker).
    _drive_until_canary_served(gw, 5)
    wait_for(lambda: circuit_open(gw, CANARY, CANARY_VERSION) == 1, what="the canary's circuit to open")

    # Fresh connections spread over the workers: not one of them may pick the canary.
    workers_before = worker_connections(gw)
    mark = m.last_id()
    models = []
    for _ in range(60):
        r = requests.post(gw.url + "/v1/chat/completions", json=chat_body("chat"), headers={"connection": "close"}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        models.append(r.headers.get("x-ai-gateway-model"))
    assert set(models) == {STABLE}, models
    assert set(recorded_models(m, mark)) == {STABLE}
    workers_after = worker_connections(gw)
    used = [w for w, n in workers_after.items() if n > workers_before.get(w, 0)]
    assert len(used) >= 2, f"the fresh connections all landed on {used}: the test proves nothing"
    gw.assert_no_vm_crash_since(before)


def test_every_target_open_gives_503_no_healthy_target_with_retry_after(mock, envoy):
    m = mock("provider")
    cooldown = 10
    gw = envoy(m, plugin_config(min_requests=5, cooldown_s=cooldown))
    before = gw.wasm_vm_health()
    m.control({"fail_models": {STABLE: 503, CANARY: 503}})

    for _ in range(200):
        if circuit_open(gw, STABLE, STABLE_VERSION) == 1 and circuit_open(gw, CANARY, CANARY_VERSION) == 1:
            break
        reply = chat(gw, chat_body("chat"))
        assert reply.status == 503 and served_model(reply) in (STABLE, CANARY), (reply.status, reply.body[:200])
    else:
        raise AssertionError("the circuits did not both open")

    mark = m.last_id()
    reply = chat(gw, chat_body("chat"))
    err = assert_openai_error(reply, 503, "no_healthy_target")
    assert "chat" in err["message"], err
    retry_after = reply.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), dict(reply.headers)
    assert 1 <= int(retry_after) <= cooldown, retry_after
    assert m.last_id() == mark, "a request went upstream although every target is open"
    assert prom(gw, "ai_gateway_rejected_total", reason="no_healthy_target") == 1

    # A model asked for by its name is still honoured: the breaker steers route picks only.
    reply = chat(gw, chat_body(STABLE))
    assert m.last_id() > mark, "a directly requested model was not sent upstream"
    assert reply.status == 503 and served_model(reply) == STABLE
    assert reply.json()["error"].get("code") != "no_healthy_target"
    gw.assert_no_vm_crash_since(before)


# --------------------------------------------------------------------------------------------
# Per-model timeouts (x-envoy-upstream-rq-per-try-timeout-ms from timeout_ms: one attempt, until
# its response starts); one attempt per request here, so a timeout reaches the client.
# --------------------------------------------------------------------------------------------


def timeouts_config() -> dict:
    cfg = plugin_config()
    cfg["max_attempts"] = 1
    for model in cfg["models"]:
        if model["name"] == STABLE:
            model["timeout_ms"] = 1000
        if model["name"] == "claude-sonnet-4.5":
            model["timeout_ms"] = 6000
    return cfg


def test_a_slow_model_gets_504_at_its_timeout_while_another_models_longer_timeout_is_honoured(mock, envoy):
    m = mock("provider")
    gw = envoy(m, timeouts_config())
    before = gw.wasm_vm_health()
    delay_ms = 3000

    t0 = time.monotonic()
    reply = chat(gw, chat_body(STABLE), headers={"x-mock-delay-ms": str(delay_ms)})
    took = time.monotonic() - t0
    assert reply.status == 504, reply.body[:300]
    assert served_model(reply) is None or served_model(reply) == STABLE
    assert took >= 1.0, f"504 after {took:.2f}s, before the model's 1000 ms timeout"
    assert took < delay_ms / 1000, f"took {took:.2f}s: the provider's answer, not the timeout"
    # The provider did get the request (one attempt: max_attempts 1).
    assert m.last_id() == 1 and m.received(1).json()["model"] == STABLE

    t0 = time.monotonic()
    reply = chat(gw, chat_body("claude-sonnet-4.5"), headers={"x-mock-delay-ms": str(delay_ms)})
    took = time.monotonic() - t0
    assert reply.status == 200, reply.body[:300]
    assert served_model(reply) == "claude-sonnet-4.5"
    assert took >= delay_ms / 1000
    assert m.last_id() == 2 and m.received(2).json()["model"] == "claude-sonnet-4.5"
    gw.assert_no_vm_crash_since(before)


def test_a_timeout_is_counted_as_error_type_timeout(mock, envoy):
    """docs/metrics.md: error_type ``timeout`` for a request cut by its timeout. Envoy 1.40 gives
    ``response_code_details`` = ``upstream_per_try_timeout`` for the per-attempt timeout the
    filter sets from timeout_ms (and ``response_timeout`` for max_duration_ms)."""
    m = mock("provider")
    gw = envoy(m, timeouts_config())
    before = gw.wasm_vm_health()
    reply = chat(gw, chat_body(STABLE), headers={"x-mock-delay-ms": "3000"})
    assert reply.status == 504
    gw.assert_no_vm_crash_since(before)
    wait_for(lambda: prom(gw, "ai_gateway_requests_total", model=STABLE, status="504") == 1, what="the request metric")
    errors = {
        t: prom(gw, "ai_gateway_model_errors_total", model=STABLE, error_type=t) for t in ("timeout", "http_5xx")
    }
    assert errors == {"timeout": 1, "http_5xx": 0}, errors


def test_a_stream_cut_by_max_duration_counts_as_a_failure(mock, envoy):
    """A stream that outlives max_duration_ms (the whole request) is cut by Envoy mid-body (the
    client got a 200 and a truncated stream). That is a timeout for the circuit breaker and the
    metrics, not a success. (timeout_ms never cuts a stream that started: see below.)"""
    m = mock("provider")
    cfg = timeouts_config()
    cfg["max_duration_ms"] = 1000
    gw = envoy(m, cfg)
    before = gw.wasm_vm_health()
    status, _, got, complete, _ = stream_request(gw, STABLE, {"x-mock-chunks": "4", "x-mock-chunk-delay-ms": "500"})
    assert status == 200 and not complete, got[-200:]
    wait_for(lambda: prom(gw, "ai_gateway_requests_total", model=STABLE) == 1, what="the request metric")
    gw.assert_no_vm_crash_since(before)
    assert prom(gw, "ai_gateway_model_errors_total", model=STABLE, error_type="timeout") == 1


def test_a_stream_cut_by_per_try_idle_timeout_counts_as_a_failure(mock, envoy, monkeypatch):
    """The same for a stream stalled past the route's ``per_try_idle_timeout`` (Envoy 1.40:
    ``response_code_details`` = ``upstream_per_try_idle_timeout``, status 200 already sent)."""
    doc = load_demo_yaml()
    route_cfg(doc)["retry_policy"]["per_try_idle_timeout"] = "0.5s"
    m = mock("provider")
    with envoy_config(monkeypatch, doc):
        gw = envoy(m, plugin_config())
    status, _, got, complete, _ = stream_request(gw, STABLE, {"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "1200"})
    assert status == 200 and not complete, got[-200:]
    wait_for(lambda: prom(gw, "ai_gateway_requests_total", model=STABLE) == 1, what="the request metric")
    assert prom(gw, "ai_gateway_model_errors_total", model=STABLE, error_type="timeout") == 1


# --------------------------------------------------------------------------------------------
# What the retry policy's timeouts do to long SSE streams (Envoy 1.40 facts, for docs/failover.md)
# --------------------------------------------------------------------------------------------


def test_timeout_ms_bounds_the_wait_for_headers_but_never_cuts_a_started_stream(mock, envoy):
    """timeout_ms is Envoy's per-try timeout (the filter sets it per request): it bounds each
    attempt until its response starts, and Envoy ignores it afterwards — a long stream that
    keeps sending is never cut by it (a ten-minute stream, scaled down)."""
    cfg = plugin_config()
    cfg["timeout_ms"] = 500
    m = mock("provider")
    gw = envoy(m, cfg)
    before = gw.wasm_vm_health()

    # A stream lasting > 2 s, 600 ms between events (each gap > timeout_ms): delivered whole.
    status, headers, got, complete, took = stream_request(
        gw, STABLE, {"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "600"}
    )
    assert status == 200 and complete, (took, got[-300:])
    assert took >= 1.8
    assert m.last_id() == 1, "the stream was retried"

    # Headers later than timeout_ms: that attempt is abandoned and retried (max_attempts 3).
    mark = m.last_id()
    reply = chat(gw, chat_body(STABLE), headers={"x-mock-delay-ms": "800"})
    assert reply.status == 504, reply.body[:200]
    assert m.last_id() - mark == 3
    gw.assert_no_vm_crash_since(before)


def test_per_try_idle_timeout_cuts_only_a_stalled_stream(mock, envoy, monkeypatch):
    doc = load_demo_yaml()
    route_cfg(doc)["retry_policy"]["per_try_idle_timeout"] = "0.5s"
    m = mock("provider")
    with envoy_config(monkeypatch, doc):
        gw = envoy(m, plugin_config())
    before = gw.wasm_vm_health()

    # Events every 150 ms for ~1.2 s (longer than the idle timeout): delivered whole.
    status, _, got, complete, took = stream_request(gw, STABLE, {"x-mock-chunks": "6", "x-mock-chunk-delay-ms": "150"})
    assert status == 200 and complete, (took, got[-300:])
    assert took >= 0.9
    # 1.2 s between events: the stream is cut after the first idle 0.5 s.
    status, _, got, complete, took = stream_request(gw, STABLE, {"x-mock-chunks": "4", "x-mock-chunk-delay-ms": "1200"})
    assert status == 200 and not complete, got[-300:]
    assert got.count(b"data:") < 4
    gw.assert_no_vm_crash_since(before)


def test_max_duration_cuts_a_stream_that_outlives_it_and_timeout_ms_does_not(mock, envoy):
    """x-envoy-upstream-rq-timeout-ms (max_duration_ms) is the whole request's deadline,
    streaming body included: with max_duration_ms 1000 a 2.5 s stream is cut mid-body after its
    200 was sent. Without it (0, the default), the same stream arrives whole although it lasts
    longer than the model's timeout_ms (see docs/failover.md#timeouts)."""
    m = mock("provider")
    capped = timeouts_config()
    capped["max_duration_ms"] = 1000
    gw = envoy(m, capped)
    before = gw.wasm_vm_health()
    slow_stream = {"x-mock-chunks": "4", "x-mock-chunk-delay-ms": "500"}  # ~2.5 s
    status, _, got, complete, took = stream_request(gw, STABLE, slow_stream)
    assert status == 200 and not complete
    assert b"data:" in got and took >= 1.0
    gw.assert_no_vm_crash_since(before)
    # No cap: the stream outlives STABLE's 1000 ms timeout_ms and arrives whole.
    gw = envoy(m, timeouts_config())
    status, _, got, complete, _ = stream_request(gw, STABLE, slow_stream)
    assert status == 200 and complete
