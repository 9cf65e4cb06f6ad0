"""The harness itself, without the filter: Envoy (demo.yaml minus the wasm filter) in front of
the mock provider. When these fail, the problem is the environment or the harness, not the
filter."""

from harness import build_envoy_config, chat, chat_body, free_port, load_demo_yaml, upstream_request


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
