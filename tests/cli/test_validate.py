"""`ai-gateway validate`: good, bad and malformed files of every kind it reads, each message
pinned; exit 0 valid, 1 invalid, 2 unreadable; `--format json`; warnings; `--check-models`
against the mock provider."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from harness import REPO
from configs import (
    GOOD,
    GOOD_YAML,
    NAMESPACE,
    ecds,
    envoy_bootstrap,
    envoyfilter,
    lds,
    wasmplugin,
)

LISTENER_WASM = (
    "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0] (wasm ai_gateway)"
)


def bad_config() -> dict:
    """Three mistakes: an unknown field, a version that is not SemVer, a target that names no
    model."""
    cfg = copy.deepcopy(GOOD)
    cfg["models"][1]["version"] = "2.0"
    cfg["models"][0]["colour"] = "blue"
    cfg["routes"][0]["targets"][1]["model"] = "deepseek-v4"
    return cfg


UNKNOWN = (
    "models[0].colour: unknown field `colour`, expected one of `name`, `version`, `max_tokens`, "
    "`temperature`, `weight`, `cluster`, `system_prompt`, `timeout_ms`, `fallback`"
)
SEMVER = (
    'models[1].version: "2.0" is not SemVer (MAJOR.MINOR.PATCH[-pre][+build]): '
    "unexpected end of input while parsing minor version number"
)
TARGET = 'routes[0].targets[1].model: "deepseek-v4" is not a configured model'


# --------------------------------------------------------------------------------------------
# Valid files of every kind
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, location",
    [
        ("plugin.json", json.dumps(GOOD, indent=2), ""),
        ("plugin.yaml", GOOD_YAML, ""),
        ("envoy.yaml", envoy_bootstrap(GOOD), LISTENER_WASM),
        (
            "lds.yaml",
            lds(GOOD),
            "resources[0].filter_chains[0].filters[0].typed_config.http_filters[0] (wasm ai_gateway)",
        ),
        ("ecds.yaml", ecds(GOOD), "resources[0] (wasm ai_gateway)"),
        ("wasmplugin.yaml", wasmplugin(GOOD_YAML), "WasmPlugin/ai-gateway spec.pluginConfig"),
        (
            "envoyfilter.yaml",
            envoyfilter(GOOD),
            "EnvoyFilter/ai-gateway-wasm spec.configPatches[0].patch.value (wasm ai_gateway)",
        ),
    ],
)
def test_a_valid_configuration_of_every_kind_passes(ag, write, name, text, location):
    f = write(name, text)
    r = ag("validate", f)
    at = f"{location}: " if location else ""
    assert (r.code, r.out) == (0, f"{f}: {at}ok (2 model(s), 1 route(s))\n"), r
    assert r.err == "1 file(s), 1 plugin configuration(s): 0 error(s), 0 warning(s)\n"


def test_multi_document_manifests_are_read_document_by_document(ag, write):
    f = write("k8s.yaml", "---\n".join([NAMESPACE, wasmplugin(GOOD_YAML), envoyfilter(GOOD)]))
    r = ag("validate", f)
    assert r.code == 0, r
    assert r.lines == [
        f"{f}: doc[1] WasmPlugin/ai-gateway spec.pluginConfig: ok (2 model(s), 1 route(s))",
        f"{f}: doc[2] EnvoyFilter/ai-gateway-wasm spec.configPatches[0].patch.value (wasm ai_gateway): ok (2 model(s), 1 route(s))",
    ]


def test_the_shipped_configs_are_valid(ag):
    r = ag("validate", "envoy/demo.yaml", "envoy/hot-reload.yaml", "envoy/hot-reload/ai_gateway.yaml")
    assert r.code == 0, r
    assert "envoy/hot-reload/ai_gateway.yaml: resources[0] (wasm ai_gateway): ok" in r.out
    # The bootstrap only points at the ECDS file: said, not failed.
    assert (
        "envoy/hot-reload.yaml: note: static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
        ".http_filters[0]: the wasm filter takes its configuration through ECDS from "
        "envoy/hot-reload/ai_gateway.yaml: validate that file too"
    ) in r.out


# --------------------------------------------------------------------------------------------
# Invalid: every error, FILE: LOCATION: PATH: reason
# --------------------------------------------------------------------------------------------


def test_every_error_of_a_plain_config_is_listed_with_its_path(ag, write):
    f = write("plugin.json", json.dumps(bad_config(), indent=2))
    r = ag("validate", f)
    assert r.code == 1, r
    # serde's position is kept for the first error: it points into this very file.
    assert r.lines == [
        f"{f}: {UNKNOWN} at line 7 column 14",
        f"{f}: {SEMVER}",
        f"{f}: {TARGET}",
    ]
    assert r.err == "1 file(s), 1 plugin configuration(s): 3 error(s), 0 warning(s)\n"


def test_errors_inside_an_envoy_config_name_the_filter_and_the_field(ag, write):
    f = write("envoy.yaml", envoy_bootstrap(bad_config()))
    r = ag("validate", f)
    assert r.code == 1, r
    assert r.lines == [
        f"{f}: {LISTENER_WASM}: {UNKNOWN}",
        f"{f}: {LISTENER_WASM}: {SEMVER}",
        f"{f}: {LISTENER_WASM}: {TARGET}",
    ]


def test_errors_in_a_yaml_plugin_config_and_a_wasmplugin(ag, write):
    yaml_cfg = GOOD_YAML.replace("version: 2.0.0-canary.1", 'version: "2.0"').replace(
        "  - { model: deepseek-v3.2,", "  - { model: deepseek-v4,"
    )
    f = write("plugin.yaml", yaml_cfg)
    r = ag("validate", f)
    assert (r.code, r.lines) == (1, [f"{f}: {SEMVER}", f"{f}: {TARGET}"]), r
    w = write("wasmplugin.yaml", wasmplugin(yaml_cfg))
    r = ag("validate", w)
    at = "WasmPlugin/ai-gateway spec.pluginConfig"
    assert (r.code, r.lines) == (1, [f"{w}: {at}: {SEMVER}", f"{w}: {at}: {TARGET}"]), r


def test_json_output_carries_file_location_path_message_and_line_for_ci_annotations(ag, write):
    f = write("envoy.yaml", envoy_bootstrap(bad_config()))
    r = ag("validate", "--format", "json", f)
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert doc["files"] == [
        {
            "file": str(f),
            "status": "invalid",
            "notes": [],
            "configs": [{"location": LISTENER_WASM, "line": 17, "valid": False, "models": 0, "routes": 0}],
        }
    ]
    lines = f.read_text().splitlines()
    got = [(e["path"], e["line"]) for e in doc["errors"]]
    assert [p for p, _ in got] == ["models[0].colour", "models[1].version", "routes[0].targets[1].model"]
    # Each line is the file's line of the offending field (inside the StringValue block).
    assert '"colour": "blue"' in lines[got[0][1] - 1]
    assert '"version": "2.0"' in lines[got[1][1] - 1]
    assert '"model": "deepseek-v4"' in lines[got[2][1] - 1]
    assert all(e["file"] == str(f) and e["location"] == LISTENER_WASM for e in doc["errors"])
    assert doc["warnings"] == []


@pytest.mark.parametrize(
    "name, text, expected",
    [
        (
            "struct.yaml",
            envoy_bootstrap(GOOD).replace(
                '"@type": type.googleapis.com/google.protobuf.StringValue', '"@type": type.googleapis.com/google.protobuf.Struct'
            ),
            f"{LISTENER_WASM}: config.configuration: is a google.protobuf.Struct: Envoy hands it to the filter as "
            "protobuf binary, not JSON, and the filter refuses it; use \"@type\": "
            "type.googleapis.com/google.protobuf.StringValue with the JSON in `value`",
        ),
        (
            "embedded.yaml",
            envoy_bootstrap('{"models": [ }'),
            f"{LISTENER_WASM}: the plugin configuration is not valid JSON: expected value",
        ),
        (
            "empty-value.yaml",
            envoy_bootstrap(" "),
            f"{LISTENER_WASM}: the plugin configuration is empty",
        ),
        (
            "no-plugin-config.yaml",
            wasmplugin("").replace("  pluginConfig:\n", ""),
            "WasmPlugin/ai-gateway: spec.pluginConfig: missing: the filter refuses to start without its configuration",
        ),
        (
            "array.json",
            "[1, 2]",
            "the plugin configuration must be a JSON object ({\"models\": [...], ...})",
        ),
        (
            "missing-models.json",
            '{"routes": []}',
            "missing field `models` at line 1 column 14",
        ),
        (
            "weights.json",
            json.dumps({**GOOD, "routes": [{"name": "chat", "targets": [{"model": "gpt-4.1", "weight": 0}]}]}),
            "routes[0].targets: the weights sum to 0: at least one target needs a weight above 0",
        ),
        (
            "float-version.yaml",
            "models:\n  - name: gpt-4.1\n    version: 1.0\n    weight: 1\n",
            "models[0].version: wrong type: floating point `1.0`, expected a string",
        ),
    ],
)
def test_each_kind_of_mistake_has_its_message(ag, write, name, text, expected):
    f = write(name, text)
    r = ag("validate", f)
    assert (r.code, r.lines) == (1, [f"{f}: {expected}"]), r


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("missing.yaml", None, "No such file or directory (os error 2)"),
        ("bad.json", '{"models": [}', "not valid JSON: expected value at line 1 column 13"),
        ("bad.yaml", "models: [\n  - a\n", "not valid YAML: "),
        ("dup.yaml", "models: []\nmodels: []\n", "not valid YAML: duplicate key `models` at line 2"),
        ("latin1.yaml", b"models: \xe9\n", "not UTF-8 text (invalid byte at offset 8)"),
        ("empty.yaml", "", "the file is empty"),
    ],
)
def test_an_unreadable_file_exits_2(ag, write, tmp_path, name, content, reason):
    f = write(name, content) if content is not None else tmp_path / name
    r = ag("validate", f)
    assert r.code == 2, r
    assert r.lines[0].startswith(f"{f}: unreadable: {reason}"), r


def test_the_exit_code_is_the_worst_of_all_files(ag, write):
    good = write("good.json", json.dumps(GOOD))
    bad = write("bad.json", json.dumps(bad_config()))
    missing = good.with_name("missing.json")
    assert ag("validate", good, good).code == 0
    assert ag("validate", good, bad).code == 1
    assert ag("validate", bad, missing, good).code == 2


# --------------------------------------------------------------------------------------------
# Warnings: reported, never a failure
# --------------------------------------------------------------------------------------------


def test_a_literal_api_key_is_a_warning_wherever_it_is(ag, write):
    inline_key = envoy_bootstrap(GOOD).replace(
        "      host_env_keys: [HOLYSHEEP_API_KEY]", "      key_values: { HOLYSHEEP_API_KEY: hs-live-1234 }"
    )
    f = write("envoy.yaml", inline_key)
    r = ag("validate", f)
    assert r.code == 0, r
    assert r.lines[0] == (
        f"{f}: warning: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]"
        ".typed_config.config.vm_config.environment_variables.key_values.HOLYSHEEP_API_KEY: HOLYSHEEP_API_KEY is "
        "set to a literal value: keys in a configuration end up in Git and in Envoy's /config_dump; the filter "
        "reads the key from the VM environment (upstream.api_key_env, vm_config.environment_variables.host_env_keys"
        " / a Secret)"
    ), r
    assert "hs-live-1234" not in r.out + r.err

    cfg = copy.deepcopy(GOOD)
    cfg["models"][0]["system_prompt"] = "use key sk-proj-0123456789abcdefghijklmn"
    f = write("plugin.json", json.dumps(cfg))
    r = ag("validate", f)
    assert r.code == 0
    assert r.lines[0].startswith(f"{f}: warning: models[0].system_prompt: a string that looks like a literal API key:")
    assert "0123456789abcdefghijklmn" not in r.out + r.err

    inline_env = "    - name: HOLYSHEEP_API_KEY\n      value: hs-live-1234\n"
    f = write("wasmplugin.yaml", wasmplugin(GOOD_YAML, env=inline_env))
    r = ag("validate", f)
    assert r.code == 0
    assert r.lines[0].startswith(
        f"{f}: warning: WasmPlugin/ai-gateway: spec.vmConfig.env[0].value: HOLYSHEEP_API_KEY is set to a literal value:"
    ), r


def test_a_canary_without_a_price_is_a_warning(ag, write):
    cfg = copy.deepcopy(GOOD)
    del cfg["prices"]["deepseek-v3.2"]
    f = write("plugin.json", json.dumps(cfg))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f"{f}: warning: routes[0].targets[1]: deepseek-v3.2@2.0.0-canary.1 is the canary of route \"chat\" but has "
            "no price: its cost can't be measured or compared with the stable targets (add prices.deepseek-v3.2)"
        ],
    ), r
    # No pre-release: the smallest weight is the canary.
    cfg["models"][1]["version"] = "2.0.0"
    f = write("plugin2.json", json.dumps(cfg))
    r = ag("validate", "-q", f)
    assert "deepseek-v3.2@2.0.0 is the canary of route \"chat\" but has no price" in r.out, r


def test_a_configuration_shared_by_the_filter_and_its_upstream_copy_warns_once(ag, write):
    """envoy/demo.yaml gives the listener's filter and the cluster's upstream copy one
    configuration text (a YAML anchor): a warning about that text is printed once, not once
    per copy."""
    text = (REPO / "envoy" / "demo.yaml").read_text()
    priced = '"deepseek-v3.2": { "input": 0.28, "output": 0.42 }'
    assert priced in text
    text = text.replace(",\n                        " + priced, "").replace(priced, "")
    f = write("demo-unpriced.yaml", text)
    r = ag("validate", "-q", f)
    warnings = [line for line in r.lines if "is the canary of route" in line]
    assert len(warnings) == 1, r.out


def test_weights_off_the_percent_convention_are_a_warning(ag, write):
    cfg = copy.deepcopy(GOOD)
    cfg["routes"].append(
        {"name": "code", "targets": [{"model": "gpt-4.1", "weight": 60}, {"model": "deepseek-v3.2", "weight": 30}]}
    )
    f = write("plugin.json", json.dumps(cfg))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f'{f}: warning: routes[1].targets: the weights of route "code" sum to 90, while every other route\'s '
            "sum to 100 (shares are weight / sum, so this works, but the percent convention is broken)"
        ],
    ), r
    # One route alone sets no convention.
    solo = copy.deepcopy(GOOD)
    solo["routes"][0]["targets"][0]["weight"] = 9
    solo["routes"][0]["targets"][1]["weight"] = 1
    r = ag("validate", "-q", write("solo.json", json.dumps(solo)))
    assert (r.code, r.out) == (0, ""), r


def test_what_surrounds_the_filter_is_checked_too(ag, write):
    text = "".join(
        line for line in envoy_bootstrap(GOOD).splitlines(keepends=True) if "allow_on_headers_stop_iteration" not in line
    )
    text = text.replace("host_env_keys: [HOLYSHEEP_API_KEY]", "host_env_keys: [OTHER]")
    f = write("envoy.yaml", text)
    r = ag("validate", "-q", f)
    assert r.code == 0
    assert r.lines == [
        f"{f}: warning: {LISTENER_WASM}: config.allow_on_headers_stop_iteration: is not true: the filter holds the "
        "request headers until it has read the body; without this flag (Envoy ≥ 1.35) the body is never "
        "delivered and every request hangs",
        f"{f}: warning: {LISTENER_WASM}: config.vm_config.environment_variables.host_env_keys: does not list "
        "HOLYSHEEP_API_KEY: the VM won't see the provider key and every request gets 500 gateway_misconfigured",
    ], r


def test_key_injection_upstream_needs_a_credential_injector_on_the_cluster_not_the_vm_key(ag, write):
    """With ``upstream.key_injection: upstream`` the VM reads no key (no host_env_keys warning),
    and each static cluster the models go to must inject it: a cluster without
    credential_injector is a warning, and so is one whose injector sits only on the aggregate's
    children (Envoy ignores those)."""
    shipped = ag("validate", "-q", "envoy/key-upstream.yaml")
    assert (shipped.code, shipped.out) == (0, ""), shipped

    doc = yaml.safe_load((REPO / "envoy" / "key-upstream.yaml").read_text())
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    # The key chain goes; the filter's own upstream copy (fallback) and the codec stay.
    options = clusters["mock"]["typed_extension_protocol_options"]
    hpo = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    keep = ("envoy.filters.http.wasm", "envoy.filters.http.upstream_codec")
    clusters["mock"]["typed_extension_protocol_options"] = {
        hpo: {**options[hpo], "http_filters": [f for f in options[hpo]["http_filters"] if f["name"] in keep]}
    }
    warning = (
        'upstream.key_injection: is "upstream", but cluster "mock" has no credential_injector upstream filter: '
        "the filter sets no key, so requests to it reach the provider without one (add "
        "envoy.filters.http.credential_injector to that cluster's HttpProtocolOptions http_filters — on the "
        "aggregate cluster itself, Envoy ignores its children's — as in envoy/key-upstream.yaml)"
    )
    f = write("no-injector.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (0, [f"{f}: warning: {LISTENER_WASM}: {warning}"]), r

    # The key chain on a child instead (the filter's upstream copy stays on the aggregate).
    clusters["mock_primary"]["typed_extension_protocol_options"] = {
        hpo: {**options[hpo], "http_filters": [f for f in options[hpo]["http_filters"] if f["name"] != keep[0]]}
    }
    f = write("on-the-children.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (0, [f"{f}: warning: {LISTENER_WASM}: {warning}"]), r

    # The default mode needs no injector, and no cluster is looked at.
    plugin = json.loads(wasm_value(doc))
    plugin["upstream"]["key_injection"] = "filter"
    set_wasm_value(doc, json.dumps(plugin))
    f = write("filter-mode.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert r.code == 0 and "credential_injector" not in r.out, r
    # … but then the VM must see the key.
    assert "host_env_keys: does not list HOLYSHEEP_API_KEY" in r.out, r


def test_a_credential_injector_inside_a_composite_filter_counts(ag, write):
    """The shipped upstream-mode configs run credential_injector from a composite filter (only
    on the requests the filter marked; nested per provider in multi-provider.yaml): no warning.
    A composite on the cluster whose actions hold no injector still gets one."""
    for shipped in ("envoy/key-upstream.yaml", "envoy/multi-provider.yaml"):
        r = ag("validate", "-q", shipped)
        assert r.code == 0 and "credential_injector" not in r.out, r

    doc = yaml.safe_load((REPO / "envoy" / "key-upstream.yaml").read_text())
    mock = next(c for c in doc["static_resources"]["clusters"] if c["name"] == "mock")
    filters = mock["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"][
        "http_filters"
    ]
    (composite,) = [f["typed_config"] for f in filters if f["name"] == "ai_gateway.provider_key"]
    assert composite["extension_config"]["name"] == "composite"
    action = composite["xds_matcher"]["matcher_list"]["matchers"][0]["on_match"]["action"]["typed_config"]
    assert action["typed_config"]["name"] == "envoy.filters.http.credential_injector"
    action["typed_config"] = {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"request_mutations": [{"remove": "authorization"}]},
        },
    }
    f = write("composite-without-injector.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert r.code == 0 and 'cluster "mock" has no credential_injector upstream filter' in r.out, r


def wasm_value(doc: dict) -> str:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]


def set_wasm_value(doc: dict, value: str) -> None:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"] = value


def test_a_file_without_a_plugin_configuration_is_a_warning(ag, write):
    f = write("ns.yaml", NAMESPACE)
    r = ag("validate", f)
    assert (r.code, r.lines) == (
        0,
        [f"{f}: warning: no ai-gateway plugin configuration found (nothing validated)"],
    ), r


# --------------------------------------------------------------------------------------------
# --check-models against the mock provider's GET /v1/models
# --------------------------------------------------------------------------------------------


def test_check_models_fails_on_models_the_provider_does_not_list(ag, write, mock_provider):
    mock = mock_provider("--model", "gpt-4.1", "--model", "claude-sonnet-4.5")
    f = write("envoy.yaml", envoy_bootstrap(GOOD))
    key = "sk-check-models-0123456789abcdef"
    r = ag("validate", "--check-models", f"{mock.url}/v1", f, env={"HOLYSHEEP_API_KEY": key, "PATH": "/usr/bin"})
    assert r.code == 1, r
    assert r.lines == [
        f"{f}: {LISTENER_WASM}: models[1].name: model version mismatch: the provider does not list "
        f'"deepseek-v3.2" (GET {mock.url}/v1/models lists 2 model(s))'
    ], r
    assert key not in r.out + r.err
    # The key went to the provider as a bearer token, and only there.
    import requests

    last = requests.get(f"{mock.url}/__requests/last", timeout=5).json()
    assert last["path"] == "/v1/models"
    assert ["authorization", f"Bearer {key}"] in last["headers"]

    # Every model listed: valid.
    full = mock_provider("--model", "gpt-4.1", "--model", "deepseek-v3.2")
    r = ag("validate", "--check-models", f"{full.url}/v1", f)
    assert r.code == 0, r


def test_check_models_reads_the_key_from_the_named_variable(ag, write, mock_provider):
    mock = mock_provider()
    f = write("plugin.json", json.dumps(GOOD))
    r = ag(
        "validate", "--check-models", f"{mock.url}/v1", "--api-key-env", "MY_KEY", f,
        env={"MY_KEY": "k-123", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert r.code == 0, r
    import requests

    last = requests.get(f"{mock.url}/__requests/last", timeout=5).json()
    assert ["authorization", "Bearer k-123"] in last["headers"]


def test_check_models_that_cannot_reach_the_provider_exits_2(ag, write, mock_provider):
    mock = mock_provider("--fail-status", "401")
    f = write("plugin.json", json.dumps(GOOD))
    r = ag("validate", "--check-models", f"{mock.url}/v1", f, env={"PATH": "/usr/bin"})
    assert r.code == 2, r
    assert r.lines == [f"{f}: --check-models: GET {mock.url}/v1/models answered HTTP 401 (HOLYSHEEP_API_KEY is not set)"]


# --------------------------------------------------------------------------------------------
# models[].fallback and stream_idle_timeout_ms: the plugin configuration (YAML too) and what
# the Envoy bootstrap must carry (the cluster's upstream ai-gateway filter, the route's
# per_try_idle_timeout)
# --------------------------------------------------------------------------------------------

#: The example of docs/failover.md#fallback, as an operator keeps it.
FALLBACK_YAML = """\
models:
  - name: claude-sonnet-4.5
    version: 1.4.0
    weight: 100
    timeout_ms: 60000                 # per attempt, until the response starts
    fallback: [gpt-4.1, deepseek-v3.2@2.0.0]
  - name: gpt-4.1
    version: 1.0.0
  - name: deepseek-v3.2
    version: 2.0.0
upstream: { cluster: holysheep }
timeout_ms: 30000
stream_idle_timeout_ms: 60000
max_duration_ms: 0
fallback_on: [5xx, 429, timeout, reset, connect_failure]
max_attempts: 3
"""


def docs_fallback_example() -> str:
    """The first YAML block of docs/failover.md's `## Fallback` section."""
    text = (REPO / "docs" / "failover.md").read_text()
    section = text.split("\n## Fallback\n", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]

ROUTE0 = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0]"
NO_UPSTREAM_FILTER = (
    "models[2].fallback: claude-sonnet-4.5@1.4.0 has a fallback list, but cluster \"mock\" has no upstream "
    "ai-gateway filter: the fallback models are never tried (add envoy.filters.http.wasm with root_id: "
    "ai_gateway_upstream to that cluster's HttpProtocolOptions http_filters — on the aggregate cluster itself, "
    "Envoy ignores its children's; see docs/failover.md#fallback)"
)
NO_IDLE_TIMEOUT = (
    f"stream_idle_timeout_ms: is 60000 ms, but the route {ROUTE0} has no retry_policy.per_try_idle_timeout: "
    "Envoy enforces the stream idle timeout through the route (the filter can't set it per request), so a "
    "started answer that stalls is never cut (set per_try_idle_timeout: 60s in its retry_policy)"
)


def test_the_fallback_example_validates_as_yaml_json_and_inside_envoy(ag, write):
    docs = docs_fallback_example()
    assert yaml.safe_load(docs) == yaml.safe_load(FALLBACK_YAML)
    for f in (
        write("docs-example.yaml", docs),
        write("fallback.yaml", FALLBACK_YAML),
        write("fallback.json", json.dumps(yaml.safe_load(FALLBACK_YAML), indent=2)),
        write("fallback-wasmplugin.yaml", wasmplugin(FALLBACK_YAML)),
    ):
        r = ag("validate", f)
        assert r.code == 0 and "ok (3 model(s), 0 route(s))" in r.out and "warning" not in r.out, r


def test_fallback_errors_in_a_yaml_plugin_config_name_their_paths(ag, write):
    text = (
        FALLBACK_YAML.replace("fallback: [gpt-4.1, deepseek-v3.2@2.0.0]", "fallback: [gpt-4.1, gpt-5, claude-sonnet-4.5]")
        .replace("  - name: gpt-4.1\n    version: 1.0.0\n", "  - name: gpt-4.1\n    version: 1.0.0\n    cluster: openai\n")
        .replace("fallback_on: [5xx, 429, timeout, reset, connect_failure]", "fallback_on: [5xx, 404, 5xx]")
        .replace("max_attempts: 3", "max_attempts: 6")
        .replace("stream_idle_timeout_ms: 60000", "stream_idle_timeout_ms: 0")
    )
    f = write("bad-fallback.yaml", text)
    r = ag("validate", f)
    causes = "the causes are 5xx, 429, timeout, reset, connect_failure"
    assert (r.code, r.lines) == (
        1,
        [
            f"{f}: stream_idle_timeout_ms: 0 is out of range: 1 to 86400000 milliseconds",
            f'{f}: fallback_on[1]: "404" is a client error: client errors never fall back (the next model would '
            f"get the same request); {causes}",
            f'{f}: fallback_on[2]: "5xx" is listed twice',
            f"{f}: max_attempts: 6 is out of range: 1 to 5 (every attempt of one request together: endpoint "
            "retries and fallback models)",
            f'{f}: models[0].fallback[0]: "gpt-4.1" routes to cluster "openai" but claude-sonnet-4.5@1.4.0 routes '
            'to "holysheep": Envoy picks the cluster once per request (cluster_header) and retries stay in it, so '
            "a fallback must be served by the same cluster (see docs/failover.md#fallback)",
            f'{f}: models[0].fallback[1]: "gpt-5" is not a configured model',
            f'{f}: models[0].fallback[2]: "claude-sonnet-4.5" is claude-sonnet-4.5@1.4.0, the model itself: a model '
            "can't fall back to itself",
        ],
    ), r
    # The JSON report places them on their lines of the YAML file.
    r = ag("validate", "--format", "json", f)
    lines = {e["path"]: e["line"] for e in json.loads(r.out)["errors"]}
    assert lines["models[0].fallback[1]"] == 6, lines
    assert lines["max_attempts"] == 17, lines


def test_a_fallback_list_longer_than_max_attempts_allows_is_a_warning(ag, write):
    f = write("short.yaml", FALLBACK_YAML.replace("max_attempts: 3", "max_attempts: 2"))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f"{f}: warning: models[0].fallback: lists 2 model(s), but max_attempts is 2: a request makes at most 2 "
            "attempts (endpoint retries included), so fallback[1] and later are never tried (raise max_attempts or "
            "shorten the list)"
        ],
    ), r


def demo_without_fallback_wiring() -> dict:
    """envoy/demo.yaml without what it ships for fallback: no upstream filter on `mock` (the
    filter's upstream copy is its only one there), no per_try_idle_timeout on the route."""
    doc = yaml.safe_load((REPO / "envoy" / "demo.yaml").read_text())
    del clusters_of(doc)["mock"]["typed_extension_protocol_options"]
    del route0(doc)["route"]["retry_policy"]["per_try_idle_timeout"]
    return doc


def demo_with_fallback(**plugin_changes) -> tuple[dict, dict]:
    """envoy/demo.yaml (without its fallback wiring, see above) whose claude-sonnet-4.5
    (models[2], cluster `mock`) falls back to gpt-4.1: (the document, its plugin configuration)."""
    doc = demo_without_fallback_wiring()
    plugin = json.loads(wasm_value(doc))
    assert plugin["models"][2]["name"] == "claude-sonnet-4.5"
    plugin["models"][2]["fallback"] = ["gpt-4.1"]
    plugin.update(plugin_changes)
    set_wasm_value(doc, json.dumps(plugin, indent=2))
    return doc, plugin


def upstream_filter(plugin: dict, allow: bool = True) -> dict:
    """The filter as an upstream HTTP filter (root_id ai_gateway_upstream), same plugin config."""
    config = {
        "name": "ai_gateway_upstream",
        "root_id": "ai_gateway_upstream",
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(plugin)},
        "vm_config": {
            "vm_id": "ai_gateway",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": "ai_gateway_filter.wasm"}},
            "environment_variables": {"host_env_keys": ["HOLYSHEEP_API_KEY"]},
        },
    }
    if allow:
        config["allow_on_headers_stop_iteration"] = True
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config},
    }


def with_upstream_filters(cluster: dict, filters: list[dict]) -> None:
    cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {}},
            "http_filters": [
                *filters,
                {
                    "name": "envoy.filters.http.upstream_codec",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
                    },
                },
            ],
        }
    }


def clusters_of(doc: dict) -> dict:
    return {c["name"]: c for c in doc["static_resources"]["clusters"]}


def route0(doc: dict) -> dict:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"][0]


def test_a_fallback_needs_our_upstream_filter_on_the_cluster_and_the_routes_idle_timeout(ag, write):
    """The shape the validator asks for: the aggregate cluster `mock` runs the filter as an
    upstream filter (root_id ai_gateway_upstream, allow_on_headers_stop_iteration), and the route
    has per_try_idle_timeout = stream_idle_timeout_ms. Nothing else to say then."""
    doc, plugin = demo_with_fallback()
    f = write("no-upstream-filter.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [f"{f}: warning: {LISTENER_WASM}: {NO_UPSTREAM_FILTER}", f"{f}: warning: {LISTENER_WASM}: {NO_IDLE_TIMEOUT}"],
    ), r

    with_upstream_filters(clusters_of(doc)["mock"], [upstream_filter(plugin)])
    route0(doc)["route"]["retry_policy"]["per_try_idle_timeout"] = "60s"
    f = write("complete.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", f)
    assert r.code == 0 and "warning" not in r.out, r
    # Both instances are validated: the listener's and the cluster's.
    assert f"{f}: {LISTENER_WASM}: ok (3 model(s), 1 route(s))" in r.lines, r
    assert (
        f"{f}: static_resources.clusters[0].typed_extension_protocol_options.envoy.extensions.upstreams.http.v3"
        ".HttpProtocolOptions.http_filters[0] (wasm ai_gateway_upstream): ok (3 model(s), 1 route(s))"
    ) in r.lines, r

    # On the aggregate's children it does nothing (Envoy takes the aggregate's chain).
    del clusters_of(doc)["mock"]["typed_extension_protocol_options"]
    for child in ("mock_primary", "mock_secondary"):
        with_upstream_filters(clusters_of(doc)[child], [upstream_filter(plugin)])
    f = write("on-the-children.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (0, [f"{f}: warning: {LISTENER_WASM}: {NO_UPSTREAM_FILTER}"]), r


def test_the_upstream_filter_must_be_ours_and_allowed_to_stop_iteration(ag, write):
    doc, plugin = demo_with_fallback()
    route0(doc)["route"]["retry_policy"]["per_try_idle_timeout"] = "60s"
    mock = clusters_of(doc)["mock"]

    # Another wasm filter (the listener's root_id) is not the upstream instance.
    other = upstream_filter(plugin)
    other["typed_config"]["config"]["root_id"] = "ai_gateway"
    with_upstream_filters(mock, [other])
    f = write("other-root-id.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert f"{f}: warning: {LISTENER_WASM}: {NO_UPSTREAM_FILTER}" in r.lines, r

    # Without the flag: said once, by the listener's configuration (what it is for there).
    with_upstream_filters(mock, [upstream_filter(plugin, allow=False)])
    f = write("no-flag.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f"{f}: warning: {LISTENER_WASM}: models[2].fallback: claude-sonnet-4.5@1.4.0 has a fallback list, but the "
            'upstream ai-gateway filter of cluster "mock" (root_id: ai_gateway_upstream) lacks '
            "allow_on_headers_stop_iteration: true: it holds each attempt's headers while it rewrites the body for a "
            "fallback model, which Envoy (≥ 1.35) refuses without the flag (set it in that filter's config)"
        ],
    ), r

    # Run by a composite filter, it counts (as credential_injector does).
    composite = {
        "name": "ai_gateway.fallback",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {
                "name": "composite",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"},
            },
            "xds_matcher": {
                "on_no_match": {
                    "action": {
                        "name": "fallback",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
                            "typed_config": upstream_filter(plugin),
                        },
                    }
                }
            },
        },
    }
    with_upstream_filters(mock, [composite])
    f = write("composite.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.out) == (0, ""), r


def test_the_routes_per_try_idle_timeout_must_be_stream_idle_timeout_ms(ag, write):
    doc, plugin = demo_with_fallback()
    with_upstream_filters(clusters_of(doc)["mock"], [upstream_filter(plugin)])
    policy = route0(doc)["route"]["retry_policy"]
    policy["per_try_idle_timeout"] = "30s"
    f = write("differs.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f"{f}: warning: {LISTENER_WASM}: stream_idle_timeout_ms: is 60000 ms, but the route {ROUTE0} has "
            "retry_policy.per_try_idle_timeout 30s: Envoy enforces the route's (the filter can't set it per request) "
            "(set per_try_idle_timeout: 60s in its retry_policy)"
        ],
    ), r

    # The configuration says 30 s too: agreed.
    doc, plugin = demo_with_fallback(stream_idle_timeout_ms=30000)
    with_upstream_filters(clusters_of(doc)["mock"], [upstream_filter(plugin)])
    route0(doc)["route"]["retry_policy"]["per_try_idle_timeout"] = {"seconds": 30}
    f = write("agreed.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.out) == (0, ""), r

    # A route without a retry policy of its own takes its virtual host's.
    policy = route0(doc)["route"].pop("retry_policy")
    policy["per_try_idle_timeout"] = "30.000s"
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["retry_policy"] = policy
    f = write("vhost.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.out) == (0, ""), r


def test_stream_idle_timeout_alone_is_checked_against_the_route_and_nothing_without_it(ag, write):
    """Without a fallback list the clusters are not looked at; the route is, once the
    configuration sets stream_idle_timeout_ms. The shipped configs get no warning."""
    doc = demo_without_fallback_wiring()
    plugin = json.loads(wasm_value(doc))
    for m in plugin["models"]:
        m.pop("fallback", None)
    plugin["stream_idle_timeout_ms"] = 90000
    set_wasm_value(doc, json.dumps(plugin, indent=2))
    f = write("idle-only.yaml", yaml.safe_dump(doc, sort_keys=False))
    r = ag("validate", "-q", f)
    assert (r.code, r.lines) == (
        0,
        [
            f"{f}: warning: {LISTENER_WASM}: stream_idle_timeout_ms: is 90000 ms, but the route {ROUTE0} has no "
            "retry_policy.per_try_idle_timeout: Envoy enforces the stream idle timeout through the route (the filter "
            "can't set it per request), so a started answer that stalls is never cut (set per_try_idle_timeout: 90s "
            "in its retry_policy)"
        ],
    ), r
    r = ag("validate", "-q", "envoy/demo.yaml", "envoy/holysheep.yaml", "envoy/key-upstream.yaml")
    assert (r.code, r.out) == (0, ""), r
