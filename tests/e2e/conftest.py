"""Fixtures of the end-to-end suite, on top of the harness package (tests/harness: Envoy, the
mock provider, the client helpers; its __init__.py says what is where).

Fixtures
--------
``mock``      factory: ``mock(name="mock", *args)`` → :class:`harness.Mock` (function scope).
``envoy``     factory: ``envoy(mocks, plugin_config=None, concurrency=2, ...)`` → :class:`harness.Gateway`.
``launcher``  the :class:`harness.Launcher` behind those two (function scope).
``module_launcher`` the same with module scope, for a module that shares one Envoy + mock
              between its tests (``module_launcher.mock(...)``, ``module_launcher.envoy(...)``).
``demo_mock``, ``demo_gateway``  the demo configuration (``envoy/demo.yaml`` as shipped),
              module scope; ``gw``: that gateway, checked to be still running.

Helpers are imported from the harness: ``from harness import chat, chat_body, upstream_request``.

When a test fails, the last 200 lines of the log of every process that was running are attached
to the failure report.
"""

from __future__ import annotations

import pytest

from harness import LIVE, LOG_TAIL_LINES, Gateway, Launcher, Mock


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory, request):
    name = request.module.__name__.rsplit(".", 1)[-1]
    launcher = Launcher(tmp_path_factory.mktemp(name))
    yield launcher
    launcher.close()


@pytest.fixture
def launcher(tmp_path):
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture
def mock(launcher):
    """Factory: ``mock(name="mock", *extra_args)`` starts a mock provider for this test."""
    return launcher.mock


@pytest.fixture
def envoy(launcher):
    """Factory: ``envoy(mocks, plugin_config=None, concurrency=2, ...)`` for this test."""
    return launcher.envoy


@pytest.fixture(scope="module")
def demo_mock(module_launcher) -> Mock:
    return module_launcher.mock("mock")


@pytest.fixture(scope="module")
def demo_gateway(module_launcher, demo_mock) -> Gateway:
    """Envoy with envoy/demo.yaml exactly as shipped (ports aside), shared by a module."""
    return module_launcher.envoy(demo_mock)


@pytest.fixture
def gw(demo_gateway) -> Gateway:
    """The module's demo gateway, checked to be still running."""
    demo_gateway.assert_alive()
    return demo_gateway


# --------------------------------------------------------------------------------------------
# Failure report: the logs of whatever was running
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the last 200 lines of each running process's log to the report.
    A process shared by several failing tests gets its tail printed once (at its first
    failure), and a pointer after that, so a broken filter doesn't bury CI in logs."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for proc in list(LIVE):
            state = "running" if proc.alive() else f"EXITED with code {proc.popen.returncode}"
            title = f"{proc.label} (pid {proc.pid}, {state}) log {proc.log_path}"
            if getattr(proc, "tail_shown", False):
                rep.sections.append((title, "(its last lines were shown at its first failing test above)"))
            else:
                proc.tail_shown = True
                rep.sections.append((f"{title}: last {LOG_TAIL_LINES} lines", proc.log_tail()))
