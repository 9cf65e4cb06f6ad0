# The ai-gateway operator CLI (tools/ai-gateway): validate, diff, canary analyze and the
# in-place weight edits. Included by the Makefile (`include mk/*.mk`, after TIERS is set).
# docs/cli.md is its reference.
#
#   make cli        the cli tier: the CLI's unit tests (cargo test -p ai-gateway) and its
#                   behaviour as a user runs it (pytest tests/cli: every message pinned,
#                   --check-models against the mock, analyze against canned Prometheus answers)
#   make cli-build  target/release/ai-gateway
#   make rollout-demo   the canary part of the demo: 10 % → 50 % → 100 % and a rollback
#                   in a running Envoy (envoy/hot-reload.yaml), the observed split at each step
#
# The hot-reload tests under load and `canary analyze` against a real Prometheus scraping a real
# Envoy are tests/e2e/test_rollout.py, in the e2e tier (they build the CLI themselves).

AI_GATEWAY := target/release/ai-gateway

TIERS += cli

.PHONY: cli cli-build rollout-demo

cli-build: ## Build the operator CLI: target/release/ai-gateway
	$(CARGO) build --release -p ai-gateway

cli: cli-build tools venv ## The cli tier: cargo test -p ai-gateway, then pytest tests/cli
	$(CARGO) test -p ai-gateway
	$(PYTEST) tests/cli $(PYTEST_ARGS)

rollout-demo: wasm tools venv cli-build ## A canary 10 % → 50 % → 100 % and a rollback in a running Envoy (no restart)
	scripts/rollout-demo.sh
