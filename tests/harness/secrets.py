"""Looking for a provider key where it must not be (response bodies and headers, every
read-only admin endpoint, log lines): shared by the secrets, key-upstream and multi-provider tests."""

from __future__ import annotations

import re

from .client import Reply
from .envoy import TEST_KEY

#: Admin endpoints that change Envoy's state (or dump heap profiles): never called by the checks.
MUTATING = {
    "/quitquitquit", "/healthcheck/fail", "/healthcheck/ok", "/drain_listeners", "/reset_counters",
    "/cpuprofiler", "/heapprofiler", "/heap_dump", "/logging", "/runtime_modify", "/tap",
    "/stats/recentlookups/clear", "/stats/recentlookups/disable", "/stats/recentlookups/enable",
}  # fmt: skip


def leaks(text: str | bytes, key: str = TEST_KEY) -> bool:
    """The key, or any 12-character piece of it, is in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    pieces = {key[i : i + 12] for i in range(0, max(1, len(key) - 11))}
    return any(p in text for p in pieces)


def assert_reply_clean(reply: Reply, what: str, key: str = TEST_KEY) -> None:
    assert not leaks(reply.body, key), f"{what}: the key is in the response body"
    for k, v in reply.headers.items():
        assert not leaks(v, key), f"{what}: the key is in response header {k}"


def admin_paths(gw) -> list[str]:
    """Every read-only admin endpoint Envoy lists in ``/help``, plus the variants that show
    more (EDS in the config dump, JSON stats, ...)."""
    text = gw.admin("/help").text
    paths = sorted({m for m in re.findall(r"^\s+(/\S*?):", text, re.M)} - MUTATING)
    assert "/config_dump" in paths and "/stats" in paths, text[:500]
    extra = [
        "/config_dump?include_eds",
        "/config_dump?mask=configs",
        "/stats?format=json",
        "/stats/prometheus?usedonly",
        "/clusters?format=json",
        "/listeners?format=json",
    ]
    return paths + extra


def log_lines_with(log: str, key: str) -> list[str]:
    """The log lines holding the key (or a piece of it), each after the line that opened its
    log entry (continuation lines, such as a header dump's, carry no prefix of their own)."""
    out = []
    entry = ""
    for line in log.splitlines():
        if line.startswith("[20"):
            entry = line
        if leaks(line, key):
            out.append(entry[:200] + (" >>> " + line[:200] if line is not entry else ""))
    return out
