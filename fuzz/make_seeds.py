#!/usr/bin/env python3
"""Writes the starting corpora of the fuzz targets (fuzz/corpus/<target>/). Deterministic: run it
again after changing a seed; the files are committed. libFuzzer only reads this directory
(`make fuzz` grows its working corpus under fuzz/target/corpus/)."""

import hashlib
import json
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"


def write(target: str, items: list[bytes]) -> None:
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    for data in items:
        (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    print(f"{target}: {len(items)} seeds")


# ---------------------------------------------------------------- body_rewrite
chat = {"model": "chat", "messages": [{"role": "user", "content": "Hello!"}]}
bodies = [
    json.dumps(chat).encode(),
    json.dumps(chat, indent=2).encode(),
    b'{"model":"gpt-4.1","messages":[],"stream":true}',
    b'{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":false}}',
    b'{"model":"chat","stream":true,"stream_options":null}',
    b'{"model":"chat","stream":true,"stream_options":{}}',
    b'{"model":"chat","stream":true,"stream_options":{"x":1}}',
    b'{"model":"chat","stream":false,"stream_options":"x"}',
    b'{"model":"chat","max_tokens":100000,"temperature":null}',
    b'{"model":"chat","max_tokens":1e3,"max_completion_tokens":4096.5,"temperature":0.2}',
    b'{"model":"chat","max_tokens":-1,"max_output_tokens":null}',
    b'{"model":"chat","max_tokens":"100"}',
    b'{"model":"chat","max_tokens":18446744073709551616}',
    b'{"model":"chat","max_tokens":1E+400}',
    b'{"messages":[{"role":"user","content":"no model"}]}',
    b'{}',
    b' { } ',
    b'{"model":""}',
    b'{"model":"gpt\\u002d4.1"}',
    b'{"mod\\u0065l":"chat"}',
    b'{"model":"chat","mod\\u0065l":"gpt-4.1"}',
    b'{"model":"chat","model":"chat"}',
    b'{"model":null}',
    b'{"model":42}',
    b'{"model":{"name":"chat"}}',
    b'{"model":["chat"]}',
    b'{"model":"\\ud800"}',
    b'{"model":"\\ud83d\\ude00"}',
    "{\"model\":\"模型\",\"messages\":[{\"content\":\"ünïcødé 😀\"}]}".encode(),
    b'{"messages":[{"role":"user","model":"nested only"}],"x":{"model":1}}',
    b'{"stream":"yes","model":"chat"}',
    b'{"stream":1}',
    b'{"stream_options":{"include_usage":true,"include_usage":false},"stream":true}',
    b'{"model":"chat","a":[1,2,{"b":[true,false,null]}],"c":-0.5e-3}',
    b'{"model":"chat","x":' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"model":"chat","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}',
    b'{"model":"chat","input":"embed me","encoding_format":"float"}',
    b'{"model":"chat","input":[{"role":"user","content":"responses"}],"max_output_tokens":9999}',
    b"\xef\xbb\xbf{}",
    b"",
    b"   ",
    b"[]",
    b'"chat"',
    b"42",
    b"null",
    b'{"model":"chat"',
    b'{"model":"chat"} x',
    b'{"model":"ch\xffat"}',
    b'{"model":"chat\x01"}',
    b'{"model":"chat",}',
    b"{'model':'chat'}",
    b'{"model":"chat","n":01}',
    b'{"model":"chat","n":1.}',
    b'{"model":"chat","s":"\\x"}',
]
seeds = []
for i, b in enumerate(bodies):
    for c0, c1 in ((0, 0), (i % 40, 0xFF), (1 + 5 * (i % 8), 0x49), (3, 0x81)):
        seeds.append(bytes([c0, c1]) + b)
write("body_rewrite", seeds)

# ---------------------------------------------------------------- body_scan
# Byte 0: alignment and cut. Long strings too, so the 64-byte blocks of the fast scan are
# crossed by text, escapes and characters of every width.
words = "Summarise the following report\\n about \\\"latency\\\" café 日本語 throughput. 😀 "
long_bodies = [
    ('{"model":"chat","messages":[{"role":"user","content":"' + words * 6 + '"}],"user":"bench"}').encode(),
    ('{"k":"' + "plain ascii prose, nothing to stop at " * 8 + '"}').encode(),
    ('["' + "\\u00e9\\n\\t" * 20 + '", "' + "日本語" * 30 + '"]').encode(),
    ('{"k":"' + "x" * 61 + '\\"' + "y" * 62 + "\\u12" + '"}').encode(),
    ('{"k":"' + "x" * 63 + "\x01" + '"}').encode(),
    ('{"k":"' + "é" * 40 + "\xed\xa0\x80" + '"}').encode("utf-8", "surrogatepass"),
]
write("body_scan", [bytes([c0]) + b for b in bodies + long_bodies for c0 in (0, 37, 200)])


# ---------------------------------------------------------------- usage_scanner / sse_stripper
def sse(events: list[str | dict], end: str = "\n\n", field: str = "data: ") -> bytes:
    out = ""
    for e in events:
        out += field + (e if isinstance(e, str) else json.dumps(e, separators=(",", ":"))) + end
    return out.encode()


chunk = lambda content, usage=None, **kw: {  # noqa: E731
    "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
    "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}], **({"usage": usage} if usage is not None or kw.get("null") else {}),
}
usage = {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20}
usage_only = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1", "choices": [], "usage": usage}
streams = [
    sse([chunk("Hello"), chunk(" world"), usage_only, "[DONE]"]),
    sse([chunk("Hello", null=True), usage_only, "[DONE]"], end="\r\n\r\n"),
    sse([chunk("Hello"), usage_only, "[DONE]"], end="\r\r"),
    sse([chunk("x"), usage_only], field="data:"),
    b": keep-alive\n\n" + sse([chunk("a"), usage_only]) + b"event: done\ndata: [DONE]\n\n",
    b"data: {\"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":3}}\n\n",
    b"id: 1\nretry: 10\ndata: {\"choices\": [ ], \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": 2}}\n\n",
    b"event: response.completed\ndata: " + json.dumps({"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 9, "output_tokens": 5, "total_tokens": 14}}}).encode() + b"\n\n",
    sse([{"choices": [], "usage": None}, {"choices": [{"text": "usage"}], "usage": usage}]),
    sse([{"choices": [], "\\u0075sage": usage}]),
    sse([{"choices": [], "usage": {"prompt_tokens": 18446744073709551615, "completion_tokens": 1e3}}]),
    b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}",  # no final blank line
    b"data\n\ndata:\n\n:comment only\n\n",
]
json_bodies = [
    json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": "usage: {\"prompt_tokens\": 99}"}}], "usage": usage}).encode(),
    json.dumps({"object": "list", "data": [{"embedding": [0.1, -0.2, 1e-7]}], "usage": {"prompt_tokens": 8, "total_tokens": 8}}).encode(),
    json.dumps({"id": "resp_1", "object": "response", "output": [], "usage": {"input_tokens": 9, "output_tokens": 5}}).encode(),
    json.dumps({"type": "response.completed", "response": {"usage": {"input_tokens": 1, "output_tokens": 2}}}).encode(),
    b'{"usage":null}',
    b'{"usage":{"prompt_tokens":-1,"completion_tokens":"5"}}',
    b'{"usage":{"prompt_tokens":1.5,"completion_tokens":2e1}}',
    b'{"usage":{"pr\\u006fmpt_tokens":7,"completion_tokens":0}}',
    b'{"nested":{"usage":{"prompt_tokens":100}},"usage":{"prompt_tokens":1}}',
    b'{"error":{"message":"rate limited","type":"requests","code":"rate_limit_exceeded"}}',
    b'[{"usage":{"prompt_tokens":1}}]',
    b'{"usage":{"prompt_tokens":1}',
]
scanner_seeds = []
for i, b in enumerate(json_bodies):
    scanner_seeds.append(bytes([(i % 8) << 1]) + struct.pack("<Q", i * 7919) + b)
for i, b in enumerate(streams):
    scanner_seeds.append(bytes([1 | ((i % 8) << 1)]) + struct.pack("<Q", i * 104729) + b)
write("usage_scanner", scanner_seeds)
write("sse_stripper", [bytes([i % 16]) + struct.pack("<Q", i * 31337) + b for i, b in enumerate(streams)])


# ---------------------------------------------------------------- config
demo = {
    "models": [
        {"name": "gpt-4.1", "version": "1.0.0", "weight": 90, "max_tokens": 4096, "temperature": 0.7, "cluster": "mock"},
        {"name": "deepseek-v3.2", "version": "2.0.0-canary.1", "weight": 10, "cluster": "mock"},
        {"name": "claude-sonnet-4.5", "version": "1.4.0", "cluster": "mock", "system_prompt": "You are a concise assistant."},
    ],
    "routes": [{"name": "chat", "targets": [{"model": "gpt-4.1", "weight": 90}, {"model": "deepseek-v3.2", "weight": 10}]}],
    "default_route": "chat",
    "unknown_models": "reject",
    "timeout_ms": 30000,
    "upstream": {"cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY"},
    "sticky": {"header": "x-user-id"},
    "stream_usage": "inject",
    "prices": {"gpt-4.1": {"input": 2.0, "output": 8.0}},
}
spec = {
    "models": [
        {"name": "claude-sonnet-4.5", "version": "1.4.0", "max_tokens": 4096, "temperature": 0.7, "weight": 90,
         "cluster": "holysheep", "system_prompt": "...", "timeout_ms": 60000},
        {"name": "deepseek-v3.2", "version": "2.0.0-canary.1", "weight": 10},
        {"name": "claude-sonnet-4.5", "version": "1.5.0-rc.1", "system_prompt": "new template"},
    ],
    "routes": [{"name": "chat", "targets": [
        {"model": "claude-sonnet-4.5", "version": "1.4.0", "weight": 80},
        {"model": "claude-sonnet-4.5", "version": "1.5.0-rc.1", "weight": 10},
        {"model": "deepseek-v3.2", "weight": 10}]}],
    "default_route": "chat",
    "unknown_models": "route",
    "failover_threshold": 0.5,
    "failover": {"window_s": 30, "min_requests": 20, "cooldown_s": 30},
    "timeout_ms": 30000,
    "upstream": {"cluster": "holysheep", "api_key_env": "HOLYSHEEP_API_KEY"},
    "sticky": {"header": "x-user-id"},
    "stream_usage": "inject",
    "paths": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"],
    "serve_models_endpoint": True,
    "prices": {"gpt-4.1": {"input": 2.0, "output": 8.0}},
}
minimal = {"models": [{"name": "m", "version": "0.0.1", "weight": 1}]}
configs = [
    json.dumps(demo).encode(),
    json.dumps(spec, indent=1).encode(),
    json.dumps(minimal).encode(),
    json.dumps({**minimal, "unknown_models": "passthrough", "paths": ["/openai/v1/chat/completions"]}).encode(),
    json.dumps({**minimal, "routes": [{"name": "r", "targets": [{"model": "m", "weight": 0}]}], "default_route": "r"}).encode(),
    json.dumps({"models": [{"name": "m", "version": "1.0.0-alpha+build.5", "weight": 1e308},
                           {"name": "m", "version": "1.0.0", "weight": 1e308}]}).encode(),
    json.dumps({**minimal, "failover_threshold": 0, "failover": {"window_s": 0, "min_requests": 0, "cooldown_s": 86401}}).encode(),
    json.dumps({**minimal, "bogus": 1}).encode(),
    json.dumps({"models": [{"name": "bad name", "version": "1", "weight": -1, "cluster": ""}],
                "routes": [{"name": "m", "targets": [{"model": "nope"}]}], "sticky": {"header": "bad header"}}).encode(),
    b"",
    b"[]",
    b"{",
    b'{"models":[]}',
    b'{"models":null}',
    b"\x08\x01\x12\x00",  # protobuf bytes (a Struct config reaches the filter this way)
]
write("config", configs)

# ---------------------------------------------------------------- breaker_codec
def blob(open_: bool, opened: int, probe: int | None, w: int, head: int, counts: list[tuple[int, int]]) -> bytes:
    flags = (1 if open_ else 0) | (2 if probe is not None else 0)
    b = bytes([1, flags]) + struct.pack("<QQQQ", opened, probe or 0, w, head)
    for s, f in counts:
        b += struct.pack("<II", s, f)
    return b


zero = [(0, 0)] * 10
ops = bytes([0, 1, 0, 2, 10, 0, 2, 200, 0, 0x80, 50, 0, 1, 255, 255, 2, 0, 0, 0, 100, 0] * 8)
cfg = struct.pack("<Q", (128) | (30 << 8) | (4 << 25) | (30 << 32))
write("breaker_codec", [
    blob(False, 0, None, 0, 0, zero) + cfg + struct.pack("<Q", 1_760_000_000_000) + ops,
    blob(True, 1_760_000_000_000, None, 3000, 586_666_666, [(1, 5)] * 10) + cfg + struct.pack("<Q", 1_760_000_030_000) + ops,
    blob(True, 5, 7, 1, 9, [(2**32 - 1, 2**32 - 1)] * 10) + cfg + struct.pack("<Q", 2**64 - 1) + ops,
    b"\x01\x04" + bytes(112) + cfg + ops,
    b"",
])
