"""The cost ledger: one committed row per call, with the usage and prices the providers reported."""

from __future__ import annotations

import threading
import time
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from plugins.ledger_store import LedgerStore
from tests.support.proc import ROOT

AUDIO = ROOT / "tests" / "fixtures" / "audio"
SECRET = "patient Zorbluth has crushing chest pain"   # must never reach the ledger
GROQ_70B = (0.59e-6, 0.79e-6)     # config/models.yaml model_info of main/groq, USD per token
GROQ_WHISPER = 1.111e-05          # LiteLLM's price map, groq/whisper-large-v3-turbo, USD per second
OPENAI_WHISPER = 0.0001           # LiteLLM's price map, whisper-1, USD per second


def ledger_rows(gw, **where) -> list[dict]:
    store = LedgerStore(gw.ledger_url, create=False)
    try:
        return store.rows(**where)
    finally:
        store.close()


def one_row(gw, user: str) -> dict:
    rows = ledger_rows(gw, end_user=user)
    assert len(rows) == 1, rows
    return rows[0]


def wav_seconds(path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_rows_match_provider_usage_and_prices(gateway, fakes):
    client = gateway.client()

    # Chat on Groq, priced by the YAML's model_info (LiteLLM's bundled map has no llama-3.3 price).
    reply = client.chat.completions.create(model="main", messages=[{"role": "user", "content": SECRET}], user="u-chat")
    row = one_row(gateway, "u-chat")
    assert (row["kind"], row["alias"], row["model_group"], row["provider"], row["deployment"], row["model"]) == \
        ("chat", "main", "main", "groq", "main/groq", "groq/llama-3.3-70b-versatile")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    expected = reply.usage.prompt_tokens * GROQ_70B[0] + reply.usage.completion_tokens * GROQ_70B[1]
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-9) and row["cost_source"] == "config"
    assert (row["status"], row["http_status"], row["error_class"], row["fallback_depth"]) == ("ok", 200, None, 0)
    assert row["cohort"] == "migration" and row["shadow"] is False and row["stream"] is False
    assert 0 < row["latency_ms"] < 30_000

    # JSON on OpenRouter after a Groq failure: OpenRouter's own usage.cost wins over any price map.
    fakes["openrouter"].set_price("qwen/qwen-2.5-72b-instruct", prompt=0.003, completion=0.007)
    fakes["groq"].fail("500", count=1)
    raw = client.chat.completions.with_raw_response.create(
        model="analysis", messages=[{"role": "user", "content": "Return JSON for: fever"}],
        response_format={"type": "json_object"}, user="u-json")
    body = raw.parse()
    assert raw.headers["x-modelgate-provider"] == "openrouter"
    row = one_row(gateway, "u-json")
    assert (row["provider"], row["deployment"], row["fallback_depth"]) == ("openrouter", "analysis/openrouter", 1)
    assert row["cost_source"] == "provider"
    assert row["cost_usd"] == pytest.approx(body.usage.cost, rel=1e-12)
    assert row["cost_usd"] == pytest.approx(body.usage.prompt_tokens * 0.003 + body.usage.completion_tokens * 0.007)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (body.usage.prompt_tokens, body.usage.completion_tokens)

    # Transcription, verbose_json: the provider's duration; json (Groq sends none): the WAV header.
    with (AUDIO / "en_orders.wav").open("rb") as f:
        verbose = client.audio.transcriptions.create(model="stt", file=f, response_format="verbose_json",
                                                     extra_headers={"x-modelgate-user": "u-stt-verbose"})
    row = one_row(gateway, "u-stt-verbose")
    assert (row["kind"], row["alias"], row["provider"], row["model"]) == \
        ("transcription", "stt", "groq", "groq/whisper-large-v3-turbo")
    assert row["audio_seconds"] == pytest.approx(verbose.duration, abs=1e-3)
    assert row["cost_usd"] == pytest.approx(row["audio_seconds"] * GROQ_WHISPER, rel=1e-9)
    assert row["cost_source"] == "price_map" and row["prompt_tokens"] == row["completion_tokens"] == 0
    with (AUDIO / "fa_history.wav").open("rb") as f:  # the form's `user` wins over the header, as in chat
        client.audio.transcriptions.create(model="whisper-large-v3-turbo", file=f, extra_body={"user": "u-stt-json"},
                                           extra_headers={"x-modelgate-user": "u-stt-header"})
    row = one_row(gateway, "u-stt-json")
    assert row["alias"] == "stt"  # the legacy name is recorded as its alias
    assert row["audio_seconds"] == pytest.approx(wav_seconds(AUDIO / "fa_history.wav"), abs=1e-3)

    # Streams: a row once the last chunk is out, tokens and cost included.
    stream = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": SECRET}],
                                            user="u-stream", stream=True, stream_options={"include_usage": True})
    usage = [c.usage for c in stream if c.usage][-1]
    row = one_row(gateway, "u-stream")
    assert row["stream"] is True and (row["prompt_tokens"], row["completion_tokens"]) == \
        (usage.prompt_tokens, usage.completion_tokens)
    assert row["cost_usd"] == pytest.approx(usage.prompt_tokens * 0.05e-6 + usage.completion_tokens * 0.08e-6)
    list(client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "a b c"}],
                                        user="u-stream-nousage", stream=True))
    row = one_row(gateway, "u-stream-nousage")  # no usage from the provider: counted here
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["cost_source"] == "estimate"

    # A call that fails everywhere is recorded too, with its error class and no cost.
    for fake in ("groq", "openrouter"):
        fakes[fake].fail("503", count=1)
    with pytest.raises(Exception):
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "x"}], user="u-fail")
    row = one_row(gateway, "u-fail")
    assert row["status"] == "error" and row["error_class"] and row["http_status"] >= 500 and row["cost_usd"] == 0

    # No prompt or completion text anywhere in the ledger or the log.
    db = gateway.ledger_url.removeprefix("sqlite:///")
    for path in (db, db + "-wal"):
        try:
            assert SECRET.encode() not in open(path, "rb").read()
        except FileNotFoundError:
            pass
    assert "Zorbluth" not in gateway.process.log()

    # The same numbers through the admin API.
    costs = httpx.get(gateway.base_url + "/admin/costs?days=1", headers={"Authorization": f"Bearer {gateway.key}"})
    assert costs.status_code == 200
    total = costs.json()["total"]
    rows = ledger_rows(gateway)
    assert total["requests"] == len(rows)
    assert total["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert httpx.get(gateway.base_url + "/admin/costs").status_code == 401


def test_sigkill_under_load_loses_no_answered_row(gateway, fakes):
    """Every request that got a 200 has its row, even when the gateway dies by SIGKILL mid-burst."""
    fakes["groq"].fail("slow", count=-1, delay_s=0.05)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                user = f"kill-{n}-{uuid.uuid4().hex[:8]}"
                try:
                    r = http.post(gateway.api_base + "/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"},
                                  json={"model": "fast", "messages": [{"role": "user", "content": "q"}], "user": user})
                except httpx.HTTPError:
                    return  # the gateway is gone
                if r.status_code == 200:
                    with lock:
                        answered.append(user)

    with ThreadPoolExecutor(8) as pool:
        for n in range(8):
            pool.submit(worker, n)
        deadline = time.monotonic() + 20
        while len(answered) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway.process.proc.kill()  # SIGKILL: no shutdown hook runs
        gateway.process.proc.wait()
        stop.set()
    assert len(answered) >= 40
    recorded = {r["end_user"] for r in ledger_rows(gateway) if r["status"] == "ok"}
    missing = [u for u in answered if u not in recorded]
    assert not missing, f"{len(missing)} answered request(s) without a ledger row"
