"""The official `openai` Python SDK, pointed at the gateway as an application would be:
base_url http://127.0.0.1:PORT/v1 and its own (client) key, never the provider's."""

from __future__ import annotations

import openai
import pytest
from harness import TEST_KEY

CLIENT_KEY = "client-key"


@pytest.fixture
def client(gw):
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)
    yield c
    c.close()


def test_the_sdk_gets_a_chat_completion_and_the_model_header(client, demo_mock):
    raw = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "user", "content": "Hello from the SDK"}],
    )
    completion = raw.parse()
    model = raw.headers["x-ai-gateway-model"]
    assert model in ("gpt-4.1", "deepseek-v3.2")
    assert raw.headers["x-ai-gateway-route"] == "chat"
    assert completion.choices[0].message.content
    assert completion.model == model  # the mock answers with the model it received
    got = demo_mock.received(raw.headers["x-mock-request-id"])
    assert got.header("authorization") == f"Bearer {TEST_KEY}"
    assert CLIENT_KEY not in str(got.raw)


def test_the_sdk_streams_a_chat_completion(client, demo_mock):
    with client.chat.completions.with_streaming_response.create(
        model="claude-sonnet-4.5",
        messages=[{"role": "user", "content": "Stream, please"}],
        stream=True,
    ) as response:
        assert response.headers["x-ai-gateway-model"] == "claude-sonnet-4.5"
        rid = response.headers["x-mock-request-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text, "the stream carried no content"
    assert all(c.model == "claude-sonnet-4.5" for c in chunks)
    got = demo_mock.received(rid).json()
    assert got["stream"] is True
    assert got["messages"][0]["role"] == "system"


def test_the_sdk_lists_the_gateways_models(client):
    ids = {m.id for m in client.models.list()}
    assert {"chat", "gpt-4.1", "claude-sonnet-4.5"} <= ids


def test_the_sdk_raises_a_typed_error_for_an_unknown_model(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 400
    assert e.value.code == "model_not_found"
