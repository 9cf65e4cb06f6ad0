# Delivery: the OCI image of the filter, the Istio / Kubernetes manifests (deploy/), the
# docker-compose demo, the GitHub Actions workflows and the scripts they call (scripts/ci/).
# Included by the Makefile (`include mk/*.mk`, after TIERS is set). docs/deploy.md explains it.
#
#   make oci            target/oci/ai-gateway-filter: an OCI image layout of the .wasm in Istio's
#                       compat form (reproducible; summary with digests in …/ai-gateway-filter.json)
#   make deploy         the deploy tier: tests/deploy (OCI round trip through a local registry,
#                       CRD/kubernetes-validate/CEL checks of the rendered stages, Envoy validation
#                       of their Wasm config, compose + Prometheus + Grafana checks, check-jsonschema
#                       and actionlint on the workflows, the scripts/ci scripts with stub tools)
#   make deploy-sync    regenerate the files derived from envoy/*.yaml (deploy/base plugin config
#                       and bootstrap, the WasmPlugin variant, envoy/compose.yaml)
#   make deploy-tools   apt-get the Debian tools the tier uses, when missing and root
#   make deploy-venv    the tier's PyPI tools into ./.venv (tests/deploy/requirements.txt)

DEPLOY_REQS  := tests/deploy/requirements.txt
DEPLOY_STAMP := $(VENV)/.deploy-requirements-installed
OCI_LAYOUT   := target/oci/ai-gateway-filter

TIERS += deploy

.PHONY: oci deploy deploy-check deploy-sync deploy-tools deploy-venv deploy-cli

oci: wasm ## OCI image of the filter for Istio (compat form): target/oci/ai-gateway-filter
	scripts/oci.sh $(WASM) $(OCI_LAYOUT)

deploy-venv: $(DEPLOY_STAMP) ## Install the deploy tier's PyPI tools (tests/deploy/requirements.txt) into ./.venv

$(DEPLOY_STAMP): $(DEPLOY_REQS) tests/requirements.txt | venv
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip install --quiet \
	  --constraint tests/requirements.txt --requirement $(DEPLOY_REQS)
	@$(VENV)/bin/actionlint -version | head -n1
	@touch $@

deploy-tools: ## apt-get install skopeo docker-registry prometheus shellcheck when missing (root only)
	scripts/ci/install-deploy-tools.sh

# The ai-gateway CLI (tools/ai-gateway), when the workspace has it: tests/deploy runs
# `ai-gateway validate` on the deploy configs with it, and skips that check (saying so) without it.
deploy-cli:
	@if $(CARGO) metadata --no-deps --format-version 1 2>/dev/null | grep -q '"name":"ai-gateway"'; then \
	  echo "$(CARGO) build --release -p ai-gateway"; $(CARGO) build --release -p ai-gateway; \
	else echo "no ai-gateway package in the workspace yet: its checks will skip"; fi

deploy: wasm venv deploy-venv deploy-tools deploy-cli ## The deploy tier: OCI image, deploy/, compose, workflows, scripts/ci (pytest tests/deploy)
	$(PYTEST) tests/deploy $(PYTEST_ARGS)

deploy-check: deploy

deploy-sync: venv ## Regenerate deploy/ and envoy/compose.yaml files derived from envoy/*.yaml
	$(VENV)/bin/python scripts/ci/sync-deploy.py
