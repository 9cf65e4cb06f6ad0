"""Child processes: each in its own process group (killed with it), its stdout+stderr in a log
file whose tail a failure report shows; a free loopback port; waiting for a condition."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import requests

from .paths import REPO

START_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 200


def fail(message: str) -> NoReturn:
    """Fail the current test or fixture with ``message`` (``pytest.fail``, no traceback). Outside
    pytest (the soak, without pytest installed) a RuntimeError says the same."""
    try:
        import pytest
    except ImportError:
        raise RuntimeError(message) from None
    pytest.fail(message, pytrace=False)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<no log: {e}>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class Proc:
    """A child process in its own process group, its stdout+stderr in a log file."""

    def __init__(self, label: str, argv: list[str], log_path: Path, env: dict | None = None):
        self.label = label
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def fail(self, why: str) -> None:
        """Fail the current test/setup with this process's log tail attached."""
        fail(
            f"{self.label}: {why}\n  argv: {' '.join(self.argv)}\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self in LIVE:
            LIVE.remove(self)
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout)
        else:
            # The leader is gone; make sure nothing it started outlives it.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._log.close()


#: Every process currently running, for the failure report (tests/e2e/conftest.py).
LIVE: list[Proc] = []


def wait_until(pred, timeout: float, proc: Proc, what: str, interval: float = 0.05):
    """Poll ``pred()`` until it is true; fail with ``proc``'s log if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        if not proc.alive():
            proc.fail(f"exited with code {proc.popen.returncode} before {what}")
        try:
            if pred():
                return
        except requests.RequestException as e:
            last_err = e
        time.sleep(interval)
    proc.fail(f"not {what} after {timeout:.0f}s (last error: {last_err})")

