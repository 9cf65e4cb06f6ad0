"""Talking to the gateway as a client does: one request (:func:`chat`), its :class:`Reply`,
the OpenAI error shape, and which mock served a reply and what it received."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

import requests

from .mock import Mock, Received

if TYPE_CHECKING:
    from .envoy import Gateway


class Reply(NamedTuple):
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def encode_body(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def chat(
    gw: Gateway,
    body: Any = None,
    headers: dict[str, str] | None = None,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    timeout: float = 30,
) -> Reply:
    """Send one request through the gateway (keep-alive session of this thread).

    ``body``: a dict/list (JSON-encoded), str or bytes (sent verbatim), or None (no body).
    """
    h = {"content-type": "application/json"} if body is not None else {}
    h.update(headers or {})
    data = encode_body(body) if body is not None else None
    r = gw.session.request(method, gw.url + path, data=data, headers=h, timeout=timeout)
    return Reply(r.status_code, r.headers, r.content)


def chat_body(model: str | None = "chat", content: str = "Hello!", **extra) -> dict:
    body: dict[str, Any] = {}
    if model is not None:
        body["model"] = model
    body["messages"] = [{"role": "user", "content": content}]
    body.update(extra)
    return body


def assert_openai_error(reply: Reply, status: int, code: str) -> dict:
    """``reply`` is an OpenAI-style error ``{"error":{"message","type","code"}}``."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body[:500]!r}"
    ctype = reply.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", f"content-type {ctype!r}"
    doc = reply.json()
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    assert err.get("code") == code, err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert isinstance(err.get("type"), str) and err["type"], err
    return err


def upstream_request(reply: Reply, *mocks: Mock) -> tuple[Mock, Received]:
    """The mock that served ``reply`` (by ``x-mock-provider``) and what it received."""
    rid = reply.headers.get("x-mock-request-id")
    assert rid, f"the reply did not come from a mock: {reply.status} {dict(reply.headers)} {reply.body[:300]!r}"
    name = reply.headers.get("x-mock-provider")
    for m in mocks:
        if m.name == name or len(mocks) == 1:
            return m, m.received(rid)
    raise AssertionError(f"reply served by unknown mock {name!r}; expected one of {[m.name for m in mocks]}")

