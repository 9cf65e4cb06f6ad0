"""The mock provider (tools/mock-provider): the one place that starts it, and what it recorded.

``start_mock(workdir, name, *args)`` runs ``target/release/mock-provider`` on a port it picks
itself and returns a :class:`Mock`; ``mock.received(id)`` / ``mock_received(mock, id)`` is what
it saw for one request (``GET /__requests/N``, N = the ``x-mock-request-id`` response header).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any

import requests

from .paths import MOCK_BIN
from .processes import START_TIMEOUT_S, Proc, fail, wait_until


class Mock:
    """A running tools/mock-provider."""

    def __init__(self, proc: Proc, name: str, port: int):
        self.proc = proc
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = proc.log_path

    def received(self, request_id: int | str) -> Received:
        return mock_received(self, request_id)

    def last_id(self) -> int:
        """The id of the last request the mock recorded (0: none yet). ``GET /__requests``."""
        r = requests.get(f"{self.url}/__requests", timeout=5)
        r.raise_for_status()
        return int(r.json()["last_id"])

    def control(self, body: dict) -> None:
        r = requests.post(f"{self.url}/__control", json=body, timeout=5)
        r.raise_for_status()

    def stop(self) -> None:
        self.proc.stop()

    def __repr__(self) -> str:
        return f"Mock({self.name!r}, {self.url})"


def start_mock(workdir: Path, name: str = "mock", *args: str) -> Mock:
    """Start the mock on a port it picks itself (``--listen 127.0.0.1:0``; it prints
    ``mock-provider NAME listening on ADDR`` when ready), then wait for ``GET /__health``."""
    if not MOCK_BIN.exists():
        fail(f"{MOCK_BIN} missing: run `make tools` (or `make e2e`)")
    log = workdir / f"mock-{name}-{next(_mock_ids)}.log"
    proc = Proc(f"mock-provider {name}", [MOCK_BIN, "--listen", "127.0.0.1:0", "--name", name, *args], log)
    found: list[int] = []

    def ready_line() -> bool:
        m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            found.append(int(m.group(1)))
        return bool(m)

    wait_until(ready_line, START_TIMEOUT_S, proc, "listening (no 'listening on' line)")
    mock = Mock(proc, name, found[0])
    wait_until(
        lambda: requests.get(f"{mock.url}/__health", timeout=1).status_code == 200,
        START_TIMEOUT_S,
        proc,
        "healthy (GET /__health)",
    )
    return mock


_mock_ids = itertools.count(1)


class Received:
    """What the mock provider recorded for one request (``GET /__requests/N``)."""

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw
        self.id = raw.get("id")
        self.method: str = raw.get("method", "")
        self.path: str = raw.get("path", "")
        self.header_pairs: list[tuple[str, str]] = [(k.lower(), v) for k, v in raw.get("headers", [])]
        self.body: bytes = base64.b64decode(raw.get("body_b64") or "")
        self.body_len: int | None = raw.get("body_len")
        #: The content-length header as received (all values joined by ", "), or None.
        self.content_length_raw: str | None = raw.get("content_length")
        #: That header as an int when it is a single number, else None.
        self.content_length: int | None = (
            int(self.content_length_raw)
            if isinstance(self.content_length_raw, str) and self.content_length_raw.isdigit()
            else self.content_length_raw if isinstance(self.content_length_raw, int) else None
        )
        self.chunked: bool = bool(raw.get("chunked"))

    def headers(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        name = name.lower()
        return [v for k, v in self.header_pairs if k == name]

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Received(#{self.id} {self.method} {self.path} {len(self.body)} bytes)"


def mock_received(mock: Mock, request_id: int | str) -> Received:
    """What ``mock`` recorded for its request ``request_id`` (the ``x-mock-request-id``)."""
    r = requests.get(f"{mock.url}/__requests/{request_id}", timeout=10)
    assert r.status_code == 200, f"{mock}: GET /__requests/{request_id} → {r.status_code} {r.text[:200]}"
    return Received(r.json())

