# Metrics: the Prometheus alert rules and the Grafana dashboard (docs/metrics.md).
# Included by the Makefile (`include mk/*.mk`). The end-to-end tests of the metrics
# (tests/e2e/test_metrics.py, test_streaming.py, test_prometheus.py) run in the e2e tier;
# test_prometheus.py also runs `promtool check rules` and `promtool test rules`.
#
#   make prometheus-check   promtool check + unit tests of deploy/prometheus/alerts.yaml, and the
#                           dashboard JSON parses (needs promtool: Debian package `prometheus`)
#   make metrics-test        only the metrics end-to-end tests (real Envoy, mock, real Prometheus)

PROMTOOL          ?= promtool
PROM_ALERTS       := deploy/prometheus/alerts.yaml
PROM_ALERTS_TEST  := deploy/prometheus/alerts_test.yaml
GRAFANA_DASHBOARD := dashboards/ai-gateway.json
METRICS_TESTS       := tests/e2e/test_metrics.py tests/e2e/test_streaming.py tests/e2e/test_prometheus.py

.PHONY: prometheus-check metrics-test

prometheus-check: ## promtool check + unit tests of the alert rules (deploy/prometheus); the dashboard JSON parses
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { \
	  echo "promtool not found: apt-get install prometheus (Debian), or make prometheus-check PROMTOOL=/path/to/promtool" >&2; exit 1; }
	$(PROMTOOL) check rules $(PROM_ALERTS)
	$(PROMTOOL) test rules $(PROM_ALERTS_TEST)
	$(PYTHON) -m json.tool $(GRAFANA_DASHBOARD) >/dev/null
	@echo "$(GRAFANA_DASHBOARD): valid JSON"

metrics-test: wasm tools venv ## Only the metrics end-to-end tests: /stats/prometheus, streaming usage, a real Prometheus
	$(PYTEST) $(METRICS_TESTS) $(PYTEST_ARGS)
