"""envoy/key-upstream.yaml: ``upstream.key_injection: upstream`` — the provider key never passes
Envoy's router, so it is in no log line at any level.

In the default mode the filter sets ``authorization: Bearer <key>`` before the router, whose
debug log prints every request header (test_secrets.py pins that). Here the filter removes the
client's ``authorization`` from the requests it routes and marks them
(``x-ai-gateway-inject-key: 1``, moved into dynamic metadata by the listener's
header_to_metadata); the aggregate cluster ``mock`` runs, as an upstream HTTP filter, a
composite filter that matches the marker and runs Envoy's ``credential_injector``: it sets the
key on every attempt of a marked request, retries included, after the router. Requests the
filter does not handle (other paths) go to the same cluster unmarked, with the client's own
headers: the key goes only with API requests, as in the default mode, and a client can't ask
for it by sending the marker.

One Envoy at ``-l trace`` for every component (no ``--component-log-level`` dodge), a primary
and a secondary mock, a key with an unusual but legal shape; then what each provider received,
every response, every admin endpoint and the whole log.
"""

from __future__ import annotations

import copy
import json
import os
import uuid

import pytest
import requests
import yaml
from harness import envoy as harness_envoy
from harness import KEY_ENV, REPO, WASM, Reply, assert_openai_error, chat, chat_body
from harness.secrets import admin_paths, assert_reply_clean, leaks, log_lines_with

KEY_UPSTREAM_YAML = REPO / "envoy" / "key-upstream.yaml"
#: Unusual but legal in a header value: base64 and URL punctuation, a tilde, a colon, padding.
KEY = "hs_up~A+b/c=d.e-f:0123456789-XyZ/w+=="
CLIENT_TOKEN = "client-secret"
#: The filter's marker on the requests it routes (the cluster injects the key only on those).
MARKER = "x-ai-gateway-inject-key"


def load_key_upstream() -> dict:
    return yaml.safe_load(KEY_UPSTREAM_YAML.read_text())


@pytest.fixture(scope="module")
def mocks(module_launcher):
    return module_launcher.mock("primary"), module_launcher.mock("secondary")


@pytest.fixture(scope="module")
def gw(module_launcher, mocks):
    primary, secondary = mocks
    doc = load_key_upstream()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
        return module_launcher.envoy(
            {"mock_primary": primary, "mock_secondary": secondary},
            key=KEY,
            log_level="trace",
            wasm_log_level="trace",
        )


def attempts_since(mock, before: int) -> list:
    """What ``mock`` recorded after its request id ``before``."""
    return [mock.received(i) for i in range(before + 1, mock.last_id() + 1)]


def assert_provider_key(rec, what: str) -> None:
    assert rec.headers("authorization") == [f"Bearer {KEY}"], f"{what}: {rec.header_pairs}"
    assert CLIENT_TOKEN not in str(rec.header_pairs), f"{what}: the client's token reached the provider"
    assert rec.headers(MARKER) == [], f"{what}: the marker reached the provider: {rec.header_pairs}"


def assert_client_headers(rec, what: str) -> None:
    """An unmarked request: the client's own ``authorization``, never the key, no marker."""
    assert rec.headers("authorization") == [f"Bearer {CLIENT_TOKEN}"], f"{what}: {rec.header_pairs}"
    assert not leaks(str(rec.header_pairs), KEY), f"{what}: the key went with a request the filter did not route"
    assert rec.headers(MARKER) == [], f"{what}: the marker reached the provider: {rec.header_pairs}"


def stream(gw, body: dict, headers: dict) -> Reply:
    r = requests.post(gw.url + "/v1/chat/completions", json=body, headers=headers, stream=True, timeout=30)
    with r:
        data = b"".join(r.iter_content(None))
    return Reply(r.status_code, r.headers, data)


def drive(gw, mocks) -> dict[str, tuple[Reply, list]]:
    """Every kind of request; for each, the reply and every attempt the providers received."""
    primary, secondary = mocks
    auth = {"authorization": f"Bearer {CLIENT_TOKEN}"}
    out: dict[str, tuple[Reply, list]] = {}

    def send(what: str, fn) -> None:
        before = (primary.last_id(), secondary.last_id())
        reply = fn()
        out[what] = (reply, attempts_since(primary, before[0]) + attempts_since(secondary, before[1]))

    send("json", lambda: chat(gw, chat_body("chat"), headers=auth))
    send("direct model", lambda: chat(gw, chat_body("claude-sonnet-4.5"), headers=auth))
    send("sse", lambda: stream(gw, chat_body("chat", stream=True), auth))
    send("completions", lambda: chat(gw, {"model": "chat", "prompt": "hi"}, path="/v1/completions", headers=auth))
    send("embeddings", lambda: chat(gw, {"model": "chat", "input": "hi"}, path="/v1/embeddings", headers=auth))
    # Every attempt fails (the header reaches both endpoints): primary, secondary, primary.
    send("503 retried", lambda: chat(gw, chat_body("gpt-4.1"), headers={**auth, "x-mock-status": "503"}))
    # The first attempt fails, the retry on the secondary succeeds. (x-mock-fail-first counts
    # per mock process: the secondary's one failure for this key is used up first, directly.)
    fail_once = {"x-mock-fail-first": "1", "x-mock-fail-key": uuid.uuid4().hex}
    used = requests.post(secondary.url + "/v1/chat/completions", json=chat_body("gpt-4.1"), headers=fail_once, timeout=10)
    assert used.status_code == 503, used.text
    send("503 then the secondary", lambda: chat(gw, chat_body("gpt-4.1"), headers={**auth, **fail_once}))
    send("429 retried", lambda: chat(gw, chat_body("gpt-4.1"), headers={**auth, "x-mock-status": "429", "x-mock-retry-after": "0"}))
    send("provider 401", lambda: chat(gw, chat_body("chat"), headers={**auth, "x-mock-status": "401"}))
    send("invalid body", lambda: chat(gw, b'{"model":', headers=auth))
    send("unknown model", lambda: chat(gw, chat_body("no-such-model"), headers=auth))

    def get(path: str, headers: dict = auth) -> Reply:
        r = gw.session.get(gw.url + path, headers=headers, timeout=30)
        return Reply(r.status_code, r.headers, r.content)

    send("/v1/models", lambda: get("/v1/models"))
    send("passthrough path", lambda: get("/v1/files"))
    # A client sending the marker itself: the filter removes it from every request, so the
    # injector doesn't match (and on an API request the filter's own marker is what counts).
    forged = {**auth, MARKER: "1"}
    send("forged marker, passthrough", lambda: get("/v1/files", forged))
    send("forged marker, API", lambda: chat(gw, chat_body("chat"), headers=forged))
    return out


@pytest.fixture(scope="module")
def driven(gw, mocks):
    return drive(gw, mocks)


def http_filters(doc: dict) -> list[dict]:
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def test_the_shipped_file_is_demo_yaml_with_the_key_moved_to_the_cluster():
    doc = load_key_upstream()
    plugin = harness_envoy.wasm_filter_config(doc)
    cfg = json.loads(plugin["configuration"]["value"])
    # Every request goes to the one cluster, like demo.yaml: no passthrough cluster without the
    # injector (the marker decides who gets the key, not the cluster).
    assert cfg["upstream"] == {"cluster": "mock", "key_injection": "upstream"}
    assert {m["cluster"] for m in cfg["models"]} == {"mock"}
    assert "environment_variables" not in plugin["vm_config"], "the VM needs no key in upstream mode"
    demo = harness_envoy.load_demo_yaml()
    for k in ("admin", "stats_config", "stats_flush_interval"):
        assert doc[k] == demo[k], k

    def route(d: dict) -> dict:
        return d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]

    assert route(doc) == route(demo)
    # The listener: the filter, then its marker moved into dynamic metadata (the header removed).
    names = [f["name"] for f in http_filters(doc)]
    assert names == ["envoy.filters.http.wasm", "ai_gateway.inject_key_mark", "envoy.filters.http.router"], names
    assert http_filters(doc)[1]["typed_config"]["request_rules"] == [
        {
            "header": MARKER,
            "on_header_present": {"metadata_namespace": "ai_gateway", "key": "inject_key", "type": "STRING"},
            "remove": True,
        }
    ]
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    demo_clusters = {c["name"]: c for c in demo["static_resources"]["clusters"]}
    assert set(clusters) == {"mock", "mock_primary", "mock_secondary"}
    assert clusters["mock_primary"] == demo_clusters["mock_primary"]
    assert clusters["mock_secondary"] == demo_clusters["mock_secondary"]
    opts = clusters["mock"]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    names = [f["name"] for f in opts["http_filters"]]
    # The filter's own upstream copy first (it rebuilds a fallback attempt's body), the key after.
    assert names == [
        "envoy.filters.http.wasm", "ai_gateway.provider_key", "ai_gateway.inject_key_unmark", "envoy.filters.http.upstream_codec"
    ]
    assert opts["http_filters"][0]["typed_config"]["config"]["root_id"] == "ai_gateway_upstream"
    # demo.yaml's mock cluster has the same copy and the codec; here the key chain sits between.
    demo_opts = demo_clusters["mock"]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert [f["name"] for f in demo_opts["http_filters"]] == [names[0], names[-1]]
    opts = {**opts, "http_filters": opts["http_filters"][1:]}  # the key chain, by position below
    # The composite: the marker's metadata = "1" → credential_injector; no on_no_match (an
    # unmarked request keeps its own headers).
    matcher = opts["http_filters"][0]["typed_config"]["xds_matcher"]
    assert "on_no_match" not in matcher
    [m] = matcher["matcher_list"]["matchers"]
    pred = m["predicate"]["single_predicate"]
    assert pred["input"]["typed_config"]["filter"] == "ai_gateway"
    assert pred["input"]["typed_config"]["path"] == [{"key": "inject_key"}]
    assert pred["custom_match"]["typed_config"]["value"] == {"string_match": {"exact": "1"}}
    action = m["on_match"]["action"]["typed_config"]["typed_config"]
    assert action["name"] == "envoy.filters.http.credential_injector"
    injector = action["typed_config"]
    assert injector["overwrite"] is True
    assert injector["credential"]["typed_config"]["header_value_prefix"] == "Bearer "
    assert injector["credential"]["typed_config"]["credential"] == {"name": "provider_key"}
    assert opts["http_filters"][1]["typed_config"]["mutations"]["request_mutations"] == [{"remove": MARKER}]
    assert doc["static_resources"]["secrets"] == [
        {"name": "provider_key", "generic_secret": {"secret": {"environment_variable": KEY_ENV}}}
    ]


def test_every_attempt_carries_the_key_and_never_the_clients_token(driven):
    api = ["json", "direct model", "sse", "completions", "embeddings", "429 retried", "provider 401"]
    for what in api:
        reply, attempts = driven[what]
        assert attempts, f"{what}: nothing reached a provider ({reply.status} {reply.body[:200]!r})"
        for rec in attempts:
            assert_provider_key(rec, what)
    assert driven["json"][0].status == 200 and driven["sse"][0].status == 200
    assert b"data: [DONE]" in driven["sse"][0].body
    assert len(driven["429 retried"][1]) == 3


def test_a_retried_attempt_carries_the_key_too(driven):
    reply, attempts = driven["503 retried"]
    assert reply.status == 503, reply.body[:300]
    assert len(attempts) == 3, attempts  # the first try and num_retries: 2
    for rec in attempts:
        assert_provider_key(rec, "503 retried")
    reply, attempts = driven["503 then the secondary"]
    assert reply.status == 200 and reply.headers.get("x-mock-provider") == "secondary", reply.body[:300]
    assert len(attempts) == 2, attempts
    for rec in attempts:
        assert_provider_key(rec, "503 then the secondary")
    assert attempts[0].body == attempts[1].body, "the retry did not replay the rewritten body"


def test_requests_the_filter_does_not_handle_go_without_the_key(driven):
    """Same as the default mode: other paths pass through untouched (the client's own
    ``authorization`` included) — to the same cluster ``mock``, but unmarked, so its injector
    doesn't run."""
    reply, attempts = driven["passthrough path"]
    assert len(attempts) == 1, (reply.status, attempts)
    assert_client_headers(attempts[0], "passthrough path")
    for what in ("/v1/models", "invalid body", "unknown model"):
        assert driven[what][1] == [], f"{what} went upstream"
    assert driven["/v1/models"][0].status == 200
    assert_openai_error(driven["invalid body"][0], 400, "invalid_request")
    assert_openai_error(driven["unknown model"][0], 400, "model_not_found")


def test_a_client_sending_the_marker_gets_no_key(driven):
    """``x-ai-gateway-inject-key: 1`` from the client, on a request the filter doesn't route:
    the filter removes it, the injector doesn't match, the client's own ``authorization`` goes
    through. On an API request it changes nothing (the filter's own marker is what counts)."""
    reply, attempts = driven["forged marker, passthrough"]
    assert len(attempts) == 1, (reply.status, attempts)
    assert_client_headers(attempts[0], "forged marker, passthrough")
    reply, attempts = driven["forged marker, API"]
    assert reply.status == 200 and len(attempts) == 1, (reply.status, reply.body[:200])
    assert_provider_key(attempts[0], "forged marker, API")


def test_the_marker_never_reaches_a_provider(driven):
    """What each provider recorded (``GET /__requests/N``): no ``x-ai-gateway-inject-key`` on
    any attempt, marked or not, first or retried."""
    seen = 0
    for what, (_, attempts) in driven.items():
        for rec in attempts:
            assert rec.headers(MARKER) == [], f"{what}: {rec.header_pairs}"
            seen += 1
    assert seen >= 17, seen


def test_the_key_is_in_no_response_body_or_header(driven):
    assert {r.status for r, _ in driven.values()} >= {200, 400, 401, 404, 429, 503}
    for what, (reply, _) in driven.items():
        assert_reply_clean(reply, what, KEY)


def test_the_key_is_in_no_admin_endpoint(gw, driven):
    checked = []
    for path in admin_paths(gw):
        r = gw.admin(path)
        assert not leaks(r.content, KEY), f"the provider key is visible in admin {path}"
        checked.append(path)
    assert {"/config_dump?include_eds", "/stats", "/clusters"} <= set(checked)
    # The secret is there, redacted.
    assert "provider_key" in gw.admin("/config_dump?include_eds").text


def test_at_trace_level_the_key_is_nowhere_in_envoys_log(gw, driven):
    log = gw.log()
    # Really at trace, and the router's header dump really ran (it is what shows the key in
    # the default mode).
    assert "[trace][wasm]" in log and "[trace][router]" in log, "Envoy is not logging at trace level"
    assert "router decoding headers" in log
    assert "[trace][http]" in log or "[trace][connection]" in log
    assert not log_lines_with(log, KEY), "the key is in Envoy's log:\n" + "\n".join(log_lines_with(log, KEY)[:20])
    # The client's token is in the router's dump of the passthrough request (Envoy prints what it
    # forwards) — proof that the check above would have seen a key there.
    assert CLIENT_TOKEN in log


def test_the_injector_counts_every_marked_attempt_and_no_failure(gw, driven):
    stats = gw.stats()
    unmarked = ("passthrough path", "forged marker, passthrough")
    api_attempts = sum(len(a) for w, (_, a) in driven.items() if w not in unmarked)
    # Once per attempt of a marked request (retries too), never for an unmarked one.
    assert stats["cluster.mock.credential_injector.injected"] == api_attempts
    assert stats["cluster.mock.credential_injector.failed"] == 0


def test_a_trace_level_vm_served_everything_without_a_crash(gw, driven):
    gw.assert_alive()
    health = gw.wasm_vm_health()
    assert health["traps"] == 0 and health["reloads"] == 0, health


def test_a_model_without_its_own_cluster_and_a_passthrough_model_get_the_key(launcher, monkeypatch):
    """No injector-less detour: a model with no ``cluster`` (→ upstream.cluster) and
    ``unknown_models: passthrough`` go out marked like any API request, and get the key on every
    attempt; the same Envoy still sends a non-API request with the client's own header. (The
    shipped file names a cluster for every model and rejects unknown ones: a test-local plugin
    configuration derived from it.)"""
    primary, secondary = launcher.mock("primary"), launcher.mock("secondary")
    doc = load_key_upstream()
    cfg = json.loads(harness_envoy.wasm_filter_config(doc)["configuration"]["value"])
    cfg["models"].append({"name": "gemini-2.5-flash", "version": "1.0.0"})
    cfg["unknown_models"] = "passthrough"
    assert cfg["upstream"]["cluster"] == "mock"
    monkeypatch.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
    gw = launcher.envoy({"mock_primary": primary, "mock_secondary": secondary}, cfg, key=KEY)
    auth = {"authorization": f"Bearer {CLIENT_TOKEN}"}

    def attempts(fn) -> tuple[Reply, list]:
        before = (primary.last_id(), secondary.last_id())
        reply = fn()
        return reply, attempts_since(primary, before[0]) + attempts_since(secondary, before[1])

    for model in ("gemini-2.5-flash", "some-unlisted-model"):
        reply, recs = attempts(lambda: chat(gw, chat_body(model), headers=auth))
        assert reply.status == 200 and len(recs) == 1, (model, reply.status, reply.body[:200])
        assert_provider_key(recs[0], model)
        assert recs[0].json()["model"] == model
        # Retried: every attempt keyed (primary, secondary, primary).
        reply, recs = attempts(lambda: chat(gw, chat_body(model), headers={**auth, "x-mock-status": "503"}))
        assert reply.status == 503 and len(recs) == 3, (model, reply.status, recs)
        for rec in recs:
            assert_provider_key(rec, f"{model}, retried")
    assert reply.headers.get("x-ai-gateway-route") == "_passthrough"
    r = gw.session.get(gw.url + "/v1/files", headers={**auth, MARKER: "1"}, timeout=30)
    assert r.headers.get("x-mock-provider") == "primary", (r.status_code, r.text[:200])
    assert_client_headers(primary.received(r.headers["x-mock-request-id"]), "/v1/files")
    assert gw.stats()["cluster.mock.credential_injector.injected"] == 8


# --------------------------------------------------------------------------------------------
# The key's variable: missing, empty
# --------------------------------------------------------------------------------------------


def test_without_the_variable_envoy_refuses_to_start_and_validate_fails(launcher, monkeypatch):
    """No HOLYSHEEP_API_KEY: Envoy exits at start (code 1), naming the variable; `envoy --mode
    validate` fails the same way. (The default mode starts and answers 500
    gateway_misconfigured instead.)"""
    assert WASM.exists(), f"{WASM} missing: run `make wasm`"
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    r = harness_envoy.envoy_validate(KEY_UPSTREAM_YAML, env)
    assert r.returncode != 0
    assert f"Environment variable doesn't exist: {KEY_ENV}" in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]

    m = launcher.mock("nokey")
    doc = load_key_upstream()
    monkeypatch.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
    gw = launcher.envoy(m, key=None, expect_start=False)
    gw.proc.popen.wait(30)
    assert gw.proc.popen.returncode == 1
    assert f"Environment variable doesn't exist: {KEY_ENV}" in gw.log()


def test_an_empty_variable_starts_but_every_api_request_gets_401_and_nothing_goes_upstream(launcher, monkeypatch):
    """Envoy accepts an empty variable; credential_injector then refuses each attempt with its
    own 401 ``Failed to inject credential.`` (plain text) and counts it in
    ``cluster.mock.credential_injector.failed``: fail closed, no request without a key."""
    m = launcher.mock("empty")
    doc = load_key_upstream()
    monkeypatch.setattr(harness_envoy, "load_demo_yaml", lambda: copy.deepcopy(doc))
    gw = launcher.envoy(m, key="")
    reply = chat(gw, chat_body("chat"), headers={"authorization": f"Bearer {CLIENT_TOKEN}"})
    assert reply.status == 401, reply
    assert reply.body == b"Failed to inject credential."
    assert m.last_id() == 0, "a request went upstream without a key"
    assert gw.stats()["cluster.mock.credential_injector.failed"] == 1

