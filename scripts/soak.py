#!/usr/bin/env python3
"""Soak: SOAK_SECONDS (default 600) of mixed load through the real Envoy + the filter + the mock
provider on loopback, then a report. `make soak` runs it (with .venv's Python).

The load, from --clients threads with keep-alive sessions: JSON and SSE chat, the other
endpoints, direct model names with sticky users, bodies up to 1 MiB, slow answers, streams the
provider cuts, provider errors scripted with the mock's headers (5xx, 429, resets), bodies the
gateway refuses (400 invalid_request / model_not_found), GET /v1/models. Every reply is checked
against what that kind of request must get: *expected* errors are the ones the request asked
for; anything else is *unexpected* (and listed).

With envoy/hot-reload.yaml present (the filter's configuration from a watched ECDS file), the
chat route's weights change every --reload-every seconds by an atomic rename, as the CLI does.
Without it, envoy/demo.yaml is used and weights stay.

Measured every --sample-every seconds: Envoy's wasm stats (VMs created/active, FAIL_RELOAD
reloads), trap lines in the log, each wasm VM's linear memory (from /proc/<envoy>/smaps: the
read-write mapping at the start of each V8 wasm memory reservation — Envoy has no stat for it),
Envoy's heap (server.memory_allocated) and RSS. "start" is taken after a warm-up that sends
every kind of request once (so one-off growth such as the largest body is not counted as a
leak); "end" after the last request.

Exit status 0 only when: no unexpected error, no VM restart (trap or reload), and the wasm
linear memory is flat: per VM, the same at the end as at the first sample ≥ 10 % (and 30 s)
into the run (linear memory only grows, to the high-water mark of the largest body a VM has
held; a leak keeps growing). The report is printed and written as JSON
(--out, default target/soak/report.json). Traffic goes to 127.0.0.1 only; the run is bounded in
time and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test harness package, tests/harness (Envoy, the mock)

import requests  # noqa: E402
import yaml  # noqa: E402
from harness import HOT_BOOTSTRAP, HOT_DIR, Gateway, Launcher, start_hot_envoy  # noqa: E402

MIB = 1024 * 1024

#: Weights of the chat route's two targets, cycled by the reloads (gpt-4.1, deepseek-v3.2).
WEIGHT_CYCLE = [(90, 10), (50, 50), (10, 90), (100, 0), (0, 100), (75, 25)]


# --------------------------------------------------------------------------------------------
# Starting Envoy
# --------------------------------------------------------------------------------------------


def start_envoy(launcher: Launcher, mock, hot: bool, concurrency: int) -> tuple[Gateway, Path | None]:
    """Envoy with envoy/hot-reload.yaml (a copy of its watched directory in the launcher's
    workdir) or envoy/demo.yaml; ports picked by Envoy, the mock's port substituted. Logs at
    warning (the traps the report counts are errors), so a long run's log stays small."""
    if hot:
        gw = start_hot_envoy(
            launcher.workdir, mock, concurrency=concurrency, procs=launcher.procs,
            log_level="warning", component_log_level="wasm:warning,config:info",
        )  # fmt: skip
        return gw, gw.ecds
    gw = launcher.envoy(mock, concurrency=concurrency, log_level="warning", wasm_log_level="warning")
    return gw, None


def set_weights(ecds: Path, weights: tuple[int, int]) -> None:
    """Rewrites the chat route's weights in the ECDS file and renames it into place."""
    doc = yaml.safe_load(ecds.read_text())
    wasm = doc["resources"][0]["typed_config"]["config"]
    plugin = json.loads(wasm["configuration"]["value"])
    (route,) = [r for r in plugin["routes"] if r["name"] == "chat"]
    for t, w in zip(route["targets"], weights):
        t["weight"] = w
    wasm["configuration"]["value"] = json.dumps(plugin, indent=2)
    tmp = ecds.with_name(f".{ecds.name}.{time.monotonic_ns()}.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, ecds)


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def wasm_linear_memories(pid: int) -> list[dict]:
    """Each V8 wasm memory: V8 reserves ~8 GiB of address space per wasm32 memory (guard
    regions) and maps the accessible part read-write at its start; the rest stays PROT_NONE.
    So every rw mapping immediately followed by a ≥ 4 GiB PROT_NONE mapping is one VM's linear
    memory: its size is the memory's current size (pages × 64 KiB), its Rss what is resident."""
    maps: list[dict] = []
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ", line)
                if m:
                    maps.append({"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3)})
                elif line.startswith("Rss:") and maps:
                    maps[-1]["rss_kb"] = int(line.split()[1])
    except OSError:
        return []
    out = []
    for prev, cur in zip(maps, maps[1:]):
        if (
            cur["perms"].startswith("---")
            and cur["end"] - cur["start"] >= 4 << 30
            and prev["end"] == cur["start"]
            and prev["perms"].startswith("rw")
        ):
            out.append({"size": prev["end"] - prev["start"], "rss": prev.get("rss_kb", 0) * 1024})
    return out


def rss_bytes(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def sample(gw: Gateway) -> dict:
    stats = gw.stats()
    health = gw.wasm_vm_health()
    mems = wasm_linear_memories(gw.proc.pid)
    ecds = {k.rsplit(".", 1)[1]: v for k, v in stats.items() if k.startswith("extension_config_discovery.")}
    return {
        "t": time.monotonic(),
        "rss": rss_bytes(gw.proc.pid),
        "heap_allocated": stats.get("server.memory_allocated", 0),
        "heap_size": stats.get("server.memory_heap_size", 0),
        "wasm_memories": sorted(m["size"] for m in mems),
        "wasm_rss": sum(m["rss"] for m in mems),
        "vms_created": health["vms_created"],
        "vms_active": health["vms_active"],
        "reloads": health["reloads"],
        "traps": health["traps"],
        "wasm_vm_count": stats.get("wasm.wasm_vm_count", 0),
        "ecds": ecds,
    }


# --------------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------------


@dataclass
class Kind:
    name: str
    weight: int
    send: Callable[[requests.Session, str, random.Random], tuple[int, dict, bytes]]
    #: Statuses this request must get; anything else is unexpected.
    expect: set[int]
    #: Expected statuses that are errors (the request asked for them).
    error_statuses: set[int] = field(default_factory=set)
    #: The request asks for a cut stream: a broken connection is expected.
    cut: bool = False


def post(s, url, body, headers=None, path="/v1/chat/completions", stream=False, timeout=60):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = s.post(url + path, data=data, headers=h, stream=stream, timeout=timeout)
    if stream:
        content = b"".join(r.iter_content(None))
    else:
        content = r.content
    return r.status_code, r.headers, content


def chat_doc(model="chat", content="Hello from the soak", **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def k_json(s, url, rnd):
    return post(s, url, chat_doc(), {"x-mock-chunks": str(rnd.randint(1, 30))})


def k_sticky(s, url, rnd):
    return post(s, url, chat_doc(rnd.choice(["chat", "gpt-4.1"])), {"x-user-id": f"user-{rnd.randint(1, 500)}"})


def k_sse(s, url, rnd):
    h = {"x-mock-chunks": str(rnd.randint(1, 40)), "x-mock-chunk-delay-ms": str(rnd.choice([0, 0, 1, 5]))}
    st, hd, body = post(s, url, chat_doc(stream=True), h, stream=True)
    if st == 200 and not body.rstrip().endswith(b"data: [DONE]"):
        return -1, hd, body  # a 200 stream that did not end properly
    return st, hd, body


def k_endpoints(s, url, rnd):
    path, body = rnd.choice([
        ("/v1/completions", {"model": "chat", "prompt": "hi", "max_tokens": 10}),
        ("/v1/embeddings", {"model": "chat", "input": ["a", "b", "c"]}),
        ("/v1/responses", {"model": "chat", "input": "hi"}),
        ("/v1/responses", {"model": "chat", "input": "hi", "stream": True}),
        ("/v1/completions", {"model": "chat", "prompt": "hi", "stream": True}),
    ])  # fmt: skip
    return post(s, url, body, path=path, stream=bool(body.get("stream")))


def k_big(s, url, rnd):
    return post(s, url, chat_doc(content="x" * rnd.choice([64 * 1024, 256 * 1024, MIB])))


def k_slow(s, url, rnd):
    return post(s, url, chat_doc(), {"x-mock-delay-ms": str(rnd.randint(50, 300))})


def k_provider_error(s, url, rnd):
    return post(s, url, chat_doc(), {"x-mock-status": str(rnd.choice([500, 502, 503, 429])), "x-mock-retry-after": "0"})


def k_reset(s, url, rnd):
    return post(s, url, chat_doc(), {"x-mock-reset": "1"})


def k_cut_stream(s, url, rnd):
    return post(s, url, chat_doc(stream=True), {"x-mock-chunks": "10", "x-mock-abort-after-chunks": str(rnd.randint(0, 9))}, stream=True)


def k_invalid(s, url, rnd):
    return post(s, url, rnd.choice([b'{"model":', b"[1,2]", b'{"model":42}', b"\xef\xbb\xbf{}", b'{"model":"chat","stream":"yes"}']))


def k_unknown(s, url, rnd):
    return post(s, url, chat_doc(f"no-such-model-{rnd.randint(1, 1000)}"))


def k_models(s, url, rnd):
    r = s.get(url + "/v1/models", timeout=30)
    return r.status_code, r.headers, r.content


def kinds(hot: bool) -> list[Kind]:
    # demo.yaml retries 5xx/429/resets (2 retries): the scripted error still comes back.
    return [
        Kind("json", 26, k_json, {200}),
        Kind("sticky", 8, k_sticky, {200}),
        Kind("sse", 20, k_sse, {200}),
        Kind("endpoints", 10, k_endpoints, {200}),
        Kind("big-body", 3, k_big, {200}),
        Kind("slow", 4, k_slow, {200}),
        Kind("provider-error", 6, k_provider_error, {500, 502, 503, 429}, {500, 502, 503, 429}),
        Kind("provider-reset", 2, k_reset, {503}, {503}),
        Kind("cut-stream", 3, k_cut_stream, {200}, cut=True),
        Kind("invalid-body", 8, k_invalid, {400}, {400}),
        Kind("unknown-model", 6, k_unknown, {400}, {400}),
        Kind("models", 4, k_models, {200}),
    ]


@dataclass
class Tally:
    requests: Counter = field(default_factory=Counter)
    ok: Counter = field(default_factory=Counter)
    expected_errors: Counter = field(default_factory=Counter)
    unexpected: list = field(default_factory=list)
    unexpected_count: Counter = field(default_factory=Counter)
    served: Counter = field(default_factory=Counter)
    latency_ms: list = field(default_factory=list)
    latency_by_kind: dict = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(url: str, ks: list[Kind], seed: int, deadline: float, tally: Tally, phase: list) -> None:
    rnd = random.Random(seed)
    weights = [k.weight for k in ks]
    s = requests.Session()
    while time.monotonic() < deadline:
        k = rnd.choices(ks, weights)[0]
        t0 = time.monotonic()
        err = None
        try:
            status, headers, _ = k.send(s, url, rnd)
        except requests.RequestException as e:
            status, headers, err = 0, {}, f"{type(e).__name__}: {e}"
            s.close()
            s = requests.Session()
        dt = (time.monotonic() - t0) * 1000
        with tally.lock:
            tally.requests[k.name] += 1
            if len(tally.latency_ms) < 500_000:
                tally.latency_ms.append(dt)
                tally.latency_by_kind[k.name].append(dt)
            if status in k.expect and status in k.error_statuses:
                tally.expected_errors[f"{k.name} {status}"] += 1
            elif status in k.expect:
                tally.ok[k.name] += 1
                if k.name == "json" and headers.get("x-ai-gateway-model"):
                    tally.served[(phase[0], headers["x-ai-gateway-model"])] += 1
            elif k.cut and status == 0:
                tally.expected_errors[f"{k.name} connection cut"] += 1
            else:
                what = f"{k.name} → {status}" + (f" ({err[:200]})" if err else "")
                tally.unexpected_count[f"{k.name} → {status}"] += 1
                if len(tally.unexpected) < 50:
                    tally.unexpected.append(what)
    s.close()


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / MIB:.1f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=2, help="Envoy worker threads")
    ap.add_argument("--reload-every", type=float, default=30.0, help="seconds between weight changes (hot-reload only)")
    ap.add_argument("--sample-every", type=float, default=10.0)
    ap.add_argument("--config", choices=["auto", "hot-reload", "demo"], default="auto")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "soak" / "report.json")
    args = ap.parse_args()

    hot = args.config == "hot-reload" or (args.config == "auto" and HOT_BOOTSTRAP.exists() and HOT_DIR.is_dir())
    workdir = REPO / "target" / "soak" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(workdir)
    ks = kinds(hot)
    tally = Tally()
    samples: list[dict] = []
    reloads_done: list[tuple[float, tuple[int, int]]] = []
    try:
        mock = launcher.mock("soak", "--threads", "2")
        gw, ecds = start_envoy(launcher, mock, hot, args.concurrency)
        print(f"==> soak: {args.seconds:.0f}s, {args.clients} clients, Envoy --concurrency {args.concurrency}, "
              f"config {'envoy/hot-reload.yaml (weights change every %.0fs)' % args.reload_every if hot else 'envoy/demo.yaml (no weight changes: no hot-reload config)'}")
        print(f"    logs in {workdir}")

        # Warm-up: every kind, the largest body included, over parallel connections (so every
        # worker's VM sees them), before the "start" measurement.
        def warm(seed: int) -> None:
            s = requests.Session()
            rnd = random.Random(seed)
            for k in ks:
                for _ in range(2):
                    try:
                        k.send(s, gw.url, rnd)
                    except requests.RequestException:
                        s = requests.Session()
            post(s, gw.url, chat_doc(content="x" * MIB))

        warmers = [threading.Thread(target=warm, args=(i,)) for i in range(max(8, args.clients))]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join(timeout=120)
        time.sleep(1)
        samples.append(sample(gw))
        start = samples[0]

        t0 = time.monotonic()
        deadline = t0 + args.seconds
        phase = [0]
        threads = [
            threading.Thread(target=client, args=(gw.url, ks, 1000 + i, deadline, tally, phase), daemon=True)
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        next_sample = t0 + args.sample_every
        next_reload = t0 + args.reload_every
        cycle = 0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = time.monotonic()
            if not gw.proc.alive():
                print("!! Envoy exited during the soak")
                break
            if hot and now >= next_reload:
                cycle += 1
                weights = WEIGHT_CYCLE[cycle % len(WEIGHT_CYCLE)]
                set_weights(ecds, weights)
                phase[0] = cycle
                reloads_done.append((now - t0, weights))
                next_reload += args.reload_every
            if now >= next_sample:
                samples.append(sample(gw))
                last = samples[-1]
                done = sum(tally.requests.values())
                print(f"    {now - t0:6.0f}s  {done:8d} requests  {sum(tally.unexpected_count.values()):4d} unexpected  "
                      f"RSS {mib(last['rss'])}  wasm memory {[m // 1024 for m in last['wasm_memories']]} KiB  "
                      f"VMs {last['vms_active']} active / {last['vms_created']} created  reloads {last['reloads']}  traps {last['traps']}",
                      flush=True)
                next_sample += args.sample_every
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - t0
        time.sleep(1)
        end = sample(gw)
        samples.append(end)
        alive = gw.proc.alive()
    finally:
        launcher.close()

    # ---- report ----
    total = sum(tally.requests.values())
    unexpected = sum(tally.unexpected_count.values())
    expected_err = sum(tally.expected_errors.values())
    vm_restarts = (end["reloads"] - start["reloads"]) + (end["traps"] - start["traps"])
    config_updates = end["ecds"].get("config_reload", 0) - start["ecds"].get("config_reload", 0)
    # "Steady": the first sample at least 10 % (and 30 s) into the run, once every worker has
    # had the largest bodies; from there to the end the linear memory must not grow.
    steady = next((x for x in samples[1:] if x["t"] - t0 >= min(max(30.0, elapsed * 0.1), elapsed)), end)
    mem_flat = end["wasm_memories"] == steady["wasm_memories"]
    lat = sorted(tally.latency_ms) or [0.0]

    def pct(xs: list, q: float) -> float:
        xs = sorted(xs) or [0.0]
        return round(xs[min(len(xs) - 1, int(len(xs) * q))], 1)

    lat_by_kind = {k: {"p50": pct(v, 0.5), "p99": pct(v, 0.99)} for k, v in sorted(tally.latency_by_kind.items())}
    shares = defaultdict(dict)
    for (ph, model), n in tally.served.items():
        shares[ph][model] = n
    report = {
        "seconds": round(elapsed, 1),
        "config": "envoy/hot-reload.yaml" if hot else "envoy/demo.yaml",
        "clients": args.clients,
        "requests": total,
        "requests_per_second": round(total / max(elapsed, 1e-9), 1),
        "by_kind": dict(tally.requests),
        "ok": sum(tally.ok.values()),
        "expected_errors": expected_err,
        "expected_errors_by_kind": dict(tally.expected_errors),
        "unexpected_errors": unexpected,
        "unexpected_by_kind": dict(tally.unexpected_count),
        "unexpected_examples": tally.unexpected[:20],
        "latency_ms": {"p50": round(lat[len(lat) // 2], 1), "p99": round(lat[int(len(lat) * 0.99)], 1), "max": round(lat[-1], 1)},
        "latency_ms_by_kind": lat_by_kind,
        "weight_changes": [{"at_s": round(t, 1), "weights": list(w)} for t, w in reloads_done],
        "ecds_config_reloads": config_updates,
        "ecds": end["ecds"],
        "chat_split_by_weight_phase": {str(k): v for k, v in sorted(shares.items())},
        "vm_restarts": vm_restarts,
        "vm_reload_stats": {"start": start["reloads"], "end": end["reloads"]},
        "traps": end["traps"] - start["traps"],
        "vms": {"created_start": start["vms_created"], "created_end": end["vms_created"],
                "active_start": start["vms_active"], "active_end": end["vms_active"]},
        "wasm_linear_memory_bytes": {"start": start["wasm_memories"], "steady": steady["wasm_memories"],
                                     "steady_at_s": round(steady["t"] - t0, 1), "end": end["wasm_memories"],
                                     "max_total": max(sum(s["wasm_memories"]) for s in samples)},
        "wasm_memory_resident_bytes": {"start": start["wasm_rss"], "end": end["wasm_rss"]},
        "envoy_rss_bytes": {"start": start["rss"], "end": end["rss"], "max": max(s["rss"] for s in samples)},
        "envoy_heap_allocated_bytes": {"start": start["heap_allocated"], "end": end["heap_allocated"]},
        "envoy_alive_at_end": alive,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))

    print()
    print(f"==> soak report ({report['seconds']:.0f}s, {report['config']}, {args.clients} clients)")
    print(f"    requests          {total} ({report['requests_per_second']}/s): {report['ok']} ok, "
          f"{expected_err} expected errors, {unexpected} unexpected")
    print(f"    expected errors   {dict(sorted(tally.expected_errors.items()))}")
    if unexpected:
        print(f"    UNEXPECTED        {dict(tally.unexpected_count)}")
        for u in tally.unexpected[:10]:
            print(f"                      {u}")
    print(f"    latency           p50 {report['latency_ms']['p50']} ms, p99 {report['latency_ms']['p99']} ms, max {report['latency_ms']['max']} ms")
    print("    p99 by kind       " + ", ".join(f"{k} {v['p99']:.0f}" for k, v in lat_by_kind.items()) + " (ms)")
    if hot:
        print(f"    weight changes    {len(reloads_done)} (ECDS config_reload +{config_updates}); chat split per phase: "
              + "; ".join(f"{k}: {v}" for k, v in sorted(shares.items())))
    print(f"    VM restarts       {vm_restarts} (FAIL_RELOAD stats {start['reloads']} → {end['reloads']}, traps {end['traps'] - start['traps']}); "
          f"VMs created {start['vms_created']} → {end['vms_created']}, active {start['vms_active']} → {end['vms_active']}")
    print(f"    wasm memory       per VM, KiB: start {[m // 1024 for m in start['wasm_memories']]}, "
          f"at {steady['t'] - t0:.0f}s {[m // 1024 for m in steady['wasm_memories']]}, end {[m // 1024 for m in end['wasm_memories']]} "
          f"({'flat' if mem_flat else 'GREW'} since {steady['t'] - t0:.0f}s); resident {mib(start['wasm_rss'])} → {mib(end['wasm_rss'])}")
    print(f"    Envoy RSS         {mib(start['rss'])} → {mib(end['rss'])} (max {mib(report['envoy_rss_bytes']['max'])}); "
          f"heap allocated {mib(start['heap_allocated'])} → {mib(end['heap_allocated'])}")
    print(f"    report            {args.out}")
    failed = []
    if unexpected:
        failed.append(f"{unexpected} unexpected errors")
    if vm_restarts:
        failed.append(f"{vm_restarts} VM restarts")
    if not mem_flat:
        failed.append("wasm linear memory grew")
    if not alive:
        failed.append("Envoy exited")
    if failed:
        print(f"==> soak FAILED: {', '.join(failed)}")
        return 1
    print("==> soak passed: no unexpected error, no VM restart, wasm memory flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
