"""Where things are: the repository, the binaries the harness runs, and their overrides.

``ENVOY_BIN``, ``MOCK_PROVIDER_BIN``, ``AI_GATEWAY_BIN`` (other binaries) and ``AI_GATEWAY_WASM``
(another build of the filter) override the defaults in the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_BIN = Path(os.environ.get("ENVOY_BIN", REPO / ".venv" / "bin" / "envoy"))
MOCK_BIN = Path(os.environ.get("MOCK_PROVIDER_BIN", REPO / "target" / "release" / "mock-provider"))
WASM_DEFAULT = REPO / "target" / "wasm32-wasip1" / "release" / "ai_gateway_filter.wasm"
#: The filter under test; AI_GATEWAY_WASM=/path/to/other.wasm tests another build.
WASM = Path(os.environ.get("AI_GATEWAY_WASM", WASM_DEFAULT)).resolve()
DEMO_YAML = REPO / "envoy" / "demo.yaml"
AI_GATEWAY_BIN = Path(os.environ.get("AI_GATEWAY_BIN", REPO / "target" / "release" / "ai-gateway"))
