"""Envoy 1.40 with the filter: configurations rendered from the shipped ones (``envoy/demo.yaml``;
``envoy/hot-reload.yaml`` with its watched ECDS directory) with loopback ports and the mocks
substituted, ``envoy --mode validate``, and a running Envoy (:class:`Gateway`: URLs, admin,
stats, wasm VM health, log, access log).

The filter runs twice in the shipped configs: on the listener (root_id ai_gateway) and as the
upstream filter of the aggregate clusters (root_id ai_gateway_upstream), both with one
configuration and one VM (YAML anchors in the shipped files). The rendered file spells every
copy out (no anchors), and every substitution (the .wasm path, the plugin configuration) is
made in every copy.

No port race: the listener and the admin bind port 0; Envoy writes the admin address to
``--admin-address-path`` and the listener's port is read from admin ``/listeners``. The
hot-restart base id is picked by Envoy among the free ones (``--use-dynamic-base-id``), so
several Envoys (other test runs, ``make demo``) coexist.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import requests
import yaml

from .mock import Mock
from .paths import DEMO_YAML, ENVOY_BIN, REPO, WASM, WASM_DEFAULT
from .processes import START_TIMEOUT_S, Proc, fail

#: The provider key the tests' Envoy gets in its environment (HOLYSHEEP_API_KEY). A fixture
#: value: never a real key.
TEST_KEY = "sk-test-e2e-0123456789abcdef"
KEY_ENV = "HOLYSHEEP_API_KEY"

WASM_FILTER = "envoy.filters.http.wasm"
UPSTREAM_CODEC = "envoy.filters.http.upstream_codec"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

HOT_BOOTSTRAP = REPO / "envoy" / "hot-reload.yaml"
HOT_DIR = REPO / "envoy" / "hot-reload"
ECDS_NAME = "ai_gateway.yaml"
#: Envoy's ECDS stats for the filter named ai_gateway in the listener's http_filters.
ECDS_STATS = "extension_config_discovery.http_filter.ai_gateway."


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
    """The ``config`` (PluginConfig) of the first wasm HTTP filter in an Envoy config (the
    listener's: the downstream filter)."""
    for hcm in _http_filters(doc):
        for hf in hcm["http_filters"]:
            if hf.get("name") == WASM_FILTER:
                return hf["typed_config"]["config"]
    raise AssertionError("no envoy.filters.http.wasm filter in the config")


def _cluster_http_filters(doc: dict):
    """(cluster, its HttpProtocolOptions) for every cluster with upstream HTTP filters."""
    for cluster in doc.get("static_resources", {}).get("clusters", []):
        opts = cluster.get("typed_extension_protocol_options", {}).get(HTTP_PROTOCOL_OPTIONS)
        if opts and "http_filters" in opts:
            yield cluster, opts


def upstream_wasm_filter_configs(doc: dict) -> list[dict]:
    """The ``config`` (PluginConfig) of every wasm filter among the clusters' upstream HTTP
    filters (the filter's upstream role, root_id ai_gateway_upstream)."""
    return [
        hf["typed_config"]["config"]
        for _, opts in _cluster_http_filters(doc)
        for hf in opts["http_filters"]
        if hf.get("name") == WASM_FILTER and "typed_config" in hf
    ]


def wasm_filter_configs(doc: dict) -> list[dict]:
    """Every wasm PluginConfig of an Envoy config: the listeners' then the clusters'."""
    listener = [
        hf["typed_config"]["config"]
        for hcm in _http_filters(doc)
        for hf in hcm["http_filters"]
        if hf.get("name") == WASM_FILTER and "typed_config" in hf
    ]
    return listener + upstream_wasm_filter_configs(doc)


def set_plugin_config(doc: dict, value: str) -> None:
    """The plugin configuration (JSON text) of every copy of the filter. Each copy gets its own
    ``configuration`` dict: with ``yaml.safe_load`` the copies of an anchored one are the same
    dict, and a test that later edits one copy must not silently edit the other."""
    for cfg in wasm_filter_configs(doc):
        cfg["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": value}


def unshare_filter_copies(doc: dict) -> None:
    """Each copy of the filter gets its own ``configuration`` and ``vm_config`` dicts, with the
    same content (``yaml.safe_load`` makes the copies of an anchored node one dict)."""
    for cfg in wasm_filter_configs(doc):
        cfg["configuration"] = copy.deepcopy(cfg["configuration"])
        cfg["vm_config"] = copy.deepcopy(cfg["vm_config"])


def set_wasm_path(doc: dict, path: str) -> None:
    """The .wasm of every copy of the filter (each copy gets its own vm_config dict, with the
    same content: Envoy still shares one VM between them)."""
    for cfg in wasm_filter_configs(doc):
        vm = copy.deepcopy(cfg["vm_config"])
        vm["code"] = {"local": {"filename": path}}
        cfg["vm_config"] = vm


def remove_filter(doc: dict) -> None:
    """No wasm filter at all: none on the listeners, none among the clusters' upstream filters
    (a cluster left with only the codec gets no upstream filter chain)."""
    for hcm in _http_filters(doc):
        hcm["http_filters"] = [hf for hf in hcm["http_filters"] if hf.get("name") != WASM_FILTER]
    for _, opts in _cluster_http_filters(doc):
        opts["http_filters"] = [hf for hf in opts["http_filters"] if hf.get("name") != WASM_FILTER]
        if [hf.get("name") for hf in opts["http_filters"]] == [UPSTREAM_CODEC]:
            del opts["http_filters"]


def set_access_log_path(doc: dict, path: str) -> str | None:
    """The file access loggers that write to stdout (as shipped) write to ``path`` instead; a
    logger a test pointed at a file of its own keeps it. Returns the file the access log goes
    to (``path``, else the first file logger's own path), or None without a file logger."""
    used = None
    for hcm in _http_filters(doc):
        for log in hcm.get("access_log", []):
            tc = log.get("typed_config", {})
            if tc.get("@type", "").endswith("file.v3.FileAccessLog"):
                if tc.get("path") in ("/dev/stdout", "/dev/stderr"):
                    tc["path"] = path
                    used = path
                elif used is None:
                    used = tc.get("path")
    return used


class _NoAliases(yaml.SafeDumper):
    """Every copy of a shared node written in full (no &id001 / *id001)."""

    def ignore_aliases(self, data) -> bool:
        return True


def dump_config(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False)


def read_access_log(path: Path, last: int | None = None) -> list[dict]:
    """The JSON access-log entries of ``path`` (the last ``last`` ones), as dicts. The
    ``ai_gateway`` member (the filter's decision, a JSON object in a string) is parsed: a dict,
    or None for a request the filter did not handle. Lines that are not JSON objects are
    skipped."""
    entries = []
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ag = entry.get("ai_gateway")
        if isinstance(ag, str):
            entry["ai_gateway"] = json.loads(ag) if ag.startswith("{") else None
        entries.append(entry)
    return entries[-last:] if last else entries


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
    access_log_path: Path | str | None = None,
) -> dict:
    """envoy/demo.yaml with the ports substituted.

    ``mocks``: one Mock (every cluster with a loopback endpoint is pointed at it) or a dict
    cluster name → Mock (loopback clusters not in the dict get its first Mock).
    ``plugin_config``: replaces the filter's configuration, in every copy (the listener's and
    the clusters' upstream filters; a dict is JSON-encoded, a str is used verbatim, e.g. to
    test an invalid one).
    ``with_filter=False``: every wasm filter is removed (listener and upstream) and the route
    goes straight to the default cluster (harness self-test, comparisons: plain Envoy + mock).
    ``access_log_path``: where the access log goes instead of stdout (default: as shipped; a
    file access logger the base config points at a file of its own is left alone).
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

    if access_log_path is not None:
        set_access_log_path(doc, str(access_log_path))
    if with_filter:
        unshare_filter_copies(doc)
        if WASM != WASM_DEFAULT:
            set_wasm_path(doc, str(WASM))
        if plugin_config is not None:
            value = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)
            set_plugin_config(doc, value)
    else:
        default_cluster = demo_plugin_config().get("upstream", {}).get("cluster", "mock")
        remove_filter(doc)
        for hcm in _http_filters(doc):
            for vh in hcm["route_config"]["virtual_hosts"]:
                for route in vh["routes"]:
                    r = route.get("route", {})
                    if "cluster_header" in r:
                        del r["cluster_header"]
                        r["cluster"] = default_cluster
    return doc


class Gateway:
    """A running Envoy with the filter."""

    def __init__(
        self, proc: Proc, port: int | None, admin: str | None, config_path: Path, mocks, access_log_path: Path | None = None
    ):
        self.proc = proc
        self.set_address(port, admin)
        self.config_path = config_path
        self.log_path = proc.log_path
        #: The JSON access log (one line per request), see :meth:`access_log`.
        self.access_log_path = access_log_path
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

    def access_log(self, last: int | None = None, wait_for: int = 0, timeout: float = 5.0) -> list[dict]:
        """The access-log entries (the last ``last`` ones), ``ai_gateway`` parsed (see
        :func:`read_access_log`). Envoy writes an entry when the request ends and flushes the
        file on its own schedule: ``wait_for`` waits (up to ``timeout``) until there are at
        least that many entries."""
        assert self.access_log_path is not None, "this Envoy's access log goes to stdout"
        deadline = time.monotonic() + timeout
        while True:
            entries = read_access_log(self.access_log_path)
            if len(entries) >= wait_for or time.monotonic() > deadline:
                return entries[-last:] if last else entries
            time.sleep(0.05)

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
        fail(f"{ENVOY_BIN} missing: run `make venv` (or `make e2e`)")
    if with_filter and not WASM.exists():
        fail(f"{WASM} missing: run `make wasm` (or `make e2e`)")
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    n = next(_envoy_ids)
    doc = build_envoy_config(0, 0, mocks, plugin_config, with_filter)
    used = set_access_log_path(doc, str(workdir / f"envoy-{n}.access.log"))
    cfg = workdir / f"envoy-{n}.yaml"
    cfg.write_text(dump_config(doc))
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
    gw = Gateway(proc, None, None, cfg, mocks, Path(used) if used else None)
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


# --------------------------------------------------------------------------------------------
# Envoy with envoy/hot-reload.yaml (the filter's configuration from a watched ECDS file)
# --------------------------------------------------------------------------------------------


def replace_atomically(path: Path, text: str) -> None:
    """What an operator's tool does: a temporary file in the same directory, renamed over."""
    tmp = path.with_name(f".{path.name}.test-{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HotGateway(Gateway):
    """A running Envoy whose filter configuration is the watched file :attr:`ecds`."""

    ecds: Path

    def ecds_stats(self) -> dict[str, int]:
        """``extension_config_discovery.http_filter.ai_gateway.*`` without the prefix."""
        return {k[len(ECDS_STATS) :]: v for k, v in self.stats().items() if k.startswith(ECDS_STATS)}

    def wait_ecds(self, stat: str, at_least: int, timeout: float = 10.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.ecds_stats()
            if s.get(stat, 0) >= at_least:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"{ECDS_STATS}{stat} did not reach {at_least} in {timeout}s: {s}")
            time.sleep(0.05)


def start_hot_envoy(
    workdir: Path,
    mock: Mock,
    ecds_text: str | None = None,
    concurrency: int = 2,
    procs: list | None = None,
    log_level: str = "info",
    component_log_level: str = "wasm:info,config:debug",
) -> HotGateway:
    """Envoy with envoy/hot-reload.yaml as shipped, but: ports 0 (the listener's port is read
    from admin), the mock's port, and a copy of envoy/hot-reload/ in ``workdir`` as the watched
    directory (``ecds_text`` replaces its ai_gateway.yaml). The copy keeps the shipped text
    byte for byte (the CLI edits it in place) except the .wasm path when AI_GATEWAY_WASM is set.
    ``procs``: a list the Envoy's :class:`Proc` is appended to (a Launcher's, to stop it)."""
    if not ENVOY_BIN.exists():
        fail(f"{ENVOY_BIN} missing: run `make venv` (or `make e2e`)")
    if not WASM.exists():
        fail(f"{WASM} missing: run `make wasm` (or `make e2e`)")
    hot = workdir / "hot-reload"
    if hot.exists():
        shutil.rmtree(hot)
    shutil.copytree(HOT_DIR, hot)
    ecds = hot / ECDS_NAME
    text = ecds_text if ecds_text is not None else ecds.read_text()
    text = text.replace("target/wasm32-wasip1/release/ai_gateway_filter.wasm", str(WASM))
    ecds.write_text(text)

    doc = yaml.safe_load(HOT_BOOTSTRAP.read_text())
    doc["admin"]["address"]["socket_address"]["port_value"] = 0
    listener = doc["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = 0
    for cluster in doc["static_resources"]["clusters"]:
        for group in cluster.get("load_assignment", {}).get("endpoints", []):
            for ep in group["lb_endpoints"]:
                ep["endpoint"]["address"]["socket_address"]["port_value"] = mock.port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (wasm,) = [f for f in hcm["http_filters"] if "config_discovery" in f]
    pcs = wasm["config_discovery"]["config_source"]["path_config_source"]
    pcs["path"] = str(ecds)
    pcs["watched_directory"]["path"] = str(hot)
    used = set_access_log_path(doc, str(workdir / f"hot-envoy-{time.monotonic_ns()}.access.log"))
    cfg = workdir / "hot-reload-bootstrap.yaml"
    cfg.write_text(dump_config(doc))

    admin_file = workdir / "hot-envoy.admin"
    admin_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env[KEY_ENV] = TEST_KEY
    argv = [
        ENVOY_BIN, "-c", cfg, "--use-dynamic-base-id", "--admin-address-path", admin_file,
        "--concurrency", str(concurrency), "-l", log_level, "--component-log-level", component_log_level,
    ]  # fmt: skip
    proc = Proc("envoy (hot-reload)", argv, workdir / f"hot-envoy-{time.monotonic_ns()}.log", env=env)
    if procs is not None:
        procs.append(proc)
    gw = HotGateway(proc, None, None, cfg, mock, Path(used) if used else None)
    gw.ecds = ecds
    return wait_until_live(gw, admin_file)
