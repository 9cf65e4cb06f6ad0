"""`unknown_models`: what happens to a request whose model is absent, empty or unknown.
(`reject`, the demo's setting, is covered in test_request_path.py.)"""

from __future__ import annotations

import json

import pytest
from harness import TEST_KEY, chat, chat_body, demo_plugin_config, upstream_request

DEMO = demo_plugin_config()
CHAT_MODELS = {t["model"] for t in DEMO["routes"][0]["targets"]}
WEIGHTED_MODELS = {m["name"] for m in DEMO["models"] if m.get("weight", 0) > 0}

UNKNOWN_BODIES = [
    pytest.param(chat_body("no-such-model"), id="unknown"),
    pytest.param(chat_body(""), id="empty"),
    pytest.param(chat_body(None), id="absent"),
]


def config(**changes) -> dict:
    cfg = demo_plugin_config()
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return cfg


@pytest.fixture(scope="module")
def mock_(module_launcher):
    return module_launcher.mock("mock")


@pytest.fixture(scope="module")
def route_gw(module_launcher, mock_):
    return module_launcher.envoy(mock_, config(unknown_models="route"))


@pytest.fixture(scope="module")
def implicit_gw(module_launcher, mock_):
    """`unknown_models: route` without `default_route`: the implicit route of models[].weight."""
    return module_launcher.envoy(mock_, config(unknown_models="route", default_route=None))


@pytest.fixture(scope="module")
def passthrough_gw(module_launcher, mock_):
    return module_launcher.envoy(mock_, config(unknown_models="passthrough"))


@pytest.mark.parametrize("body", UNKNOWN_BODIES)
def test_with_route_an_unknown_model_is_served_by_the_default_route(route_gw, mock_, body):
    seen = set()
    for _ in range(30):
        reply = chat(route_gw, body)
        assert reply.status == 200, reply.body[:300]
        assert reply.headers["x-ai-gateway-route"] == DEMO["default_route"]
        _, got = upstream_request(reply, mock_)
        assert got.json()["model"] == reply.headers["x-ai-gateway-model"] in CHAT_MODELS
        assert got.header("authorization") == f"Bearer {TEST_KEY}"
        seen.add(reply.headers["x-ai-gateway-model"])
    assert "gpt-4.1" in seen  # weight 90 of 100: P(missing in 30) = 1e-30


@pytest.mark.parametrize("body", UNKNOWN_BODIES)
def test_without_a_default_route_an_unknown_model_follows_the_model_weights(implicit_gw, mock_, body):
    reply = chat(implicit_gw, body)
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["x-ai-gateway-route"] == "_default"
    _, got = upstream_request(reply, mock_)
    assert got.json()["model"] == reply.headers["x-ai-gateway-model"] in WEIGHTED_MODELS


def test_with_route_known_names_still_resolve_as_usual(route_gw, mock_):
    reply = chat(route_gw, chat_body("claude-sonnet-4.5"))
    assert reply.status == 200
    assert reply.headers["x-ai-gateway-route"] == "_direct"
    assert upstream_request(reply, mock_)[1].json()["model"] == "claude-sonnet-4.5"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"model" : "no-such-model",\n "messages":[{"role":"user","content":"\\u00e9"}]}', id="unknown"),
        pytest.param(b'{"model":"",  "messages":[]}', id="empty"),
        pytest.param(b'{ "messages" : [ ] , "max_tokens": 999999 }', id="absent"),
    ],
)
def test_with_passthrough_the_body_goes_upstream_byte_identical_with_the_key(passthrough_gw, mock_, raw):
    reply = chat(passthrough_gw, raw, headers={"authorization": "Bearer client-secret"})
    # The provider answers as it sees fit (the mock refuses a body without a model: 400).
    assert "x-mock-request-id" in reply.headers, f"not forwarded: {reply.status} {reply.body[:300]!r}"
    assert reply.headers.get("x-ai-gateway-route") == "_passthrough"
    _, got = upstream_request(reply, mock_)
    assert got.body == raw
    assert got.content_length == len(raw)
    assert got.headers("authorization") == [f"Bearer {TEST_KEY}"]
    assert got.headers("x-ai-gateway-cluster") == [DEMO["upstream"]["cluster"]]
    assert TEST_KEY not in json.dumps(dict(reply.headers))


def test_with_passthrough_malformed_bodies_are_still_rejected(passthrough_gw, mock_):
    before = mock_.last_id()
    reply = chat(passthrough_gw, b"not json")
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "invalid_request"
    assert mock_.last_id() == before
