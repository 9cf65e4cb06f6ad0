"""Multi-provider mode (envoy/multi-provider.yaml): the route's aggregate cluster fails over
from one provider to another, and every attempt carries the key of the provider it goes to.

The filter runs with ``upstream.key_injection: upstream``: it sets no key; on the requests it
routes it removes the client's ``authorization`` and sets the marker
``x-ai-gateway-inject-key: 1`` (the listener's header_to_metadata moves it into dynamic
metadata). The keys are injected per attempt by an upstream HTTP filter chain on the aggregate
cluster (header_mutation tags the attempt with the chosen host's ``ai_gateway.provider``
metadata; a composite filter, for a marked request, runs ``credential_injector`` with that
provider's secret, read from an environment variable), after the router: neither key is in
Envoy's log even at trace level. Unmarked requests (other paths) keep their own headers. Each
test checks what both providers recorded: the right key, and never the other provider's.
"""

from __future__ import annotations

import copy
import json
import os
import types

import pytest
import yaml
from harness import envoy as harness_envoy
from harness import KEY_ENV, REPO, TEST_KEY, WASM, Reply, chat, chat_body, free_port
from harness.secrets import admin_paths, assert_reply_clean, leaks, log_lines_with

MULTI_YAML = REPO / "envoy" / "multi-provider.yaml"
#: Provider A's key is the harness's HOLYSHEEP_API_KEY (TEST_KEY); provider B's is this one.
KEY_A = TEST_KEY
KEY_B_ENV = "BACKUP_PROVIDER_API_KEY"
KEY_B = "sk-test-provider-b-fedcba9876543210"
#: The filter's marker on the requests it routes; only those get a provider key.
MARKER = "x-ai-gateway-inject-key"


def load_multi() -> dict:
    return yaml.safe_load(MULTI_YAML.read_text())


@pytest.fixture
def start(launcher, monkeypatch):
    """``start(provider_a, provider_b, doc=None)`` → a Gateway running multi-provider.yaml (or
    ``doc``), the mocks substituted by cluster name, both keys in Envoy's environment."""

    def _start(a, b, doc: dict | None = None, **kw):
        base = doc if doc is not None else load_multi()
        with monkeypatch.context() as mp:
            mp.setenv(KEY_B_ENV, KEY_B)
            mp.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(base))
            return launcher.envoy({"provider_a": a, "provider_b": b}, **kw)

    return _start


def assert_only_key(rec, key: str, other: str) -> None:
    """``rec`` (a provider's recording) carries ``key`` as its bearer token and nothing of
    ``other`` anywhere, nor the internal provider tag or the marker."""
    assert rec.headers("authorization") == [f"Bearer {key}"], rec.header_pairs
    assert other not in str(rec.header_pairs) and other.encode() not in rec.body, "the other provider's key leaked"
    assert rec.header("x-ai-gateway-provider") is None, rec.header_pairs
    assert rec.header(MARKER) is None, rec.header_pairs


def assert_client_headers(rec) -> None:
    """An unmarked request: the client's own ``authorization``, neither provider key, no
    internal header."""
    assert rec.headers("authorization") == ["Bearer client-secret"], rec.header_pairs
    assert KEY_A not in str(rec.header_pairs) and KEY_B not in str(rec.header_pairs)
    assert rec.header("x-ai-gateway-provider") is None and rec.header(MARKER) is None, rec.header_pairs


def cluster_filters(doc: dict, name: str) -> list[dict]:
    c = next(c for c in doc["static_resources"]["clusters"] if c["name"] == name)
    return c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]


def test_the_config_is_the_multi_provider_topology():
    doc = load_multi()
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    assert clusters["providers"]["cluster_type"]["typed_config"]["clusters"] == ["provider_a", "provider_b"]
    plugin = harness_envoy.wasm_filter_config(doc)
    cfg = json.loads(plugin["configuration"]["value"])
    assert {m["cluster"] for m in cfg["models"]} == {"providers"}
    # The filter sets no key (no key passes the router); every request goes to `providers`,
    # whose key chain keys only the requests the filter marked: no passthrough cluster.
    assert cfg["upstream"] == {"cluster": "providers", "key_injection": "upstream"}
    assert "environment_variables" not in plugin["vm_config"]
    assert set(clusters) == {"providers", "provider_a", "provider_b"}
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    mark = [f for f in hcm["http_filters"] if f["name"] == "ai_gateway.inject_key_mark"]
    assert [f["name"] for f in hcm["http_filters"]][1:] == ["ai_gateway.inject_key_mark", "envoy.filters.http.router"]
    assert mark[0]["typed_config"]["request_rules"][0]["header"] == MARKER
    assert mark[0]["typed_config"]["request_rules"][0]["remove"] is True
    filters = cluster_filters(doc, "providers")
    names = [f["name"] for f in filters]
    # The filter's own upstream copy first (it rebuilds a fallback attempt's body), the key after.
    assert names == [
        "envoy.filters.http.wasm", "ai_gateway.provider_tag", "ai_gateway.provider_key", "ai_gateway.provider_untag",
        "envoy.filters.http.upstream_codec",
    ]
    assert filters[0]["typed_config"]["config"]["root_id"] == "ai_gateway_upstream"
    filters = filters[1:]
    # Outer: the marker (no on_no_match: an unmarked request is left alone); nested: the provider.
    matcher = filters[1]["typed_config"]["xds_matcher"]
    assert "on_no_match" not in matcher
    [outer] = matcher["matcher_list"]["matchers"]
    assert outer["predicate"]["single_predicate"]["input"]["typed_config"]["path"] == [{"key": "inject_key"}]
    nested = outer["on_match"]["matcher"]
    assert nested["matcher_tree"]["input"]["typed_config"]["header_name"] == "x-ai-gateway-provider"
    assert set(nested["matcher_tree"]["exact_match_map"]["map"]) == {"provider_a", "provider_b"}
    assert nested["on_no_match"]["action"]["name"] == "strip_key"
    untag = filters[2]["typed_config"]["mutations"]["request_mutations"]
    assert untag == [{"remove": "x-ai-gateway-provider"}, {"remove": MARKER}]
    secrets = {s["name"]: s["generic_secret"]["secret"] for s in doc["static_resources"]["secrets"]}
    assert secrets == {
        "provider_a_key": {"environment_variable": KEY_ENV},
        "provider_b_key": {"environment_variable": KEY_B_ENV},
    }


def test_multi_provider_yaml_passes_envoy_validate_and_needs_both_keys():
    assert WASM.exists(), f"{WASM} missing: run `make wasm`"
    base = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_B_ENV)}
    r = harness_envoy.envoy_validate(MULTI_YAML, {**base, KEY_ENV: "sk-dummy-a", KEY_B_ENV: "sk-dummy-b"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # A missing key is a configuration error, found before anything is served.
    r = harness_envoy.envoy_validate(MULTI_YAML, {**base, KEY_ENV: "sk-dummy-a"})
    assert r.returncode != 0 and KEY_B_ENV in r.stdout + r.stderr


def test_primary_503_the_retry_on_the_secondary_carries_the_secondarys_key(mock, start):
    a = mock("provider_a", "--fail-status", "503")
    b = mock("provider_b")
    gw = start(a, b)
    before = gw.wasm_vm_health()

    body = chat_body("gpt-4.1", content="which key?")
    reply = chat(gw, body, headers={"authorization": "Bearer client-secret", "x-ai-gateway-provider": "provider_b"})
    assert reply.status == 200, reply.body[:300]
    assert reply.headers.get("x-mock-provider") == "provider_b"
    assert reply.headers.get("x-ai-gateway-model") == "gpt-4.1"

    assert a.last_id() == 1 and b.last_id() == 1
    first, second = a.received(1), b.received(1)
    assert_only_key(first, KEY_A, KEY_B)
    assert_only_key(second, KEY_B, KEY_A)
    for rec in (first, second):
        assert "client-secret" not in str(rec.header_pairs)
        assert rec.json()["messages"] == body["messages"] and rec.json()["model"] == "gpt-4.1"
    assert first.body == second.body
    gw.assert_no_vm_crash_since(before)


def test_a_healthy_primary_gets_its_own_key_and_the_secondary_nothing(mock, start):
    a = mock("provider_a")
    b = mock("provider_b")
    gw = start(a, b)
    # A client can't steer the key with the internal tag header.
    for headers in ({}, {"x-ai-gateway-provider": "provider_b"}):
        reply = chat(gw, chat_body("chat"), headers=headers)
        assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_a"
        assert_only_key(a.received(reply.headers["x-mock-request-id"]), KEY_A, KEY_B)
    assert b.last_id() == 0


def test_primary_down_the_secondary_gets_its_own_key(mock, start):
    b = mock("provider_b")
    dead = types.SimpleNamespace(name="dead", port=free_port())
    gw = start(dead, b)
    for _ in range(3):
        reply = chat(gw, chat_body("gpt-4.1"))
        assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_b", reply.body[:300]
        assert_only_key(b.received(reply.headers["x-mock-request-id"]), KEY_B, KEY_A)


def test_a_429_then_the_secondary_each_attempt_with_its_providers_key(mock, start):
    a = mock("provider_a", "--fail-status", "429")
    b = mock("provider_b")
    gw = start(a, b)
    reply = chat(gw, chat_body("gpt-4.1"), headers={"x-mock-retry-after": "1"})
    assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_b"
    assert_only_key(a.received(1), KEY_A, KEY_B)
    assert_only_key(b.received(1), KEY_B, KEY_A)


def test_a_host_of_no_known_provider_gets_no_key_at_all(mock, start):
    """Fail closed: an endpoint whose metadata names no configured provider gets no key — the
    filter set none (key_injection: upstream) and removed the client's, and the composite's
    on_no_match removes any ``authorization`` still there."""
    doc = load_multi()
    for c in doc["static_resources"]["clusters"]:
        if c["name"] == "provider_b":
            del c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["metadata"]
    a = mock("provider_a", "--fail-status", "503")
    b = mock("provider_b")
    gw = start(a, b, doc)
    reply = chat(gw, chat_body("gpt-4.1"), headers={"authorization": "Bearer client-secret"})
    assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_b"
    assert_only_key(a.received(1), KEY_A, KEY_B)
    rec = b.received(1)
    assert rec.headers("authorization") == [], rec.header_pairs
    assert KEY_A not in str(rec.header_pairs) and KEY_B not in str(rec.header_pairs)


def test_requests_the_filter_does_not_handle_get_no_provider_key(mock, start):
    """Other paths pass through untouched (the client's own ``authorization`` too) to the same
    cluster ``providers``, unmarked: its key chain leaves them alone, on every attempt. A
    client-sent marker changes nothing (the filter removes it)."""
    a = mock("provider_a")
    b = mock("provider_b")
    gw = start(a, b)
    auth = {"authorization": "Bearer client-secret"}
    for headers in (auth, {**auth, MARKER: "1"}):
        r = gw.session.get(gw.url + "/v1/files", headers=headers, timeout=10)
        assert r.headers.get("x-mock-provider") == "provider_a", (r.status_code, r.text[:300])
        assert_client_headers(a.received(r.headers["x-mock-request-id"]))
    # Retried (503 on every attempt: A, B, A): still the client's own header each time.
    r = gw.session.get(gw.url + "/v1/files", headers={**auth, MARKER: "1", "x-mock-status": "503"}, timeout=10)
    assert r.status_code == 503 and a.last_id() == 4 and b.last_id() == 1, (r.status_code, a.last_id(), b.last_id())
    for rec in (a.received(3), b.received(1), a.received(4)):
        assert_client_headers(rec)
    # The same Envoy keys an API request.
    reply = chat(gw, chat_body("chat"), headers={**auth, MARKER: "1"})
    assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_a"
    assert_only_key(a.received(reply.headers["x-mock-request-id"]), KEY_A, KEY_B)


def test_a_model_without_its_own_cluster_gets_each_providers_key(mock, start):
    """A model with no ``cluster`` goes to upstream.cluster (``providers``), marked like any API
    request: each attempt carries the key of its provider. (Test-local: the shipped file names a
    cluster for every model.)"""
    doc = load_multi()
    plugin = harness_envoy.wasm_filter_config(doc)
    cfg = json.loads(plugin["configuration"]["value"])
    cfg["models"].append({"name": "gemini-2.5-flash", "version": "1.0.0"})
    plugin["configuration"]["value"] = json.dumps(cfg)
    a = mock("provider_a", "--fail-status", "503")
    b = mock("provider_b")
    gw = start(a, b, doc)
    reply = chat(gw, chat_body("gemini-2.5-flash"), headers={"authorization": "Bearer client-secret"})
    assert reply.status == 200 and reply.headers.get("x-mock-provider") == "provider_b", reply.body[:300]
    assert_only_key(a.received(1), KEY_A, KEY_B)
    assert_only_key(b.received(1), KEY_B, KEY_A)
    assert b.received(1).json()["model"] == "gemini-2.5-flash"


def test_neither_key_is_in_admin_output_or_the_log(mock, start):
    a = mock("provider_a", "--fail-status", "503")
    b = mock("provider_b")
    gw = start(a, b)
    assert chat(gw, chat_body("gpt-4.1")).status == 200
    # Envoy 1.40 shows the secrets' DataSource as "[redacted]" (not even the variable's name).
    for path in ("/config_dump", "/config_dump?include_eds", "/stats", "/stats/prometheus", "/clusters", "/server_info"):
        text = gw.admin(path).text
        for key in (KEY_A, KEY_B):
            assert key not in text, f"a provider key is visible in admin {path}"
    log = gw.log()
    assert KEY_A not in log and KEY_B not in log


def test_at_trace_level_neither_key_is_in_the_log_admin_output_or_a_response(mock, start):
    """Envoy at ``-l trace`` for every component (no --component-log-level dodge): JSON, SSE,
    a failover 503 → secondary, a 429 → secondary; the router's header dumps run, and hold no
    key, because no key passes the router."""
    a = mock("provider_a")
    b = mock("provider_b")
    gw = start(a, b, log_level="trace", wasm_log_level="trace")
    auth = {"authorization": "Bearer client-secret"}
    replies: list[tuple[str, Reply]] = [
        ("json", chat(gw, chat_body("chat"), headers=auth)),
        ("sse", chat(gw, chat_body("chat", stream=True), headers=auth)),
        ("503 retried", chat(gw, chat_body("gpt-4.1"), headers={**auth, "x-mock-status": "503"})),
        ("429 retried", chat(gw, chat_body("gpt-4.1"), headers={**auth, "x-mock-status": "429", "x-mock-retry-after": "0"})),
    ]
    assert [r.status for _, r in replies] == [200, 200, 503, 429], [(w, r.status, r.body[:200]) for w, r in replies]
    # Every attempt on each provider carried that provider's key (503/429: A, B, A).
    assert a.last_id() == 1 + 1 + 2 + 2 and b.last_id() == 2
    for i in range(1, a.last_id() + 1):
        assert_only_key(a.received(i), KEY_A, KEY_B)
    for i in range(1, b.last_id() + 1):
        assert_only_key(b.received(i), KEY_B, KEY_A)
    for key in (KEY_A, KEY_B):
        for what, reply in replies:
            assert_reply_clean(reply, what, key)
        for path in admin_paths(gw):
            assert not leaks(gw.admin(path).content, key), f"a provider key is visible in admin {path}"
    log = gw.log()
    assert "[trace][router]" in log and "router decoding headers" in log, "Envoy is not logging at trace level"
    for key in (KEY_A, KEY_B):
        found = log_lines_with(log, key)
        assert not found, "a provider key is in Envoy's log:\n" + "\n".join(found[:20])
    gw.assert_alive()
