"""The bad-input corpus through the real Envoy: every case with the status and body it must get.

One Envoy with envoy/demo.yaml as shipped (``unknown_models: reject``, alias ``chat``,
``gpt-4.1`` capped at ``max_tokens`` 4096) and one mock serve the module. Each case names what
it sends and what must come back:

* ``Err(status, code)``: an OpenAI-style error from the filter (JSON content type, the exact
  ``code`` and ``type``, a short message), and the provider received nothing;
* ``Envoy(status)``: Envoy itself refuses the request (codec or buffer limits) before the
  filter or the provider see it;
* ``Ok(check)``: the request reached the provider; ``check(reply, received)`` looks at both sides.

Every case also checks that no wasm VM trapped or was reloaded, and that the provider key is in
no response. After the corpus, the last test checks the whole run: no VM restart according
to Envoy's wasm stats, and a normal request still works.

Cases already pinned elsewhere (test_request_path.py: a few malformed bodies, 10/16 MiB bodies,
18 MiB with content-length) are not repeated; their neighbours are.
"""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from harness import TEST_KEY, Reply, demo_plugin_config, upstream_request, rawjson

CONFIG = demo_plugin_config()
DEFAULT_CLUSTER = CONFIG["upstream"]["cluster"]
TIMEOUT_MS = CONFIG["timeout_ms"]
GPT_CAP = next(m["max_tokens"] for m in CONFIG["models"] if m["name"] == "gpt-4.1")
CHAT_MODELS = {t["model"] for r in CONFIG["routes"] if r["name"] == "chat" for t in r["targets"]}
MIB = 1024 * 1024
PATH = "/v1/chat/completions"
OK_BODY = b'{"model":"chat","messages":[{"role":"user","content":"Hello!"}]}'


# --------------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------------


@dataclass
class Err:
    status: int
    code: str


@dataclass
class Envoy:
    status: int


@dataclass
class Ok:
    check: Callable[[Reply, Any], None] | None = None
    #: Status the provider's answer has (the mock answers 404 on unknown paths).
    status: int = 200


@dataclass
class Case:
    id: str
    body: bytes | Callable[[], Any] | None
    expect: Err | Envoy | Ok
    headers: dict[str, Any] = field(default_factory=dict)
    #: Raw header lines (bytes, CRLF-terminated) sent over a plain socket, for what an HTTP
    #: library refuses to send.
    raw_headers: bytes | None = None
    path: str = PATH
    content_type: str | None = "application/json"
    timeout: float = 30


# --------------------------------------------------------------------------------------------
# Checks of what reached the provider
# --------------------------------------------------------------------------------------------


def model_is(name: str, route: str | None = None):
    def check(reply: Reply, got) -> None:
        assert got.json()["model"] == name, got.body[:300]
        assert reply.headers.get("x-ai-gateway-model") == name
        if route is not None:
            assert reply.headers.get("x-ai-gateway-route") == route

    return check


def routed_to_chat(reply: Reply, got) -> None:
    assert got.json()["model"] in CHAT_MODELS
    assert reply.headers.get("x-ai-gateway-route") == "chat"


def member_equals(name: str, raw_value: bytes, model: str | None = None):
    """The provider got ``name`` as exactly these bytes."""

    def check(reply: Reply, got) -> None:
        assert rawjson.member_map(got.body)[name] == raw_value, got.body[:300]
        if model:
            assert got.json()["model"] == model

    return check


def body_kept_but_model(sent: bytes):
    """Every top-level member but ``model`` (and the parameters the target adds) is byte-identical."""

    def check(reply: Reply, got) -> None:
        before = rawjson.member_map(sent)
        after = rawjson.member_map(got.body)
        for k, v in before.items():
            if k != "model":
                assert after[k] == v, f"member {k} changed"
        assert got.content_length == len(got.body), "content-length does not match the body"

    return check


def header_values(name: str, expected: list[str]):
    def check(reply: Reply, got) -> None:
        assert got.headers(name) == expected, f"{name}: {got.headers(name)}"

    return check


def all_of(*checks):
    def check(reply: Reply, got) -> None:
        for c in checks:
            c(reply, got)

    return check


def no_envoy_control_headers(reply: Reply, got) -> None:
    for h in ("x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-upstream-rq-per-try-timeout-ms"):
        assert got.headers(h) == [], f"the client's {h} reached the provider"
    assert got.headers("x-envoy-upstream-rq-timeout-ms") in ([], [str(TIMEOUT_MS)])
    assert got.headers("x-ai-gateway-cluster") == [DEFAULT_CLUSTER]


def response_headers_are_the_gateways(reply: Reply, got) -> None:
    assert reply.headers.get("x-ai-gateway-model") == got.json()["model"]
    assert reply.headers.get("x-ai-gateway-route") == "chat"
    assert "evil" not in json.dumps(dict(reply.headers))


def not_streamed(reply: Reply, got) -> None:
    assert reply.headers["content-type"].split(";")[0] == "application/json"
    assert "stream_options" not in got.json(), "stream_options injected into a non-streaming request"


def no_key_upstream(reply: Reply, got) -> None:
    assert TEST_KEY not in json.dumps(got.raw), "the provider key left the gateway on a non-API path"


def no_injected_header(reply: Reply, got) -> None:
    names = {k for k, _ in got.header_pairs}
    assert "b" not in names and "folded" not in names and "evil" not in names, got.header_pairs
    assert got.headers("x-ai-gateway-cluster") == [DEFAULT_CLUSTER]


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def chat_doc(model: Any = "chat", **extra) -> dict:
    doc: dict[str, Any] = {}
    if model is not ...:
        doc["model"] = model
    doc["messages"] = [{"role": "user", "content": "Hello!"}]
    doc.update(extra)
    return doc


def j(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def one_byte_chunks(raw: bytes):
    return lambda: (raw[i : i + 1] for i in range(len(raw)))


def big_model_last() -> bytes:
    head = b'{"messages":[{"role":"user","content":"'
    tail = b'"}],"model":"gpt-4.1"}'
    return head + b"z" * (16 * MIB - len(head) - len(tail)) + tail


def over_limit_chunks():
    chunk = b'{"model":"chat","messages":[{"role":"user","content":"' + b"a" * MIB
    yield chunk
    for _ in range(19):
        yield b"a" * MIB
    yield b'"}]}'


HUGE_MODEL = b'{"model":"' + b"m" * MIB + b'","messages":[]}'
BIG = big_model_last()
LONE = b'{"model":"chat","messages":[{"role":"user","content":"\\ud800 and \\udfff"}]}'
ESCAPED_DASH = b'{"model":"gpt\\u002d4.1","messages":[]}'
ESCAPED_KEY = b'{"mod\\u0065l":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}'
CHUNKED = j(chat_doc("chat", user="chunked-one-byte-at-a-time", n=1))
NUMBERS = b'{"model":"chat","a":1.5e308,"e":123456789012345678901234567890,"b":-0,"c":1E+2,"d":0.10000000000000000001,"messages":[]}'
DUP_OTHER = b'{"model":"chat","foo":1,"foo":2,"messages":[]}'


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------

INVALID = Err(400, "invalid_request")
NOT_FOUND = Err(400, "model_not_found")

CASES = [
    # -- not JSON / broken JSON ----------------------------------------------------------------
    Case("form-encoded-body", b"model=chat&messages=hi", INVALID, content_type="application/x-www-form-urlencoded"),
    Case("truncated-inside-a-string", b'{"model":"chat","messages":[{"role":"user","content":"Hel', INVALID),
    Case("truncated-after-a-colon", b'{"model":', INVALID),
    Case("utf8-byte-order-mark", b"\xef\xbb\xbf" + OK_BODY, INVALID),
    Case("utf16-le-with-bom", b"\xff\xfe" + OK_BODY.decode().encode("utf-16-le"), INVALID),
    Case("top-level-number", b"42", INVALID),
    Case("top-level-null", b"null", INVALID),
    Case("top-level-true", b"true", INVALID),
    Case("top-level-array-of-objects", b'[{"model":"chat"},{"model":"gpt-4.1"}]', INVALID),
    Case("top-level-string-holding-json", json.dumps(OK_BODY.decode()).encode(), INVALID),
    Case("trailing-comma", b'{"model":"chat","messages":[],}', INVALID),
    Case("single-quoted", b"{'model':'chat','messages':[]}", INVALID),
    Case("nan-literal", b'{"model":"chat","temperature":NaN,"messages":[]}', INVALID),
    Case("comment", b'{"model":"chat",/* hi */"messages":[]}', INVALID),
    Case("leading-zero-number", b'{"model":"chat","n":012,"messages":[]}', INVALID),
    Case("raw-control-character-in-a-string", b'{"model":"chat","messages":[{"role":"user","content":"a\x01b"}]}', INVALID),
    Case("invalid-escape", b'{"model":"chat","messages":[{"role":"user","content":"\\q"}]}', INVALID),
    Case("trailing-nul-byte", OK_BODY + b"\x00", INVALID),
    Case("two-objects", b'{"model":"chat"}{"model":"gpt-4.1"}', INVALID),
    Case("whitespace-only", b" \r\n\t ", INVALID),
    Case("empty-with-content-length-0", b"", INVALID, headers={"content-length": "0"}),
    # -- model --------------------------------------------------------------------------------
    Case("model-missing", j(chat_doc(...)), NOT_FOUND),
    Case("model-null", j(chat_doc(None)), INVALID),
    Case("model-number", j(chat_doc(4.1)), INVALID),
    Case("model-object", j(chat_doc({"name": "gpt-4.1"})), INVALID),
    Case("model-boolean", j(chat_doc(True)), INVALID),
    Case("model-empty-string", j(chat_doc("")), NOT_FOUND),
    Case("model-unknown", j(chat_doc("gpt-5-ultra")), NOT_FOUND),
    Case("model-wrong-case", j(chat_doc("GPT-4.1")), NOT_FOUND),
    Case("model-trailing-space", j(chat_doc("gpt-4.1 ")), NOT_FOUND),
    Case("model-with-nul-escape", b'{"model":"gpt-4.1\\u0000","messages":[]}', NOT_FOUND),
    Case("model-non-ascii-unknown", j(chat_doc("模型-😀")), NOT_FOUND),
    Case("model-1-MiB-unknown", HUGE_MODEL, NOT_FOUND),
    Case("model-escaped-dash-is-gpt-4.1", ESCAPED_DASH, Ok(model_is("gpt-4.1", "_direct"))),
    Case("model-escaped-alias-is-chat", b'{"model":"\\u0063hat","messages":[]}', Ok(routed_to_chat)),
    Case("model-key-spelled-with-an-escape", ESCAPED_KEY, Ok(model_is("gpt-4.1", "_direct"))),
    Case("model-duplicated", b'{"model":"chat","messages":[],"model":"gpt-4.1"}', INVALID),
    Case("model-duplicated-same-value", b'{"model":"chat","model":"chat","messages":[]}', INVALID),
    Case("model-duplicated-via-escaped-key", b'{"mod\\u0065l":"gpt-4.1","model":"chat","messages":[]}', INVALID),
    Case("model-only-inside-messages", b'{"messages":[{"role":"user","content":"x","model":"gpt-4.1"}],"x":{"model":"chat"}}', NOT_FOUND),
    # -- encoding -----------------------------------------------------------------------------
    Case("non-utf8-in-a-string", b'{"model":"chat","messages":[{"role":"user","content":"\xff\xfe"}]}', INVALID),
    Case("non-utf8-in-a-key", b'{"model":"chat","\xc3":1,"messages":[]}', INVALID),
    Case("overlong-utf8", b'{"model":"chat","messages":[{"role":"user","content":"\xc0\xaf"}]}', INVALID),
    Case("utf8-encoded-surrogate", b'{"model":"chat","messages":[{"role":"user","content":"\xed\xa0\x80"}]}', INVALID),
    # RFC 8259's grammar allows lone surrogate escapes: the gateway forwards them untouched and
    # the provider decides (the mock, like serde_json, answers 400).
    Case("lone-surrogate-escapes-pass-byte-identical", LONE, Ok(body_kept_but_model(LONE), status=400)),
    Case("odd-numbers-pass-byte-identical", NUMBERS, Ok(body_kept_but_model(NUMBERS))),
    Case("duplicate-untracked-key-passes", DUP_OTHER, Ok(lambda r, g: None)),
    # -- content type, encoding, framing ------------------------------------------------------
    Case("content-type-text-plain", OK_BODY, Ok(routed_to_chat), content_type="text/plain"),
    Case("no-content-type", OK_BODY, Ok(routed_to_chat), content_type=None),
    Case("content-encoding-gzip", gzip.compress(OK_BODY), INVALID, headers={"content-encoding": "gzip"}),
    Case("content-encoding-gzip-uppercase", gzip.compress(OK_BODY), INVALID, headers={"content-encoding": "GZIP"}),
    Case("content-encoding-deflate", zlib.compress(OK_BODY), INVALID, headers={"content-encoding": "deflate"}),
    Case("content-encoding-br-on-plain-json", OK_BODY, INVALID, headers={"content-encoding": "br"}),
    Case("content-encoding-identity", OK_BODY, Ok(routed_to_chat), headers={"content-encoding": "identity"}),
    Case("chunked-one-byte-chunks", one_byte_chunks(CHUNKED), Ok(body_kept_but_model(CHUNKED))),
    Case("chunked-invalid-json", one_byte_chunks(b'{"model":"chat",'), INVALID),
    Case("16-MiB-body-with-the-model-last", BIG, Ok(all_of(model_is("gpt-4.1"), body_kept_but_model(BIG))), timeout=120),
    Case("chunked-body-over-the-buffer-limit", over_limit_chunks, Envoy(413), timeout=120),
    # -- stream and max_tokens ----------------------------------------------------------------
    Case("stream-string", j(chat_doc(stream="true")), INVALID),
    Case("stream-number", j(chat_doc(stream=1)), INVALID),
    Case("stream-null-is-false", j(chat_doc(stream=None)), Ok(not_streamed)),
    Case("stream-options-duplicate-include-usage", b'{"model":"chat","stream":true,"stream_options":{"include_usage":true,"include_usage":false}}', INVALID),
    Case("max-tokens-string-on-a-capped-model", j(chat_doc("gpt-4.1", max_tokens="100")), INVALID),
    Case("max-tokens-object-on-a-capped-model", j(chat_doc("gpt-4.1", max_tokens={"n": 1})), INVALID),
    Case("max-tokens-string-on-an-uncapped-model", j(chat_doc("claude-sonnet-4.5", max_tokens="100")), Ok(member_equals("max_tokens", b'"100"', "claude-sonnet-4.5"))),
    Case("max-tokens-negative-is-kept", j(chat_doc("gpt-4.1", max_tokens=-5)), Ok(member_equals("max_tokens", b"-5", "gpt-4.1"))),
    Case("max-tokens-huge-is-capped", b'{"model":"gpt-4.1","max_tokens":1e30,"messages":[]}', Ok(member_equals("max_tokens", str(GPT_CAP).encode(), "gpt-4.1"))),
    Case("max-tokens-past-u64-is-capped", b'{"model":"gpt-4.1","max_tokens":184467440737095516160,"messages":[]}', Ok(member_equals("max_tokens", str(GPT_CAP).encode(), "gpt-4.1"))),
    Case("max-tokens-null-is-set", j(chat_doc("gpt-4.1", max_tokens=None)), Ok(member_equals("max_tokens", str(GPT_CAP).encode(), "gpt-4.1"))),
    # -- headers ------------------------------------------------------------------------------
    Case("header-crlf-injection-attempt", OK_BODY, Ok(no_injected_header), raw_headers=b"x-user-id: a\r\nx-ai-gateway-cluster: evil\r\n"),
    Case("header-bare-cr-in-a-value", OK_BODY, Ok(no_injected_header), raw_headers=b"x-user-id: a\rb: evil\r\n"),
    Case("header-obs-fold", OK_BODY, Ok(no_injected_header), raw_headers=b"x-user-id: a\r\n folded: evil\r\n"),
    Case("header-nul-byte", OK_BODY, Envoy(400), raw_headers=b"x-user-id: a\x00b\r\n"),
    Case("header-non-utf8-values", OK_BODY, Ok(routed_to_chat), raw_headers=b"x-custom: \xff\xfe\x80\r\nx-user-id: \xc3\x28\r\n"),
    Case("1000-headers", OK_BODY, Envoy(431), raw_headers=b"".join(b"x-h-%d: v\r\n" % i for i in range(1000))),
    Case("90-headers", OK_BODY, Ok(routed_to_chat), raw_headers=b"".join(b"x-h-%d: v\r\n" % i for i in range(90))),
    Case("a-50-KB-header-value", OK_BODY, Ok(routed_to_chat), headers={"x-big": "v" * 50_000}),
    Case(
        "client-picks-a-cluster-twice",
        OK_BODY,
        Ok(header_values("x-ai-gateway-cluster", [DEFAULT_CLUSTER])),
        raw_headers=b"x-ai-gateway-cluster: evil\r\nx-ai-gateway-cluster: mock-evil\r\n",
    ),
    Case(
        "client-sends-envoy-control-headers",
        OK_BODY,
        Ok(no_envoy_control_headers),
        headers={
            "x-envoy-max-retries": "50",
            "x-envoy-retry-on": "5xx,reset",
            "x-envoy-upstream-rq-per-try-timeout-ms": "1",
            "x-envoy-upstream-rq-timeout-ms": "1",
            "x-mock-delay-ms": "50",
        },
    ),
    Case(
        "client-sends-the-gateways-response-headers",
        OK_BODY,
        Ok(response_headers_are_the_gateways),
        headers={"x-ai-gateway-model": "evil", "x-ai-gateway-route": "evil", "x-ai-gateway-version": "evil"},
    ),
    Case("query-string-on-the-api-path", OK_BODY, Ok(routed_to_chat), path=PATH + "?api-version=2024-10-21&model=gpt-4.1"),
    Case("path-in-another-case-is-not-an-api-path", OK_BODY, Ok(no_key_upstream, status=404), path="/V1/Chat/Completions"),
]

assert len(CASES) >= 40
assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------


def _parse_raw_response(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    import requests

    headers = requests.structures.CaseInsensitiveDict()
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode().strip()] = v.decode("latin-1").strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Reply(status, headers, body)


def send_raw(gw, case: Case, body: bytes) -> Reply:
    """One request over a fresh connection, header lines sent exactly as given."""
    head = f"POST {case.path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n".encode()
    if case.content_type:
        head += f"content-type: {case.content_type}\r\n".encode()
    head += b"content-length: %d\r\n" % len(body)
    head += case.raw_headers or b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=case.timeout) as s:
        s.sendall(head + b"\r\n" + body)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    assert data, "the connection was closed without a response"
    return _parse_raw_response(data)


def send(gw, case: Case) -> Reply:
    body = case.body() if callable(case.body) else case.body
    if case.raw_headers is not None:
        return send_raw(gw, case, body)
    headers = {}
    if case.content_type:
        headers["content-type"] = case.content_type
    headers.update(case.headers)
    import requests

    # A fresh session per case: a case that makes Envoy close the connection can't affect
    # the next one.
    with requests.Session() as s:
        try:
            r = s.post(gw.url + case.path, data=body, headers=headers, timeout=case.timeout)
        except requests.ConnectionError as e:
            pytest.fail(f"the connection failed without a response: {e}")
    return Reply(r.status_code, r.headers, r.content)


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(demo_gateway):
    """VM health before the first case: compared after the corpus."""
    return demo_gateway.wasm_vm_health()


def assert_no_key_leak(reply: Reply) -> None:
    assert TEST_KEY.encode() not in reply.body
    for k, v in reply.headers.items():
        assert TEST_KEY not in v, f"the provider key leaked in response header {k}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(gw, demo_mock, baseline, case: Case):
    health = gw.wasm_vm_health()
    before = demo_mock.last_id()
    reply = send(gw, case)
    assert_no_key_leak(reply)
    exp = case.expect
    if isinstance(exp, Err):
        assert reply.status == exp.status, f"expected {exp.status}, got {reply.status}: {reply.body[:300]!r}"
        assert reply.headers.get("content-type", "").split(";")[0] == "application/json"
        doc = reply.json()
        assert set(doc) == {"error"} and set(doc["error"]) == {"message", "type", "code"}, doc
        assert doc["error"]["code"] == exp.code, doc
        assert doc["error"]["type"] == "invalid_request_error", doc
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"], doc
        # A client's input is never reflected at length (a 1 MiB model name → a short message).
        assert len(reply.body) < 2048, f"a {len(reply.body)}-byte error body"
        assert "x-mock-request-id" not in reply.headers
        assert demo_mock.last_id() == before, "the provider received a request the gateway refused"
    elif isinstance(exp, Envoy):
        assert reply.status == exp.status, f"expected {exp.status} from Envoy, got {reply.status}: {reply.body[:300]!r}"
        assert "x-mock-request-id" not in reply.headers
        assert demo_mock.last_id() == before, "the provider received a request Envoy refused"
    else:
        assert reply.status == exp.status, f"expected {exp.status}, got {reply.status}: {reply.body[:300]!r}"
        assert "x-mock-request-id" in reply.headers, f"not answered by the provider: {reply.body[:300]!r}"
        _, got = upstream_request(reply, demo_mock)
        if exp.status == 200:
            assert got.headers("authorization") == [f"Bearer {TEST_KEY}"]
            assert got.content_length == len(got.body), "content-length does not match the body sent upstream"
        if exp.check:
            exp.check(reply, got)
    gw.assert_alive()
    gw.assert_no_vm_crash_since(health)


# --------------------------------------------------------------------------------------------
# HTTP/2 framings an HTTP/1.1 client can't produce: request trailers (the filter then sees the
# end of the body in its trailers callback), a body in many tiny DATA frames without
# content-length, headers that end the stream. A minimal h2c client (prior knowledge), enough
# for these requests: HPACK literals without Huffman coding out, `:status` read from the static
# table in (Envoy indexes 200 and 400).
# --------------------------------------------------------------------------------------------

H2_STATUS = {0x88: 200, 0x89: 204, 0x8C: 400, 0x8D: 404, 0x8E: 500}


def _hpack_int(n: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out = [limit]
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def _hpack(headers: list[tuple[str, str]]) -> bytes:
    out = b""
    for k, v in headers:
        kb, vb = k.encode(), v.encode()
        out += b"\x00" + _hpack_int(len(kb)) + kb + _hpack_int(len(vb)) + vb
    return out


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_request(gw, body_frames: list[bytes], trailers: list[tuple[str, str]] | None, end_on_headers: bool = False) -> tuple[int, bytes]:
    """One POST /v1/chat/completions over h2c; returns (status, response body)."""
    headers = [(":method", "POST"), (":scheme", "http"), (":path", PATH), (":authority", "gateway"),
               ("content-type", "application/json")]  # fmt: skip
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b""))
        buf = b""
        seen: list = []

        def read_frame():
            nonlocal buf
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError(f"h2 connection closed; frames received: {seen}")
                buf += chunk
            n = int.from_bytes(buf[:3], "big")
            kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9 : 9 + n], buf[9 + n :]
            seen.append((kind, flags, stream, payload[:16].hex()))
            return kind, flags, stream, payload

        # The server's SETTINGS comes first; acknowledge it (once) before the request.
        while True:
            kind, fl, _, _ = read_frame()
            if kind == 4 and not fl & 1:
                break
        flags = 0x4 | (0x1 if end_on_headers else 0)
        out = _frame(4, 0x1, 0, b"") + _frame(1, flags, 1, _hpack(headers))
        if not end_on_headers:
            for i, data in enumerate(body_frames):
                last = i == len(body_frames) - 1 and trailers is None
                out += _frame(0, 0x1 if last else 0, 1, data)
            if trailers is not None:
                out += _frame(1, 0x5, 1, _hpack(trailers))
        s.sendall(out)
        status, body = 0, b""
        while True:
            kind, fl, stream, payload = read_frame()
            if kind == 6 and not fl & 1:  # PING
                s.sendall(_frame(6, 0x1, 0, payload))
            elif kind == 7:  # GOAWAY
                raise ConnectionError(f"GOAWAY {payload[4:8].hex()}")
            elif kind == 3 and stream == 1:  # RST_STREAM
                raise ConnectionError(f"RST_STREAM {payload.hex()}")
            elif kind == 1 and stream == 1 and not status:
                status = H2_STATUS.get(payload[0], -1)
                if fl & 1:
                    return status, body
            elif kind == 0 and stream == 1:
                body += payload
                if fl & 1:
                    return status, body
            elif kind == 1 and stream == 1 and fl & 1:
                return status, body


CHAT_H2 = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"over h2"}]}'


@pytest.mark.parametrize(
    "frames, trailers, expect",
    [
        pytest.param([CHAT_H2], [("x-trailer", "1")], 200, id="body-then-trailers"),
        pytest.param([CHAT_H2[i : i + 3] for i in range(0, len(CHAT_H2), 3)], [("x-trailer", "1")], 200, id="tiny-frames-then-trailers"),
        pytest.param([CHAT_H2[i : i + 1] for i in range(len(CHAT_H2))], None, 200, id="one-byte-frames"),
        pytest.param([b'{"model":'], [("x-trailer", "1")], 400, id="invalid-json-then-trailers"),
        pytest.param([b""], [("x-trailer", "1")], 400, id="one-empty-data-frame-then-trailers"),
        pytest.param([], [("x-trailer", "1")], 400, id="trailers-without-a-body"),
        pytest.param([b'{"model":"nope","messages":[]}'], [("x-trailer", "1")], 400, id="unknown-model-then-trailers"),
    ],
)
def test_http2_framings(gw, demo_mock, baseline, frames, trailers, expect):
    health = gw.wasm_vm_health()
    before = demo_mock.last_id()
    status, body = h2_request(gw, frames, trailers)
    assert status == expect, f"{status}: {body[:300]!r}"
    doc = json.loads(body)
    if expect == 200:
        assert demo_mock.last_id() == before + 1
        got = demo_mock.received(demo_mock.last_id())
        assert got.json()["model"] == "gpt-4.1"
        assert json.loads(b"".join(frames))["messages"] == got.json()["messages"]
        assert got.headers("authorization") == [f"Bearer {TEST_KEY}"]
        assert rawjson.member_map(got.body)["max_tokens"] == str(GPT_CAP).encode()
    else:
        assert set(doc) == {"error"} and doc["error"]["code"] in ("invalid_request", "model_not_found"), doc
        assert demo_mock.last_id() == before
    gw.assert_no_vm_crash_since(health)


def test_http2_headers_that_end_the_stream_get_400(gw, demo_mock, baseline):
    health = gw.wasm_vm_health()
    before = demo_mock.last_id()
    status, body = h2_request(gw, [], None, end_on_headers=True)
    assert status == 400, body[:300]
    assert json.loads(body)["error"]["code"] == "invalid_request"
    assert demo_mock.last_id() == before
    gw.assert_no_vm_crash_since(health)


def test_after_the_corpus_no_vm_was_restarted_and_a_normal_request_works(gw, demo_mock, baseline):
    """Runs last in this module (pytest keeps file order)."""
    gw.assert_no_vm_crash_since(baseline)
    after = gw.wasm_vm_health()
    assert after["vms_active"] == baseline["vms_active"], f"{baseline} → {after}"
    stats = gw.wasm_stats()
    restarts = {k: v for k, v in stats.items() if ".vm_reload" in k and v}
    assert not restarts, f"Envoy reloaded a wasm VM: {restarts}"
    with __import__("requests").Session() as s:
        r = s.post(gw.url + PATH, data=OK_BODY, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-ai-gateway-route") == "chat"
    got = demo_mock.received(r.headers["x-mock-request-id"])
    assert got.json()["model"] in CHAT_MODELS
    assert got.headers("authorization") == [f"Bearer {TEST_KEY}"]
