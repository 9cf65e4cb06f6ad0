"""Model roll-outs as configuration changes in a running Envoy (docs/cli.md): Envoy with
``envoy/hot-reload.yaml`` takes the filter's configuration from a watched file (ECDS), and the
``ai-gateway`` CLI changes weights in that file (in place, validated, atomic rename).

Under a bounded concurrent load on loopback (4 client threads, keep-alive):

- a weight change takes effect within seconds and the observed split follows it, with zero
  failed requests during the swap; each CLI write is exactly one change for Envoy's watcher;
- a configuration the filter refuses (``on_configure`` → false) is rejected by Envoy
  (``extension_config_discovery.http_filter.ai_gateway.update_rejected``, and a log line) and
  the last good one keeps serving, with zero failed requests; the CLI itself never writes an
  invalid file;
- ``ai-gateway canary analyze`` against a real Prometheus scraping this Envoy says
  ``rollback`` (exit 20) for a canary the mock fails with 503, and ``promote`` (exit 0) for a
  healthy one; acting on the verdict moves the traffic.

No retry policy in hot-reload.yaml: a failed request would reach the client and be counted.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from harness import AI_GATEWAY_BIN, REPO, Gateway, Launcher, replace_atomically, start_hot_envoy
from harness.prometheus import start_prometheus

CANARY = "deepseek-v3.2@2.0.0-canary.1"
STABLE = "gpt-4.1@1.0.0"
#: How long a new configuration may take to reach every worker ("within seconds").
MAX_SWITCH_S = 10.0  # "within seconds": a new VM compiles the .wasm; generous for a loaded CI machine


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------


def ensure_cli() -> Path:
    """The ai-gateway binary (``cargo build --release -p ai-gateway`` when it is not there)."""
    if "AI_GATEWAY_BIN" not in os.environ:
        r = subprocess.run(
            ["cargo", "build", "--release", "-p", "ai-gateway"], cwd=REPO, capture_output=True, text=True
        )
        if r.returncode != 0:
            pytest.fail(f"cargo build --release -p ai-gateway failed:\n{r.stderr[-3000:]}", pytrace=False)
    if not AI_GATEWAY_BIN.exists():
        pytest.fail(f"{AI_GATEWAY_BIN} missing", pytrace=False)
    return AI_GATEWAY_BIN


def cli(*args: str | Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``ai-gateway ARGS`` (from the repository root); ``check``: exit 0 expected."""
    r = subprocess.run(
        [str(AI_GATEWAY_BIN), *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )
    if check and r.returncode != 0:
        raise AssertionError(f"ai-gateway {' '.join(map(str, args))} → {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    sent: float  # time.monotonic() when the request was sent
    done: float
    status: int  # 0: no HTTP response (connection error, timeout)
    model: str | None  # x-ai-gateway-model
    version: str | None
    error: str | None = None


@dataclass
class Load:
    """``threads`` clients, each with its own keep-alive session, sending ``POST
    /v1/chat/completions`` for ``model`` back to back until :meth:`stop` (or ``max_seconds``,
    or ``max_requests`` in total: the loop is bounded whatever happens)."""

    gw: Gateway
    threads: int = 4
    model: str = "chat"
    max_seconds: float = 60.0
    max_requests: int = 40_000
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": "hi"}]})
        deadline = time.monotonic() + self.max_seconds

        def work():
            s = requests.Session()
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.outcomes) >= self.max_requests:
                        return
                t0 = time.monotonic()
                try:
                    r = s.post(
                        self.gw.url + "/v1/chat/completions",
                        data=body,
                        headers={"content-type": "application/json"},
                        timeout=10,
                    )
                    o = Outcome(
                        t0, time.monotonic(), r.status_code,
                        r.headers.get("x-ai-gateway-model"), r.headers.get("x-ai-gateway-version"),
                        None if r.status_code == 200 else r.text[:300],
                    )  # fmt: skip
                except requests.RequestException as e:
                    o = Outcome(t0, time.monotonic(), 0, None, None, repr(e))
                with self._lock:
                    self.outcomes.append(o)

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for w in self._workers:
            w.join(30)
        return self.snapshot()

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        """Until ``n`` more requests have completed."""
        target = len(self.snapshot()) + n
        deadline = time.monotonic() + timeout
        while len(self.snapshot()) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load made no progress: {len(self.snapshot())} of {target} requests")
            time.sleep(0.01)

    def failures(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status != 200]


def split(outcomes: list[Outcome]) -> Counter:
    return Counter(f"{o.model}@{o.version}" for o in outcomes if o.status == 200)


def describe_split(outcomes: list[Outcome]) -> str:
    c = split(outcomes)
    n = sum(c.values())
    return ", ".join(f"{k} {v} ({100 * v / n:.1f} %)" for k, v in sorted(c.items())) if n else "(none)"


@pytest.fixture(scope="module", autouse=True)
def _cli():
    ensure_cli()


@pytest.fixture
def setup(tmp_path):
    """(launcher, mock): a mock provider with 2 threads; Envoys are started per test."""
    launcher = Launcher(tmp_path)
    mock = launcher.mock("mock", "--threads", "2")
    yield launcher, mock
    launcher.close()


def hot_envoy(launcher: Launcher, mock, **kw):
    return start_hot_envoy(launcher.workdir, mock, procs=launcher.procs, **kw)


def within_binomial(k: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(k / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def switch_time(outcomes, written: float, until: float, old: str) -> float:
    """Seconds after ``written`` (the CLI had renamed the file by then) until the last request
    served by the ``old`` target was sent, among requests sent before ``until`` (the next
    change)."""
    late = [o.sent - written for o in outcomes if written < o.sent < until and f"{o.model}@{o.version}" == old]
    return max(late, default=0.0)


def change(gw, *args) -> tuple[float, float, str]:
    """Run a CLI weight change on the live file: (monotonic time before it ran, after it
    returned, its output). Exactly one change for Envoy: update_attempt and config_reload go
    up by one."""
    before = gw.ecds_stats()
    started = time.monotonic()
    r = cli("canary", *args[:1], gw.ecds, *args[1:])
    written = time.monotonic()
    gw.wait_ecds("config_reload", before.get("config_reload", 0) + 1)
    time.sleep(0.3)  # a second event would show by now
    after = gw.ecds_stats()
    assert after["update_attempt"] == before["update_attempt"] + 1, (before, after)
    assert after["config_reload"] == before["config_reload"] + 1, (before, after)
    assert after["update_rejected"] == before["update_rejected"], (before, after)
    return started, written, r.stdout


def test_weight_changes_under_load_take_effect_within_seconds_with_zero_failed_requests(setup):
    launcher, mock = setup
    gw = hot_envoy(launcher, mock)
    load = Load(gw, threads=4, max_seconds=90).start()
    try:
        load.wait_for(400)
        p0, p1, out = change(gw, "promote", "--route", "chat", "--canary", CANARY)
        assert "written (2 number(s) changed in place" in out, out
        load.wait_for(400)
        time.sleep(MAX_SWITCH_S)
        load.wait_for(200)

        r0, r1, out = change(gw, "rollback", "--route", "chat", "--canary", CANARY)
        load.wait_for(400)
        time.sleep(MAX_SWITCH_S)
        load.wait_for(200)

        # 100 / 100: half and half.
        h0, h1, out = change(gw, "set-weight", "--route", "chat", "--target", CANARY, "--weight", "100")
        time.sleep(MAX_SWITCH_S)
        load.wait_for(800)
    finally:
        outcomes = load.stop()

    failures = [o for o in outcomes if o.status != 200]
    assert not failures, f"{len(failures)} of {len(outcomes)} requests failed, e.g. {failures[:3]}"

    # Each phase: requests sent after the change had reached every worker, done before the
    # next change started.
    initial = [o for o in outcomes if o.done < p0]
    promoted = [o for o in outcomes if p1 + MAX_SWITCH_S < o.sent and o.done < r0]
    rolled_back = [o for o in outcomes if r1 + MAX_SWITCH_S < o.sent and o.done < h0]
    half = [o for o in outcomes if o.sent > h1 + MAX_SWITCH_S]
    s_promote = switch_time(outcomes, p1, r0, STABLE)
    s_rollback = switch_time(outcomes, r1, h0, CANARY)
    print(
        f"\n{len(outcomes)} requests, 0 failed"
        f"\n  90/10   : {describe_split(initial)}"
        f"\n  promote : {describe_split(promoted)} (last stable pick {s_promote * 1000:.0f} ms after the CLI returned)"
        f"\n  rollback: {describe_split(rolled_back)} (last canary pick {s_rollback * 1000:.0f} ms after the CLI returned)"
        f"\n  100/100 : {describe_split(half)}"
    )

    assert len(initial) >= 300 and within_binomial(split(initial)[CANARY], len(initial), 0.10), describe_split(initial)
    assert split(promoted) == {CANARY: len(promoted)} and len(promoted) >= 200, describe_split(promoted)
    assert split(rolled_back) == {STABLE: len(rolled_back)} and len(rolled_back) >= 200, describe_split(rolled_back)
    assert len(half) >= 400 and within_binomial(split(half)[CANARY], len(half), 0.5), describe_split(half)
    assert s_promote < MAX_SWITCH_S and s_rollback < MAX_SWITCH_S, (s_promote, s_rollback)


def test_an_invalid_configuration_is_refused_and_the_last_good_one_keeps_serving(setup):
    launcher, mock = setup
    gw = hot_envoy(launcher, mock)
    # The last good configuration: everything to the canary (distinct from the shipped one).
    change(gw, "promote", "--route", "chat", "--canary", CANARY)
    good = gw.ecds.read_text()
    assert '"model": "gpt-4.1", "weight": 0 }' in good and '"weight": 100 }' in good, good

    # The CLI never writes a configuration the filter would refuse.
    before = gw.ecds_stats()
    r = cli("canary", "set-weight", gw.ecds, "--route", "chat", "--target", CANARY, "--weight", "0", check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "refused: the result would be invalid, nothing written" in r.stderr, r.stderr
    assert "routes[0].targets: the weights sum to 0: at least one target needs a weight above 0" in r.stderr
    assert gw.ecds.read_text() == good
    time.sleep(1.0)
    assert gw.ecds_stats()["update_attempt"] == before["update_attempt"], "the refused edit touched the file"

    load = Load(gw, threads=4, max_seconds=60).start()
    try:
        load.wait_for(200)
        # An operator bypasses the CLI: weights that sum to 0, replaced atomically.
        bad = good.replace('"weight": 100 }', '"weight": 0 }')
        replace_atomically(gw.ecds, bad)
        t_bad = time.monotonic()
        after = gw.wait_ecds("update_rejected", before["update_rejected"] + 1)
        load.wait_for(400)
        # Recovery: the next good file is taken.
        replace_atomically(gw.ecds, good.replace('"model": "gpt-4.1", "weight": 0 }', '"model": "gpt-4.1", "weight": 100 }'))
        t_fixed = time.monotonic()
        gw.wait_ecds("update_success", after["update_success"] + 1)
        time.sleep(MAX_SWITCH_S)
        load.wait_for(400)
    finally:
        outcomes = load.stop()

    failures = [o for o in outcomes if o.status != 200]
    assert not failures, f"{len(failures)} of {len(outcomes)} requests failed, e.g. {failures[:3]}"
    stats = gw.ecds_stats()
    assert stats["update_rejected"] == before["update_rejected"] + 1, stats
    assert stats["config_fail"] >= 1, stats
    log = gw.log()
    assert "Filesystem config update rejected: Unable to create Wasm plugin ai_gateway" in log
    assert "routes[0].targets: the weights sum to 0" in log, "the filter logs why"
    # While the bad file was on disk, the last good configuration served everything.
    during = [o for o in outcomes if t_bad < o.sent and o.done < t_fixed]
    assert len(during) >= 300 and split(during) == {CANARY: len(during)}, describe_split(during)
    fixed = [o for o in outcomes if o.sent > t_fixed + MAX_SWITCH_S]
    assert len(fixed) >= 200 and within_binomial(split(fixed)[CANARY], len(fixed), 0.5), describe_split(fixed)
    print(f"\n{len(outcomes)} requests, 0 failed; while the refused file was on disk: {describe_split(during)}")

    # What the operator sees when checking the refused file.
    replace_atomically(gw.ecds, bad)
    r = cli("validate", gw.ecds, check=False)
    assert r.returncode == 1
    assert re.search(
        r"ai_gateway\.yaml: resources\[0\] \(wasm ai_gateway\): routes\[0\]\.targets: the weights sum to 0: "
        r"at least one target needs a weight above 0",
        r.stdout,
    ), r.stdout


# --------------------------------------------------------------------------------------------
# Canary analysis against a real Prometheus
# --------------------------------------------------------------------------------------------


def run_canary_traffic(launcher, mock, seconds: float = 8.0, fail_canary_after: float | None = None):
    """Envoy with the canary at 50 % (set with the CLI before any traffic), a Prometheus
    scraping it, and ``seconds`` of load; with ``fail_canary_after``, the mock starts failing
    the canary with 503 that many seconds into the load (a canary that degrades: its series
    exist and were scraped before it fails, as in production). Returns (gateway, prometheus,
    outcomes) once Prometheus has every request (counters and histograms)."""
    gw = hot_envoy(launcher, mock)
    cli("canary", "set-weight", gw.ecds, "--route", "chat", "--target", STABLE, "--weight", "50")
    gw.wait_ecds("config_reload", 2)
    cli("canary", "set-weight", gw.ecds, "--route", "chat", "--target", CANARY, "--weight", "50")
    gw.wait_ecds("config_reload", 3)
    prom = start_prometheus(launcher.workdir, [gw.admin_url.removeprefix("http://")], procs=launcher.procs)
    prom.wait_scraped()
    load = Load(gw, threads=4, max_seconds=seconds + 5).start()
    if fail_canary_after is not None:
        time.sleep(fail_canary_after)
        mock.control({"fail_models": {"deepseek-v3.2": 503}})
        time.sleep(seconds - fail_canary_after)
    else:
        time.sleep(seconds)
    outcomes = load.stop()
    total = len(outcomes)
    deadline = time.monotonic() + 30
    while True:
        n = prom.first_value('sum(ai_gateway_requests_total{route="chat"})') or 0
        h = prom.first_value('sum(ai_gateway_request_duration_milliseconds_count{route="chat"})') or 0
        if n >= total and h >= total:
            break
        assert time.monotonic() < deadline, f"Prometheus has {n} requests / {h} durations of {total}"
        time.sleep(0.5)
    return gw, prom, outcomes


def analyze(prom, *extra: str, min_requests: int = 10):
    return cli(
        "canary", "analyze", "--prometheus", prom.url, "--route", "chat", "--canary", CANARY,
        "--window", "2m", "--min-requests", str(min_requests), *extra, check=False,
    )  # fmt: skip


def test_canary_analyze_rolls_back_a_canary_that_fails_and_the_rollback_moves_the_traffic(setup):
    launcher, _ = setup
    mock = launcher.mock("slow", "--threads", "2", "--latency-ms", "30")
    gw, prom, outcomes = run_canary_traffic(launcher, mock, fail_canary_after=4.0)
    failed = [o for o in outcomes if o.status != 200]
    assert failed and all(o.status == 503 and o.model == "deepseek-v3.2" for o in failed), "the mock fails the canary"
    print(f"\n{len(outcomes)} requests, {len(failed)} failed (the canary, once the mock fails it)")

    r = analyze(prom)
    print(r.stdout)
    assert r.returncode == 20, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.rstrip().endswith("verdict: rollback"), r.stdout
    # The canary's errors (5xx) against the stable's. (Whether the filter's circuit breaker
    # also opened within these few seconds is its own business: when it did, the evidence
    # says so too — ai_gateway_circuit_open is always queried.)
    m = re.search(r"error ratio: canary ([01]\.\d+) vs stable 0\.0000, \+[01]\.\d+ > 0\.02", r.stdout)
    assert m and float(m.group(1)) > 0.02, r.stdout
    # The evidence: each query, with the metrics' names and labels (docs/metrics.md), and its number.
    assert (
        'sum(increase(ai_gateway_requests_total{route="chat",model="deepseek-v3.2",version="2.0.0-canary.1",'
        'status=~"5..|429"}[2m]))' in r.stdout
    )
    assert "histogram_quantile(0.95, sum by (le) (rate(ai_gateway_request_duration_milliseconds_bucket{" in r.stdout
    assert 'max(max_over_time(ai_gateway_circuit_open{model="deepseek-v3.2",version="2.0.0-canary.1"}[2m]))' in r.stdout

    # Acting on the verdict: the canary's weight goes back to the stable target.
    mock.control({})
    before = gw.ecds_stats()
    cli("canary", "rollback", gw.ecds, "--route", "chat", "--canary", CANARY)
    gw.wait_ecds("config_reload", before["config_reload"] + 1)
    time.sleep(0.5)
    load = Load(gw, threads=2, max_seconds=20, max_requests=100).start()
    load.wait_for(100)
    after = load.stop()
    assert split(after) == {STABLE: len(after)} and len(after) >= 100, describe_split(after)


def test_canary_analyze_promotes_a_healthy_canary_and_holds_without_enough_requests(setup):
    launcher, _ = setup
    mock = launcher.mock("slow", "--threads", "2", "--latency-ms", "30")
    gw, prom, outcomes = run_canary_traffic(launcher, mock)
    assert all(o.status == 200 for o in outcomes)
    n_canary = split(outcomes)[CANARY]
    assert n_canary >= 50, describe_split(outcomes)

    # Both sides are served alike (30 ms from the mock): p95 within ×2 of each other.
    r = analyze(prom, "--max-latency-ratio", "2")
    print(r.stdout)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.rstrip().endswith("verdict: promote"), r.stdout
    requests_line = next(line for line in r.stdout.splitlines() if line.strip().startswith("canary requests "))
    seen = float(requests_line.split()[2])
    # increase() extrapolates a little; the count is the canary's requests.
    assert abs(seen - n_canary) <= max(5, 0.15 * n_canary), (seen, n_canary)

    r = analyze(prom, "--format", "json", min_requests=100_000)
    assert r.returncode == 10, (r.returncode, r.stdout, r.stderr)
    assert '"verdict": "hold"' in r.stdout
    assert "too few requests to judge" in r.stdout

    before = gw.ecds_stats()
    cli("canary", "promote", gw.ecds, "--route", "chat", "--canary", CANARY)
    gw.wait_ecds("config_reload", before["config_reload"] + 1)
    time.sleep(0.5)
    load = Load(gw, threads=2, max_seconds=20, max_requests=100).start()
    load.wait_for(100)
    after = load.stop()
    assert split(after) == {CANARY: len(after)} and len(after) >= 100, describe_split(after)


def test_the_provider_model_check_passes_for_the_shipped_hot_reload_config(setup):
    """`validate --check-models` against the mock's GET /v1/models (its default list has both
    models of envoy/hot-reload/ai_gateway.yaml)."""
    _, mock = setup
    r = cli("validate", "--check-models", f"{mock.url}/v1", "envoy/hot-reload/ai_gateway.yaml", check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert requests.get(f"{mock.url}/__requests", timeout=5).status_code == 200
