"""Harness of the CLI tests: the ``ai-gateway`` binary (``target/release/ai-gateway``, built
by ``make cli``; ``AI_GATEWAY_BIN`` overrides), run as a subprocess on files written to a
temporary directory, and the mock provider (``target/release/mock-provider``) for
``--check-models``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AI_GATEWAY_BIN", REPO / "target" / "release" / "ai-gateway"))
MOCK_BIN = Path(os.environ.get("MOCK_PROVIDER_BIN", REPO / "target" / "release" / "mock-provider"))


class Run(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run(*args, cwd: Path | None = None, env: dict | None = None) -> Run:
    if not BIN.exists():
        pytest.fail(f"{BIN} missing: run `make cli` (cargo build --release -p ai-gateway)", pytrace=False)
    p = subprocess.run(
        [str(BIN), *map(str, args)], cwd=cwd or REPO, capture_output=True, text=True, timeout=60, env=env
    )
    return Run(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def ag():
    """``ag(*args, cwd=None, env=None)`` → :class:`Run`."""
    return run


@pytest.fixture
def write(tmp_path):
    """``write(name, text_or_bytes)`` → the path of a new file in this test's directory."""

    def w(name: str, content: str | bytes) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    return w


class Mock(NamedTuple):
    proc: subprocess.Popen
    url: str


@pytest.fixture
def mock_provider(tmp_path):
    """``mock_provider(*args)`` starts tools/mock-provider on a free port (stopped after the test)."""
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> Mock:
        if not MOCK_BIN.exists():
            pytest.fail(f"{MOCK_BIN} missing: run `make tools`", pytrace=False)
        log = tmp_path / f"mock-{len(procs)}.log"
        p = subprocess.Popen(
            [str(MOCK_BIN), "--listen", "127.0.0.1:0", *args],
            stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(p)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(rb"listening on (127\.0\.0\.1:\d+)", log.read_bytes())
            if m:
                return Mock(p, f"http://{m.group(1).decode()}")
            if p.poll() is not None:
                pytest.fail(f"mock-provider exited: {log.read_text()}")
            time.sleep(0.05)
        pytest.fail("mock-provider did not start")

    yield start
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait(10)
