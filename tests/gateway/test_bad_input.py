"""Bad input gets a clear OpenAI-shaped 4xx, and the gateway keeps serving."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.proc import ROOT

AUDIO = ROOT / "tests" / "fixtures" / "audio" / "en_orders.wav"


@pytest.fixture(scope="module")
def gw(fake_providers, tmp_path_factory):
    from tests.support.gateway import Gateway, provider_env, write_config

    tmp = tmp_path_factory.mktemp("gw")
    env = {**provider_env(fake_providers), "MODELGATE_CONFIG": str(write_config(tmp)),
           "MODELGATE_MAX_AUDIO_MB": "1"}
    gateway = Gateway(env, tmp / "flags.yaml", log_name="gateway-bad-input")
    yield gateway
    gateway.stop()


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def post(gw, path: str, key: str | None = "default", **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {gw.key if key == 'default' else key}"
    return httpx.post(gw.base_url + path, headers=headers, timeout=30, **kwargs)


def still_serving(gw) -> None:
    reply = gw.client().chat.completions.create(model="fast", messages=[{"role": "user", "content": "ok?"}])
    assert reply.choices[0].message.content


def test_unknown_alias(gw):
    error = assert_openai_error(post(gw, "/v1/chat/completions", json={
        "model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}), 404, "model_not_found")
    assert "main" in error["message"]
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    still_serving(gw)


@pytest.mark.parametrize("key", [None, "wrong-key-0000000000"])
def test_missing_or_wrong_key(gw, key):
    body = {"model": "main", "messages": [{"role": "user", "content": "x"}]}
    error = assert_openai_error(post(gw, "/v1/chat/completions", key=key, json=body), 401)
    assert error["type"] == "authentication_error"
    assert_openai_error(httpx.get(gw.base_url + "/v1/models"), 401)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.api_base, api_key="nope", max_retries=0).models.list()
    still_serving(gw)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", "{\"model\": \"main\", \"messages\": [}".encode()])
def test_malformed_json_body(gw, body):
    assert_openai_error(post(gw, "/v1/chat/completions", content=body,
                             headers={"Content-Type": "application/json"}), 400)
    still_serving(gw)


@pytest.mark.parametrize("messages", [[], None, "hello", [{"content": "no role"}], ["str"]])
def test_empty_or_bad_messages(gw, messages):
    body = {"model": "main"} if messages is None else {"model": "main", "messages": messages}
    error = assert_openai_error(post(gw, "/v1/chat/completions", json=body), 400)
    assert "messages" in error["message"]
    still_serving(gw)


def test_missing_model(gw):
    assert_openai_error(post(gw, "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}), 400)


def test_missing_audio_file(gw):
    error = assert_openai_error(post(gw, "/v1/audio/transcriptions", data={"model": "stt"}), 400)
    assert error["param"] == "file"
    with pytest.raises(openai.BadRequestError):
        gw.client().audio.transcriptions.create(model="stt", file=("empty.wav", b""))
    still_serving(gw)


def test_audio_over_size_limit(gw):
    big = b"\0" * (1024 * 1024 + 10)  # this gateway runs with MODELGATE_MAX_AUDIO_MB=1
    error = assert_openai_error(post(gw, "/v1/audio/transcriptions", data={"model": "stt"},
                                     files={"file": ("big.wav", big, "audio/wav")}), 413)
    assert "MB" in error["message"]
    still_serving(gw)


def test_bad_transcription_params(gw):
    with AUDIO.open("rb") as f:
        audio = f.read()
    assert_openai_error(post(gw, "/v1/audio/transcriptions", data={"model": "stt", "response_format": "xml"},
                             files={"file": ("a.wav", audio)}), 400)
    assert_openai_error(post(gw, "/v1/audio/transcriptions", data={"model": "stt", "temperature": "hot"},
                             files={"file": ("a.wav", audio)}), 400)
    assert_openai_error(post(gw, "/v1/audio/transcriptions", data={"model": "nope"},
                             files={"file": ("a.wav", audio)}), 404)
    assert_openai_error(post(gw, "/v1/audio/transcriptions", content=b"garbage",
                             headers={"Content-Type": "multipart/form-data; boundary=x"}), 400)


def test_unknown_route_and_method(gw):
    assert_openai_error(httpx.get(gw.base_url + "/v1/nothing-here"), 404)
    assert_openai_error(httpx.get(gw.base_url + "/v1/chat/completions"), 405)


def test_upstream_400_tries_next_provider(gw, fake_providers):
    """Providers differ in what they accept, so one provider's 400 falls back to the next; when the
    whole chain fails the app gets the last error in OpenAI's shape, and the gateway keeps serving."""
    for fake in fake_providers.values():
        fake.reset()
    fake_providers["groq"].fail("400", count=1)
    body = {"model": "stt-realtime", "messages": [{"role": "user", "content": "x"}]}
    response = post(gw, "/v1/chat/completions", json={**body, "model": "fast"})
    assert response.status_code == 200
    assert response.headers["x-modelgate-deployment"] == "fast/openrouter"
    fake_providers["groq"].fail("400", count=1)
    fake_providers["openrouter"].fail("400", count=1)
    response = post(gw, "/v1/chat/completions", json={**body, "model": "fast"})
    # fast's last provider (local) is unreachable in these tests: the chain ends on a 502.
    error = assert_openai_error(response, 502)
    assert "Connection error" in error["message"]
    assert [len(f.requests()) for f in fake_providers.values()] == [2, 2, 0]
    still_serving(gw)
