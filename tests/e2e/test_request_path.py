"""The request path through the real Envoy with envoy/demo.yaml as shipped (ports aside).

Every test checks both sides: what the client saw, and what the provider (the mock) received.
One Envoy + one mock serve the whole module.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import (
    TEST_KEY,
    Reply,
    assert_openai_error,
    chat,
    chat_body,
    demo_plugin_config,
    rawjson,
    upstream_request,
)
from harness.stats import binomial_acceptance

CONFIG = demo_plugin_config()
MODELS = {m["name"]: m for m in CONFIG["models"]}
ROUTES = {r["name"]: r for r in CONFIG["routes"]}
CHAT_TARGETS = {t["model"]: t["weight"] for t in ROUTES["chat"]["targets"]}
DEFAULT_CLUSTER = CONFIG["upstream"]["cluster"]
TIMEOUT_MS = CONFIG["timeout_ms"]
STICKY = CONFIG["sticky"]["header"]


def served(reply: Reply, mock) -> tuple[str, object]:
    """(model the client was told, what the provider received) for a 200 reply."""
    assert reply.status == 200, f"{reply.status}: {reply.body[:500]!r}"
    _, got = upstream_request(reply, mock)
    model = reply.headers.get("x-ai-gateway-model")
    assert model, f"no x-ai-gateway-model in {dict(reply.headers)}"
    assert got.json()["model"] == model, "the header names another model than the one sent upstream"
    return model, got


def assert_no_key_leak(reply: Reply) -> None:
    assert TEST_KEY.encode() not in reply.body
    for k, v in reply.headers.items():
        assert TEST_KEY not in v, f"the provider key leaked in response header {k}"


# --------------------------------------------------------------------------------------------
# Weighted selection
# --------------------------------------------------------------------------------------------


def test_the_chat_alias_splits_its_traffic_by_weight_over_1000_requests(gw, demo_mock):
    """1,000 requests for the alias ``chat`` (targets gpt-4.1 weight 90, deepseek-v3.2 weight
    10 in envoy/demo.yaml) are counted by the ``x-ai-gateway-model`` response header.

    Statistical test: the number K of requests sent to deepseek-v3.2 is Binomial(n=1000,
    p=10/100) when the filter picks independently with probability weight/sum. The test
    accepts K in [lo, hi], the interval whose two exact binomial tails are each ≤ 5·10⁻⁷, so
    a correct filter fails this test with probability ≤ 10⁻⁶ (exactly 8.4·10⁻⁷: [57, 149]).
    For reference, the normal approximation |K − np| ≤ z·σ with σ = sqrt(n·p·(1−p)) = 9.49
    and z = 4.89 (two-sided 10⁻⁶) gives [54, 146]; its exact false-failure rate is 1.9·10⁻⁶
    because the binomial is skewed, hence the exact tails.
    """
    n = 1000
    total = sum(CHAT_TARGETS.values())
    body = chat_body("chat", "split me")

    def one(_):
        r = chat(gw, body)
        assert r.status == 200, f"{r.status}: {r.body[:300]!r}"
        return (
            r.headers.get("x-ai-gateway-model"),
            r.headers.get("x-ai-gateway-version"),
            r.headers.get("x-ai-gateway-route"),
            r.headers.get("x-mock-request-id"),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(n)))

    counts = Counter(model for model, _, _, _ in results)
    assert set(counts) <= set(CHAT_TARGETS), f"models outside the route: {counts}"
    assert {route for _, _, route, _ in results} == {"chat"}
    for model, version, _, _ in results:
        assert version == MODELS[model]["version"]

    for model, weight in CHAT_TARGETS.items():
        lo, hi, rate = binomial_acceptance(n, weight / total, 1e-6)
        assert lo <= counts[model] <= hi, (
            f"{model}: {counts[model]} of {n} requests, expected {n * weight / total:.0f} "
            f"(accepting [{lo}, {hi}], false-failure rate {rate:.1e}); all: {dict(counts)}"
        )

    # The provider received exactly the model the client was told, for a sample of requests.
    for model, _, _, rid in results[:: n // 50]:
        assert demo_mock.received(rid).json()["model"] == model


def test_a_sticky_user_keeps_their_target_and_different_users_spread_over_both(gw, demo_mock):
    """20 users × 5 requests each (a new connection each time, so both Envoy workers — two VMs —
    answer): every user always gets the same model. 200 users in all: both targets are used,
    deepseek-v3.2 by a weight-like share (exact binomial bound, false failure ≤ 10⁻⁶)."""

    def model_for(user: str, new_connection: bool) -> str:
        headers = {STICKY: user}
        if new_connection:
            headers["connection"] = "close"
        model, _ = served(chat(gw, chat_body("chat", f"hi from {user}"), headers=headers), demo_mock)
        return model

    for i in range(20):
        user = f"user-{i}@example.com"
        picks = [model_for(user, new_connection=True) for _ in range(5)]
        assert len(set(picks)) == 1, f"{user} moved between targets: {picks}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        picks = list(pool.map(lambda i: model_for(f"tenant-7/user-{i}", False), range(200)))
    counts = Counter(picks)
    assert set(counts) == set(CHAT_TARGETS), f"200 users did not spread over both targets: {counts}"
    lo, hi, _ = binomial_acceptance(200, CHAT_TARGETS["deepseek-v3.2"] / sum(CHAT_TARGETS.values()), 1e-6)
    assert lo <= counts["deepseek-v3.2"] <= hi, counts


# --------------------------------------------------------------------------------------------
# Model resolution
# --------------------------------------------------------------------------------------------


def test_a_preferred_model_is_honoured_with_its_system_prompt_first_and_every_other_byte_kept(gw, demo_mock):
    prompt = MODELS["claude-sonnet-4.5"]["system_prompt"]
    raw = (
        b'{ "messages" : [ {"role": "user",  "content": "Bonjour, \\u00e7a va ? \xe2\x9c\x93"},'
        b'\n  {"role":"assistant","content":"Oui.\\n\\"Bien\\""} ] ,'
        b'"model":"claude-sonnet-4.5", "stream":false,"x_unknown":{"model":"keep"}}'
    )
    reply = chat(gw, raw)
    model, got = served(reply, demo_mock)
    assert model == "claude-sonnet-4.5"
    assert reply.headers["x-ai-gateway-version"] == MODELS["claude-sonnet-4.5"]["version"]
    assert reply.headers["x-ai-gateway-route"] == "_direct"

    sent, up = rawjson.member_map(raw), rawjson.member_map(got.body)
    # The model needed no rewrite; the only change is the system message in front.
    assert up["model"] == b'"claude-sonnet-4.5"'
    sent_msgs, up_msgs = rawjson.elements(sent["messages"]), rawjson.elements(up["messages"])
    assert json.loads(up_msgs[0]) == {"role": "system", "content": prompt}
    assert up_msgs[1:] == sent_msgs, "the client's messages were not kept byte for byte"
    for key in ("stream", "x_unknown"):
        assert up[key] == sent[key]
    # claude-sonnet-4.5 has no max_tokens/temperature in the demo config: nothing added.
    assert set(up) == set(sent)
    assert [rawjson.key_name(k) for k, _ in rawjson.members(got.body)] == list(sent)
    assert got.content_length == len(got.body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(chat_body("no-such-model"), id="an unknown name"),
        pytest.param(chat_body(""), id="an empty name"),
        pytest.param(chat_body(None), id="no model at all"),
        pytest.param(chat_body("deepseek-v3.2"), id="a model that has only pre-release versions"),
        pytest.param(chat_body("gpt-4.1 "), id="a near miss with a trailing space"),
    ],
)
def test_an_unknown_model_is_rejected_with_model_not_found_and_never_reaches_the_provider(gw, demo_mock, body):
    before = demo_mock.last_id()
    reply = chat(gw, body)
    assert_openai_error(reply, 400, "model_not_found")
    assert "x-mock-request-id" not in reply.headers
    assert demo_mock.last_id() == before, "the provider received a rejected request"


def test_a_configured_model_requested_directly_is_served_with_its_own_settings(gw, demo_mock):
    reply = chat(gw, chat_body("gpt-4.1"))
    model, got = served(reply, demo_mock)
    assert model == "gpt-4.1"
    assert reply.headers["x-ai-gateway-route"] == "_direct"
    assert reply.headers["x-ai-gateway-version"] == MODELS["gpt-4.1"]["version"]
    body = got.json()
    assert body["max_tokens"] == MODELS["gpt-4.1"]["max_tokens"]
    assert body["temperature"] == MODELS["gpt-4.1"]["temperature"]


# --------------------------------------------------------------------------------------------
# Body rewrite
# --------------------------------------------------------------------------------------------

#: A chat body meant to break naive rewriting: odd spacing, raw UTF-8 and escaped unicode
#: (including a surrogate pair), every escape, a nested "model" key and a "model" inside a
#: string, unknown fields, extreme numbers. The alias sits in the middle of the object.
UNUSUAL = (
    b'{\n\t"messages":[ {"role" :"user","content":"h\xc3\xa9llo \\u00e9 \\ud83c\\udf0d \xf0\x9f\x8c\x8d '
    b'\\"model\\": \\"chat\\" \\\\ \\/ \\b\\f\\n\\r\\t"} ],\r\n'
    b'  "model"   :   "chat" ,'
    b'"metadata":{"model":"chat","nested":[{"model":"gpt-4.1"}],"empty":{}},'
    b'"n":1 , "seed":12345678901234567890,"top_p":1.0E0,"logit_bias":{"50256":-100},'
    b'"x_vendor_field":[null,true,false,-0.0,1e-7,"\\u0000"],'
    b'"stop":["\\n\\n"]%s}'
)


def _params(**kw) -> bytes:
    return b"".join(b',"%s":%s' % (k.encode(), json.dumps(v).encode()) for k, v in kw.items())


@pytest.mark.parametrize(
    "extra, expect",
    [
        pytest.param({}, {"max_tokens": 4096, "temperature": 0.7}, id="both absent: cap and default added"),
        pytest.param(
            {"max_tokens": 100000, "temperature": 0.1},
            {"max_tokens": 4096, "temperature": 0.1},
            id="max_tokens above the cap is lowered, the client's temperature kept",
        ),
        pytest.param(
            {"temperature": 0, "max_tokens": 16},
            {"max_tokens": 16, "temperature": 0},
            id="values within the cap are kept",
        ),
        pytest.param(
            {"max_completion_tokens": 99999},
            {"max_completion_tokens": 4096, "temperature": 0.7},
            id="max_completion_tokens is capped and no max_tokens is added",
        ),
        pytest.param(
            {"max_completion_tokens": 99999, "max_tokens": 5000},
            {"max_completion_tokens": 4096, "max_tokens": 4096, "temperature": 0.7},
            id="both token limits are capped",
        ),
    ],
)
def test_parameters_are_applied_and_every_other_field_arrives_byte_identical(gw, demo_mock, extra, expect):
    """Through the route, sticky to gpt-4.1 (max_tokens 4096, temperature 0.7)."""
    raw = UNUSUAL % _params(**extra)
    user = _sticky_user_for(gw, demo_mock, "gpt-4.1")
    reply = chat(gw, raw, headers={STICKY: user})
    model, got = served(reply, demo_mock)
    assert model == "gpt-4.1"

    sent_members = rawjson.members(raw)
    sent = rawjson.member_map(raw)
    up = rawjson.member_map(got.body)
    assert up["model"] == b'"gpt-4.1"'
    for name, value in expect.items():
        assert json.loads(up[name]) == value, f"{name}: {up.get(name)!r}"
    if "max_completion_tokens" in extra and "max_tokens" not in extra:
        assert "max_tokens" not in up
    untouched = [k for k in sent if k not in expect and k != "model"]
    for name in untouched:
        assert up[name] == sent[name], f"{name} changed: {sent[name]!r} → {up[name]!r}"
    # Order of the client's fields is kept; additions are the expected parameters only.
    up_order = [rawjson.key_name(k) for k, _ in rawjson.members(got.body)]
    assert [k for k in up_order if k in sent] == [rawjson.key_name(k) for k, _ in sent_members]
    assert set(up_order) - set(sent) <= set(expect)
    assert got.content_length == len(got.body)
    assert not got.chunked


def test_a_body_with_nothing_to_change_but_the_model_arrives_byte_identical_but_the_model(gw, demo_mock):
    """The strictest check: only the value of the top-level model changes, whitespace
    included; here every parameter is already within its target's settings."""
    raw = UNUSUAL % _params(max_tokens=100, temperature=0.3)
    user = _sticky_user_for(gw, demo_mock, "gpt-4.1")
    model, got = served(chat(gw, raw, headers={STICKY: user}), demo_mock)
    assert model == "gpt-4.1"
    expected = raw.replace(b'"model"   :   "chat" ,', b'"model"   :   "gpt-4.1" ,', 1)
    assert got.body == expected
    assert got.content_length == len(expected)


def test_a_deepseek_pick_gets_no_parameters_it_was_not_configured_with(gw, demo_mock):
    raw = UNUSUAL % b""
    user = _sticky_user_for(gw, demo_mock, "deepseek-v3.2")
    reply = chat(gw, raw, headers={STICKY: user})
    model, got = served(reply, demo_mock)
    assert model == "deepseek-v3.2"
    assert reply.headers["x-ai-gateway-version"] == MODELS["deepseek-v3.2"]["version"]
    assert got.body == raw.replace(b'"model"   :   "chat" ,', b'"model"   :   "deepseek-v3.2" ,', 1)


_STICKY_CACHE: dict[str, str] = {}


def _sticky_user_for(gw, mock, model: str) -> str:
    """A value of the sticky header that the chat route sends to ``model``."""
    if model in _STICKY_CACHE:
        return _STICKY_CACHE[model]
    for i in range(500):
        user = f"probe-user-{i}"
        got, _ = served(chat(gw, chat_body("chat"), headers={STICKY: user}), mock)
        _STICKY_CACHE.setdefault(got, user)
        if model in _STICKY_CACHE:
            return _STICKY_CACHE[model]
    pytest.fail(f"no sticky user maps to {model} among 500")


# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------


def test_the_provider_key_replaces_the_clients_key_and_is_never_returned(gw, demo_mock):
    reply = chat(
        gw,
        chat_body("chat"),
        headers={"authorization": "Bearer client-secret", "x-api-key": "client-other"},
    )
    _, got = served(reply, demo_mock)
    assert got.headers("authorization") == [f"Bearer {TEST_KEY}"]
    assert b"client-secret" not in json.dumps(got.raw).encode()
    assert_no_key_leak(reply)


def test_content_length_upstream_equals_the_body_length(gw, demo_mock):
    for body in (chat_body("chat"), chat_body("claude-sonnet-4.5", "x" * 100_000), chat_body("gpt-4.1")):
        _, got = served(chat(gw, body), demo_mock)
        assert got.content_length == len(got.body) == got.body_len
        assert not got.chunked


def test_a_chunked_client_request_arrives_with_a_correct_length(gw, demo_mock):
    raw = json.dumps(chat_body("chat", "chunked " * 1000)).encode()
    parts = iter([raw[:10], raw[10:5000], raw[5000:]])
    r = gw.session.post(gw.url + "/v1/chat/completions", data=parts, headers={"content-type": "application/json"})
    reply = Reply(r.status_code, r.headers, r.content)
    _, got = served(reply, demo_mock)
    assert got.json()["messages"] == chat_body("chat", "chunked " * 1000)["messages"]
    if got.content_length is not None:
        assert got.content_length == len(got.body)
        assert not got.chunked
    else:
        assert got.chunked


def test_a_client_cannot_choose_the_cluster_or_the_timeout(gw, demo_mock):
    """The client names a cluster that does not exist and asks for a 1 ms timeout, against a
    provider that takes 200 ms: the request still succeeds, on the filter's cluster."""
    reply = chat(
        gw,
        chat_body("chat"),
        headers={
            "x-ai-gateway-cluster": "evil",
            "x-envoy-upstream-rq-timeout-ms": "1",
            "x-mock-delay-ms": "200",
        },
    )
    _, got = served(reply, demo_mock)
    assert got.headers("x-ai-gateway-cluster") == [DEFAULT_CLUSTER]
    # Envoy consumes x-envoy-upstream-rq-timeout-ms (the router strips it before forwarding);
    # if it ever reaches the provider, it must be the filter's value.
    assert got.headers("x-envoy-upstream-rq-timeout-ms") in ([], [str(TIMEOUT_MS)])


def test_requests_outside_the_api_paths_pass_through_untouched_and_without_the_key(gw, demo_mock):
    for method, path, body in (
        ("GET", "/v1/files", None),
        ("POST", "/v1/audio/speech", b'{"model":"chat","input":"hi"}'),
        ("GET", "/v1/chat/completions", None),
    ):
        r = gw.session.request(
            method,
            gw.url + path,
            data=body,
            headers={"authorization": "Bearer client-secret", "x-ai-gateway-cluster": "evil"},
        )
        reply = Reply(r.status_code, r.headers, r.content)
        assert "x-mock-request-id" in reply.headers, f"{method} {path} did not reach the provider: {reply}"
        _, got = upstream_request(reply, demo_mock)
        assert (got.method, got.path) == (method, path)
        assert got.body == (body or b"")
        assert TEST_KEY not in json.dumps(got.raw), f"{method} {path}: the provider key was sent"
        assert_no_key_leak(reply)


# --------------------------------------------------------------------------------------------
# /v1/models
# --------------------------------------------------------------------------------------------


def test_v1_models_is_answered_by_the_gateway_with_its_routes_and_models(gw, demo_mock):
    before = demo_mock.last_id()
    r = gw.session.get(gw.url + "/v1/models", headers={"authorization": "Bearer client-key"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == "application/json"
    assert "x-mock-request-id" not in r.headers
    doc = r.json()
    assert doc["object"] == "list"
    ids = [m["id"] for m in doc["data"]]
    assert len(ids) == len(set(ids)), ids
    assert {"chat", "gpt-4.1", "claude-sonnet-4.5"} <= set(ids)
    for m in doc["data"]:
        assert m["object"] == "model" and m["created"] == 0 and isinstance(m["owned_by"], str), m
    assert demo_mock.last_id() == before


# --------------------------------------------------------------------------------------------
# Bad input: OpenAI-style errors, and the VM keeps serving
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"this is not json", id="not JSON"),
        pytest.param(b"", id="an empty body"),
        pytest.param(b'[{"model":"chat"}]', id="an array"),
        pytest.param(b'"chat"', id="a string"),
        pytest.param(b'{"model":42,"messages":[]}', id="a number as the model"),
        pytest.param(b'{"model":null,"messages":[]}', id="null as the model"),
        pytest.param(b'{"model":["chat"],"messages":[]}', id="an array as the model"),
        pytest.param(b'{"model":"chat","messages":[', id="truncated JSON"),
        pytest.param(b'{"model":"chat"} trailing', id="trailing garbage"),
        pytest.param(b'{"model":"chat","model":"gpt-4.1"}', id="a duplicate model key"),
        pytest.param(b'{"model":"chat","mod\\u0065l":"gpt-4.1"}', id="a duplicate model key spelled with an escape"),
        pytest.param(b'{"model":"ch\xffat"}', id="invalid UTF-8"),
    ],
)
def test_a_malformed_body_gets_a_400_invalid_request_and_the_vm_keeps_serving(gw, demo_mock, raw):
    health = gw.wasm_vm_health()
    before = demo_mock.last_id()
    reply = chat(gw, raw)
    assert_openai_error(reply, 400, "invalid_request")
    assert demo_mock.last_id() == before, "the provider received a malformed request"
    assert_no_key_leak(reply)
    served(chat(gw, chat_body("chat")), demo_mock)
    gw.assert_no_vm_crash_since(health)


def test_a_post_without_any_body_gets_a_400_invalid_request(gw, demo_mock):
    health = gw.wasm_vm_health()
    r = gw.session.post(gw.url + "/v1/chat/completions")
    assert_openai_error(Reply(r.status_code, r.headers, r.content), 400, "invalid_request")
    served(chat(gw, chat_body("chat")), demo_mock)
    gw.assert_no_vm_crash_since(health)


@pytest.mark.parametrize(
    "raw, headers",
    [
        pytest.param(b'{"model":"chat","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}", {}, id="deep nesting"),
        pytest.param(b'{"model":"' + b"m" * 1_000_000 + b'"}', {}, id="a 1 MB model name"),
        pytest.param(json.dumps(chat_body("chat")).encode(), {STICKY: b"\xff\xfe-user"}, id="a non-UTF-8 sticky header"),
        pytest.param(json.dumps(chat_body("chat")).encode(), {"authorization": b"Bearer \xff"}, id="a non-UTF-8 authorization"),
        pytest.param(json.dumps(chat_body("chat")).encode(), {"content-type": "text/plain"}, id="another content type"),
        pytest.param(b'{"model":"chat","messages":[{"role":"user","content":"\\ud800"}]}', {}, id="a lone surrogate escape"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(chat_body("chat")).encode(), {}, id="a UTF-8 byte order mark"),
    ],
)
def test_hostile_input_never_crashes_the_vm(gw, demo_mock, raw, headers):
    health = gw.wasm_vm_health()
    reply = chat(gw, raw, headers=headers)
    assert reply.status in (200, 400), f"{reply.status}: {reply.body[:300]!r}"
    if reply.status == 400:
        assert_openai_error(reply, 400, reply.json()["error"]["code"])
    served(chat(gw, chat_body("chat")), demo_mock)
    gw.assert_no_vm_crash_since(health)


# --------------------------------------------------------------------------------------------
# Body size
# --------------------------------------------------------------------------------------------

MIB = 1024 * 1024


def _body_of_size(size: int) -> bytes:
    head = b'{"model":"chat","messages":[{"role":"user","content":"'
    tail = b'"}]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("mib", [10, 16])
def test_a_large_body_passes_with_the_right_content_length(gw, demo_mock, mib):
    raw = _body_of_size(mib * MIB)
    reply = chat(gw, raw, timeout=60)
    model, got = served(reply, demo_mock)
    assert got.content_length == len(got.body)
    sent, up = rawjson.member_map(raw), rawjson.member_map(got.body)
    assert up["messages"] == sent["messages"]
    assert json.loads(up["model"]) == model


def test_a_body_over_the_buffer_limit_gets_413_from_envoy(gw, demo_mock):
    import requests

    before = demo_mock.last_id()
    raw = _body_of_size(18 * MIB)
    try:
        r = requests.post(gw.url + "/v1/chat/completions", data=raw, headers={"content-type": "application/json"}, timeout=60)
    except requests.ConnectionError as e:  # Envoy may answer and close before the upload ends
        pytest.fail(f"the connection was closed without a 413: {e}")
    assert r.status_code == 413, f"{r.status_code}: {r.content[:300]!r}"
    assert demo_mock.last_id() == before
    served(chat(gw, chat_body("chat")), demo_mock)
