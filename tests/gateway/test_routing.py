"""Aliases reach the right provider with the right upstream model and parameters."""

from __future__ import annotations

import groq
import httpx
import litellm
import pytest

from tests.support.proc import ROOT

AUDIO = ROOT / "tests" / "fixtures" / "audio"
MSG = [{"role": "user", "content": "Expand: chest pain troponin"}]


def only(fakes, provider: str) -> list[dict]:
    """Requests the fakes got, asserting that only `provider` got any."""
    for name, fake in fakes.items():
        if name != provider:
            assert fake.requests() == [], f"{name} got requests meant for {provider}"
    return fakes[provider].requests()


@pytest.mark.parametrize(("alias", "provider", "upstream"), [
    ("main", "groq", "llama-3.3-70b-versatile"),
    ("analysis", "groq", "llama-3.3-70b-versatile"),
    ("fast", "groq", "llama-3.1-8b-instant"),
    ("llama-3.3-70b-versatile", "groq", "llama-3.3-70b-versatile"),  # legacy name -> main
    ("llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),        # legacy name -> fast
])
def test_chat_alias_default_chain(gateway, fakes, alias, provider, upstream):
    raw = gateway.client().chat.completions.with_raw_response.create(
        model=alias, messages=MSG, temperature=0.2, max_tokens=50, top_p=0.9)
    reply = raw.parse()
    assert reply.choices[0].message.content
    assert raw.headers["x-modelgate-provider"] == provider
    assert raw.headers["x-modelgate-fallbacks"] == "0"
    [request] = only(fakes, provider)
    assert request["model"] == upstream
    assert request["temperature"] == 0.2 and request["max_tokens"] == 50 and request["top_p"] == 0.9
    assert request["authorization"] == "Bearer gsk_test"


def test_primary_provider_reorders_every_chain(start_gateway, fakes):
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openrouter"})
    client = gw.client()
    client.chat.completions.create(model="main", messages=MSG, response_format={"type": "json_object"})
    client.chat.completions.create(model="fast", messages=MSG)
    models = [r["model"] for r in only(fakes, "openrouter")]
    assert models == ["qwen/qwen-2.5-72b-instruct", "qwen/qwen-2.5-7b-instruct"]
    assert fakes["openrouter"].requests()[0]["response_format"] == {"type": "json_object"}


def test_openrouter_model_names_come_from_settings(start_gateway, fakes):
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openrouter", "OPENROUTER_MAIN_MODEL": "qwen/qwen3-235b",
                            "OPENROUTER_FAST_MODEL": "qwen/qwen3-8b"})
    gw.client().chat.completions.create(model="analysis", messages=MSG)
    gw.client().chat.completions.create(model="fast", messages=MSG)
    assert [r["model"] for r in only(fakes, "openrouter")] == ["qwen/qwen3-235b", "qwen/qwen3-8b"]


def test_fallback_providers_order(start_gateway, fakes):
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openai", "FALLBACK_PROVIDERS": "openrouter,groq"})
    chains = httpx.get(gw.base_url + "/health").json()["chains"]
    assert chains["stt"] == ["openai", "groq", "local"]
    assert chains["main"] == ["openrouter", "groq", "local"]  # main has no openai deployment
    assert chains["stt-realtime"] == ["openai", "groq", "local"]


@pytest.mark.parametrize(("alias", "provider", "upstream"), [
    ("stt", "groq", "whisper-large-v3-turbo"),
    ("whisper-large-v3-turbo", "groq", "whisper-large-v3-turbo"),
    ("whisper-large-v3", "groq", "whisper-large-v3-turbo"),
])
def test_transcription_params_reach_provider(gateway, fakes, alias, provider, upstream):
    with (AUDIO / "fa_history.wav").open("rb") as f:
        raw = gateway.client().audio.transcriptions.with_raw_response.create(
            model=alias, file=f, language="fa", prompt="فشار خون", temperature=0.0, response_format="verbose_json")
    body = raw.parse()
    assert body.text
    assert raw.headers["x-modelgate-provider"] == provider
    [request] = only(fakes, provider)
    assert request["model"] == upstream
    assert request["language"] == "fa" and request["prompt"] == "فشار خون"
    assert request["response_format"] == "verbose_json"
    assert request["audio_bytes"] == (AUDIO / "fa_history.wav").stat().st_size


def test_stt_on_openai_uses_configured_whisper_model(start_gateway, fakes):
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openai", "OPENAI_WHISPER_MODEL": "gpt-4o-mini-transcribe"})
    with (AUDIO / "en_orders.wav").open("rb") as f:
        text = gw.client().audio.transcriptions.create(model="stt", file=f, response_format="text")
    assert isinstance(text, str) and text.strip()
    [request] = only(fakes, "openai")
    assert request["model"] == "gpt-4o-mini-transcribe"
    assert request["response_format"] == "text"


def test_groq_sdk_against_groq_routes(gateway, fakes):
    """An app on the groq SDK only changes base_url and key."""
    client = groq.Groq(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    reply = client.chat.completions.create(model="llama-3.3-70b-versatile", messages=MSG)
    assert reply.choices[0].message.content
    with (AUDIO / "en_orders.wav").open("rb") as f:
        assert client.audio.transcriptions.create(model="whisper-large-v3-turbo", file=f).text
    ids = {m.id for m in client.models.list().data}
    assert {"main", "fast", "stt", "stt-realtime", "analysis", "llama-3.3-70b-versatile"} <= ids


def test_litellm_sdk_as_app_client(gateway, fakes):
    reply = litellm.completion(model="openai/fast", api_base=gateway.api_base, api_key=gateway.key,
                               messages=MSG, max_retries=0)
    assert reply.choices[0].message.content
    with (AUDIO / "en_orders.wav").open("rb") as f:
        text = litellm.transcription(model="openai/stt", api_base=gateway.api_base, api_key=gateway.key, file=f)
    assert text.text


def test_streaming_end_to_end(gateway, fakes):
    stream = gateway.client().chat.completions.create(model="fast", messages=MSG, stream=True,
                                                      stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert fakes["groq"].requests()[0]["stream"] is True
