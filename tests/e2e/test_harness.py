"""The harness itself, without the filter: Envoy (demo.yaml minus the wasm filter) in front of
the mock provider. When these fail, the problem is the environment or the harness, not the
filter."""

import json

from harness import (
    build_envoy_config,
    chat,
    chat_body,
    demo_plugin_config,
    free_port,
    load_demo_yaml,
    upstream_request,
    upstream_wasm_filter_configs,
    wasm_filter_config,
    wasm_filter_configs,
)
from harness.envoy import dump_config


def test_the_mock_provider_records_what_it_receives(mock):
    import requests

    m = mock("solo")
    r = requests.post(f"{m.url}/v1/chat/completions", json=chat_body("gpt-4.1"), timeout=5)
    assert r.status_code == 200
    assert r.headers["x-mock-provider"] == "solo"
    got = m.received(r.headers["x-mock-request-id"])
    assert got.method == "POST"
    assert got.path == "/v1/chat/completions"
    assert got.json()["model"] == "gpt-4.1"
    assert got.content_length == len(got.body)


def test_plain_envoy_forwards_to_the_mock_unchanged(mock, envoy):
    m = mock("plain")
    gw = envoy(m, with_filter=False)
    raw = b'{"model" : "chat",  "messages":[{"role":"user","content":"h\\u00e9"}]}'
    reply = chat(gw, raw, headers={"authorization": "Bearer client-secret"})
    assert reply.status == 200, reply
    _, got = upstream_request(reply, m)
    assert got.body == raw
    assert got.content_length == len(raw)
    # Without the filter nothing replaces the client's key: the filter is what does.
    assert got.header("authorization") == "Bearer client-secret"
    stats = gw.stats()
    assert stats.get("http.gateway.downstream_rq_completed", 0) >= 1
    # No copy of the filter runs anywhere: not on the listener, not as an upstream filter.
    assert "envoy.filters.http.wasm" not in gw.config_path.read_text()
    assert not any(k.startswith("wasm.") and v for k, v in gw.wasm_stats().items()), gw.wasm_stats()
    # The access log is there all the same, without the filter's decision.
    (entry,) = gw.access_log(wait_for=1)
    assert entry["status"] == 200 and entry["ai_gateway"] is None, entry


def test_without_the_filter_no_copy_of_it_is_left():
    doc = build_envoy_config(1, 2, _FakeMock(3), with_filter=False)
    assert wasm_filter_configs(doc) == []
    assert "envoy.filters.http.wasm" not in dump_config(doc)
    for c in doc["static_resources"]["clusters"]:
        opts = c.get("typed_extension_protocol_options", {}).get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
        assert "http_filters" not in opts, f"{c['name']}: an upstream filter chain with only the codec is dropped"


def test_a_plugin_configuration_goes_to_every_copy_of_the_filter():
    """The listener's filter and the cluster's upstream copy read one configuration: the
    shipped file shares it through a YAML anchor, the harness writes it into each copy."""
    shipped = load_demo_yaml()
    (up,) = upstream_wasm_filter_configs(shipped)
    # What yaml.safe_load makes of an anchor: one dict, seen from both places.
    assert up["configuration"] is wasm_filter_config(shipped)["configuration"]
    cfg = demo_plugin_config()
    cfg["timeout_ms"] = 1234
    doc = build_envoy_config(1, 2, _FakeMock(3), cfg)
    copies = wasm_filter_configs(doc)
    assert [c["root_id"] for c in copies] == ["ai_gateway", "ai_gateway_upstream"]
    assert all(json.loads(c["configuration"]["value"])["timeout_ms"] == 1234 for c in copies)
    # Each copy has its own dicts (editing one later doesn't edit the other) with one content
    # (one VM), and the rendered file spells both out.
    a, b = copies
    assert a["configuration"] is not b["configuration"] and a["configuration"] == b["configuration"]
    assert a["vm_config"] is not b["vm_config"] and a["vm_config"] == b["vm_config"]
    assert "&id" not in dump_config(doc) and "*id" not in dump_config(doc)
    # An invalid text (a str is used verbatim) too.
    doc = build_envoy_config(1, 2, _FakeMock(3), "{not json")
    assert [c["configuration"]["value"] for c in wasm_filter_configs(doc)] == ["{not json", "{not json"]


def test_the_access_log_path_is_substituted():
    doc = build_envoy_config(1, 2, _FakeMock(3), access_log_path="/tmp/x.log")
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert [a["typed_config"]["path"] for a in hcm["access_log"]] == ["/tmp/x.log"]
    assert load_demo_yaml()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "access_log"][0]["typed_config"]["path"] == "/dev/stdout"
    # A logger a test pointed at a file of its own keeps it.
    base = load_demo_yaml()
    base["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["access_log"][0][
        "typed_config"]["path"] = "/tmp/own.log"
    doc = build_envoy_config(1, 2, _FakeMock(3), base=base, access_log_path="/tmp/x.log")
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert [a["typed_config"]["path"] for a in hcm["access_log"]] == ["/tmp/own.log"]


def test_the_config_builder_substitutes_every_port():
    doc = build_envoy_config(11111, 22222, _FakeMock(33333))
    ports = []

    def walk(x):
        if isinstance(x, dict):
            if "port_value" in x and x.get("address") in ("127.0.0.1", "localhost", "::1"):
                ports.append(x["port_value"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    assert ports and set(ports) <= {11111, 22222, 33333}, ports
    assert doc["admin"]["address"]["socket_address"]["port_value"] == 22222
    assert load_demo_yaml()["admin"]["address"]["socket_address"]["port_value"] != 22222
    assert free_port() > 0


class _FakeMock:
    def __init__(self, port):
        self.port = port
