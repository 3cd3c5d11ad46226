"""The fake providers are wire-compatible: the real SDKs (groq, openai) and LiteLLM accept what they send,
and every fault kind surfaces to those clients the way the real service's failure would."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import wave
from pathlib import Path

import groq
import httpx
import jsonschema
import litellm
import openai
import pytest

from tests.fakes.client import FakeProvider
from tests.fakes.content import schema_instance, split_chunks, wav_duration

AUDIO = Path(__file__).parent / "fixtures" / "audio"
WAV = AUDIO / "en_orders.wav"
GROQ_CHAT = "llama-3.3-70b-versatile"
OR_72B = "qwen/qwen-2.5-72b-instruct"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there doctor"}]

PATIENT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "age": {"type": "integer", "minimum": 18},
        "weight": {"type": "number", "exclusiveMinimum": 0},
        "urgent": {"type": "boolean"},
        "triage": {"enum": ["red", "amber", "green"]},
        "notes": {"type": ["string", "null"]},
        "orders": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/order"}},
        "vitals": {
            "type": "object",
            "properties": {"hr": {"type": "integer"}},
            "required": ["hr"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "weight", "urgent", "triage", "notes", "orders", "vitals"],
    "additionalProperties": False,
    "$defs": {
        "order": {
            "type": "object",
            "properties": {"drug": {"type": "string"}, "dose_mg": {"type": "number"}},
            "required": ["drug", "dose_mg"],
            "additionalProperties": False,
        }
    },
}


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# ---- clients -----------------------------------------------------------------------------------------------
def groq_client(fake: FakeProvider, **kw) -> groq.Groq:
    # The groq SDK's base_url is the host; it adds /openai/v1/... itself.
    return groq.Groq(base_url=fake.base_url, api_key="gsk_test", max_retries=0, **kw)


def openai_client(fake: FakeProvider, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.api_base, api_key="sk-test", max_retries=0, **kw)


def lite_chat(fake: FakeProvider, **kw):
    model = {
        "groq": f"groq/{GROQ_CHAT}",
        "openrouter": f"openrouter/{OR_72B}",
        "openai": "openai/gpt-4o-mini",
    }
    return litellm.completion(
        model=model[fake.provider],
        api_base=fake.api_base,
        api_key="k",
        messages=MESSAGES,
        num_retries=0,
        **kw,
    )


# ---- content helpers (no process) --------------------------------------------------------------------------
def test_schema_instance_validates_nested_schema():
    instance = schema_instance(PATIENT_SCHEMA)
    jsonschema.validate(instance, PATIENT_SCHEMA)
    assert instance["triage"] == "red" and len(instance["orders"]) == 2


@pytest.mark.parametrize("content", ["groq m reply", "a", '{"a": 1, "b": [1, 2]}', "one two three four five"])
def test_split_chunks_rejoins(content):
    assert "".join(split_chunks(content)) == content


def test_wav_duration_reads_header_and_falls_back():
    assert wav_duration(WAV.read_bytes()) == pytest.approx(wav_seconds(WAV), abs=1e-3)
    assert wav_duration(b"\0" * 64000) == 2.0


# ---- Groq --------------------------------------------------------------------------------------------------
def test_groq_sdk_chat(fakes):
    fake = fakes["groq"]
    raw = groq_client(fake).chat.completions.with_raw_response.create(
        model=GROQ_CHAT, messages=MESSAGES, temperature=0.2, max_tokens=50
    )
    for header in (
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
    ):
        assert raw.headers[header]
    reply = raw.parse()
    assert reply.id.startswith("chatcmpl-") and reply.system_fingerprint.startswith("fp_")
    assert reply.choices[0].message.content == f"groq {GROQ_CHAT} reply"
    assert reply.choices[0].logprobs is None and reply.service_tier == "on_demand"
    assert reply.x_groq.id.startswith("req_") and raw.headers["x-request-id"] == reply.x_groq.id
    assert (
        reply.usage.prompt_tokens == 5
        and reply.usage.completion_tokens == 3
        and reply.usage.total_tokens == 8
    )
    assert reply.usage.queue_time > 0 and reply.usage.total_time > 0
    seen = fake.last_request()
    assert (seen["model"], seen["messages"], seen["temperature"], seen["max_tokens"]) == (
        GROQ_CHAT,
        2,
        0.2,
        50,
    )
    assert seen["authorization"] == "Bearer gsk_test" and seen["path"] == "/openai/v1/chat/completions"


def test_groq_sdk_stream(fakes):
    # The groq SDK has no stream_options: Groq reports stream usage in the last chunk's x_groq.usage.
    chunks = list(
        groq_client(fakes["groq"]).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == f"groq {GROQ_CHAT} reply"
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].x_groq.id.startswith("req_")
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].x_groq.usage.completion_tokens == 3
    assert chunks[-1].x_groq.usage.total_tokens == 8
    assert fakes["groq"].last_request()["stream"] is True


def test_groq_sdk_transcription_formats(fakes):
    client = groq_client(fakes["groq"])
    with WAV.open("rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="whisper-large-v3-turbo", language="en")
    assert plain.text == "groq transcript en" and plain.x_groq["id"].startswith("req_")
    with WAV.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f,
            model="whisper-large-v3-turbo",
            language="fa",
            response_format="verbose_json",
            prompt="cardiology",
            timestamp_granularities=["word", "segment"],
        )
    extra = verbose.model_extra
    assert extra["language"] == "Persian" and extra["task"] == "transcribe" and "x_groq" in extra
    assert extra["duration"] == pytest.approx(wav_seconds(WAV), abs=1e-3)
    assert extra["segments"][-1]["end"] <= extra["duration"] and len(extra["words"]) == 3
    with WAV.open("rb") as f:
        text = client.audio.transcriptions.create(file=f, model="whisper-large-v3", response_format="text")
    assert text.strip() == "groq transcript"
    seen = fakes["groq"].requests("audio")[1]
    assert seen["language"] == "fa" and seen["prompt"] == "cardiology" and seen["filename"] == "en_orders.wav"
    assert seen["audio_bytes"] == WAV.stat().st_size and seen["audio_response_format"] == "verbose_json"
    assert seen["timestamp_granularities"] == ["word", "segment"]


def test_groq_rejects_subtitle_formats_like_groq(fakes):
    with WAV.open("rb") as f, pytest.raises(groq.BadRequestError):
        groq_client(fakes["groq"]).audio.transcriptions.create(
            file=f, model="whisper-large-v3", response_format="srt"
        )


# ---- OpenAI ------------------------------------------------------------------------------------------------
def test_openai_sdk_chat(fakes):
    raw = openai_client(fakes["openai"]).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, top_p=0.9, user="clinician-7"
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "openai gpt-4o-mini reply"
    assert reply.service_tier == "default" and reply.system_fingerprint.startswith("fp_")
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_") and raw.headers["openai-processing-ms"]
    assert raw.headers["x-ratelimit-remaining-tokens"]
    seen = fakes["openai"].last_request()
    assert (seen["top_p"], seen["user"], seen["authorization"]) == (0.9, "clinician-7", "Bearer sk-test")


def test_openai_sdk_stream_with_usage(fakes):
    chunks = list(
        openai_client(fakes["openai"]).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "openai gpt-4o-mini reply"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


def test_openai_sdk_transcription_formats(fakes):
    client = openai_client(fakes["openai"])
    seconds = wav_seconds(WAV)
    with WAV.open("rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="whisper-1", language="en")
    assert plain.text == "openai transcript en"
    assert plain.usage.type == "duration" and plain.usage.seconds == math.ceil(seconds)
    with WAV.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert verbose.language == "english" and verbose.duration == pytest.approx(seconds, abs=1e-3)
    assert [w.word for w in verbose.words] == ["openai", "transcript"] and verbose.words[
        -1
    ].end <= verbose.duration
    with WAV.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", language="fa", temperature=0.0
        )
    assert verbose.language == "persian" and verbose.segments[0].start == 0.0 and verbose.words is None
    with WAV.open("rb") as f:
        assert (
            client.audio.transcriptions.create(file=f, model="whisper-1", response_format="text").strip()
            == "openai transcript"
        )
    with WAV.open("rb") as f:
        srt = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:0")
    with WAV.open("rb") as f:
        assert client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="vtt"
        ).startswith("WEBVTT\n\n00:00:00.000 --> ")
    with WAV.open("rb") as f:
        translated = client.audio.translations.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert translated.text == "openai translation" and translated.language == "english"
    assert fakes["openai"].last_request()["path"] == "/v1/audio/translations"


def test_transcription_reply_override_and_wav_fallback(fakes):
    fake = fakes["openai"]
    fake.reply(text="chest pain for two hours")
    with httpx.Client() as http:
        got = http.post(
            f"{fake.api_base}/audio/transcriptions",
            headers={"authorization": "Bearer k"},
            data={"model": "whisper-1", "response_format": "verbose_json"},
            files={"file": ("clip.mp3", b"\1" * 48000, "audio/mpeg")},
        ).json()
    assert got["text"] == "chest pain for two hours" and got["duration"] == 1.5
    assert len(got["segments"]) == 1 and got["segments"][0]["end"] == 1.5


# ---- OpenRouter --------------------------------------------------------------------------------------------
def test_openrouter_chat_with_cost(fakes):
    fake = fakes["openrouter"]
    reply = openai_client(fake).chat.completions.create(model=OR_72B, messages=MESSAGES)
    assert reply.id.startswith("gen-") and reply.provider == "DeepInfra"
    assert reply.choices[0].message.content == f"openrouter {OR_72B} reply"
    assert reply.choices[0].native_finish_reason == "stop"
    assert reply.usage.cost == pytest.approx(5 * 0.12e-6 + 3 * 0.39e-6)
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    small = openai_client(fake).chat.completions.create(model="qwen/qwen-2.5-7b-instruct", messages=MESSAGES)
    assert small.usage.cost == pytest.approx(5 * 0.04e-6 + 3 * 0.10e-6)
    fake.set_price(OR_72B, prompt=1e-6, completion=2e-6)
    assert openai_client(fake).chat.completions.create(
        model=OR_72B, messages=MESSAGES
    ).usage.cost == pytest.approx(5e-6 + 6e-6)
    assert {m["id"] for m in httpx.get(f"{fake.api_base}/models").json()["data"]} >= {OR_72B}


def test_openrouter_stream_has_comments_and_final_usage(fakes):
    fake = fakes["openrouter"]
    with httpx.stream(
        "POST",
        f"{fake.api_base}/chat/completions",
        headers={"authorization": "Bearer k"},
        json={"model": OR_72B, "messages": MESSAGES, "stream": True},
    ) as response:
        body = response.read().decode()
    assert body.startswith(": OPENROUTER PROCESSING\n\n") and body.rstrip().endswith("data: [DONE]")
    chunks = list(openai_client(fake).chat.completions.create(model=OR_72B, messages=MESSAGES, stream=True))
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"openrouter {OR_72B} reply"
    )
    assert chunks[-1].usage.cost > 0 and chunks[-1].provider == "DeepInfra"


def test_openrouter_has_no_audio(fakes):
    with WAV.open("rb") as f, pytest.raises(openai.NotFoundError) as err:
        openai_client(fakes["openrouter"]).audio.transcriptions.create(file=f, model="whisper-1")
    assert err.value.body["code"] == 404


# ---- JSON modes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_json_modes(fakes, provider):
    client = openai_client(fakes[provider])
    obj = client.chat.completions.create(
        model="m", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(obj.choices[0].message.content) == {
        "provider": provider,
        "model": "m",
        "answer": f"{provider} m reply",
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "patient", "strict": True, "schema": PATIENT_SCHEMA},
    }
    structured = client.chat.completions.create(model="m", messages=MESSAGES, response_format=fmt)
    jsonschema.validate(json.loads(structured.choices[0].message.content), PATIENT_SCHEMA)
    assert fakes[provider].last_request()["response_format"] == fmt


def test_reply_override(fakes):
    fakes["groq"].reply(content="not { json")
    reply = groq_client(fakes["groq"]).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES)
    assert reply.choices[0].message.content == "not { json"
    fakes["groq"].reset()
    reply = groq_client(fakes["groq"]).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES)
    assert reply.choices[0].message.content == f"groq {GROQ_CHAT} reply"


# ---- LiteLLM -----------------------------------------------------------------------------------------------
def test_litellm_groq_chat_keeps_x_groq(fakes):
    reply = lite_chat(fakes["groq"], temperature=0.1)
    assert reply.choices[0].message.content == f"groq {GROQ_CHAT} reply"
    assert reply.x_groq["id"].startswith("req_")  # Groq's x_groq survives as a top-level attribute
    assert reply.usage.queue_time == 0.021  # ... and its timing fields as extra usage fields
    assert reply.service_tier == "auto"  # LiteLLM maps Groq's "on_demand" to "auto"
    assert fakes["groq"].last_request()["temperature"] == 0.1


def test_litellm_openrouter_cost(fakes):
    reply = lite_chat(fakes["openrouter"])
    expected = 5 * 0.12e-6 + 3 * 0.39e-6
    assert reply.usage.cost == pytest.approx(expected)
    assert reply._hidden_params["response_cost"] == pytest.approx(expected)
    assert reply._hidden_params["additional_headers"][
        "llm_provider-x-litellm-response-cost"
    ] == pytest.approx(expected)
    assert reply.provider == "DeepInfra"  # OpenRouter's upstream provider, top-level
    body = fakes["openrouter"].last_request()["body"]
    assert body["usage"] == {"include": True}  # LiteLLM always asks OpenRouter for usage/cost


@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_litellm_streams(fakes, provider):
    chunks = list(lite_chat(fakes[provider], stream=True, stream_options={"include_usage": True}))
    model = {"groq": GROQ_CHAT, "openrouter": OR_72B, "openai": "gpt-4o-mini"}[provider]
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"{provider} {model} reply"
    )
    usage = litellm.stream_chunk_builder(chunks, messages=MESSAGES).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 3)
    if provider == "openrouter":
        assert [c.usage.cost for c in chunks if getattr(c, "usage", None)][-1] > 0


def test_litellm_transcriptions(fakes):
    with WAV.open("rb") as f:
        groq_reply = litellm.transcription(
            model="groq/whisper-large-v3-turbo",
            file=f,
            language="en",
            api_base=fakes["groq"].api_base,
            api_key="k",
            max_retries=0,
        )
    assert groq_reply.text == "groq transcript en"
    with WAV.open("rb") as f:
        oa = litellm.transcription(
            model="openai/whisper-1",
            file=f,
            response_format="verbose_json",
            api_base=fakes["openai"].api_base,
            api_key="k",
            max_retries=0,
        )
    assert oa.text == "openai transcript" and oa.language == "english"
    assert oa.duration == pytest.approx(wav_seconds(WAV), abs=1e-3) and oa.usage.seconds == 5
    assert fakes["openai"].last_request()["model"] == "whisper-1"
    assert fakes["groq"].last_request()["model"] == "whisper-large-v3-turbo"


# ---- faults through the SDKs -------------------------------------------------------------------------------
def test_429_carries_retry_after(fakes):
    fakes["groq"].fail("429", retry_after=3)
    with pytest.raises(groq.RateLimitError) as err:
        groq_client(fakes["groq"]).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES)
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.body["error"]["code"] == "rate_limit_exceeded"
    fakes["openrouter"].fail(429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as err:
        openai_client(fakes["openrouter"]).chat.completions.create(model=OR_72B, messages=MESSAGES)
    headers = err.value.response.headers
    assert headers["retry-after"] == "2" and headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) > time.time() * 1000
    assert err.value.body["code"] == 429 and err.value.body["metadata"]["provider_name"] == "DeepInfra"


@pytest.mark.parametrize(
    "status,exc",
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_status_faults(fakes, provider, status, exc):
    fakes[provider].fail(str(status))
    with pytest.raises(exc) as err:
        openai_client(fakes[provider]).chat.completions.create(model="m", messages=MESSAGES)
    assert err.value.status_code == status
    code = err.value.body["code"] if provider == "openrouter" else None
    assert code in (None, status)
    openai_client(fakes[provider]).chat.completions.create(model="m", messages=MESSAGES)  # count=1: used up


def test_missing_key_is_401(fakes):
    response = httpx.post(
        f"{fakes['openai'].api_base}/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_hang_times_out_without_blocking_others(fakes):
    fake = fakes["openai"]
    fake.fail("hang", model="stuck")
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        openai_client(fake, timeout=0.5).chat.completions.create(model="stuck", messages=MESSAGES)
    assert time.monotonic() - start < 3

    fake.fail("hang", model="stuck")
    outcome = {}

    def long_wait():
        try:
            outcome["status"] = httpx.post(
                f"{fake.api_base}/chat/completions",
                timeout=30,
                headers={"authorization": "Bearer k"},
                json={"model": "stuck", "messages": MESSAGES},
            ).status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    waiter = threading.Thread(target=long_wait)
    waiter.start()
    fake.wait_requests(2)
    assert fake.state()["requests"] == 2  # control API answers
    assert openai_client(fake).chat.completions.create(model="ok", messages=MESSAGES).choices  # others too
    assert waiter.is_alive()
    fake.reset()  # releases the held request
    waiter.join(5)
    assert not waiter.is_alive() and outcome == {"status": 503}


def test_slow(fakes):
    fakes["groq"].fail("slow", delay_s=0.6)
    start = time.monotonic()
    reply = groq_client(fakes["groq"]).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES)
    assert time.monotonic() - start >= 0.6 and reply.choices[0].message.content
    fakes["groq"].fail("slow", delay_s=2)
    with pytest.raises(groq.APITimeoutError):
        groq_client(fakes["groq"], timeout=0.5).chat.completions.create(model=GROQ_CHAT, messages=MESSAGES)


@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_drop_is_a_connection_error_not_a_500(fakes, provider):
    fake = fakes[provider]
    fake.fail("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{fake.api_base}/chat/completions",
            headers={"authorization": "Bearer k"},
            json={"model": "m", "messages": MESSAGES},
        )
    fake.fail("drop")
    with pytest.raises(openai.APIConnectionError) as err:
        openai_client(fake).chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(err.value, openai.APITimeoutError)
    assert [r["fault"] for r in fake.requests()] == ["drop", "drop"]


@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_stream_error_after_tokens(fakes, provider):
    fakes[provider].fail("stream_error")
    got = []
    with pytest.raises(openai.APIError) as err:
        for chunk in openai_client(fakes[provider]).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            got.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert any(got) and not isinstance(err.value, openai.APIStatusError)  # a 200 stream that broke
    if provider == "openrouter":
        assert err.value.body["code"] == 502


@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_stream_error_first(fakes, provider):
    fakes[provider].fail("stream_error_first")
    stream = openai_client(fakes[provider]).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        next(iter(stream))


def test_stream_faults_skip_non_stream_requests(fakes):
    fakes["openai"].fail("stream_error")
    assert openai_client(fakes["openai"]).chat.completions.create(model="m", messages=MESSAGES).choices
    assert len(fakes["openai"].state()["faults"]) == 1


def test_stream_stall(fakes):
    fakes["groq"].fail("stream_stall")
    got = []
    with pytest.raises((groq.APITimeoutError, httpx.ReadTimeout)):
        for chunk in groq_client(fakes["groq"], timeout=0.5).chat.completions.create(
            model=GROQ_CHAT, messages=MESSAGES, stream=True
        ):
            got.append(chunk.choices[0].delta.content)
    assert got and got[0] == ""


def test_invalid_json(fakes):
    fakes["openrouter"].fail("invalid_json")
    reply = openai_client(fakes["openrouter"]).chat.completions.create(
        model=OR_72B, messages=MESSAGES, response_format={"type": "json_object"}
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.choices[0].message.content)
    fakes["openai"].fail("invalid_json", path_contains="audio")
    with WAV.open("rb") as f, pytest.raises(json.JSONDecodeError):
        openai_client(fakes["openai"]).audio.transcriptions.create(file=f, model="whisper-1")


def test_count_match_and_forever(fakes):
    fake = fakes["groq"]
    client = groq_client(fake)
    fake.fail("503", count=2, path_contains="audio")
    fake.fail("500", count=-1, model="llama-3.1-8b-instant")
    assert client.chat.completions.create(model=GROQ_CHAT, messages=MESSAGES).choices  # neither matches
    for _ in range(3):
        with pytest.raises(groq.InternalServerError):
            client.chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    for _ in range(2):
        with WAV.open("rb") as f, pytest.raises(groq.InternalServerError) as err:
            client.audio.transcriptions.create(file=f, model="whisper-large-v3")
        assert err.value.status_code == 503
    with WAV.open("rb") as f:
        assert client.audio.transcriptions.create(file=f, model="whisper-large-v3").text
    state = fake.state()
    assert [(f["kind"], f["count"]) for f in state["faults"]] == [("500", -1)]
    log = fake.requests()
    assert [r["fault"] for r in log] == [None, "500", "500", "500", "503", "503", None]
    fake.clear_requests()
    assert fake.requests() == []


def test_control_rejects_unknown_faults(fakes):
    for bad in ({"kind": "explode"}, {"kind": "429", "count": 0}, {"kind": "429", "match": {"path": "x"}}):
        with pytest.raises(ValueError):
            fakes["openai"].control(faults=[bad])
    assert fakes["openai"].state()["faults"] == []


# ---- faults through LiteLLM: the exception each one becomes ------------------------------------------------
LITELLM_FAULTS = [
    ("groq", "429", litellm.RateLimitError),
    ("groq", "500", litellm.InternalServerError),
    ("groq", "502", litellm.BadGatewayError),
    ("groq", "503", litellm.ServiceUnavailableError),
    ("groq", "400", litellm.BadRequestError),
    ("groq", "401", litellm.BadRequestError),  # sic: Groq 401 -> 400 class
    ("groq", "drop", litellm.InternalServerError),
    ("openrouter", "429", litellm.RateLimitError),
    ("openrouter", "500", litellm.APIError),
    ("openrouter", "502", litellm.APIError),
    ("openrouter", "503", litellm.ServiceUnavailableError),
    ("openrouter", "400", litellm.BadRequestError),
    ("openrouter", "401", litellm.AuthenticationError),
    ("openrouter", "drop", litellm.APIConnectionError),
    ("openai", "429", litellm.RateLimitError),
    ("openai", "500", litellm.InternalServerError),
    ("openai", "502", litellm.BadGatewayError),
    ("openai", "503", litellm.ServiceUnavailableError),
    ("openai", "400", litellm.BadRequestError),
    ("openai", "401", litellm.AuthenticationError),
    ("openai", "drop", litellm.InternalServerError),
]


@pytest.mark.parametrize("provider,kind,exc", LITELLM_FAULTS, ids=[f"{p}-{k}" for p, k, _ in LITELLM_FAULTS])
def test_litellm_fault_mapping(fakes, provider, kind, exc):
    fakes[provider].fail(kind)
    with pytest.raises(exc) as err:
        lite_chat(fakes[provider])
    assert type(err.value) is exc
    assert len(fakes[provider].requests()) == 1  # num_retries=0: no retry inside LiteLLM


@pytest.mark.parametrize("provider", ["groq", "openrouter", "openai"])
def test_litellm_hang_is_timeout(fakes, provider):
    fakes[provider].fail("hang")
    with pytest.raises(litellm.Timeout):
        lite_chat(fakes[provider], timeout=0.5)


@pytest.mark.parametrize("provider,status", [("groq", 503), ("openrouter", 502), ("openai", 500)])
@pytest.mark.parametrize("kind", ["stream_error", "stream_error_first"])
def test_litellm_stream_errors(fakes, provider, status, kind):
    fakes[provider].fail(kind)
    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as err:
        for _ in lite_chat(fakes[provider], stream=True):
            pass
    assert err.value.status_code == status


def test_litellm_invalid_json_is_returned_as_is(fakes):
    fakes["groq"].fail("invalid_json")
    reply = lite_chat(fakes["groq"], response_format={"type": "json_object"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.choices[0].message.content)


@pytest.mark.parametrize(
    "provider,model", [("groq", "groq/whisper-large-v3-turbo"), ("openai", "openai/whisper-1")]
)
def test_litellm_transcription_faults(fakes, provider, model):
    """Sync litellm.transcription raises the openai SDK's exceptions unmapped; atranscription maps them."""
    fake = fakes[provider]
    fake.fail("429")
    with WAV.open("rb") as f, pytest.raises(openai.RateLimitError) as err:
        litellm.transcription(model=model, file=f, api_base=fake.api_base, api_key="k", max_retries=0)
    assert not isinstance(err.value, litellm.RateLimitError)
    fake.fail("429")

    async def mapped():
        with WAV.open("rb") as f:
            await litellm.atranscription(
                model=model, file=f, api_base=fake.api_base, api_key="k", max_retries=0
            )

    with pytest.raises(litellm.RateLimitError):
        asyncio.run(mapped())
    assert len(fake.requests()) == 2
