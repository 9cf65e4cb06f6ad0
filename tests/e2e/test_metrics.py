"""The filter's metrics as Prometheus sees them: Envoy's admin ``/stats/prometheus``, scraped
directly (docs/metrics.md, docs/design.md#metrics-and-labels).

Every metric family is exported with exactly its name, type and labels (labels come from the
``stats_config.stats_tags`` of the shipped config; model names keep their dots); label values
come only from the configuration (an unlisted model creates no series, only
``ai_gateway_rejected_total{reason}``); tokens and cost equal what the mock provider reported
at the configured prices, in exact integer micro-dollars; the time to first token is recorded
for streams only.

The module shares one Envoy + mock (``gw``); every test works on deltas of the counters it
drives, with models of its own where a circuit must open. A few tests start a gateway of their
own (another ``unknown_models`` policy, one worker for exact cost carry, a dead provider, no
key).

The contract (:data:`METRIC_FAMILIES`) and the scrape helpers (:class:`Scrape`, :func:`scrape`,
...) are in the harness: tests/harness/metrics.py.
"""

from __future__ import annotations

import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness import Gateway, assert_openai_error, chat, demo_plugin_config
from harness.metrics import (
    CIRCUIT,
    COST,
    DURATION,
    ERROR_TYPES,
    FAILOVERS,
    METRIC_FAMILIES,
    MODEL_ERRORS,
    PROMPT,
    REJECTED,
    FALLBACK_CAUSES,
    REJECT_REASONS,
    REQUESTS,
    ROUTE_LABELS,
    SELECTIONS,
    TOKENS,
    TOKEN_TYPES,
    TTFT,
    Scrape,
    configured_buckets,
    delta,
    hist_buckets,
    hist_count,
    observations_in,
    scrape,
    send,
    send_ok,
    wait_for,
)


def find_sticky_users(gw: Gateway, route: str, models: set[str], tries: int = 200) -> dict[str, str]:
    """For each model of ``models``, an ``x-user-id`` whose sticky pick in ``route`` is that
    model (with every circuit closed: the pick is a deterministic hash of the id)."""
    found: dict[str, str] = {}
    for i in range(tries):
        user = f"user-{route}-{i}"
        reply = send_ok(gw, route, user=user)
        found.setdefault(reply.headers["x-ai-gateway-model"], user)
        if models <= set(found):
            return {m: found[m] for m in models}
    raise AssertionError(f"no sticky user found for {models - set(found)} in {route} after {tries} ids")


def open_circuit(gw: Gateway, model: str, max_requests: int = 40) -> Scrape:
    """Fails direct requests to ``model`` (503 from the mock) until its circuit is open."""
    for _ in range(max_requests):
        s = scrape(gw)
        if any(s.get(CIRCUIT, model=model, version=v) == 1 for v in versions_of(model)):
            return s
        reply = send(gw, model, headers={"x-mock-status": "503"})
        assert reply.status == 503, reply
    return wait_for(gw, lambda s: s.total(CIRCUIT, model=model) >= 1, f"the circuit of {model} open")


def versions_of(model: str) -> list[str]:
    return [m["version"] for m in METRICS_CONFIG["models"] if m["name"] == model]


def micro_dollars(prompt: int, completion: int, price: dict) -> int:
    """Exact cost in µ$ (the prices are given in USD per million tokens, as strings of
    decimals here so the expectation is computed without floats)."""
    from fractions import Fraction

    total = Fraction(str(price["input"])) * prompt + Fraction(str(price["output"])) * completion
    return math.floor(total)  # USD/M tokens × tokens = µ$


# --------------------------------------------------------------------------------------------
# The module's gateway
# --------------------------------------------------------------------------------------------

PRICES = {
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "claude-sonnet-4.5": {"input": 3.00, "output": 15.00},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50},
    "deepseek-v3.2": {"input": 0.28, "output": 0.42},
}

#: Two routes with a canary (chat) and a failover pair (fallback); `solo` has one target, so its
#: circuit opening leaves no healthy target. `o3-errors` is the model the error tests break
#: (requested by name, it is served whatever its circuit says). A circuit opens at half of at
#: least 3 outcomes and stays open for the whole module.
METRICS_CONFIG: dict[str, Any] = {
    "models": [
        {"name": "gpt-4.1", "version": "1.0.0", "cluster": "mock"},
        {"name": "deepseek-v3.2", "version": "2.0.0-canary.1", "cluster": "mock"},
        {"name": "claude-sonnet-4.5", "version": "1.4.0", "cluster": "mock"},
        {"name": "gemini-2.5-flash", "version": "1.0.0", "cluster": "mock"},
        {"name": "gpt-4.1-mini", "version": "1.0.0", "cluster": "mock"},
        {"name": "o3-errors", "version": "0.1.0", "cluster": "mock", "timeout_ms": 400},
        # Fails on purpose (the mock's control) so that gpt-4.1-mini answers in its place.
        {"name": "o4-falls-back", "version": "1.0.0", "cluster": "mock", "fallback": ["gpt-4.1-mini"]},
    ],
    "routes": [
        {"name": "chat", "targets": [{"model": "gpt-4.1", "weight": 50}, {"model": "deepseek-v3.2", "weight": 50}]},
        {
            "name": "fallback",
            "targets": [{"model": "claude-sonnet-4.5", "weight": 50}, {"model": "gemini-2.5-flash", "weight": 50}],
        },
        {"name": "solo", "targets": [{"model": "gpt-4.1-mini", "weight": 1}]},
    ],
    "default_route": "chat",
    "unknown_models": "reject",
    "failover_threshold": 0.5,
    "failover": {"window_s": 3600, "min_requests": 3, "cooldown_s": 3600},
    "timeout_ms": 30000,
    "upstream": {"cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY"},
    "sticky": {"header": "x-user-id"},
    "stream_usage": "inject",
    "prices": PRICES,
}

CONFIGURED_MODELS = {m["name"] for m in METRICS_CONFIG["models"]}
CONFIGURED_VERSIONS = {(m["name"], m["version"]) for m in METRICS_CONFIG["models"]}
CONFIGURED_ROUTES = {r["name"] for r in METRICS_CONFIG["routes"]}


@pytest.fixture(scope="module")
def mock_(module_launcher):
    return module_launcher.mock("mock")


@pytest.fixture(scope="module")
def gw(module_launcher, mock_) -> Gateway:
    return module_launcher.envoy(mock_, METRICS_CONFIG)


@pytest.fixture(scope="module")
def users(gw) -> dict[str, str]:
    """Sticky users: model → x-user-id picking it (chat: gpt-4.1 / deepseek-v3.2;
    fallback: claude-sonnet-4.5), found while every circuit is closed."""
    out = find_sticky_users(gw, "chat", {"gpt-4.1", "deepseek-v3.2"})
    out.update(find_sticky_users(gw, "fallback", {"claude-sonnet-4.5"}))
    return out


@pytest.fixture(scope="module")
def scenario(gw, users, mock_) -> Scrape:
    """Traffic that exercises every metric once: JSON and SSE through the canary route, a
    model by name, a provider error, a rejected model, a circuit opened on purpose and the
    failover it causes. Returns the scrape once every histogram has been flushed."""
    send_ok(gw, "chat", user=users["gpt-4.1"])
    send_ok(gw, "chat", user=users["deepseek-v3.2"])
    send_ok(gw, "chat", user=users["gpt-4.1"], stream=True)
    send_ok(gw, "gpt-4.1")
    assert send(gw, "o3-errors", headers={"x-mock-status": "503"}).status == 503
    assert send(gw, "not-a-configured-model").status == 400
    open_circuit(gw, "claude-sonnet-4.5")
    reply = send_ok(gw, "fallback", user=users["claude-sonnet-4.5"])
    assert reply.headers["x-ai-gateway-model"] == "gemini-2.5-flash"
    # A fallback inside one request: o4-falls-back answers 503, gpt-4.1-mini answers.
    mock_.control({"fail_models": {"o4-falls-back": 503}})
    try:
        reply = send_ok(gw, "o4-falls-back")
    finally:
        mock_.control({})
    assert reply.headers["x-ai-gateway-model"] == "gpt-4.1-mini"
    return wait_for(
        gw,
        lambda s: all(f in s.types for f in METRIC_FAMILIES)
        and hist_count(s, DURATION, route="fallback") >= 1
        and hist_count(s, TTFT, model="gpt-4.1") >= 1,
        "every metric exported",
    )


# --------------------------------------------------------------------------------------------
# Names, types, labels
# --------------------------------------------------------------------------------------------


def test_every_metric_is_exported_with_its_type_and_exactly_its_labels(scenario):
    s = scenario
    ours = {f: t for f, t in s.types.items() if "ai_gateway_" in f and not f.startswith("envoy_wasm")}
    assert set(ours) == set(METRIC_FAMILIES), (
        f"metric families differ from the contract: extra {set(ours) - set(METRIC_FAMILIES)}, "
        f"missing {set(METRIC_FAMILIES) - set(ours)}"
    )
    for family, (kind, labels) in METRIC_FAMILIES.items():
        assert s.types[family] == kind, f"{family}: TYPE {s.types[family]}, the contract says {kind}"
        names = {f"{family}_bucket", f"{family}_sum", f"{family}_count"} if kind == "histogram" else {family}
        seen = 0
        for name in names:
            for lab in s.series(name):
                seen += 1
                want = set(labels) | ({"le"} if name.endswith("_bucket") else set())
                assert set(lab) == want, f"{name}{lab}: labels {sorted(lab)}, the contract says {sorted(want)}"
        assert seen, f"{family}: no series"
    # No sample of ours outside those families (a stat whose tags were not extracted would
    # show up as e.g. ai_gateway_requests_total_route_chat_model_gpt_4_1_...), and no
    # envoy_ prefix.
    allowed = {n for f, (k, _) in METRIC_FAMILIES.items() for n in ([f] if k != "histogram" else [f"{f}_bucket", f"{f}_sum", f"{f}_count"])}
    stray = {n for (n, _) in s.samples if "ai_gateway_" in n and n not in allowed and not n.startswith("envoy_wasm_ai_gateway")}
    assert not stray, f"samples outside the metric families: {sorted(stray)}"
    assert not any(n.startswith("envoy_ai_gateway") for (n, _) in s.samples)


def test_label_values_come_only_from_the_configuration_and_closed_sets(scenario):
    for (name, labels), _ in scenario.ours().items():
        lab = dict(labels)
        if "route" in lab:
            assert lab["route"] in CONFIGURED_ROUTES | ROUTE_LABELS, (name, lab)
        if "model" in lab:
            assert (lab["model"], lab["version"]) in CONFIGURED_VERSIONS, (name, lab)
        for k in ("from_model", "to_model"):
            if k in lab:
                assert lab[k] in CONFIGURED_MODELS, (name, lab)
        if "status" in lab:
            assert re.fullmatch(r"[1-5]\d\d", lab["status"]), (name, lab)
        if "type" in lab:
            assert lab["type"] in TOKEN_TYPES, (name, lab)
        if "error_type" in lab:
            assert lab["error_type"] in ERROR_TYPES, (name, lab)
        if "reason" in lab:
            assert lab["reason"] in REJECT_REASONS, (name, lab)
        if "cause" in lab:
            assert lab["cause"] in FALLBACK_CAUSES, (name, lab)


def test_model_names_and_versions_keep_their_dots_and_dashes(scenario):
    s = scenario
    assert s.get(REQUESTS, route="chat", model="deepseek-v3.2", version="2.0.0-canary.1", status="200") >= 1
    assert s.get(REQUESTS, route="_direct", model="gpt-4.1", version="1.0.0", status="200") >= 1
    assert s.get(TOKENS, model="gpt-4.1", version="1.0.0", type="prompt") >= PROMPT
    assert s.get(FAILOVERS, route="fallback", from_model="claude-sonnet-4.5", to_model="gemini-2.5-flash") >= 1
    # The exposition itself, as a scraper reads it.
    assert 'model="gpt-4.1"' in s.text and 'version="2.0.0-canary.1"' in s.text
    assert "gpt_4_1" not in s.text and "2_0_0" not in s.text


def test_the_histograms_have_the_llm_latency_buckets_of_the_shipped_config(scenario):
    buckets = configured_buckets()
    # Tens of milliseconds to tens of minutes (docs/metrics.md).
    assert buckets == sorted(buckets) and buckets[0] <= 25 and buckets[-1] >= 600_000
    s = scenario
    for family in (DURATION, TTFT):
        _, labels = METRIC_FAMILIES[family]
        for lab in s.series(f"{family}_count"):
            cum = hist_buckets(s, family, **lab)
            assert sorted(cum) == buckets + [math.inf], f"{family}{lab}: le values {sorted(cum)}"
            values = [cum[le] for le in sorted(cum)]
            assert values == sorted(values), f"{family}{lab}: buckets not cumulative {values}"
            assert cum[math.inf] == s.get(f"{family}_count", **lab)


# --------------------------------------------------------------------------------------------
# Label values never come from the client
# --------------------------------------------------------------------------------------------

HOSTILE_MODELS = [
    "gpt-5-not-configured",
    "gpt-4.1.status.200",
    "chat.model.evil",
    "evil\u00e9\u263a-model",
    "x" * 300,
    'quote"}evil',
]


def test_an_unlisted_model_creates_no_series_only_a_rejection(gw):
    time.sleep(2.2)  # a stats flush: earlier tests' histogram samples are in
    before = scrape(gw)
    for model in HOSTILE_MODELS:
        reply = send(gw, model, headers={"x-ai-gateway-route": "evil-route", "x-user-id": "evil-user"})
        assert_openai_error(reply, 400, "model_not_found")
    for model in HOSTILE_MODELS[:2]:
        reply = send(gw, model, stream=True, path="/v1/completions")
        assert_openai_error(reply, 400, "model_not_found")
    n = len(HOSTILE_MODELS) + 2
    after = wait_for(
        gw,
        lambda s: delta(before, s, REJECTED, reason="model_not_found") >= n,
        f"{n} more model_not_found rejections",
    )
    time.sleep(2.2)  # a stats flush: any histogram sample would show by now
    after = scrape(gw)
    assert delta(before, after, REJECTED, reason="model_not_found") == n
    changed = {k for k in set(before.ours()) | set(after.ours()) if before.ours().get(k) != after.ours().get(k)}
    assert changed == {(REJECTED, (("reason", "model_not_found"),))}, f"series created or changed: {changed}"
    for text in (after.text, gw.admin("/stats").text):
        for needle in ("evil", "gpt-5", "not-configured", "\u263a", "x" * 50):
            assert needle not in text, f"{needle!r} reached the stats"


def test_a_malformed_body_is_counted_as_invalid_request(gw):
    before = scrape(gw)
    for raw in (b"not json", b"[1,2]", b'{"model": 42}'):
        assert_openai_error(chat(gw, raw), 400, "invalid_request")
    after = wait_for(gw, lambda s: delta(before, s, REJECTED, reason="invalid_request") >= 3, "3 invalid_request")
    assert delta(before, after, REJECTED, reason="invalid_request") == 3
    assert delta(before, after, REQUESTS) == 0 and delta(before, after, SELECTIONS) == 0


# --------------------------------------------------------------------------------------------
# Route labels: names, _direct, _default, _passthrough
# --------------------------------------------------------------------------------------------


def test_route_labels_say_what_served_the_request(gw, users):
    before = scrape(gw)
    r1 = send_ok(gw, "chat", user=users["deepseek-v3.2"])
    r2 = send_ok(gw, "gemini-2.5-flash")
    assert (r1.headers["x-ai-gateway-route"], r2.headers["x-ai-gateway-route"]) == ("chat", "_direct")
    after = wait_for(
        gw,
        lambda s: delta(before, s, REQUESTS, route="_direct", model="gemini-2.5-flash") >= 1
        and delta(before, s, REQUESTS, route="chat", model="deepseek-v3.2") >= 1,
        "both requests counted",
    )
    assert delta(before, after, REQUESTS, route="chat", model="deepseek-v3.2", version="2.0.0-canary.1", status="200") == 1
    assert delta(before, after, REQUESTS, route="_direct", model="gemini-2.5-flash", version="1.0.0", status="200") == 1
    assert delta(before, after, SELECTIONS, route="chat", model="deepseek-v3.2") == 1
    assert delta(before, after, SELECTIONS, route="_direct", model="gemini-2.5-flash") == 1
    assert delta(before, after, REQUESTS) == 2


def test_the_implicit_route_is_labelled_default(mock, envoy):
    cfg = demo_plugin_config()
    cfg.pop("default_route")
    cfg.pop("routes")
    cfg["unknown_models"] = "route"
    gw = envoy(mock(), cfg)
    before = scrape(gw)
    replies = [send_ok(gw, m) for m in ("some-unknown-model", "", "other-unknown")]
    assert {r.headers["x-ai-gateway-route"] for r in replies} == {"_default"}
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS) >= 3, "3 requests counted")
    assert delta(before, after, REQUESTS, route="_default") == 3
    assert delta(before, after, SELECTIONS, route="_default") == 3
    served = {r.headers["x-ai-gateway-model"] for r in replies}
    assert {lab["model"] for lab in after.series(REQUESTS)} <= served
    assert "some-unknown-model" not in after.text and "other-unknown" not in after.text


def test_passthrough_requests_share_one_series_labelled_passthrough(mock, envoy):
    cfg = demo_plugin_config()
    cfg["unknown_models"] = "passthrough"
    gw = envoy(mock(), cfg)
    before = scrape(gw)
    for model in ("vendor-model-a", "vendor-model-b.1"):
        reply = send_ok(gw, model, prompt=40, completion=4)
        assert reply.headers["x-ai-gateway-route"] == "_passthrough"
    after = wait_for(gw, lambda s: hist_count(s, DURATION, route="_passthrough") >= 2, "2 passthrough requests flushed")
    p = {"model": "_passthrough", "version": "_passthrough"}
    assert delta(before, after, REQUESTS, route="_passthrough", status="200", **p) == 2
    assert delta(before, after, SELECTIONS, route="_passthrough", **p) == 2
    assert delta(before, after, TOKENS, type="prompt", **p) == 80
    assert delta(before, after, TOKENS, type="completion", **p) == 8
    # No price for a model the configuration doesn't know.
    assert after.total(COST, model="_passthrough") == 0
    assert "vendor-model" not in after.text


# --------------------------------------------------------------------------------------------
# Status, errors, circuit, failover, rejections
# --------------------------------------------------------------------------------------------


def test_the_status_label_is_the_exact_http_code_and_failures_are_classified(gw):
    m = {"model": "o3-errors", "version": "0.1.0"}
    before = scrape(gw)
    cases = [
        ({"x-mock-status": "503"}, 503),
        ({"x-mock-status": "500"}, 500),
        ({"x-mock-status": "429"}, 429),
        ({"x-mock-status": "400"}, 400),
        ({"x-mock-status": "404"}, 404),
        ({"x-mock-reset": "1"}, 503),
        ({"x-mock-delay-ms": "1500"}, 504),  # over the model's timeout_ms: 400
    ]
    for headers, status in cases:
        reply = send(gw, "o3-errors", headers=headers)
        assert reply.status == status, (headers, reply)
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS, **m) >= len(cases), f"{len(cases)} requests counted")
    got = {lab["status"]: delta(before, after, REQUESTS, route="_direct", status=lab["status"], **m) for lab in after.series(REQUESTS) if lab["model"] == "o3-errors"}
    assert {k: v for k, v in got.items() if v} == {"503": 2, "500": 1, "429": 1, "400": 1, "404": 1, "504": 1}
    errors = {t: delta(before, after, MODEL_ERRORS, error_type=t, **m) for t in ERROR_TYPES}
    # 4xx other than 429 are the client's problem, not the model's.
    assert errors == {"http_5xx": 2, "http_429": 1, "reset": 1, "timeout": 1, "connect_failure": 0}


def test_a_provider_that_refuses_connections_is_a_connect_failure(mock, envoy):
    dead = mock("dead")
    gw = envoy(dead, demo_plugin_config())
    dead.stop()
    before = scrape(gw)
    reply = send(gw, "gpt-4.1")
    assert reply.status == 503, reply
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS) >= 1, "the request counted")
    assert delta(before, after, REQUESTS, route="_direct", model="gpt-4.1", status="503") == 1
    assert delta(before, after, MODEL_ERRORS, model="gpt-4.1", error_type="connect_failure") == 1


def test_an_open_circuit_shows_in_the_gauge_and_its_picks_count_as_failovers(gw, users):
    s = scrape(gw)
    for model, version in CONFIGURED_VERSIONS:
        # Published for every configured model at configuration time, open or not.
        assert s.get(CIRCUIT, model=model, version=version) in (0, 1), f"no circuit gauge for {model}"
    assert s.get(CIRCUIT, model="gemini-2.5-flash", version="1.0.0") == 0
    open_circuit(gw, "claude-sonnet-4.5")
    before = scrape(gw)
    assert before.get(CIRCUIT, model="claude-sonnet-4.5", version="1.4.0") == 1
    n = 6
    for _ in range(n):
        reply = send_ok(gw, "fallback", user=users["claude-sonnet-4.5"])
        assert reply.headers["x-ai-gateway-model"] == "gemini-2.5-flash"
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS, route="fallback") >= n, f"{n} requests counted")
    assert delta(before, after, FAILOVERS, route="fallback", from_model="claude-sonnet-4.5", to_model="gemini-2.5-flash") == n
    assert delta(before, after, SELECTIONS, route="fallback", model="gemini-2.5-flash") == n
    assert delta(before, after, SELECTIONS, route="fallback", model="claude-sonnet-4.5") == 0
    assert after.get(CIRCUIT, model="claude-sonnet-4.5", version="1.4.0") == 1
    assert after.get(CIRCUIT, model="gemini-2.5-flash", version="1.0.0") == 0


def test_a_route_with_every_circuit_open_is_rejected_as_no_healthy_target(gw):
    open_circuit(gw, "gpt-4.1-mini")
    before = scrape(gw)
    reply = send(gw, "solo")
    assert_openai_error(reply, 503, "no_healthy_target")
    assert int(reply.headers["retry-after"]) >= 1
    after = wait_for(gw, lambda s: delta(before, s, REJECTED, reason="no_healthy_target") >= 1, "the rejection counted")
    assert delta(before, after, REJECTED, reason="no_healthy_target") == 1
    # Answered by the gateway: not a request to any model.
    assert delta(before, after, REQUESTS) == 0 and delta(before, after, SELECTIONS) == 0


def test_a_missing_provider_key_is_counted_as_gateway_misconfigured(mock, envoy):
    gw = envoy(mock(), key=None)
    before = scrape(gw)
    assert_openai_error(send(gw, "gpt-4.1"), 500, "gateway_misconfigured")
    after = wait_for(gw, lambda s: delta(before, s, REJECTED, reason="gateway_misconfigured") >= 1, "counted")
    assert delta(before, after, REJECTED, reason="gateway_misconfigured") == 1
    assert delta(before, after, REQUESTS) == 0


def test_router_selections_count_every_pick_of_a_route(gw):
    before = scrape(gw)
    n = 40
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: send_ok(gw, "chat"), range(n)))
    served: dict[str, int] = {}
    for r in replies:
        served[r.headers["x-ai-gateway-model"]] = served.get(r.headers["x-ai-gateway-model"], 0) + 1
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS, route="chat") >= n, f"{n} requests counted")
    for model in ("gpt-4.1", "deepseek-v3.2"):
        assert delta(before, after, SELECTIONS, route="chat", model=model) == served.get(model, 0)
        assert delta(before, after, REQUESTS, route="chat", model=model, status="200") == served.get(model, 0)
    assert delta(before, after, SELECTIONS, route="chat") == n


# --------------------------------------------------------------------------------------------
# Tokens and cost
# --------------------------------------------------------------------------------------------

ENDPOINTS = [
    # path, stream, client asks for usage
    ("/v1/chat/completions", False, False),
    ("/v1/chat/completions", True, False),
    ("/v1/chat/completions", True, True),
    ("/v1/completions", False, False),
    ("/v1/completions", True, False),
    ("/v1/responses", False, False),
    ("/v1/responses", True, False),
    ("/v1/embeddings", False, False),
]


def reported_usage(path: str, body: bytes, stream: bool) -> tuple[int, int] | None:
    """The usage the mock put in the response the client got (None: not visible to it)."""
    if not stream:
        u = json.loads(body)["usage"]
        return u.get("prompt_tokens", u.get("input_tokens")), u.get("completion_tokens", u.get("output_tokens", 0))
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            doc = json.loads(line[6:])
            u = doc.get("usage") or (doc.get("response") or {}).get("usage")
            if u:
                return u.get("prompt_tokens", u.get("input_tokens")), u.get("completion_tokens", u.get("output_tokens"))
    return None


@pytest.mark.parametrize(("path", "stream", "asked"), ENDPOINTS, ids=[f"{p.rsplit('/', 1)[1]}-{'sse' if s else 'json'}{'-asked' if a else ''}" for p, s, a in ENDPOINTS])
@pytest.mark.parametrize("target", ["gpt-4.1", "deepseek-v3.2"])
def test_tokens_and_cost_equal_what_the_provider_reported_at_the_configured_prices(gw, users, target, path, stream, asked):
    prompt, completion = 1000, 500
    extra = {"stream_options": {"include_usage": True}} if asked else {}
    # deepseek-v3.2 is a pre-release: reached through the route only.
    model = target if target == "gpt-4.1" else "chat"
    before = scrape(gw)
    reply = send_ok(gw, model, path=path, stream=stream, prompt=prompt, completion=completion, user=users.get(target), **extra)
    assert reply.headers["x-ai-gateway-model"] == target
    embeddings = path.endswith("/embeddings")
    want_completion = 0 if embeddings else completion
    seen = reported_usage(path, reply.body, stream)
    if not stream or asked or path.endswith("/responses"):
        assert seen == (prompt, want_completion), f"the mock reported {seen}"
    else:
        assert seen is None, "the client got a usage chunk it did not ask for"
    version = versions_of(target)[0]
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS, model=target) >= 1, "the request counted")
    assert delta(before, after, TOKENS, model=target, version=version, type="prompt") == prompt
    assert delta(before, after, TOKENS, model=target, version=version, type="completion") == want_completion
    want_cost = micro_dollars(prompt, want_completion, PRICES[target])
    assert delta(before, after, COST, model=target, version=version) == want_cost


def test_the_worked_example_1000_prompt_tokens_at_2_dollars_per_million_is_2000_micro_dollars(gw):
    before = scrape(gw)
    send_ok(gw, "gpt-4.1", prompt=1000, completion=0)
    after = wait_for(gw, lambda s: delta(before, s, REQUESTS, model="gpt-4.1") >= 1, "counted")
    assert delta(before, after, COST, model="gpt-4.1", version="1.0.0") == 2000
    assert delta(before, after, TOKENS, model="gpt-4.1", type="completion") == 0


def test_cost_is_exact_over_many_requests_with_fractions_carried_not_lost_or_rounded(mock, envoy):
    """$0.10 / $0.70 per million tokens, 1 + 1 tokens a request: 0.8 µ$ each. The counter
    after k requests must read floor(0.8 k) exactly: per-request rounding would give k,
    truncation 0, and a float accumulator 7 (not 8) after 10. One worker, so one carry."""
    cfg = {
        "models": [{"name": "tiny", "version": "1.0.0", "weight": 1, "cluster": "mock"}],
        "upstream": {"cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY"},
        "prices": {"tiny": {"input": 0.10, "output": 0.70}},
    }
    gw = envoy(mock(), cfg, concurrency=1)
    for k in range(1, 26):
        send_ok(gw, "tiny", prompt=1, completion=1)
        s = wait_for(gw, lambda s: s.total(TOKENS, model="tiny", type="prompt") >= k, f"request {k} counted")
        cost = s.total(COST, model="tiny", version="1.0.0")
        assert cost == math.floor(k * 8 / 10), f"after {k} requests: {cost} µ$, exact is {k * 8 // 10}"


# --------------------------------------------------------------------------------------------
# Time to first token
# --------------------------------------------------------------------------------------------


def test_time_to_first_token_is_recorded_for_streams_only(gw):
    time.sleep(2.2)  # a stats flush: earlier tests' histogram samples are in
    before = scrape(gw)
    # JSON only for gemini-2.5-flash in this module: it must never get a TTFT series.
    for _ in range(3):
        send_ok(gw, "gemini-2.5-flash")
    # A stream: 300 ms before the headers, then 250 ms between events (3 words, the final
    # chunk, the injected usage chunk, [DONE]: 5 gaps) → TTFT ≈ 300 ms, duration ≈ 1 550 ms.
    slow = {"x-mock-delay-ms": "300", "x-mock-chunks": "3", "x-mock-chunk-delay-ms": "250"}
    send_ok(gw, "gpt-4.1", stream=True, headers=slow)
    after = wait_for(
        gw,
        lambda s: hist_count(s, TTFT, model="gpt-4.1") > hist_count(before, TTFT, model="gpt-4.1")
        and hist_count(s, DURATION, model="gpt-4.1") > hist_count(before, DURATION, model="gpt-4.1")
        and hist_count(s, DURATION, model="gemini-2.5-flash") >= hist_count(before, DURATION, model="gemini-2.5-flash") + 3,
        "the stream's TTFT and duration and the JSON requests' durations flushed",
    )
    assert not [lab for lab in after.series(f"{TTFT}_count") if lab["model"] == "gemini-2.5-flash"], (
        "a TTFT series for a model that only ever answered JSON"
    )
    g = {"model": "gpt-4.1", "version": "1.0.0"}
    assert hist_count(after, TTFT, **g) - hist_count(before, TTFT, **g) == 1
    assert observations_in(before, after, TTFT, 250, 500, **g) == 1, "TTFT not in (250, 500] ms"
    assert observations_in(before, after, DURATION, 1000, 2500, route="_direct", **g) == 1, "duration not in (1, 2.5] s"


def test_an_error_answer_to_a_stream_request_records_no_time_to_first_token(gw):
    """A 503 JSON error body is not a first token: counting it would make a failing provider
    look fast. TTFT is "time to the first response body byte of a streaming response"."""
    g = {"model": "gpt-4.1", "version": "1.0.0"}
    time.sleep(2.2)
    before = scrape(gw)
    for status in ("503", "429", "400"):
        reply = send(gw, "gpt-4.1", stream=True, headers={"x-mock-status": status})
        assert reply.status == int(status)
        assert reply.headers["content-type"].startswith("application/json")
    after = wait_for(
        gw,
        lambda s: hist_count(s, DURATION, **g) >= hist_count(before, DURATION, **g) + 3,
        "the three requests' durations flushed",
    )
    assert hist_count(after, TTFT, **g) - hist_count(before, TTFT, **g) == 0, (
        "TTFT recorded for error answers (not streams) to stream requests"
    )
