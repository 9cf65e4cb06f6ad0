"""A :class:`Launcher` starts mocks and Envoys for one scope (a test, a module, a soak run) and
stops them all at its end, Envoys first."""

from __future__ import annotations

import os
from pathlib import Path

from .envoy import Gateway, start_envoy
from .mock import Mock, start_mock
from .processes import Proc


class Launcher:
    """Starts mocks and Envoys for one scope and stops them all at its end."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[Proc] = []

    def mock(self, name: str = "mock", *args: str) -> Mock:
        m = start_mock(self.workdir, name, *args)
        self.procs.append(m.proc)
        return m

    def envoy(self, mocks: Mock | dict[str, Mock], plugin_config: dict | str | None = None, **kw) -> Gateway:
        gw = start_envoy(self.workdir, mocks, plugin_config, **kw)
        self.procs.append(gw.proc)
        return gw

    def close(self) -> None:
        # Envoys first (they hold connections to the mocks).
        for p in sorted(self.procs, key=lambda p: not p.label.startswith("envoy")):
            p.stop()
        self.procs.clear()
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"\ne2e logs kept in {self.workdir}")
