"""`ai-gateway canary analyze` against canned Prometheus answers (a stand-in HTTP server on
loopback that answers `/api/v1/query` like Prometheus): the queries it sends, the verdict and
its exit code (promote 0, hold 10, rollback 20; 2 when it cannot judge at all). The same
command against a real Prometheus scraping a real Envoy is in tests/e2e/test_rollout.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

CANARY = "deepseek-v3.2@2.0.0-canary.1"


class FakePrometheus:
    """Answers each query with the value of the first rule whose key is in the query
    (None: an empty vector; "NaN" as Prometheus writes it), and records the queries."""

    def __init__(self, rules: dict[str, float | str | None], error: str | None = None):
        self.rules = rules
        self.error = error
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                u = urlparse(self.path)
                q = parse_qs(u.query).get("query", [""])[0]
                fake.queries.append(q)
                if u.path != "/api/v1/query":
                    body, status = {"status": "error", "error": "not found"}, 404
                elif fake.error:
                    body, status = {"status": "error", "errorType": "bad_data", "error": fake.error}, 400
                else:
                    value = next((v for k, v in fake.rules.items() if k in q), None)
                    result = [] if value is None else [{"metric": {}, "value": [1700000000.0, str(value)]}]
                    body, status = {"status": "success", "data": {"resultType": "vector", "result": result}}, 200
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def prometheus():
    servers = []

    def start(rules, error=None):
        s = FakePrometheus(rules, error)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


CANARY_SEL = 'route="chat",model="deepseek-v3.2",version="2.0.0-canary.1"'
CANARY_PICKS = 'ai_gateway_router_selections_total{model="deepseek-v3.2",version="2.0.0-canary.1"}'
# Order matters: the first matching key answers (errors before requests, canary before stable).
HEALTHY = {
    "ai_gateway_circuit_open": 0,
    # Failed attempts (ai_gateway_model_errors_total, no route label): canary, then stable.
    'ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}': 1,
    "ai_gateway_model_errors_total[": 9,
    f'{CANARY_SEL},status=~"5..|429"': 1,
    f"ai_gateway_request_duration_milliseconds_bucket{{{CANARY_SEL}}}": 480,
    f"ai_gateway_requests_total{{{CANARY_SEL}}}": 100,
    'route="chat",status=~"5..|429"': 9,
    "ai_gateway_request_duration_milliseconds_bucket": 400,
    'ai_gateway_requests_total{route="chat"}': 900,
    # Router picks (ai_gateway_router_selections_total), over every route: stable first (its
    # query names the canary in `unless`), then the canary.
    "ai_gateway_router_selections_total[": 900,
    'ai_gateway_router_selections_total{model="deepseek-v3.2",version="2.0.0-canary.1"}': 100,
}


def analyze(ag, prom, *extra):
    return ag("canary", "analyze", "--prometheus", prom.url, "--route", "chat", "--canary", CANARY, *extra)


def test_a_healthy_canary_is_promoted_and_the_evidence_printed(ag, prometheus):
    prom = prometheus(HEALTHY)
    r = analyze(ag, prom)
    assert r.code == 0, r
    assert r.lines[-5:] == [
        "judgement:",
        "  error ratio: canary 0.0100 vs stable 0.0100 (within +0.02)",
        "  failed attempts per request: canary 0.0100 vs stable 0.0100 (within +0.02)",
        "  p95 latency: canary 480.0 ms vs stable 400.0 ms, ×1.20 (within ×1.5)",
        "verdict: promote",
    ], r.out
    # Exactly the filter's metric names and labels (docs/metrics.md).
    assert prom.queries == [
        'max(max_over_time(ai_gateway_circuit_open{model="deepseek-v3.2",version="2.0.0-canary.1"}[10m]))',
        f"sum(increase(ai_gateway_requests_total{{{CANARY_SEL}}}[10m]))",
        f'sum(increase(ai_gateway_requests_total{{{CANARY_SEL},status=~"5..|429"}}[10m]))',
        f"histogram_quantile(0.95, sum by (le) (rate(ai_gateway_request_duration_milliseconds_bucket{{{CANARY_SEL}}}[10m])))",
        'sum(increase(ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}[10m]))',
        'sum(increase(ai_gateway_router_selections_total{model="deepseek-v3.2",version="2.0.0-canary.1"}[10m]))',
        'sum(increase(ai_gateway_requests_total{route="chat"}[10m]) unless on(model, version) '
        'ai_gateway_requests_total{model="deepseek-v3.2",version="2.0.0-canary.1"})',
        'sum(increase(ai_gateway_requests_total{route="chat",status=~"5..|429"}[10m]) unless on(model, version) '
        'ai_gateway_requests_total{model="deepseek-v3.2",version="2.0.0-canary.1"})',
        'histogram_quantile(0.95, sum by (le) (rate(ai_gateway_request_duration_milliseconds_bucket{route="chat"}[10m]) '
        'unless on(model, version) ai_gateway_request_duration_milliseconds_bucket{model="deepseek-v3.2",version="2.0.0-canary.1"}))',
        'sum(increase(ai_gateway_model_errors_total[10m]) and on(model, version) ai_gateway_requests_total{route="chat"} '
        'unless on(model, version) ai_gateway_requests_total{model="deepseek-v3.2",version="2.0.0-canary.1"})',
        'sum(increase(ai_gateway_router_selections_total[10m]) and on(model, version) ai_gateway_router_selections_total{route="chat"} '
        'unless on(model, version) ai_gateway_router_selections_total{model="deepseek-v3.2",version="2.0.0-canary.1"})',
    ]
    for q in prom.queries:
        assert q in r.out, "each query is printed with its number"


@pytest.mark.parametrize(
    "change, code, verdict, reason",
    [
        ({f'{CANARY_SEL},status=~"5..|429"': 10}, 20, "rollback", "error ratio: canary 0.1000 vs stable 0.0100, +0.0900 > 0.02"),
        ({f"ai_gateway_request_duration_milliseconds_bucket{{{CANARY_SEL}}}": 900}, 20, "rollback",
         "p95 latency: canary 900.0 ms vs stable 400.0 ms, ×2.25 > ×1.5"),
        ({f"ai_gateway_requests_total{{{CANARY_SEL}}}": 49, CANARY_PICKS: 49}, 10, "hold",
         "too few requests to judge: canary 49, stable 900 (--min-requests 50)"),
        ({f"ai_gateway_requests_total{{{CANARY_SEL}}}": None, CANARY_PICKS: None}, 10, "hold",
         "too few requests to judge: canary 0, stable 900 (--min-requests 50)"),
        ({f"ai_gateway_request_duration_milliseconds_bucket{{{CANARY_SEL}}}": "NaN"}, 10, "hold",
         "cannot judge p95 latency (no histogram data)"),
        ({"ai_gateway_circuit_open": 1}, 20, "rollback", "the canary's circuit breaker opened in the window"),
    ],
)  # fmt: skip
def test_verdicts_and_exit_codes(ag, prometheus, change, code, verdict, reason):
    prom = prometheus({**change, **{k: v for k, v in HEALTHY.items() if k not in change}})
    r = analyze(ag, prom)
    assert r.code == code, r
    assert r.lines[-1] == f"verdict: {verdict}"
    assert any(line.strip().startswith(reason) for line in r.lines), r.out


def test_a_canary_whose_attempts_fail_is_rolled_back_though_every_client_got_a_200(ag, prometheus):
    """With fallback, a failing canary's clients are served by the next model: no 5xx in
    ai_gateway_requests_total, but its failed attempts are in ai_gateway_model_errors_total."""
    prom = prometheus(
        {
            **HEALTHY,
            'ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}': 60,
            f'{CANARY_SEL},status=~"5..|429"': None,  # no client error at all
        }
    )
    r = analyze(ag, prom)
    assert r.code == 20, r
    assert r.lines[-5:] == [
        "judgement:",
        "  error ratio: canary 0.0000 vs stable 0.0100 (within +0.02)",
        "  failed attempts per request: canary 0.6000 vs stable 0.0100, +0.5900 > 0.02",
        "  p95 latency: canary 480.0 ms vs stable 400.0 ms, ×1.20 (within ×1.5)",
        "verdict: rollback",
    ], r.out
    r = analyze(ag, prom, "--format", "json")
    doc = json.loads(r.out)
    assert doc["canary_side"]["errors"] == 0 and doc["canary_side"]["attempt_errors"] == 60, doc
    assert doc["stable_side"]["attempt_errors"] == 9 and doc["stable_side"]["requests_all_routes"] == 900, doc


def test_a_canary_whose_every_pick_fell_back_is_judged_on_its_picks(ag, prometheus):
    """Every request the router gave the canary failed and a fallback model answered it: no
    ai_gateway_requests_total carries the canary's labels, but its picks
    (ai_gateway_router_selections_total) and failed attempts do: rollback, not "too few"."""
    prom = prometheus(
        {
            **{k: v for k, v in HEALTHY.items() if k != f"ai_gateway_requests_total{{{CANARY_SEL}}}"},
            f"ai_gateway_requests_total{{{CANARY_SEL}}}": None,
            f'{CANARY_SEL},status=~"5..|429"': None,
            f"ai_gateway_request_duration_milliseconds_bucket{{{CANARY_SEL}}}": None,
            'ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}': 100,
        }
    )
    r = analyze(ag, prom)
    assert r.code == 20, r
    assert "  failed attempts per request: canary 1.0000 vs stable 0.0100, +0.9900 > 0.02" in r.lines, r.out


def test_a_canary_every_request_of_which_was_answered_by_its_fallback_is_rolled_back(ag, prometheus):
    """The extreme of the case above, as Envoy and the filter really count it: every canary
    attempt fails and the fallback model answers every one of its requests, so the request,
    duration and cost series name the fallback model (the one that answered) and the canary has
    none at all; only its failed attempts (ai_gateway_model_errors_total) and its router picks
    (ai_gateway_router_selections_total) show it was in the route. Not "too few requests to
    judge": a rollback. (tests/e2e/test_fallback.py does this against a real Prometheus.)"""
    prom = prometheus(
        {
            "ai_gateway_circuit_open": 0,
            CANARY_PICKS: 100,
            'ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}': 100,
            "ai_gateway_model_errors_total[": None,
            CANARY_SEL: None,  # no request, error, duration or cost series for the canary
            'version="2.0.0-canary.1"}[': None,  # nor across routes
            'route="chat",status=~"5..|429"': None,
            "ai_gateway_request_duration_milliseconds_bucket": 400,
            "ai_gateway_router_selections_total": 1000,
            'ai_gateway_requests_total{route="chat"}': 1000,
        }
    )
    r = analyze(ag, prom)
    assert r.code == 20, r
    assert r.lines[-1] == "verdict: rollback", r.out
    assert not any("too few requests" in line for line in r.lines), r.out


def test_thresholds_are_flags(ag, prometheus):
    prom = prometheus({**HEALTHY, f'{CANARY_SEL},status=~"5..|429"': 3})
    assert analyze(ag, prom).code == 0  # +0.02 is within the default
    assert analyze(ag, prom, "--max-error-ratio-delta", "0.01").code == 20
    assert analyze(ag, prom, "--max-latency-ratio", "1.1").code == 20
    assert analyze(ag, prom, "--min-requests", "1000").code == 10


def test_cost_per_request_is_compared_when_asked(ag, prometheus):
    rules = {
        # The stable side first: its queries also name the canary (in `unless`).
        "sum(increase(ai_gateway_cost_microdollars_total[": 90000,  # 100 µ$ / request
        "sum(increase(ai_gateway_requests_total[": 900,
        'sum(increase(ai_gateway_cost_microdollars_total{model="deepseek-v3.2"': 30000,  # 300 µ$ / request
        'sum(increase(ai_gateway_requests_total{model="deepseek-v3.2"': 100,
        **HEALTHY,
    }
    prom = prometheus(rules)
    r = analyze(ag, prom, "--max-cost-ratio", "2", "--window", "30m", "--format", "json")
    assert r.code == 20, r
    doc = json.loads(r.out)
    assert doc["verdict"] == "rollback" and doc["exit_code"] == 20
    assert doc["canary_side"]["cost_per_request"] == 300.0
    assert doc["stable_side"]["cost_per_request"] == 100.0
    assert "cost per request: canary 300.0 µ$ vs stable 100.0 µ$, ×3.00 > ×2" in doc["reasons"]
    assert all("[30m]" in e["query"] for e in doc["evidence"])
    assert any(
        e["query"] == 'sum(increase(ai_gateway_cost_microdollars_total{model="deepseek-v3.2",version="2.0.0-canary.1"}[30m]))'
        for e in doc["evidence"]
    )


def test_a_prometheus_error_or_bad_arguments_exit_2(ag, prometheus):
    prom = prometheus(HEALTHY, error="parse error at char 12")
    r = analyze(ag, prom)
    assert r.code == 2
    assert r.err.startswith("canary analyze: Prometheus error: parse error at char 12 (HTTP 400, query max(max_over_time("), r
    r = ag("canary", "analyze", "--prometheus", prom.url, "--route", "chat", "--canary", "deepseek-v3.2")
    assert (r.code, r.err) == (2, "--canary deepseek-v3.2: expected MODEL@VERSION (the model and version labels)\n")
    r = analyze(ag, prom, "--window", "10")
    assert (r.code, r.err) == (2, "--window 10: not a PromQL duration (e.g. 10m, 1h, 1h30m)\n")
    r = ag("canary", "analyze", "--prometheus", "http://127.0.0.1:9", "--route", "chat", "--canary", CANARY)
    assert r.code == 2 and r.err.startswith("canary analyze: GET http://127.0.0.1:9/api/v1/query failed:"), r
