"""Fixtures of the CLI tests: the ``ai-gateway`` binary (``target/release/ai-gateway``, built by
``make cli``; ``AI_GATEWAY_BIN`` overrides), run as a subprocess on files written to a temporary
directory, and the mock provider for ``--check-models`` (started by the harness package,
tests/harness).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from harness import AI_GATEWAY_BIN as BIN
from harness import REPO, Launcher, Mock


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



@pytest.fixture
def mock_provider(tmp_path):
    """``mock_provider(*args)`` starts tools/mock-provider on a port it picks (stopped after the
    test): a :class:`harness.Mock` (``.url``, ``.received(id)``)."""
    launcher = Launcher(tmp_path)

    def start(*args: str) -> Mock:
        return launcher.mock("mock", *args)

    yield start
    launcher.close()
