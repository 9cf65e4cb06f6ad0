"""The filter's metrics as Envoy exports them (docs/metrics.md): every family's name, type and
labels, the closed sets of label values, a strict parser of Envoy's admin ``/stats/prometheus``
page (:class:`Scrape`, :func:`scrape`, :func:`wait_for`, deltas and histogram buckets), and
requests that make the mock report a known number of tokens (:func:`send`)."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Callable

from .client import chat
from .envoy import Gateway, load_demo_yaml

# --------------------------------------------------------------------------------------------
# The contract: docs/metrics.md (docs/design.md#metrics-and-labels)
# --------------------------------------------------------------------------------------------

#: name → (Prometheus type, labels in the documented order).
METRIC_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ai_gateway_requests_total": ("counter", ("route", "model", "version", "status")),
    "ai_gateway_request_duration_milliseconds": ("histogram", ("route", "model", "version")),
    "ai_gateway_time_to_first_token_milliseconds": ("histogram", ("model", "version")),
    "ai_gateway_tokens_total": ("counter", ("model", "version", "type")),
    "ai_gateway_cost_microdollars_total": ("counter", ("route", "model", "version")),
    "ai_gateway_model_errors_total": ("counter", ("model", "version", "error_type")),
    "ai_gateway_router_selections_total": ("counter", ("route", "model", "version")),
    "ai_gateway_circuit_open": ("gauge", ("model", "version")),
    "ai_gateway_failovers_total": ("counter", ("route", "from_model", "to_model")),
    "ai_gateway_rejected_total": ("counter", ("reason",)),
    "ai_gateway_fallbacks_total": ("counter", ("from_model", "to_model", "cause")),
}

REQUESTS = "ai_gateway_requests_total"
DURATION = "ai_gateway_request_duration_milliseconds"
TTFT = "ai_gateway_time_to_first_token_milliseconds"
TOKENS = "ai_gateway_tokens_total"
COST = "ai_gateway_cost_microdollars_total"
MODEL_ERRORS = "ai_gateway_model_errors_total"
SELECTIONS = "ai_gateway_router_selections_total"
CIRCUIT = "ai_gateway_circuit_open"
FAILOVERS = "ai_gateway_failovers_total"
REJECTED = "ai_gateway_rejected_total"
FALLBACKS = "ai_gateway_fallbacks_total"

#: Closed sets of label values (never client input).
ROUTE_LABELS = {"_direct", "_passthrough", "_default"}
ERROR_TYPES = {"http_429", "http_5xx", "timeout", "reset", "connect_failure"}
REJECT_REASONS = {"invalid_request", "model_not_found", "no_healthy_target", "gateway_misconfigured"}
TOKEN_TYPES = {"prompt", "completion"}
FALLBACK_CAUSES = {"5xx", "429", "timeout", "reset", "connect_failure"}


def configured_buckets() -> list[float]:
    """The histogram buckets of the shipped envoy/demo.yaml (``histogram_bucket_settings``)."""
    settings = load_demo_yaml()["stats_config"]["histogram_bucket_settings"]
    (ours,) = [s for s in settings if s["match"].get("prefix") == "wasmcustom.ai_gateway_"]
    return [float(b) for b in ours["buckets"]]


# --------------------------------------------------------------------------------------------
# Prometheus text format
# --------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')

Labels = tuple[tuple[str, str], ...]


def _parse_labels(text: str, line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m, f"unparsable labels at {pos} in line {line!r}"
        name, raw = m.group(1), m.group(2)
        assert name not in out, f"label {name} twice in {line!r}"
        out[name] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), raw)
        pos = m.end()
    return out


class Scrape:
    """One ``/stats/prometheus`` page, parsed (strictly: an unparsable line fails the test)."""

    def __init__(self, text: str):
        self.text = text
        #: metric family → type, from ``# TYPE`` lines.
        self.types: dict[str, str] = {}
        #: (sample name, sorted labels) → value.
        self.samples: dict[tuple[str, Labels], float] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    assert parts[2] not in self.types, f"two TYPE lines for {parts[2]}"
                    self.types[parts[2]] = parts[3]
                continue
            m = _SAMPLE.match(line)
            assert m, f"unparsable sample line {line!r}"
            labels = _parse_labels(m.group(2) or "", line)
            key = (m.group(1), tuple(sorted(labels.items())))
            assert key not in self.samples, f"duplicate series {line!r}"
            self.samples[key] = float(m.group(3))

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample named ``name`` (exactly, e.g. ``x_bucket``)."""
        return [dict(labels) for (n, labels) in self.samples if n == name]

    def get(self, name: str, **labels: str) -> float | None:
        """The value of the series with exactly these labels, or None."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def total(self, name: str, **match: str) -> float:
        """Sum over the series named ``name`` whose labels include ``match`` (0 when none)."""
        items = match.items()
        return sum(v for (n, labels), v in self.samples.items() if n == name and items <= set(labels))

    def ours(self) -> dict[tuple[str, Labels], float]:
        """Every sample of the filter's metrics."""
        return {k: v for k, v in self.samples.items() if k[0].startswith("ai_gateway_")}

    def lines(self, needle: str = "ai_gateway_") -> str:
        return "\n".join(line for line in self.text.splitlines() if needle in line and "_bucket" not in line)


def scrape(gw: Gateway) -> Scrape:
    r = gw.admin("/stats/prometheus")
    r.raise_for_status()
    return Scrape(r.text)


def wait_for(gw: Gateway, pred: Callable[[Scrape], bool], what: str, timeout: float = 10.0) -> Scrape:
    """Scrape until ``pred`` holds. Counters change when Envoy logs the request (just after
    the client has the response); histograms only at a stats flush (``stats_flush_interval``,
    2 s in the shipped configs). The filter records a request's metrics one after the other
    on a worker thread while the admin reads them on another: once ``pred`` holds, the page is
    read again a moment later, when that request's other metrics are in too."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(gw)
        if pred(s):
            time.sleep(0.05)
            return scrape(gw)
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s still not {what}; the filter's metrics:\n{s.lines()}")
        time.sleep(0.1)


def delta(before: Scrape, after: Scrape, name: str, **match: str) -> float:
    return after.total(name, **match) - before.total(name, **match)


def hist_count(s: Scrape, family: str, **match: str) -> float:
    return s.total(f"{family}_count", **match)


def hist_buckets(s: Scrape, family: str, **labels: str) -> dict[float, float]:
    """``le`` → cumulative count of the histogram series with exactly ``labels``."""
    out = {}
    for lab in s.series(f"{family}_bucket"):
        le = lab.pop("le")
        if lab == labels:
            out[math.inf if le == "+Inf" else float(le)] = s.get(f"{family}_bucket", **labels, le=le)
    return out


def observations_in(before: Scrape, after: Scrape, family: str, lo: float, hi: float, **labels: str) -> float:
    """How many observations of the series fell in the bucket ``(lo, hi]`` between two scrapes."""
    b, a = hist_buckets(before, family, **labels), hist_buckets(after, family, **labels)

    def d(le):
        return a.get(le, 0) - b.get(le, 0)

    return d(hi) - (d(lo) if lo > 0 else 0)


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------

#: The default token counts every request of these tests asks the mock to report. Round
#: numbers keep every model's cost an exact number of micro-dollars per request (0.28 $/M ×
#: 100 = 28 µ$), so no fraction is carried from one test to the next.
PROMPT, COMPLETION = 100, 100


def request_body(path: str, model: str, stream: bool = False, **extra) -> dict:
    body: dict[str, Any] = {"model": model}
    if path.endswith("/chat/completions"):
        body["messages"] = [{"role": "user", "content": "Hello!"}]
    elif path.endswith("/completions"):
        body["prompt"] = "Hello!"
    elif path.endswith("/embeddings"):
        body["input"] = "Hello!"
    elif path.endswith("/responses"):
        body["input"] = "Hello!"
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


def send(
    gw: Gateway,
    model: str,
    *,
    path: str = "/v1/chat/completions",
    stream: bool = False,
    prompt: int | None = PROMPT,
    completion: int | None = COMPLETION,
    user: str | None = None,
    headers: dict[str, str] | None = None,
    **extra,
):
    """One request through the gateway; the mock reports ``prompt`` / ``completion`` tokens."""
    h: dict[str, str] = {}
    if prompt is not None:
        h["x-mock-prompt-tokens"] = str(prompt)
    if completion is not None:
        h["x-mock-completion-tokens"] = str(completion)
    if user is not None:
        h["x-user-id"] = user
    h.update(headers or {})
    return chat(gw, request_body(path, model, stream, **extra), headers=h, path=path)


def send_ok(gw: Gateway, model: str, **kw):
    reply = send(gw, model, **kw)
    assert reply.status == 200, f"{model}: {reply.status} {reply.body[:300]!r}"
    return reply
