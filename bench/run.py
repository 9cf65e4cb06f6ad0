#!/usr/bin/env python3
"""`make bench`: the gateway's cost side by side with plain Envoy, an Envoy Lua filter and
LiteLLM, in one run, on one machine.

Variants (every Envoy one rendered from envoy/demo.yaml, only `http_filters` differ — see
bench/envoy/filters.yaml — and the cluster's upstream filters: no wasm filter there but in
filter-upstream):
  envoy-buffer  plain Envoy, body buffered by envoy.filters.http.buffer (the reference); no
                wasm filter anywhere, not even on the cluster
  envoy-stream  plain Envoy, body streamed
  filter        Envoy + the wasm filter on the listener only, demo.yaml's full request path
                (alias split 90/10, key injection, max_tokens/temperature/include_usage
                edits, metrics, breaker)
  filter-upstream  the same + the same .wasm as the upstream filter of the cluster `mock`
                (root_id ai_gateway_upstream, once per attempt): demo.yaml as shipped
  filter-opt    the listener's filter only, the .wasm after `wasm-opt -O3`
  filter-base, filter-upstream-base
                filter and filter-upstream with the previous build's .wasm (`make bench-base`:
                git ref BENCH_BASE built into bench/out/base/): every figure side by side
  lua           Envoy + bench/lua/gateway.lua (string.gsub model rewrite + key)
  litellm       LiteLLM proxy (bench/litellm), one worker, same weighted routing
Scenarios (each with its own upstream, started on the same port so the gateways keep
running; the upstream is measured alone too):
  direct     upstream = Envoy direct_response (bench/envoy/upstream.yaml); bodies 1 KiB,
             64 KiB, 64 KiB of ASCII prose (`64KiB-prose`: no escapes, no non-ASCII; run by
             envoy-buffer, the filter of both builds and Lua only), 1 MiB
  sse        upstream = tools/mock-provider; `stream: true`, `x-mock-chunks: 200` (1 KiB body)
  realistic  upstream = tools/mock-provider --latency-ms 50; 1 KiB body
  fallback   upstream = two tools/mock-provider, one per endpoint (mock_primary,
             mock_secondary); a 1 KiB request for claude-sonnet-4.5 (fallback: gpt-4.1).
             `1KiB-first`: both answer, one attempt. `1KiB-fallback`: the primary answers 503
             for claude-sonnet-4.5, so every request makes two attempts: with the upstream
             filter the second goes to gpt-4.1 (a fallback); without it (plain Envoy, the
             listener's filter only) the same model on the secondary (an endpoint retry).
             Variants envoy-buffer, filter, filter-upstream and their previous build only.
Every measured run is `wrk -t1 -c16 -d<duration>` after a warm-up of the same variant; the
variants are alternated (A B C … A B C …, `--rounds`) so drift hits them all alike. Gateway
CPU = utime+stime (/proc/PID/stat) of the variant's processes over the measured run.

Writes bench/results.json and the generated part of bench/RESULTS.md (between the
BEGIN/END GENERATED markers; the rest of that file is kept). Logs and rendered configs go
to bench/out/.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
LOGS = OUT / "logs"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "ai_gateway_filter.wasm"
WASM_OPT = OUT / "ai_gateway_filter.opt.wasm"
WASM_FLOOR = OUT / "wasm-floor.wasm"
# The previous build (`make bench-base`): the .wasm of git ref BENCH_BASE, and `ref` naming it
# ("<sha> <short sha> <date>").
BASE_DIR = OUT / "base"
WASM_BASE = BASE_DIR / "ai_gateway_filter.wasm"
PROFILE_INSTRUCTIONS = OUT / "profile" / "instructions.json"
MOCK = ROOT / "target" / "release" / "mock-provider"
LITELLM = BENCH / ".venv" / "bin" / "litellm"
WRK_SCRIPT = BENCH / "wrk" / "post.lua"
RESULTS_MD = BENCH / "RESULTS.md"
RESULTS_JSON = BENCH / "results.json"

PROVIDER_KEY = "sk-bench-provider-key"
CLIENT_KEY = "sk-bench-client"
CONNECTIONS = 16
THREADS = 1
SSE_CHUNKS = 200
SSE_CHUNK_DELAY_MS = 1
MOCK_LATENCY_MS = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Body labels of the direct scenario and their sizes. `-prose` bodies are ASCII English prose
# (chat_body(prose=True)); the others are the bench body, with escapes and non-ASCII text.
SIZES = {"1KiB": 1024, "64KiB": 64 * 1024, "64KiB-prose": 64 * 1024, "1MiB": 1024 * 1024}
# The variants that run the prose body (it changes only what the filter's JSON scan sees).
PROSE_VARIANTS = ["envoy-buffer", "filter", "filter-base", "lua"]

VARIANT_LABELS = {
    "envoy-buffer": "plain Envoy, body buffered (`envoy.filters.http.buffer`)",
    "envoy-stream": "plain Envoy, body streamed",
    "filter": "Envoy + ai-gateway-filter (.wasm as built)",
    "filter-upstream": "Envoy + ai-gateway-filter + its upstream filter on the cluster",
    "filter-opt": "Envoy + ai-gateway-filter (`wasm-opt -O3`)",
    "filter-base": "Envoy + ai-gateway-filter, previous build",
    "filter-upstream-base": "Envoy + ai-gateway-filter + its upstream filter, previous build",
    "lua": "Envoy + Lua (`string.gsub` model rewrite + key)",
    "litellm": "LiteLLM proxy, one worker",
    "upstream": "upstream alone (no gateway)",
    "floor-empty": "anatomy: empty wasm filter (bench/wasm-floor)",
    "floor-hold": "anatomy: + headers held for the body, 3 headers set",
    "floor-copy": "anatomy: + body copied into the VM and written back",
    "floor-splice": "anatomy: body copied into the VM, only a 15-byte prefix replaced",
    "floor-full": "anatomy: all the gateway's host calls, none of its logic",
}
# The anatomy variants of the full run (bench/wasm-floor; any `floor-a+b+c` works with --variants).
FLOOR_VARIANTS = ["floor-empty", "floor-hold", "floor-copy", "floor-splice", "floor-full"]
ALL_VARIANTS = ["envoy-buffer", "envoy-stream", "filter", "filter-upstream", "filter-base",
                "filter-upstream-base", "filter-opt", "lua", "litellm"]
# The variants of the fallback scenario: plain Envoy, the listener's filter only, both filters
# (this build and the previous one).
FALLBACK_VARIANTS = ["envoy-buffer", "filter", "filter-upstream", "filter-base", "filter-upstream-base"]
# The variants that also run the .wasm as the cluster's upstream filter, and the .wasm of each
# filter variant.
UPSTREAM_FILTER_VARIANTS = ("filter-upstream", "filter-upstream-base")
FILTER_WASM = {"filter": WASM, "filter-upstream": WASM, "filter-opt": WASM_OPT,
               "filter-base": WASM_BASE, "filter-upstream-base": WASM_BASE}
# The model of the fallback scenario's requests, its first fallback, and what the primary
# answers it in the `1KiB-fallback` case.
FALLBACK_MODEL, FALLBACK_TO, FALLBACK_STATUS = "claude-sonnet-4.5", "gpt-4.1", 503
WASM_FILTER = "envoy.filters.http.wasm"
# The bench's changes to demo.yaml's plugin configuration and route (the same in every variant
# and scenario; they matter only where attempts fail, i.e. in the fallback scenario):
# - the breaker never opens (min_requests at its maximum): a model failing every first
#   attempt would otherwise have its circuit opened after 20 requests and no longer be tried
#   first, and the scenario would measure single attempts at its fallback;
# - the retry back-off is 1 ms instead of 100 ms: a second attempt waits for it, and with
#   16 connections a 0–100 ms wait, not the CPU, would set the fallback scenario's rate;
# - every cluster allows 1024 retries at once (circuit_breakers.thresholds.max_retries; Envoy's
#   default is 3): with 16 requests failing at once, the others would get the 503 unretried
#   (upstream_rq_retry_overflow) and the scenario would measure failed requests.
BENCH_MIN_REQUESTS = 2**32 - 1
BENCH_RETRY_BACK_OFF = {"base_interval": "0.001s", "max_interval": "0.01s"}
BENCH_MAX_RETRIES = 1024
REFERENCE = "envoy-buffer"

# The chat completion the direct_response upstream answers (usage included: the filter meters it).
UPSTREAM_BODY = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1760000000,'
    '"model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"Hello from the benchmark upstream","refusal":null},"logprobs":null,'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":256,"completion_tokens":6,'
    '"total_tokens":262}}'
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# bodies


# The `-prose` bodies' user message: plain ASCII English prose (letters, spaces, punctuation;
# nothing JSON escapes, no byte >= 0x80), repeated and cut to size.
PROSE = (
    "The report covers the latency of the gateway over the last quarter, and it finds that most "
    "requests were answered within a few milliseconds. Summarise it for the operations team; keep "
    "the numbers, drop the tables, and say what changed since the previous release. Where the "
    "throughput fell, explain why: was it the upstream provider, the network, or the proxy itself? "
    "Please write short sentences, use plain words, and end with three recommendations. "
)


def chat_body(size: int, stream: bool = False, model: str = "chat", prose: bool = False) -> bytes:
    """A chat request of exactly `size` bytes (same shape as benches/hot.rs): model alias
    `chat` (or `model`), a system and a user message with words, escapes and non-ASCII text;
    with `prose`, the user message is ASCII English prose instead (no escapes, no non-ASCII)."""
    head = '{"model":"' + model + '",' + ('"stream":true,' if stream else "")
    head += (
        '"messages":[{"role":"system","content":"You are a helpful assistant."},'
        '{"role":"user","content":"'
    )
    tail = '"}],"user":"bench"}'
    words = [
        "Summarise ",
        "the ",
        "following ",
        "report\\n",
        'about \\"latency\\" ',
        "café ",
        "日本語 ",
        "throughput. ",
    ]
    head_b, tail_b = head.encode(), tail.encode()
    room = size - len(head_b) - len(tail_b)
    if prose:
        text = (PROSE * (room // len(PROSE) + 1))[:room].encode("ascii")
        body = head_b + text + tail_b
        assert len(body) == size and body.isascii() and b"\\" not in text and b'"' not in text
        json.loads(body)
        return body
    filler = bytearray()
    done = False
    while not done:
        for w in words:
            wb = w.encode()
            if len(filler) + len(wb) > room:
                done = True
                break
            filler += wb
    filler += b"x" * (room - len(filler))
    body = head_b + bytes(filler) + tail_b
    assert len(body) == size, (len(body), size)
    json.loads(body)
    return body


def body_for(label: str, model: str = "chat") -> bytes:
    """The request body of a size label (SIZES): the bench body, or prose for `*-prose`."""
    return chat_body(SIZES[label], model=model, prose=label.endswith("-prose"))


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


STARTED: list[subprocess.Popen] = []


def start(name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
    LOGS.mkdir(parents=True, exist_ok=True)
    logf = open(LOGS / f"{name}.log", "wb")
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen(
        argv,
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=ROOT,
        start_new_session=True,
    )
    STARTED.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stop_all() -> None:
    for p in reversed(STARTED):
        stop(p)
    STARTED.clear()


def proc_tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime (+ reaped children's) of the processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
        total += sum(int(fields[i - 3]) for i in (14, 15, 16, 17))
    return total / CLK_TCK


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---------------------------------------------------------------------------------------------
# targets


class Target:
    name: str
    port: int
    proc: subprocess.Popen

    def pids(self) -> list[int]:
        return proc_tree(self.proc.pid)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class EnvoyTarget(Target):
    def __init__(self, name: str, config: dict, concurrency: int = 1):
        self.name = name
        self.port = config["static_resources"]["listeners"][0]["address"]["socket_address"][
            "port_value"
        ]
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.config_path = OUT / f"envoy-{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False, width=120))
        self.concurrency = concurrency

    def argv(self) -> list[str]:
        return [
            str(ENVOY),
            "-c",
            str(self.config_path),
            "--concurrency",
            str(self.concurrency),
            "--use-dynamic-base-id",
            "-l",
            "warning",
        ]

    def validate(self) -> None:
        r = subprocess.run(
            self.argv()[:3] + ["--mode", "validate", "-l", "error"],
            env={**os.environ, "HOLYSHEEP_API_KEY": PROVIDER_KEY},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise RuntimeError(f"{self.config_path} does not validate:\n{r.stdout}{r.stderr}")

    def start(self) -> None:
        self.proc = start(f"envoy-{self.name}", self.argv(), {"HOLYSHEEP_API_KEY": PROVIDER_KEY})
        wait_port(self.admin_port, proc=self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http_get(f"http://127.0.0.1:{self.admin_port}/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        wait_port(self.port, proc=self.proc)

    def stats(self, flt: str) -> dict[str, str]:
        code, body = http_get(
            f"http://127.0.0.1:{self.admin_port}/stats?filter={urllib.parse.quote(flt)}"
        )
        out = {}
        if code == 200:
            for line in body.decode().splitlines():
                k, _, v = line.partition(": ")
                out[k] = v
        return out

    def memory(self) -> dict:
        code, body = http_get(f"http://127.0.0.1:{self.admin_port}/memory")
        return json.loads(body) if code == 200 else {}


class MockTarget(Target):
    def __init__(self, name: str, port: int, latency_ms: int = 0):
        self.name, self.port, self.latency_ms = name, port, latency_ms

    def argv(self) -> list[str]:
        argv = [str(MOCK), "--listen", f"127.0.0.1:{self.port}", "--name", self.name]
        argv += ["--threads", "1"]
        if self.latency_ms:
            argv += ["--latency-ms", str(self.latency_ms)]
        return argv

    def start(self) -> None:
        self.proc = start(self.name, self.argv())
        wait_port(self.port, proc=self.proc)


class LiteLLMTarget(Target):
    def __init__(self, port: int, upstream: str):
        self.name, self.port = "litellm", port
        cfg = (BENCH / "litellm" / "config.yaml").read_text().replace("{UPSTREAM}", upstream)
        self.config_path = OUT / "litellm.yaml"
        self.config_path.write_text(cfg)

    def argv(self) -> list[str]:
        return [
            str(LITELLM),
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            "1",
            "--telemetry",
            "False",
        ]

    def start(self) -> None:
        env = {
            "LITELLM_MASTER_KEY": CLIENT_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HOLYSHEEP_API_KEY": PROVIDER_KEY,
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
        }
        self.proc = start("litellm", self.argv(), env)
        wait_port(self.port, timeout=180, proc=self.proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if http_get(f"{self.url()}/health/liveliness")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("LiteLLM is not live after 120 s")


# `--wasm NAME=PATH`: extra variants `wasm-NAME`, the filter's configuration with another .wasm
# (a candidate build to compare against the current one in the same run).
EXTRA_WASM: dict[str, Path] = {}


def cluster_upstream_filters(cfg: dict):
    """(cluster, its upstream HTTP filter list) of every cluster that has one
    (typed_extension_protocol_options → HttpProtocolOptions → http_filters)."""
    for c in cfg["static_resources"].get("clusters", []):
        opts = c.get("typed_extension_protocol_options", {})
        for o in opts.values():
            if isinstance(o, dict) and "http_filters" in o:
                yield c, o


def wasm_filter_count(node) -> int:
    """envoy.filters.http.wasm filters anywhere in a config (listeners, clusters, anywhere)."""
    if isinstance(node, dict):
        return (node.get("name") == WASM_FILTER) + sum(wasm_filter_count(v) for v in node.values())
    if isinstance(node, list):
        return sum(wasm_filter_count(v) for v in node)
    return 0


def render_variant(name: str, ports: dict, upstream_port: int,
                   secondary_port: int | None = None) -> dict:
    """envoy/demo.yaml with the benchmark's ports, the mock clusters on the upstream (the
    secondary on `secondary_port` when given), the variant's http_filters, and the cluster's
    wasm upstream filter kept in `filter-upstream` and `filter-upstream-base` only."""
    demo = yaml.safe_load((ROOT / "envoy" / "demo.yaml").read_text())
    cfg = copy.deepcopy(demo)
    cfg["admin"]["address"]["socket_address"]["port_value"] = ports[name + ":admin"]
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = ports[name]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    # The shipped access log (one JSON line per request) would cost every variant the same and
    # blur what the filters add: the bench measures the filters, not the log.
    hcm.pop("access_log", None)
    for c in cfg["static_resources"]["clusters"]:
        c["circuit_breakers"] = {"thresholds": [{"priority": "DEFAULT", "max_retries": BENCH_MAX_RETRIES}]}
        port = secondary_port if secondary_port and c["name"] == "mock_secondary" else upstream_port
        for group in c.get("load_assignment", {}).get("endpoints", []):
            for ep in group["lb_endpoints"]:
                ep["endpoint"]["address"]["socket_address"]["port_value"] = port
    for vh in hcm["route_config"]["virtual_hosts"]:
        for route in vh["routes"]:
            policy = route.get("route", {}).get("retry_policy")
            if policy is not None:
                policy["retry_back_off"] = dict(BENCH_RETRY_BACK_OFF)
    # The upstream filters of the cluster: demo.yaml runs the same .wasm there (a YAML alias of
    # the listener filter's configuration and VM). Only `filter-upstream` (and its previous
    # build) keeps it; every other variant has no wasm filter on the cluster (upstream_codec
    # alone, what Envoy runs anyway).
    upstream_wasm = 0
    for _, opts in cluster_upstream_filters(cfg):
        kept = [f for f in opts["http_filters"] if f.get("name") != WASM_FILTER]
        upstream_wasm += len(opts["http_filters"]) - len(kept)
        if name not in UPSTREAM_FILTER_VARIANTS:
            opts["http_filters"] = kept
    if name in UPSTREAM_FILTER_VARIANTS and not upstream_wasm:
        raise RuntimeError(f"envoy/demo.yaml has no wasm upstream filter on a cluster: nothing to measure in {name}")
    if name in FILTER_WASM or name.startswith(("floor-", "wasm-")):
        wasm = FILTER_WASM.get(name, WASM_FLOOR)
        if name.startswith("wasm-"):
            wasm = EXTRA_WASM[name.removeprefix("wasm-")]
        found = False
        for f in hcm["http_filters"]:
            if f["name"] == "envoy.filters.http.wasm":
                config = f["typed_config"]["config"]
                # A copy: in demo.yaml the cluster's filter shares these (YAML aliases); in
                # filter-upstream it gets the same again, below.
                config["vm_config"] = vm = copy.deepcopy(config["vm_config"])
                config["configuration"] = copy.deepcopy(config["configuration"])
                vm["code"]["local"]["filename"] = str(wasm)
                vm["vm_id"] = f"ai_gateway_{name}"
                if name.startswith("floor-"):
                    config["configuration"]["value"] = name.removeprefix("floor-").replace("+", ",")
                else:
                    plugin = json.loads(config["configuration"]["value"])
                    plugin.setdefault("failover", {})["min_requests"] = BENCH_MIN_REQUESTS
                    config["configuration"]["value"] = json.dumps(plugin, indent=2)
                found = True
                if name in UPSTREAM_FILTER_VARIANTS:
                    # The same configuration and VM as the listener's filter, as in demo.yaml.
                    for _, opts in cluster_upstream_filters(cfg):
                        for uf in opts["http_filters"]:
                            if uf.get("name") == WASM_FILTER:
                                uc = uf["typed_config"]["config"]
                                uc["vm_config"] = vm
                                uc["configuration"] = config["configuration"]
        if not found:
            raise RuntimeError("envoy/demo.yaml has no envoy.filters.http.wasm filter")
    else:
        text = (BENCH / "envoy" / "filters.yaml").read_text()
        text = text.replace("{LUA}", str(BENCH / "lua" / "gateway.lua"))
        hcm["http_filters"] = yaml.safe_load(text)[name]
    want = 2 if name in UPSTREAM_FILTER_VARIANTS else (1 if wasm_filter_count(hcm["http_filters"]) else 0)
    if wasm_filter_count(cfg) != want:
        raise RuntimeError(f"variant {name}: {wasm_filter_count(cfg)} wasm filters in its config, want {want}")
    return cfg


def render_upstream(port: int, admin: int) -> dict:
    text = (BENCH / "envoy" / "upstream.yaml").read_text()
    text = text.replace("{PORT}", str(port)).replace("{ADMIN_PORT}", str(admin))
    text = text.replace("{BODY}", UPSTREAM_BODY)
    return yaml.safe_load(text)


# ---------------------------------------------------------------------------------------------
# load


def wrk(url: str, body_file: Path, duration: float, headers: str = "") -> dict:
    argv = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    env = {
        **os.environ,
        "BENCH_BODY": str(body_file),
        "BENCH_HEADERS": headers,
        "BENCH_CLIENT_KEY": CLIENT_KEY,
    }
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    # CPU of wrk itself (the only child reaped meanwhile), to show it is not the bottleneck
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(rb"^BENCH_JSON (.*)$", out, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({p.returncode}): {out.decode()} {err.decode()}")
    r = json.loads(m.group(1))
    r["argv"] = argv
    r["wrk_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return r


def measure(target: Target, body_file: Path, duration: float, headers: str,
            upstream: Target | None) -> dict:
    pids = target.pids()
    up_pids = upstream.pids() if upstream and upstream is not target else []
    t_cpu0, u_cpu0, m0 = cpu_seconds(pids), cpu_seconds(up_pids), machine_cpu()
    t0 = time.monotonic()
    r = wrk(target.url(), body_file, duration, headers)
    wall = time.monotonic() - t0
    t_cpu1, u_cpu1, m1 = cpu_seconds(pids), cpu_seconds(up_pids), machine_cpu()
    reqs = r["requests"]
    errors = sum(r["errors"].values())
    res = {
        "requests": reqs,
        "duration_s": r["duration_us"] / 1e6,
        "rps": reqs / (r["duration_us"] / 1e6),
        "latency_us": r["latency_us"],
        "errors": r["errors"],
        "cpu_s": t_cpu1 - t_cpu0,
        "cpu_us_per_req": (t_cpu1 - t_cpu0) / reqs * 1e6 if reqs else None,
        "cpu_util": (t_cpu1 - t_cpu0) / wall,
        "upstream_cpu_util": (u_cpu1 - u_cpu0) / wall if up_pids else None,
        "machine_busy": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
        "wrk_cpu_util": r["wrk_cpu_s"] / wall,
    }
    if errors:
        res["error_count"] = errors
    return res


def aggregate(rounds: list[dict]) -> dict:
    reqs = sum(r["requests"] for r in rounds)
    dur = sum(r["duration_s"] for r in rounds)
    cpu = sum(r["cpu_s"] for r in rounds)
    rps = [r["rps"] for r in rounds]
    agg = {
        "rounds": len(rounds),
        "requests": reqs,
        "rps": reqs / dur,
        "rps_min": min(rps),
        "rps_max": max(rps),
        # percentiles: the median over the rounds (each round's wrk histogram)
        "p50_us": statistics.median(r["latency_us"]["p50"] for r in rounds),
        "p90_us": statistics.median(r["latency_us"]["p90"] for r in rounds),
        "p99_us": statistics.median(r["latency_us"]["p99"] for r in rounds),
        "cpu_us_per_req": cpu / reqs * 1e6 if reqs else None,
        "cpu_util": statistics.mean(r["cpu_util"] for r in rounds),
        "machine_busy": statistics.mean(r["machine_busy"] for r in rounds),
        "errors": sum(r.get("error_count", 0) for r in rounds),
    }
    ups = [r["upstream_cpu_util"] for r in rounds if r.get("upstream_cpu_util") is not None]
    if ups:
        agg["upstream_cpu_util"] = statistics.mean(ups)
    w = [r["wrk_cpu_util"] for r in rounds if r.get("wrk_cpu_util") is not None]
    if w:
        agg["wrk_cpu_util"] = statistics.mean(w)
    return agg


# ---------------------------------------------------------------------------------------------
# unloaded latency / time to first byte (one connection, sequential requests)


def probe(port: int, body: bytes, headers: dict[str, str], n: int, ready=None) -> dict:
    """n requests one at a time on one connection, after 5 that warm it (not in the figures);
    `ready`, when given, is called between the two (profile.py starts counting there)."""
    req_head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {CLIENT_KEY}\r\n"
        "x-ai-gateway-cluster: mock\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    ttfb, first_data, total = [], [], []
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(n + 5):  # the first 5 warm the connection
            if i == 5 and ready is not None:
                ready()
            t0 = time.perf_counter()
            sock.sendall(req_head + body)
            buf = b""
            t_first = t_data = None
            status = None
            # headers
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed")
                if t_first is None:
                    t_first = time.perf_counter()
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            buf = rest
            if "content-length" in hdrs:
                need = int(hdrs["content-length"])
                while len(buf) < need:
                    buf += sock.recv(65536)
                t_data = time.perf_counter() if need else t_first
            else:  # chunked
                while True:
                    if t_data is None and b"data:" in buf:
                        t_data = time.perf_counter()
                    if buf.endswith(b"0\r\n\r\n") and _chunked_complete(buf):
                        break
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError("connection closed mid-body")
                    buf += chunk
                if t_data is None:
                    t_data = time.perf_counter()
            t_end = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"probe got HTTP {status}: {buf[:300]!r}")
            if i >= 5:
                ttfb.append((t_first - t0) * 1e6)
                first_data.append((t_data - t0) * 1e6)
                total.append((t_end - t0) * 1e6)
    finally:
        sock.close()

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    return {
        "n": n,
        "ttfb_p50_us": pct(ttfb, 0.5),
        "first_data_p50_us": pct(first_data, 0.5),
        "total_p50_us": pct(total, 0.5),
        "total_p90_us": pct(total, 0.9),
    }


def _chunked_complete(buf: bytes) -> bool:
    i = 0
    while True:
        j = buf.find(b"\r\n", i)
        if j < 0:
            return False
        size = int(buf[i:j].split(b";")[0], 16)
        if size == 0:
            return buf[j + 2:j + 4] == b"\r\n"
        i = j + 2 + size + 2
        if i > len(buf):
            return False


# ---------------------------------------------------------------------------------------------
# the run


def wait_quiet(threshold: float, hold_s: int, max_wait_s: int, step_s: int) -> dict:
    """Waits until the 1-minute load average stays below `threshold` for `hold_s`."""
    t0 = time.monotonic()
    below_since = None
    readings = []
    while True:
        la = loadavg()[0]
        readings.append(la)
        now = time.monotonic()
        if la < threshold:
            below_since = below_since if below_since is not None else now
            if now - below_since >= hold_s:
                return {"quiet": True, "waited_s": round(now - t0), "load1": la}
        else:
            below_since = None
        if now - t0 >= max_wait_s:
            return {"quiet": False, "waited_s": round(now - t0), "load1": la}
        if len(readings) == 1 or len(readings) % 6 == 0:
            log(f"waiting for a quiet machine: load1 {la:.2f} (want < {threshold} for {hold_s}s)")
        time.sleep(step_s)


def machine_info() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])

    def version(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "envoy": version([str(ENVOY), "--version"]),
        "wrk": version(["wrk", "-v"]),
        "wasm_opt": version(["wasm-opt", "--version"]),
        "litellm": version([str(BENCH / ".venv" / "bin" / "python"), "-c",
                            "import importlib.metadata as m; print(m.version('litellm'))"]),
        "rustc": version(["rustc", "--version"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run")
    ap.add_argument("--rounds", type=int, default=2, help="A/B alternation rounds")
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS + FLOOR_VARIANTS),
                    help="floor-* (anatomy) variants run in the direct scenario only")
    ap.add_argument("--scenarios", default="direct,sse,realistic,fallback")
    ap.add_argument("--sizes", default=",".join(SIZES),
                    help="body labels of the direct scenario: " + ", ".join(SIZES))
    ap.add_argument("--probe", type=int, default=200, help="sequential requests per latency probe")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 s runs, 1 round, no wait")
    ap.add_argument("--no-wait", action="store_true", help="don't wait for a quiet machine")
    ap.add_argument("--quiet-load", type=float, default=0.7)
    ap.add_argument("--quiet-hold", type=int, default=30)
    ap.add_argument("--quiet-max-wait", type=int, default=2400)
    ap.add_argument("--no-write", action="store_true", help="don't write results.json/RESULTS.md")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render RESULTS.md's generated section from bench/results.json (with the\n"
                         "instruction counts of bench/out/profile/instructions.json when they are of\n"
                         "the same two .wasm files)")
    ap.add_argument("--render-if-current", action="store_true",
                    help="--render-only, but only when bench/results.json was measured on the .wasm\n"
                         "files built now (make bench-profile runs it)")
    ap.add_argument("--wasm", action="append", default=[], metavar="NAME=PATH",
                    help="add variant wasm-NAME: the filter's configuration with this .wasm")
    args = ap.parse_args()
    for spec in args.wasm:
        name, _, path = spec.partition("=")
        EXTRA_WASM[name] = Path(path).resolve()
    if args.render_if_current:
        current = wasm_info()
        if not RESULTS_JSON.exists():
            log(f"no {RESULTS_JSON.relative_to(ROOT)}: nothing to re-render")
            return 0
        old = json.loads(RESULTS_JSON.read_text()).get("wasm", {})
        if (old.get("sha256"), old.get("base_sha256")) != (current.get("sha256"), current.get("base_sha256")):
            log(f"{RESULTS_JSON.relative_to(ROOT)} was measured on other .wasm files: not re-rendered "
                "(run make bench)")
            return 0
        args.render_only = True
    if args.render_only:
        results = json.loads(RESULTS_JSON.read_text())
        attach_instructions(results)
        derive(results)
        RESULTS_JSON.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        write_markdown(results)
        log(f"re-rendered {RESULTS_MD.relative_to(ROOT)} from {RESULTS_JSON.relative_to(ROOT)}")
        return 0
    if args.quick:
        args.duration, args.warmup, args.rounds, args.no_wait, args.probe = 2.0, 1.0, 1, True, 30
        args.no_write = True
    variants = [v for v in args.variants.split(",") if v]
    scenarios = [s for s in args.scenarios.split(",") if s]
    sizes = [s for s in args.sizes.split(",") if s]
    if "litellm" in variants and not LITELLM.exists():
        log(f"{LITELLM} missing (make bench-litellm): LiteLLM is left out")
        variants.remove("litellm")
    for need in ([ENVOY, WASM, MOCK] + ([WASM_OPT] if "filter-opt" in variants else [])
                 + ([WASM_BASE] if any(v.endswith("-base") for v in variants) else [])
                 + ([WASM_FLOOR] if any(v.startswith("floor-") for v in variants) else [])):
        if not Path(need).exists():
            log(f"missing {need}: run `make bench` (it builds everything first; the previous "
                "build: make bench-base)")
            return 1
    if shutil.which("wrk") is None:
        log("wrk is missing: apt-get install -y wrk")
        return 1

    OUT.mkdir(parents=True, exist_ok=True)
    bodies = {}
    for label in SIZES:
        p = OUT / f"chat-{label}.json"
        p.write_bytes(body_for(label))
        bodies[label] = p
    stream_body = OUT / "chat-1KiB-stream.json"
    stream_body.write_bytes(chat_body(1024, stream=True))

    # ports (picked free now; everything binds 127.0.0.1 only)
    ports = {"upstream": free_port(), "upstream:admin": free_port(), "litellm": free_port(),
             "upstream2": free_port()}
    for v in dict.fromkeys(ALL_VARIANTS + FLOOR_VARIANTS + variants):
        ports[v], ports[v + ":admin"] = free_port(), free_port()
    upstream_addr = f"127.0.0.1:{ports['upstream']}"

    envoys = {
        v: EnvoyTarget(v, render_variant(v, ports, ports["upstream"], ports["upstream2"]))
        for v in variants if v != "litellm"
    }
    up_envoy = EnvoyTarget("upstream", render_upstream(ports["upstream"], ports["upstream:admin"]))
    for e in list(envoys.values()) + [up_envoy]:
        e.validate()
    log(f"configs rendered and validated in {OUT}")

    results: dict = {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "wrk": f"wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration:g}s --timeout 30s -s bench/wrk/post.lua",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "envoy_concurrency": 1,
            "variants": variants,
            "sse_chunks": SSE_CHUNKS,
            "mock_latency_ms": MOCK_LATENCY_MS,
            "command": "make bench" + (" (" + " ".join(sys.argv[1:]) + ")" if sys.argv[1:] else ""),
        },
        "wasm": wasm_info(),
        "scenarios": {},
    }

    if args.no_wait:
        results["quiet"] = {"quiet": None, "skipped": True}
    else:
        q = wait_quiet(args.quiet_load, args.quiet_hold, args.quiet_max_wait, 10)
        results["quiet"] = q
        if not q["quiet"]:
            log(f"the machine never got quiet in {args.quiet_max_wait}s: running anyway")
    results["loadavg_start"] = loadavg()
    log(f"load average at start: {results['loadavg_start']}")
    t_start = time.monotonic()

    try:
        for e in envoys.values():
            e.start()
        log(f"variants up: {', '.join(envoys)}")
        wasm_variants = [v for v in envoys if v.startswith(("filter", "wasm-"))]
        snapshots: dict[str, list] = {v: [] for v in wasm_variants}

        def snapshot(label: str) -> None:
            for v in wasm_variants:
                snapshots[v].append({"after": label, **vm_memory(envoys[v])})

        snapshot("start (no traffic yet)")
        litellm = None
        if "litellm" in variants:
            litellm = LiteLLMTarget(ports["litellm"], upstream_addr)
            litellm.start()
            log("LiteLLM up")
        targets: dict[str, Target] = dict(envoys)
        if litellm:
            targets["litellm"] = litellm

        for scen in scenarios:
            results["scenarios"][scen] = run_scenario(
                scen, args, targets, variants, sizes, bodies, stream_body, ports, up_envoy,
                snapshot,
            )
        results["vm_memory"] = snapshots
        for v, e in envoys.items():
            if v.startswith("filter"):
                results.setdefault("filter_stats", {})[v] = {
                    k: s for k, s in e.stats("ai_gateway").items()
                    if "requests_total" in k or "rejected" in k or "selections" in k
                }
    finally:
        stop_all()
    results["loadavg_end"] = loadavg()
    results["elapsed_s"] = round(time.monotonic() - t_start)
    attach_instructions(results)
    log(f"load average at end: {results['loadavg_end']} ({results['elapsed_s']} s)")
    derive(results)
    if not args.no_write:
        RESULTS_JSON.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        write_markdown(results)
        log(f"wrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)}")
        print(upstream_filter_tables(results))
    else:
        (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(render_tables(results))
    return 0


def sha256(path: Path) -> str | None:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def wasm_info() -> dict:
    """Sizes and SHA-256 of this build's .wasm (as built and after wasm-opt) and of the
    previous build's (bench/out/base/), with the commit it was built from."""
    ref = (BASE_DIR / "ref").read_text().split() if (BASE_DIR / "ref").exists() else []
    return {
        "size_bytes": WASM.stat().st_size if WASM.exists() else None,
        "sha256": sha256(WASM),
        "opt_size_bytes": WASM_OPT.stat().st_size if WASM_OPT.exists() else None,
        "base_size_bytes": WASM_BASE.stat().st_size if WASM_BASE.exists() else None,
        "base_sha256": sha256(WASM_BASE),
        # "<sha> <short sha> <commit date>", written by `make bench-base`
        "base_ref": " ".join(ref) or None,
        "base_short": ref[1] if len(ref) > 1 else None,
    }


def attach_instructions(results: dict) -> None:
    """results["instructions"]: the instruction counts of `make bench-profile`
    (bench/out/profile/instructions.json) when they were taken on the same two .wasm files
    as this run; otherwise it says why they are left out."""
    results.pop("instructions", None)
    if not PROFILE_INSTRUCTIONS.exists():
        results["instructions"] = {"missing": "no bench/out/profile/instructions.json (make bench-profile)"}
        return
    data = json.loads(PROFILE_INSTRUCTIONS.read_text())
    if not isinstance(data, dict) or "rows" not in data:
        results["instructions"] = {"missing": "bench/out/profile/instructions.json is of an older profile.py"}
        return
    w = results.get("wasm", {})
    used = data.get("wasm", {})
    if used.get("sha256") != w.get("sha256") or used.get("base_sha256") != w.get("base_sha256"):
        results["instructions"] = {"missing": "bench/out/profile/instructions.json counted other .wasm "
                                              "files (make bench-profile)"}
        return
    results["instructions"] = data


def added_instructions(data: dict) -> dict:
    """{(variant, size label): Ir per request minus envoy-buffer's at that size}."""
    rows = data.get("rows", [])
    ref = {r["size"]: r["ir_per_req"] for r in rows if r["variant"] == REFERENCE and r.get("ir_per_req")}
    return {(r["variant"], r["size"]): r["ir_per_req"] - ref[r["size"]]
            for r in rows if r.get("ir_per_req") and r["size"] in ref and r["variant"] != REFERENCE}


def wasm_memories(pid: int) -> list[dict]:
    """The linear memories of the process's wasm VMs. V8 reserves 8 GiB (+ guard) of address
    space per 32-bit wasm memory and makes its first `size` bytes read-write, so in
    /proc/PID/smaps each memory is the rw-p mapping that ends where a >= 4 GiB ---p reservation
    starts: its size is the VM's memory size (memory.grow), its Rss what is resident."""
    maps = []
    cur = None
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ", line)
        if m:
            cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), 0]
            maps.append(cur)
        elif line.startswith("Rss:") and cur is not None:
            cur[3] = int(line.split()[1])
    out = []
    for prev, nxt in zip(maps, maps[1:]):
        if (prev[2] == "rw-p" and nxt[2] == "---p" and prev[1] == nxt[0]
                and nxt[1] - nxt[0] >= 4 << 30):
            out.append({"size_kib": (prev[1] - prev[0]) // 1024, "rss_kib": prev[3]})
    return out


def vm_memory(e: EnvoyTarget) -> dict:
    stats = {k: v for k, v in e.stats("^wasm\\.").items()}
    mem = e.memory()
    return {
        "wasm_stats": stats,
        "linear_memories": wasm_memories(e.proc.pid),
        "process_rss_kib": rss_kib(e.proc.pid),
        "tcmalloc_allocated": int(mem.get("allocated", 0)) if mem else None,
    }


def run_scenario(scen, args, targets, variants, sizes, bodies, stream_body, ports, up_envoy,
                 snapshot):
    """Starts the scenario's upstream on the upstream port, runs the rounds, stops it."""
    if scen == "direct":
        upstream: Target = up_envoy
        cases = [(s, bodies[s], "") for s in sizes]
    elif scen == "sse":
        upstream = MockTarget("mock-sse", ports["upstream"])
        # One event per write, 1 ms apart, as a provider streams tokens: every event reaches
        # the gateway as its own chunk (with no delay the mock's writes coalesce, and one mock
        # thread producing 200 events per response would be the bottleneck).
        cases = [("1KiB-stream", stream_body,
                  f"x-mock-chunks: {SSE_CHUNKS}|x-mock-chunk-delay-ms: {SSE_CHUNK_DELAY_MS}")]
    elif scen == "realistic":
        upstream = MockTarget("mock-latency", ports["upstream"], MOCK_LATENCY_MS)
        cases = [("1KiB", bodies["1KiB"], "")]
    elif scen == "fallback":
        upstream = MockTarget("mock-primary", ports["upstream"])
        body = OUT / "chat-1KiB-fallback.json"
        body.write_bytes(chat_body(1024, model=FALLBACK_MODEL))
        cases = [("1KiB-first", body, ""), ("1KiB-fallback", body, "")]
    else:
        raise SystemExit(f"unknown scenario {scen}")
    if scen == "fallback":
        run_variants = [v for v in variants if v in FALLBACK_VARIANTS]
    else:
        run_variants = [v for v in variants if scen == "direct" or not v.startswith("floor-")]
    if not run_variants:
        log(f"{scen}: none of the variants runs in this scenario")
        return {"upstream": upstream.name, "cases": {}}
    upstream.start()
    # The fallback scenario's secondary endpoint (mock_secondary); elsewhere nothing listens
    # there, and nothing is retried.
    secondary = MockTarget("mock-secondary", ports["upstream2"]) if scen == "fallback" else None
    if secondary:
        secondary.start()
    out: dict = {"upstream": upstream.name, "cases": {}}
    try:
        for case, body_file, headers in cases:
            # The prose body runs only where it tells something: the filter's scan of it.
            case_variants = [v for v in run_variants if not case.endswith("-prose") or v in PROSE_VARIANTS]
            if scen == "fallback":
                fail = case.endswith("-fallback")
                control(upstream, {"fail_models": {FALLBACK_MODEL: FALLBACK_STATUS}} if fail else {})
                checks = {v: check_attempts(targets[v], body_file) for v in case_variants}
                for v, c in checks.items():
                    log(f"{scen}/{case} {v}: HTTP {c['status']}, answered by {c['model'] or '(no header)'} "
                        f"in {c['attempts']} attempt(s)")
                    want_model = FALLBACK_TO if fail and v in UPSTREAM_FILTER_VARIANTS else FALLBACK_MODEL
                    if c["status"] != 200 or c["attempts"] != (2 if fail else 1) or (
                            v.startswith("filter") and c["model"] != want_model):
                        raise RuntimeError(f"{scen}/{case} {v}: not the path to measure: {c}")
            log(f"{scen}/{case}: warm-up")
            for v in case_variants:
                wrk(targets[v].url(), body_file, args.warmup, headers)
            per: dict[str, list] = {v: [] for v in case_variants}
            for rnd in range(args.rounds):
                for v in case_variants:
                    wrk(targets[v].url(), body_file, min(args.warmup, 1.0), headers)
                    duration = args.duration
                    if scen == "sse" and v == "litellm":
                        # ~0.4 s of CPU per 200-event stream: 16 streams at once need a longer
                        # window to complete enough of them.
                        duration = max(duration, 30.0)
                    fb0 = fallbacks_total(targets[v])
                    m = measure(targets[v], body_file, duration, headers, upstream)
                    if fb0 is not None:
                        m["fallbacks"] = fallbacks_total(targets[v]) - fb0
                    per[v].append(m)
                    log(
                        f"{scen}/{case} round {rnd + 1} {v:20s} {m['rps']:9.1f} req/s  "
                        f"p50 {m['latency_us']['p50'] / 1000:8.3f} ms  "
                        f"p99 {m['latency_us']['p99'] / 1000:8.3f} ms  "
                        f"cpu {m['cpu_us_per_req'] or 0:9.1f} µs/req  n={m['requests']}"
                        + (f"  fallbacks {m['fallbacks']}" if m.get("fallbacks") else "")
                        + (f"  ERRORS {m['errors']}" if m.get("error_count") else "")
                    )
            case_out = {v: {"runs": per[v], **aggregate(per[v])} for v in case_variants}
            for v in case_variants:
                fb = [r["fallbacks"] for r in per[v] if "fallbacks" in r]
                if fb:
                    case_out[v]["fallbacks_per_request"] = sum(fb) / max(1, case_out[v]["requests"])
            if scen != "fallback":
                # the upstream alone, same load (in the fallback scenario it would answer 503s)
                wrk(upstream.url(), body_file, min(args.warmup, 1.0), headers)
                up = measure(upstream, body_file, args.duration, headers, None)
                log(f"{scen}/{case} upstream alone {up['rps']:9.1f} req/s  cpu {up['cpu_us_per_req']:.1f} µs/req")
                case_out["upstream"] = {"runs": [up], **aggregate([up])}
            # unloaded latency: one connection, sequential requests
            if case in ("1KiB", "1KiB-stream") and args.probe:
                body = body_file.read_bytes()
                hdrs = dict(h.split(": ", 1) for h in headers.split("|") if h)
                for v in case_variants + ["upstream"]:
                    t = targets.get(v, upstream) if v != "upstream" else upstream
                    n = args.probe if v != "litellm" else max(20, args.probe // 5)
                    if scen == "sse":  # each streamed answer takes 200+ ms
                        n = min(n, 20)
                    pids = t.pids()
                    cpu0 = cpu_seconds(pids)
                    case_out[v]["probe"] = probe(t.port, body, hdrs, n)
                    # CPU per request with one request at a time (the warm-up ones included)
                    case_out[v]["probe"]["cpu_us_per_req"] = (cpu_seconds(pids) - cpu0) / (n + 5) * 1e6
                log(f"{scen}/{case}: unloaded latency probed")
            out["cases"][case] = case_out
            snapshot(f"{scen}/{case}")
    finally:
        for u in (upstream, secondary):
            if u is not None:
                stop(u.proc)
                STARTED.remove(u.proc)
        time.sleep(0.5)
    return out


def control(mock: Target, body: dict) -> None:
    """tools/mock-provider's POST /__control (fail_models, …; {} heals)."""
    req = urllib.request.Request(f"{mock.url()}/__control", data=json.dumps(body).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


def check_attempts(target: Target, body_file: Path) -> dict:
    """One request as wrk sends it: its status, the model that answered (x-ai-gateway-model)
    and the attempts it took (x-envoy-attempt-count, demo.yaml's include_attempt_count_in_response)."""
    req = urllib.request.Request(
        f"{target.url()}/v1/chat/completions", data=body_file.read_bytes(), method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}",
                 "x-ai-gateway-cluster": "mock"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, headers = r.status, r.headers
            r.read()
    except urllib.error.HTTPError as e:
        status, headers = e.code, e.headers
    return {"status": status, "model": headers.get("x-ai-gateway-model"),
            "attempts": int(headers.get("x-envoy-attempt-count") or 1)}


def fallbacks_total(target: Target) -> int | None:
    """The gateway's ai_gateway_fallbacks_total (every series), or None for a target without
    the filter's metrics."""
    if not isinstance(target, EnvoyTarget) or not target.name.startswith("filter"):
        return None
    return sum(int(v) for k, v in target.stats("ai_gateway_fallbacks_total").items()
               if v.strip().isdigit())


def derive(results: dict) -> None:
    """Ratios and differences against plain Envoy buffering the body."""
    for scen in results["scenarios"].values():
        for case in scen["cases"].values():
            ref = case.get(REFERENCE)
            if not ref:
                continue
            for v, row in case.items():
                row["throughput_ratio"] = row["rps"] / ref["rps"]
                row["added_p50_us"] = row["p50_us"] - ref["p50_us"]
                row["added_p99_us"] = row["p99_us"] - ref["p99_us"]
                if row.get("cpu_us_per_req") is not None and ref.get("cpu_us_per_req"):
                    row["added_cpu_us_per_req"] = row["cpu_us_per_req"] - ref["cpu_us_per_req"]
                if "probe" in row and "probe" in ref:
                    row["probe"]["added_total_p50_us"] = (
                        row["probe"]["total_p50_us"] - ref["probe"]["total_p50_us"]
                    )
                    row["probe"]["added_ttfb_p50_us"] = (
                        row["probe"]["ttfb_p50_us"] - ref["probe"]["ttfb_p50_us"]
                    )
    # CPU of processes outside the benchmark while each run was measured (in cores): the whole
    # machine's busy time minus the variant's, the upstream's and wrk's.
    ncpu = results.get("machine", {}).get("nproc") or os.cpu_count() or 1
    others = []
    for scen in results["scenarios"].values():
        for case in scen["cases"].values():
            for v, row in case.items():
                for r in row.get("runs", []):
                    used = (r.get("cpu_util") or 0) + (r.get("upstream_cpu_util") or 0) + (r.get("wrk_cpu_util") or 0)
                    r["others_cpu_cores"] = max(0.0, r["machine_busy"] * ncpu - used)
                    others.append(r["others_cpu_cores"])
                if row.get("runs"):
                    row["others_cpu_cores"] = statistics.mean(r["others_cpu_cores"] for r in row["runs"])
    if others:
        results["others_cpu_cores"] = {
            "mean": statistics.mean(others), "max": max(others),
            "runs_over_0.25_core": sum(1 for o in others if o > 0.25), "runs": len(others),
        }
    direct = results["scenarios"].get("direct", {}).get("cases", {})
    t: dict = {}
    for v in ("filter", "filter-opt", "filter-base"):
        if v in direct.get("1KiB", {}) and v in direct.get("1MiB", {}):
            a1 = direct["1KiB"][v].get("added_cpu_us_per_req")
            a2 = direct["1MiB"][v].get("added_cpu_us_per_req")
            if a1 is not None and a2 is not None:
                t.setdefault(v, {})["slope_us_per_mib"] = (a2 - a1) / ((SIZES["1MiB"] - SIZES["1KiB"]) / 2**20)
    sse = results["scenarios"].get("sse", {}).get("cases", {}).get("1KiB-stream", {})
    for v, row in sse.items():
        if row.get("cpu_us_per_req") is not None:
            row["cpu_us_per_chunk"] = row["cpu_us_per_req"] / SSE_CHUNKS
            if row.get("added_cpu_us_per_req") is not None:
                row["added_cpu_us_per_chunk"] = row["added_cpu_us_per_req"] / SSE_CHUNKS
    # The upstream filter on first attempts: filter-upstream against the listener's filter alone,
    # case by case (same load, same upstream); `_base`: the same for the previous build.
    for key, (lone, both) in {"upstream_filter_first_attempt": ("filter", "filter-upstream"),
                              "upstream_filter_first_attempt_base": ("filter-base", "filter-upstream-base")}.items():
        up: dict = {}
        for scen_name, scen in results["scenarios"].items():
            for case_name, case in scen["cases"].items():
                if scen_name == "fallback" and case_name.endswith("-fallback"):
                    continue
                a, b = case.get(lone), case.get(both)
                if not a or not b or not a.get("cpu_us_per_req") or b.get("cpu_us_per_req") is None:
                    continue
                up[f"{scen_name}/{case_name}"] = {
                    "filter_cpu_us_per_req": a["cpu_us_per_req"],
                    "filter_upstream_cpu_us_per_req": b["cpu_us_per_req"],
                    "added_cpu_us_per_req": b["cpu_us_per_req"] - a["cpu_us_per_req"],
                    "cpu_ratio": b["cpu_us_per_req"] / a["cpu_us_per_req"],
                    "throughput_ratio": b["rps"] / a["rps"],
                }
        if up:
            t[key] = up
    # VM memory flat: each filter variant's largest linear memory after the largest body of the
    # direct scenario, and after the whole run (the later scenarios must not grow it).
    largest = max((c for c in direct if c in SIZES), key=lambda c: SIZES[c], default=None)
    mem: dict = {}
    for v, snaps in results.get("vm_memory", {}).items():
        at = [sn for sn in snaps if sn["after"] == f"direct/{largest}"]
        if not at or not snaps[-1].get("linear_memories") or not at[0].get("linear_memories"):
            continue
        mem[v] = {
            "largest_body": largest,
            "after_largest_kib": max(m["size_kib"] for m in at[0]["linear_memories"]),
            "after_run": snaps[-1]["after"],
            "after_run_kib": max(m["size_kib"] for m in snaps[-1]["linear_memories"]),
        }
    if mem:
        t["vm_memory_flat"] = mem
    # The fallback path: the same variant, two attempts (the primary answers 503) against one.
    fb = results["scenarios"].get("fallback", {}).get("cases", {})
    first, fall = fb.get("1KiB-first", {}), fb.get("1KiB-fallback", {})
    path: dict = {}
    for v, row in fall.items():
        if v in first and row.get("cpu_us_per_req") is not None and first[v].get("cpu_us_per_req"):
            path[v] = {
                "first_cpu_us_per_req": first[v]["cpu_us_per_req"],
                "fallback_cpu_us_per_req": row["cpu_us_per_req"],
                "second_attempt_cpu_us": row["cpu_us_per_req"] - first[v]["cpu_us_per_req"],
                "fallbacks_per_request": row.get("fallbacks_per_request"),
            }
    if path:
        t["fallback_path"] = path
    results["derived"] = t


# ---------------------------------------------------------------------------------------------
# report


def fmt_us(us: float | None) -> str:
    if us is None:
        return "–"
    if abs(us) >= 10000:
        return f"{us / 1000:,.0f} ms"
    if abs(us) >= 1000:
        return f"{us / 1000:,.2f} ms"
    return f"{us:,.0f} µs"


def fmt_signed_us(us: float | None) -> str:
    if us is None:
        return "–"
    return ("+" if us >= 0 else "−") + fmt_us(abs(us))


def render_tables(results: dict) -> str:
    lines: list[str] = []
    m = results["machine"]
    s = results["settings"]
    lines.append(f"Generated {results['generated']} by `{s['command']}` (bench/run.py).")
    lines.append("")
    lines.append(
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"{m['envoy']}; {m['wrk']}; LiteLLM {m['litellm']}; {m['rustc']}; {m['wasm_opt']}."
    )
    q = results.get("quiet", {})
    if q.get("skipped"):
        quiet = "no wait for a quiet machine (--no-wait)"
    elif q.get("quiet"):
        quiet = f"quiet after {q['waited_s']} s of waiting (load1 < 0.7 for 30 s)"
    else:
        quiet = f"**never quiet** within {q.get('waited_s')} s: ran anyway"
    la0, la1 = results["loadavg_start"], results["loadavg_end"]
    lines.append(
        f"Load average (1/5/15 min): **{la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f} at start**, "
        f"**{la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f} at end** ({quiet}; run took {results['elapsed_s']} s)."
    )
    lines.append(
        f"Load: `{s['wrk']}` per run, {s['warmup_s']:g} s warm-up per variant and case "
        f"(+1 s before each run), {s['rounds']} alternated rounds (A B C … A B C …); Envoy "
        f"`--concurrency 1`. req/s = all rounds' requests / their time; p50/p99 = median of the "
        f"rounds' wrk percentiles; CPU = utime+stime of the variant's processes over the "
        f"measured runs / requests. Added = variant − plain Envoy buffering the body."
    )
    oc = results.get("others_cpu_cores")
    if oc:
        lines.append(
            f"Other processes on the machine while the runs were measured (its busy time minus the "
            f"variant's, the upstream's and wrk's CPU): mean {oc['mean']:.2f} core, max {oc['max']:.2f} core; "
            f"{oc['runs_over_0.25_core']} of {oc['runs']} runs had more than 0.25 core of foreign load "
            f"(per case in the \"others\" notes below)."
        )
    w = results["wasm"]
    lines.append(
        f".wasm: **{w['size_bytes'] / 1024:.1f} KiB** as built"
        + (f", **{w['opt_size_bytes'] / 1024:.1f} KiB** after `wasm-opt -O3`" if w.get("opt_size_bytes") else "")
        + (f"; {base_name(results)}: {w['base_size_bytes'] / 1024:.1f} KiB (commit {w['base_ref'].split()[0]})"
           if w.get("base_size_bytes") and w.get("base_ref") else "")
        + "."
    )
    lines.append("")
    titles = {
        "direct": "Upstream: Envoy `direct_response` (bench/envoy/upstream.yaml)",
        "sse": (f"Streaming: `stream: true`, {SSE_CHUNKS} SSE events per response from tools/mock-provider, "
                f"{SSE_CHUNK_DELAY_MS} ms apart (`x-mock-chunk-delay-ms`)"),
        "realistic": f"Realistic upstream: tools/mock-provider `--latency-ms {MOCK_LATENCY_MS}`",
        "fallback": (f"Fallback: a request for {FALLBACK_MODEL} (fallback: {FALLBACK_TO}), tools/mock-provider "
                     f"on each endpoint; `-first`: one attempt; `-fallback`: the primary answers "
                     f"{FALLBACK_STATUS} for {FALLBACK_MODEL}, two attempts"),
    }
    for scen_name, scen in results["scenarios"].items():
        for case_name, case in scen["cases"].items():
            lines.append(f"### {titles[scen_name]} — {case_name} chat request")
            lines.append("")
            hdr = "| variant | req/s (min–max) | × plain | p50 | p99 | added p50 | added p99 | CPU µs/req | added CPU µs/req |"
            sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            if scen_name == "sse":
                hdr += " CPU µs/chunk |"
                sep += "---:|"
            lines += [hdr, sep]
            for v, row in case.items():
                label = variant_label(results, v)
                if v == "upstream":
                    label = f"{label} ({scen['upstream']})"
                ratio = f"{row['throughput_ratio']:.2f}×" if "throughput_ratio" in row else "–"
                cpu = row.get("cpu_us_per_req")
                added_cpu = row.get("added_cpu_us_per_req")
                cells = [
                    label,
                    f"{row['rps']:,.0f} ({row['rps_min']:,.0f}–{row['rps_max']:,.0f})",
                    ratio,
                    fmt_us(row["p50_us"]),
                    fmt_us(row["p99_us"]),
                    fmt_signed_us(row.get("added_p50_us")) if v != "upstream" else "–",
                    fmt_signed_us(row.get("added_p99_us")) if v != "upstream" else "–",
                    f"{cpu:,.1f}" if cpu is not None else "–",
                    (f"{added_cpu:+,.1f}" if added_cpu is not None and v != "upstream" else "–"),
                ]
                if scen_name == "sse":
                    c = row.get("cpu_us_per_chunk")
                    cells.append(f"{c:,.2f}" if c is not None else "–")
                if row.get("errors"):
                    cells[0] += f" **({row['errors']} errors)**"
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            probes = [(v, r["probe"]) for v, r in case.items() if "probe" in r]
            if probes:
                if scen_name == "sse":
                    lines.append(
                        "CPU per request and per SSE event with one stream at a time (no "
                        "in-flight streams at the window's edges): "
                        + "; ".join(
                            f"{v} {p['cpu_us_per_req']:,.0f} µs/req = {p['cpu_us_per_req'] / SSE_CHUNKS:,.2f} µs/event"
                            for v, p in probes if p.get("cpu_us_per_req") is not None
                        )
                        + "."
                    )
                    lines.append("")
                lines.append(
                    "Unloaded latency (one connection, sequential requests, median): "
                    + "; ".join(
                        f"{v} {fmt_us(p['total_p50_us'])}"
                        + (f" (TTFB {fmt_us(p['ttfb_p50_us'])}, first `data:` {fmt_us(p['first_data_p50_us'])})"
                           if scen_name == "sse" else "")
                        for v, p in probes
                    )
                    + "."
                )
                lines.append("")
            ups = [f"{v} {r['upstream_cpu_util'] * 100:.0f} %" for v, r in case.items()
                   if r.get("upstream_cpu_util") is not None]
            if ups:
                lines.append(
                    "Upstream CPU (of one core) while serving each variant: " + "; ".join(ups) + ". "
                    + "Gateway CPU (cores): "
                    + "; ".join(f"{v} {r['cpu_util']:.2f}" for v, r in case.items() if v != "upstream")
                    + ". Others (cores, foreign load): "
                    + "; ".join(f"{v} {r.get('others_cpu_cores', 0):.2f}" for v, r in case.items())
                    + "."
                )
                lines.append("")
    vm = results.get("vm_memory", {})
    if vm:
        lines.append("### Wasm VM memory over the run")
        lines.append("")
        lines.append(
            "Envoy 1.40 has no stat for a VM's memory (its `wasm.*` stats count VMs: "
            "`wasm.envoy.wasm.runtime.v8.active` / `created`). The linear memory of each VM is read "
            "from /proc/PID/smaps (the read-write head of V8's 8 GiB reservation): size = pages "
            "grown, RSS = resident. One column per VM of the gateway process (with concurrency 1: "
            "the main-thread VM and the worker VM, plus the configuration-check VM)."
        )
        lines.append("")
        lines.append("| variant | after | linear memory per VM, size (RSS) | v8 VMs active/created | Envoy RSS |")
        lines.append("|---|---|---|---:|---:|")
        for v, snaps in vm.items():
            for sn in snaps:
                mems = ", ".join(
                    f"{m['size_kib'] / 1024:.2f} MiB ({m['rss_kib'] / 1024:.2f})" for m in sn["linear_memories"]
                )
                st = sn["wasm_stats"]
                vms = (f"{st.get('wasm.envoy.wasm.runtime.v8.active', '–')}/"
                       f"{st.get('wasm.envoy.wasm.runtime.v8.created', '–')}")
                rss = sn.get("process_rss_kib")
                lines.append(
                    f"| {v} | {sn['after']} | {mems} | {vms} | "
                    f"{rss / 1024:.1f} MiB |" if rss else f"| {v} | {sn['after']} | {mems} | {vms} | – |"
                )
        lines.append("")
    lines.append(upstream_filter_tables(results))
    lines.append(targets_table(results))
    return "\n".join(lines)


def variant_label(results: dict, v: str) -> str:
    """The variant's label; the previous build's say which commit it is."""
    label = VARIANT_LABELS.get(v, v)
    short = results.get("wasm", {}).get("base_short")
    return f"{label} ({short})" if v.endswith("-base") and short else label


def upstream_filter_tables(results: dict) -> str:
    """The cost of the upstream filter (root_id ai_gateway_upstream): on first attempts, and on
    the fallback path."""
    d = results.get("derived", {})
    first, path = d.get("upstream_filter_first_attempt"), d.get("fallback_path")
    first_b = d.get("upstream_filter_first_attempt_base") or {}
    if not first and not path:
        return ""
    out = []
    if first:
        out += [
            "### The upstream filter on first attempts",
            "",
            "The same load through Envoy with the listener's filter only (`filter`) and with the same "
            ".wasm also as the cluster's upstream filter (`filter-upstream`, demo.yaml as shipped). "
            "On a first attempt the upstream filter looks up the attempt mark the listener's filter "
            "left (nothing more when the request has no fallback plan; else it sets the mark and "
            "reads the response `:status`). Target: ≤ 10 µs of CPU per request added. The last "
            "column: the same "
            "difference for the previous build (`filter-upstream-base` − `filter-base`).",
            "",
            "| scenario / case | filter CPU µs/req | + upstream filter CPU µs/req | added µs/req | CPU ratio | req/s ratio | ≤ 10 µs "
            f"| {base_name(results)}: added µs/req |",
            "|---|---:|---:|---:|---:|---:|---|---:|",
        ]
        for k, r in first.items():
            a = r["added_cpu_us_per_req"]
            b = first_b.get(k, {}).get("added_cpu_us_per_req")
            out.append(
                f"| {k} | {r['filter_cpu_us_per_req']:,.1f} | {r['filter_upstream_cpu_us_per_req']:,.1f} | "
                f"{a:+,.1f} | {r['cpu_ratio']:.3f}× | {r['throughput_ratio']:.3f}× | "
                f"{'met' if a <= 10 else '**missed**'} | {'–' if b is None else f'{b:+,.1f}'} |"
            )
        out.append("")
    if path:
        out += [
            "### The fallback path",
            "",
            f"CPU per request of a request for {FALLBACK_MODEL} answered at the first attempt (`1KiB-first`) "
            f"and after a failed one ({FALLBACK_STATUS} from the primary, `1KiB-fallback`): with the upstream "
            f"filter the second attempt goes to {FALLBACK_TO} (its body rebuilt, content-length set, the failure "
            "and the fallback counted); without it, to the same model on the secondary endpoint (Envoy's "
            "endpoint retry). The second attempt's cost = fallback − first. The bench's retry back-off is "
            "1 ms (demo.yaml: 100 ms), so the wait does not set the rate.",
            "",
            "| variant | first attempt CPU µs/req | two attempts CPU µs/req | second attempt µs | fallbacks / request |",
            "|---|---:|---:|---:|---:|",
        ]
        for v, r in path.items():
            fpr = r.get("fallbacks_per_request")
            out.append(
                f"| {variant_label(results, v)} | {r['first_cpu_us_per_req']:,.1f} | {r['fallback_cpu_us_per_req']:,.1f} | "
                f"{r['second_attempt_cpu_us']:+,.1f} | {'–' if fpr is None else f'{fpr:.3f}'} |"
            )
        if "filter-upstream" in path and "filter" in path:
            a, b = path["filter"], path["filter-upstream"]
            out += ["", (
                f"The fallback path costs **{b['fallback_cpu_us_per_req'] - a['fallback_cpu_us_per_req']:+,.1f} µs** "
                f"per request over the same two attempts without the upstream filter (an endpoint retry), "
                f"and its second attempt **{b['second_attempt_cpu_us'] - a['second_attempt_cpu_us']:+,.1f} µs** "
                "over an endpoint retry's.")]
        if "filter-upstream" in path and "envoy-buffer" in path:
            a, b = path["envoy-buffer"], path["filter-upstream"]
            out += ["", (
                f"Against plain Envoy retrying the same request on the secondary: "
                f"{b['fallback_cpu_us_per_req'] - a['fallback_cpu_us_per_req']:+,.1f} µs per request "
                f"({b['fallback_cpu_us_per_req'] / a['fallback_cpu_us_per_req']:.2f}×).")]
        out.append("")
    return "\n".join(out)


# The targets: instructions added per request over plain Envoy (callgrind, make bench-profile),
# per body label.
INSTRUCTION_TARGETS = {"1KiB": 90_000, "64KiB": 320_000, "64KiB-prose": 200_000, "1MiB": 4_500_000}


def fmt_ir(ir: float | None) -> str:
    if ir is None:
        return "–"
    if abs(ir) >= 1e6:
        return f"{ir / 1e6:+.2f} M"
    return f"{ir / 1e3:+,.0f} k"


def base_name(results: dict) -> str:
    w = results.get("wasm", {})
    return f"previous build ({w['base_short']})" if w.get("base_short") else "previous build"


def instruction_target_rows(data: dict) -> list[tuple[str, str, str, str]]:
    """(target, this build, previous build, verdict) rows of the instruction targets, from
    profile.py's counts: `filter` against `filter-base`, both minus `envoy-buffer`."""
    added = added_instructions(data)
    rows = []
    for size, limit in INSTRUCTION_TARGETS.items():
        a, b = added.get(("filter", size)), added.get(("filter-base", size))
        if a is None and b is None:
            continue
        body = {"64KiB-prose": "64 KiB ASCII prose", "64KiB": "64 KiB (bench body)"}.get(size, size.replace("KiB", " KiB").replace("MiB", " MiB"))
        rows.append((f"instructions added per request over plain Envoy at {body} ≤ {fmt_ir(limit).lstrip('+')}",
                     fmt_ir(a), fmt_ir(b) + verdict_note(b, limit), verdict(None if a is None else a <= limit)))
    return rows


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def verdict_note(x: float | None, limit: float) -> str:
    return "" if x is None else (" (met)" if x <= limit else " (missed)")


def targets_table(results: dict) -> str:
    """The project's performance targets: this build (`filter`, `filter-upstream`) and the
    previous one (`filter-base`, `filter-upstream-base`) side by side; the verdict is this build's."""
    direct = results["scenarios"].get("direct", {}).get("cases", {})
    derived = results.get("derived", {})
    rows: list[tuple[str, str, str, str]] = []

    def get(size, v, key):
        return direct.get(size, {}).get(v, {}).get(key)

    ins = results.get("instructions") or {}
    if ins.get("rows"):
        rows += instruction_target_rows(ins)
    else:
        rows.append(("instructions added per request over plain Envoy (1 KiB ≤ 90 k, 64 KiB ≤ 320 k, "
                     "64 KiB ASCII prose ≤ 200 k, 1 MiB ≤ 4.5 M)", "–", "–",
                     ins.get("missing", "not counted (make bench-profile)")))
    for size in ("64KiB", "1MiB"):
        lua = get(size, "lua", "added_cpu_us_per_req")
        if lua is None:
            continue
        cells = []
        for v in ("filter", "filter-base"):
            a = get(size, v, "added_cpu_us_per_req")
            cells.append("–" if a is None else f"{a:+,.0f} vs Lua {lua:+,.0f} µs/req"
                         + ("" if v == "filter" else (" (met)" if a < lua else " (missed)")))
        a = get(size, "filter", "added_cpu_us_per_req")
        rows.append((f"added CPU below the Lua filter's at {size.replace('KiB', ' KiB').replace('MiB', ' MiB')}",
                     cells[0], cells[1], verdict(None if a is None else a < lua)))
    for size in ("1KiB", "64KiB"):
        r, rb = get(size, "filter", "throughput_ratio"), get(size, "filter-base", "throughput_ratio")
        if r is None and rb is None:
            continue
        rows.append((f"throughput ≥ 0.75× plain Envoy (buffer) at {size.replace('KiB', ' KiB')}",
                     "–" if r is None else f"{r:.2f}×",
                     "–" if rb is None else f"{rb:.2f}×" + (" (met)" if rb >= 0.75 else " (missed)"),
                     verdict(None if r is None else r >= 0.75)))
    first, first_b = derived.get("upstream_filter_first_attempt", {}), derived.get("upstream_filter_first_attempt_base", {})
    for k in dict.fromkeys(list(first) + list(first_b)):
        a = first.get(k, {}).get("added_cpu_us_per_req")
        b = first_b.get(k, {}).get("added_cpu_us_per_req")
        rows.append((f"the upstream filter's first attempt ≤ 10 µs added ({k})",
                     "–" if a is None else f"{a:+.1f} µs",
                     "–" if b is None else f"{b:+.1f} µs" + verdict_note(b, 10),
                     verdict(None if a is None else a <= 10)))
    w = results["wasm"]
    size, bsize = w.get("size_bytes"), w.get("base_size_bytes")
    rows.append((".wasm ≤ 500 KiB (as built)",
                 "–" if size is None else f"{size / 1024:.1f} KiB",
                 "–" if bsize is None else f"{bsize / 1024:.1f} KiB" + verdict_note(bsize, 500 * 1024),
                 verdict(None if size is None else size <= 500 * 1024)))
    mem = derived.get("vm_memory_flat", {})
    if mem:
        cells, oks = [], []
        for v in ("filter", "filter-base"):
            m = mem.get(v)
            if not m:
                cells.append("–")
                oks.append(None)
                continue
            ok = m["after_run_kib"] <= m["after_largest_kib"]
            cells.append(f"{m['after_largest_kib'] / 1024:.2f} MiB after direct/{m['largest_body']}, "
                         f"{m['after_run_kib'] / 1024:.2f} MiB after {m['after_run']}")
            oks.append(ok)
        if oks[1] is not None:
            cells[1] += " (met)" if oks[1] else " (missed)"
        rows.append(("VM memory flat: linear memory after the run ≤ after the largest body",
                     cells[0], cells[1], verdict(oks[0])))
    out = ["### Targets, from this run", "",
           f"This build: `filter` (`filter-upstream` for the upstream filter); {base_name(results)}: "
           "`filter-base` (`filter-upstream-base`), the same configuration with the other .wasm. "
           "The instruction counts are `make bench-profile`'s (callgrind, bench/out/profile/instructions.json, "
           "taken on the same two .wasm files); the verdict is this build's, the previous build's is in brackets.",
           "",
           f"| target | this build | {base_name(results)} | |",
           "|---|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    out.append("")
    return "\n".join(out)


BEGIN = "<!-- BEGIN GENERATED by bench/run.py: do not edit by hand -->"
END = "<!-- END GENERATED -->"


def write_markdown(results: dict) -> None:
    block = f"{BEGIN}\n{render_tables(results)}\n{END}"
    if RESULTS_MD.exists():
        text = RESULTS_MD.read_text()
        if BEGIN in text and END in text:
            pre, _, rest = text.partition(BEGIN)
            _, _, post = rest.partition(END)
            RESULTS_MD.write_text(pre + block + post)
            return
    RESULTS_MD.write_text("# Benchmark results\n\n" + block + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
