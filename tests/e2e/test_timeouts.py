"""Per-request timeouts set by the filter: the global ``timeout_ms``, a model's own (each bounds
one attempt until its response starts: ``x-envoy-upstream-rq-per-try-timeout-ms``), and a client
cannot change either with Envoy's timeout headers. One attempt per request here
(``max_attempts: 1``): retries multiply the wait, which ``test_fallback.py`` covers."""

from __future__ import annotations

import time

import pytest
from harness import chat, chat_body, demo_plugin_config, upstream_request


@pytest.fixture(scope="module")
def mock_(module_launcher):
    return module_launcher.mock("mock")


@pytest.fixture(scope="module")
def short_timeouts(module_launcher, mock_):
    """Global timeout_ms 1000; claude-sonnet-4.5 overrides it with 4000; one attempt."""
    cfg = demo_plugin_config()
    cfg["timeout_ms"] = 1000
    cfg["max_attempts"] = 1
    for m in cfg["models"]:
        if m["name"] == "claude-sonnet-4.5":
            m["timeout_ms"] = 4000
    return module_launcher.envoy(mock_, cfg)


def timed(gw, body, headers):
    t0 = time.monotonic()
    reply = chat(gw, body, headers=headers, timeout=30)
    return reply, time.monotonic() - t0


def test_the_global_timeout_cuts_a_slow_provider_and_a_client_cannot_extend_it(short_timeouts):
    reply, took = timed(
        short_timeouts,
        chat_body("chat"),
        {
            "x-mock-delay-ms": "2500",
            "x-envoy-upstream-rq-timeout-ms": "60000",
            "x-envoy-upstream-rq-per-try-timeout-ms": "60000",
            "x-envoy-max-retries": "4",
        },
    )
    assert reply.status == 504, reply.body[:300]
    assert 0.9 <= took < 2.4, f"took {took:.2f}s with timeout_ms 1000"


def test_a_models_own_timeout_overrides_the_global_one(short_timeouts, mock_):
    reply, took = timed(short_timeouts, chat_body("claude-sonnet-4.5"), {"x-mock-delay-ms": "2000"})
    assert reply.status == 200, reply.body[:300]
    assert took >= 1.9
    upstream_request(reply, mock_)
    reply, took = timed(short_timeouts, chat_body("claude-sonnet-4.5"), {"x-mock-delay-ms": "6000"})
    assert reply.status == 504
    assert 3.9 <= took < 5.9, f"took {took:.2f}s with timeout_ms 4000"


def test_a_client_cannot_shorten_the_timeout_either(short_timeouts, mock_):
    reply, _ = timed(short_timeouts, chat_body("chat"), {"x-mock-delay-ms": "300", "x-envoy-upstream-rq-timeout-ms": "1"})
    assert reply.status == 200, reply.body[:300]
