# The ai-gateway operator CLI (tools/ai-gateway): validate, diff, canary analyze and the
# in-place weight edits. Included by the Makefile (`include mk/*.mk`, after TIERS is set).
# docs/cli.md is its reference.
#
#   make cli        the cli tier: the CLI as a user runs it (pytest tests/cli: every message
#                   pinned, --check-models against the mock, analyze against canned Prometheus
#                   answers). Its Rust unit tests run in the unit tier (cargo test --workspace).
#   make rollout-demo   the canary part of the demo: 10 % → 50 % → 100 % and a rollback
#                   in a running Envoy (envoy/hot-reload.yaml), the observed split at each step
#
# `make cli-build` (target/release/ai-gateway) is in the Makefile: e2e and demo need it too.
# The hot-reload tests under load and `canary analyze` against a real Prometheus scraping a real
# Envoy are tests/e2e/test_rollout.py, in the e2e tier.

TIERS += cli

.PHONY: cli rollout-demo

cli: cli-build tools venv ## The cli tier: the CLI as a user runs it (pytest tests/cli; its unit tests are in `unit`)
	$(PYTEST) tests/cli $(PYTEST_ARGS)

rollout-demo: wasm tools venv cli-build ## A canary 10 % → 50 % → 100 % and a rollback in a running Envoy (no restart)
	scripts/rollout-demo.sh
