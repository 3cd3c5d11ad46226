"""Fallback follows the chain on every failure kind, cooldown keeps a failing deployment out."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.support.proc import ROOT, free_port

MSG = [{"role": "user", "content": "Summarise: 52 year old man, chest pain"}]
AUDIO = ROOT / "tests" / "fixtures" / "audio" / "en_orders.wav"


def chat(gateway, model: str = "main", **kwargs):
    return gateway.client().chat.completions.with_raw_response.create(model=model, messages=MSG, **kwargs)


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "drop"])
def test_chat_falls_back_on_each_failure_kind(gateway, fakes, kind):
    fakes["groq"].fail(kind, count=1)
    raw = chat(gateway)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-modelgate-deployment"] == "main/openrouter"
    assert raw.headers["x-modelgate-fallbacks"] == "1"
    assert len(fakes["groq"].requests()) == 1
    assert len(fakes["openrouter"].requests()) == 1


def test_hang_costs_one_timeout_then_cooldown(start_gateway, fakes):
    gw = start_gateway(config={"timeouts": {"groq": 1.0}, "router_settings": {"cooldown_time": 30}})
    fakes["groq"].fail("hang", count=-1)
    started = time.monotonic()
    first = chat(gw)
    first_s = time.monotonic() - started
    assert first.headers["x-modelgate-provider"] == "openrouter"
    assert 0.9 <= first_s < 5
    # The hung deployment is cooling down: the next requests go straight to the fallback.
    for _ in range(5):
        raw = chat(gw)
        assert raw.headers["x-modelgate-provider"] == "openrouter"
        assert raw.headers["x-modelgate-fallbacks"] == "0"
    assert len(fakes["groq"].requests()) == 1


def test_hang_releases_waiting_requests_at_cooldown(start_gateway, fakes):
    """Requests that reached the hung provider after the first one fail over when it is cooled
    down, not each after its own timeout."""
    gw = start_gateway(config={"timeouts": {"groq": 3.0}, "router_settings": {"cooldown_time": 30}})
    fakes["groq"].fail("hang", count=-1)
    client = gw.client()
    t0 = time.monotonic()

    def one(delay: float) -> tuple[float, float, str]:
        time.sleep(delay)
        start = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(model="main", messages=MSG)
        assert raw.parse().choices[0].message.content
        return start - t0, time.monotonic() - t0, raw.headers["x-modelgate-provider"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, [0, 1.2, 1.4, 1.6]))
    assert [provider for *_, provider in results] == ["openrouter"] * 4
    assert len(fakes["groq"].requests()) == 4  # all four were waiting on it
    first_end = results[0][1]
    assert 2.7 <= first_end < 5
    for start, end, _ in results[1:]:
        # Each would otherwise have ended at start + 3 s >= 4.2 s; they end with the first one.
        assert end < first_end + 0.8, (start, end, first_end)
        assert end - start < 2.4


def test_connection_refused_falls_back(start_gateway, fakes):
    gw = start_gateway(env={"GROQ_API_BASE": f"http://127.0.0.1:{free_port()}/openai/v1"})
    raw = chat(gw)
    assert raw.headers["x-modelgate-provider"] == "openrouter"


def test_cooldown_window_then_recovery(start_gateway, fakes):
    gw = start_gateway(config={"router_settings": {"cooldown_time": 2}})
    fakes["groq"].fail("503", count=1)
    assert chat(gw).headers["x-modelgate-provider"] == "openrouter"
    assert chat(gw).headers["x-modelgate-provider"] == "openrouter"  # still cooling down
    assert len(fakes["groq"].requests()) == 1
    time.sleep(2.5)
    assert chat(gw).headers["x-modelgate-provider"] == "groq"  # back after the window


def test_whole_chain_walk_to_last_provider(gateway, fakes):
    fakes["groq"].fail("500", count=1)
    fakes["openrouter"].fail("429", count=1)
    # main's local deployment points at a closed port in these tests: every provider fails.
    with pytest.raises(Exception) as info:
        chat(gateway)
    assert getattr(info.value, "status_code", 0) >= 400
    raw = chat(gateway, model="fast")  # a different alias is unaffected by main's cooldowns
    assert raw.headers["x-modelgate-provider"] == "groq"


def test_transcription_falls_back(gateway, fakes):
    fakes["groq"].fail("500", count=1, path_contains="audio")
    with AUDIO.open("rb") as f:
        raw = gateway.client().audio.transcriptions.with_raw_response.create(model="stt", file=f, language="en")
    assert raw.parse().text
    assert raw.headers["x-modelgate-deployment"] == "stt/openai"
    assert raw.headers["x-modelgate-fallbacks"] == "1"


def test_transcription_hang_releases_waiting_requests_at_cooldown(start_gateway, fakes):
    gw = start_gateway(config={"timeouts": {"groq": 3.0}, "router_settings": {"cooldown_time": 30}})
    fakes["groq"].fail("hang", count=-1, path_contains="audio")
    client = gw.client()
    t0 = time.monotonic()

    def one(delay: float) -> tuple[float, float, str]:
        time.sleep(delay)
        start = time.monotonic()
        with AUDIO.open("rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(model="stt", file=f, language="en")
        assert raw.parse().text
        return start - t0, time.monotonic() - t0, raw.headers["x-modelgate-deployment"]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        (_, first_end, first), (start, end, second) = pool.map(one, [0, 1.5])
    assert first == second == "stt/openai"
    assert end < first_end + 0.8 and end - start < 2.4, (start, end, first_end)  # not start + 3 s


def test_stream_failing_before_first_token_falls_back(gateway, fakes):
    fakes["groq"].fail("stream_error_first", count=1)
    stream = gateway.client().chat.completions.create(model="main", messages=MSG, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "openrouter" in text.lower() or "qwen" in text.lower()
    assert len(fakes["openrouter"].requests()) == 1


def test_stream_429_before_headers_falls_back(gateway, fakes):
    fakes["groq"].fail("429", count=1, stream=True)
    stream = gateway.client().chat.completions.create(model="fast", messages=MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert len(fakes["openrouter"].requests()) == 1


def test_no_request_lost_under_concurrent_failures(start_gateway, fakes):
    gw = start_gateway(config={"router_settings": {"cooldown_time": 1}})
    fakes["groq"].fail("500", count=10)
    client = gw.client()

    def one(i: int) -> str:
        raw = client.chat.completions.with_raw_response.create(model="fast", messages=MSG, user=f"u{i}")
        assert raw.parse().choices[0].message.content
        return raw.headers["x-modelgate-provider"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        providers = list(pool.map(one, range(40)))
    assert len(providers) == 40
    assert "openrouter" in providers


def test_fallback_disabled_returns_first_error(start_gateway, fakes):
    gw = start_gateway(env={"ENABLE_FALLBACK": "false"})
    fakes["groq"].fail("503", count=1)
    response = httpx.post(gw.api_base + "/chat/completions", json={"model": "main", "messages": MSG},
                          headers={"Authorization": f"Bearer {gw.key}"}, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"]["message"]
    assert fakes["openrouter"].requests() == []
