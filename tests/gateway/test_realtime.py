"""Realtime transcription over WebSocket (/v1/realtime), driven by the official openai SDK's realtime client.

Gateways here (real processes, like every gateway test):
- `local_gateway`: PRIMARY_PROVIDER=local, the local provider a real whisper-base server; for the
  dictation fixtures (text quality, partials, order, ledger);
- `fake_gateway`: openai (fake) first, then groq (fake); partials off. Protocol, bad input, auth,
  fallback: the fakes answer "openai transcript <lang>" / "groq transcript <lang>";
- one gateway per test for the limits and for a whisper server killed mid-session.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import openai
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from whisper_normalizer.english import EnglishTextNormalizer

from plugins.ledger_store import LedgerStore
from scripts.bench_realtime import AUDIO, Run, pcm_at, speech_spans, stream, transcription_session
from tests.support.gateway import Gateway, provider_env, write_config
from tests.support.proc import ServerProcess, free_port

EN, FA = "en_dictation_3_sentences.wav", "fa_dictation_2_sentences.wav"
CLIPS: dict[str, dict] = json.loads((AUDIO / "manifest.json").read_text())["clips"]
NO_PARTIALS = {"REALTIME_PARTIALS": "false"}
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"


# ---- servers -----------------------------------------------------------------------------------------
def start_whisper(name: str) -> ServerProcess:
    port = free_port()
    proc = ServerProcess(["-m", "local_servers.whisper", "--port", str(port)], port, log_name=name,
                         env={"LOCAL_WHISPER_MODEL": "models/whisper-base", "LOCAL_WHISPER_THREADS": "2"})
    return proc.wait_ready("/health", timeout=180)


def gateway_env(fakes: dict, tmp: Path, env: dict[str, str], local: dict[str, str] | None = None,
                timeouts: dict[str, float] | None = None) -> dict[str, str]:
    config = write_config(tmp, router_settings={"cooldown_time": 2}, timeouts=timeouts)
    return {**provider_env(fakes, local), "MODELGATE_CONFIG": str(config), **env}


@pytest.fixture(scope="module")
def whisper() -> Iterator[ServerProcess]:
    proc = start_whisper("whisper-realtime")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def local_gateway(fake_providers, whisper, tmp_path_factory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("realtime-local")
    # A generous local timeout: on a busy 2-core machine whisper-base can take seconds per utterance.
    env = gateway_env(fake_providers, tmp, {"PRIMARY_PROVIDER": "local"},
                      {"LOCAL_WHISPER_API_BASE": whisper.base_url + "/v1"}, {"local": 60})
    gw = Gateway(env, tmp / "flags.yaml", log_name="gateway-realtime-local")
    asyncio.run(open_and_close(gw))  # the first session starts loading the partial model, in the background
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def fake_gateway(fake_providers, tmp_path_factory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("realtime-fake")
    env = gateway_env(fake_providers, tmp, {"PRIMARY_PROVIDER": "openai", "FALLBACK_PROVIDERS": "groq", **NO_PARTIALS})
    gw = Gateway(env, tmp / "flags.yaml", log_name="gateway-realtime-fake")
    yield gw
    gw.stop()


# ---- helpers -----------------------------------------------------------------------------------------
def ws_url(gw: Gateway) -> str:
    return gw.api_base.replace("http://", "ws://") + "/realtime"


async def open_and_close(gw: Gateway) -> None:
    async with ws_connect(ws_url(gw), additional_headers={"Authorization": f"Bearer {gw.key}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


def connect(gw: Gateway, user: str | None = None, **kwargs: Any):
    headers = {"x-modelgate-user": user} if user else {}
    return gw.async_client().realtime.connect(model="stt-realtime", extra_headers=headers, **kwargs)


async def recv(connection: Any, timeout: float = 30) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(connection.recv_bytes(), timeout))


async def until(connection: Any, kind: str, timeout: float = 30, seen: list | None = None) -> dict[str, Any]:
    while True:
        event = await recv(connection, timeout)
        if seen is not None:
            seen.append(event)
        if event["type"] == kind:
            return event


async def configure(connection: Any, **session: Any) -> dict[str, Any]:
    await connection.session.update(session=transcription_session(**session))
    return await until(connection, "session.updated")


def sentences(name: str, rate: int = 24000) -> list[bytes]:
    """The clip cut between its utterances (each piece keeps the silence around it)."""
    pcm = pcm_at(AUDIO / name, rate)
    spans = speech_spans(AUDIO / name)
    cuts = [0] + [int((a[1] + b[0]) / 2 * rate) * 2 for a, b in zip(spans, spans[1:])] + [len(pcm)]
    return [pcm[a:b] for a, b in zip(cuts, cuts[1:])]


def ledger_rows(gw: Gateway, **where: Any) -> list[dict]:
    store = LedgerStore(gw.ledger_url, create=False)
    try:
        return store.rows(**where)
    finally:
        store.close()


def persian_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum("\u0600" <= c <= "\u06ff" for c in letters) / max(1, len(letters))


def check_turns(run: Run, count: int) -> None:
    """Each item: speech_started, speech_stopped, committed (chained by previous_item_id), then its
    deltas and exactly one completed, in commit order."""
    kinds = [e["type"] for _, e in run.events]
    items = run.committed_ids
    assert len(items) == count, kinds
    assert [e["item_id"] for e in run.of("input_audio_buffer.speech_started")] == items
    assert [e["item_id"] for e in run.of("input_audio_buffer.speech_stopped")] == items
    assert [e["previous_item_id"] for e in run.of("input_audio_buffer.committed")] == [None, *items[:-1]]
    assert [e["item_id"] for e in run.completed] == items  # answered in order
    assert not run.of(FAILED) and not run.of("error")
    for item in items:
        positions = [i for i, (_, e) in enumerate(run.events) if e.get("item_id") == item]
        types = [run.events[i][1]["type"] for i in positions]
        assert types[0] == "input_audio_buffer.speech_started" and types[-1] == COMPLETED, types
        assert types.count(COMPLETED) == 1


# ---- dictation through the real whisper server ----------------------------------------------------------
@pytest.mark.parametrize(("clip", "pace"), [(EN, 1.0), (EN, 0.0), (FA, 0.0)], ids=["en-realtime", "en-fast", "fa-fast"])
def test_dictation_streams_to_ordered_transcripts(local_gateway, whisper, clip, pace):
    spec = CLIPS[clip]
    count = len(speech_spans(AUDIO / clip))
    user = f"rt-{clip}-{pace}"

    async def session() -> Run:
        async with connect(local_gateway, user) as connection:
            created = await recv(connection)
            assert created["type"] == "session.created" and created["session"]["type"] == "transcription"
            updated = await configure(connection, language=spec["language"])
            assert updated["session"]["audio"]["input"]["transcription"]["model"] == "stt-realtime"
            return await stream(connection, pcm_at(AUDIO / clip), pace=pace, expect=count, timeout=240)

    run = asyncio.run(session())
    check_turns(run, count)
    transcripts = run.transcripts()
    assert all(transcripts), transcripts
    if spec["language"] == "en":
        normalize = EnglishTextNormalizer()
        error = jiwer.wer(normalize(spec["text"]), normalize(" ".join(transcripts)))
        assert error <= 0.2, (error, transcripts)
    else:
        assert all(persian_share(t) > 0.8 for t in transcripts), transcripts
        # stt-realtime's local deployment asks for one temperature (extra_body in config/models.yaml):
        # whisper-base's Persian fails Whisper's log-prob check, which would re-decode it up to 6 times.
        lines = [line for line in whisper.log().splitlines() if " transcribe " in line and "language=fa" in line]
        assert lines and all(line.endswith("temperature 0.0") for line in lines), lines
    if pace:
        # Partial text arrives while the dictation goes on, before each item's final text.
        with_deltas = [i for i in run.committed_ids if run.partial_text(i)]
        assert with_deltas, "no partial transcript at all"
        first_delta = next(t for t, e in run.events if e["type"] == DELTA)
        first_completed = next(t for t, e in run.events if e["type"] == COMPLETED)
        assert first_delta < first_completed
    # Every utterance went through the Router and the ledger, once, on the local provider.
    rows = ledger_rows(local_gateway, end_user=user)
    assert [(r["alias"], r["provider"], r["status"]) for r in rows] == [("stt-realtime", "local", "ok")] * count
    assert sum(r["audio_seconds"] for r in rows) == pytest.approx(
        sum(e["usage"]["seconds"] for e in run.completed), abs=0.01 * count)


def test_whisper_server_killed_mid_session_falls_back_without_losing_an_utterance(start_gateway, fakes):
    doomed = start_whisper("whisper-doomed")
    try:
        # REALTIME_EARLY_FINAL_MS=0: the final starts at the commit, so the kill below lands while it runs.
        gw = start_gateway(env={"PRIMARY_PROVIDER": "local", "REALTIME_EARLY_FINAL_MS": "0", **NO_PARTIALS},
                           config={"timeouts": {"local": 60}},
                           local={"LOCAL_WHISPER_API_BASE": doomed.base_url + "/v1"})

        async def session() -> list[dict]:
            pieces = sentences(EN)
            async with connect(gw) as connection:
                await configure(connection, language="en")
                first = await stream(connection, pieces[0], pace=0, expect=1, timeout=120)
                # Sentence 2: the whisper server dies as soon as the utterance is committed, while
                # its transcription is in flight; sentence 3 comes after.
                seen: list[dict] = []
                for chunk in range(0, len(pieces[1]), 4800):
                    await connection.input_audio_buffer.append(
                        audio=base64.b64encode(pieces[1][chunk:chunk + 4800]).decode())
                await until(connection, "input_audio_buffer.committed", seen=seen)
                doomed.stop(sig=9)
                rest = await stream(connection, pieces[2], pace=0, expect=2, timeout=120)
                return [e for _, e in first.events] + seen + [e for _, e in rest.events]

        events = asyncio.run(session())
        done = [e for e in events if e["type"] in (COMPLETED, FAILED)]
        assert [e["type"] for e in done] == [COMPLETED] * 3, done
        texts = [e["transcript"] for e in done]
        assert "chest pain" in texts[0].lower()  # whisper-base, before the crash
        assert texts[1:] == ["openai transcript en"] * 2  # the next provider of stt-realtime
        requests = fakes["openai"].requests(path_contains="audio")
        assert len(requests) == 2
    finally:
        doomed.stop()


# ---- fallback, protocol, bad input, auth (fake providers) ----------------------------------------------
def test_provider_failures_mid_session_fall_back_and_the_session_goes_on(start_gateway, fakes):
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openai", "FALLBACK_PROVIDERS": "groq", **NO_PARTIALS})
    user = "rt-fallback"

    async def session() -> tuple[list[str], dict, list[str]]:
        pieces = sentences(EN, rate=16000)
        async with connect(gw, user) as connection:
            await configure(connection, language="en", rate=16000)  # 16 kHz: this gateway's extension
            first = await stream(connection, pieces[0], rate=16000, pace=0, expect=1)
            # openai fails from now on: the next utterances are retried on groq, none is lost.
            fakes["openai"].fail("500", count=-1, path_contains="audio")
            rest = await stream(connection, b"".join(pieces[1:]), rate=16000, pace=0, expect=2)
            # Now groq fails too (and local is down in these tests): the client is told, and goes on.
            fakes["groq"].fail("503", count=1, path_contains="audio")
            failed = await stream(connection, pieces[0], rate=16000, pace=0, expect=1)
            await asyncio.sleep(2.5)  # groq's 2 s cooldown
            after = await stream(connection, pieces[1], rate=16000, pace=0, expect=1)
            return first.transcripts() + rest.transcripts(), failed.of(FAILED)[0], after.transcripts()

    transcripts, failed, after = asyncio.run(session())
    assert transcripts == ["openai transcript en", "groq transcript en", "groq transcript en"]
    assert failed["error"]["type"] == "server_error" and failed["error"]["message"]
    assert after == ["groq transcript en"]
    rows = ledger_rows(gw, end_user=user)
    assert [(r["provider"], r["status"]) for r in rows[:3]] == [("openai", "ok"), ("groq", "ok"), ("groq", "ok")]
    assert rows[1]["fallback_depth"] == 1
    assert [r["status"] for r in rows[3:]] == ["error", "ok"]


def test_manual_commit_beta_update_and_query_model(fake_gateway, fakes):
    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        url = ws_url(fake_gateway) + "?intent=transcription"
        headers = {"Authorization": f"Bearer {fake_gateway.key}", "OpenAI-Beta": "realtime=v1"}
        async with ws_connect(url, additional_headers=headers) as ws:
            out["created"] = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "transcription_session.update", "event_id": "evt_1", "session": {
                "input_audio_format": "pcm16", "turn_detection": None,
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "fa", "prompt": "بیمار"}}}))
            out["updated"] = json.loads(await ws.recv())
            pcm = pcm_at(AUDIO / "fa_history.wav")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            out["committed"] = json.loads(await ws.recv())
            out["completed"] = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            out["cleared"] = json.loads(await ws.recv())
            # Audio buffered without VAD goes through it when server_vad is switched back on.
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}}))
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(bytes(48000)).decode()}))  # 1 s of silence
            out["vad"] = []
            while not out["vad"] or out["vad"][-1] != COMPLETED:
                out["vad"].append(json.loads(await asyncio.wait_for(ws.recv(), 30))["type"])
        return out

    out = asyncio.run(session())
    assert out["created"]["type"] == "transcription_session.created"
    assert out["updated"]["type"] == "transcription_session.updated"
    session_ = out["updated"]["session"]
    assert session_["turn_detection"] is None
    assert session_["input_audio_transcription"] == {"model": "gpt-4o-transcribe", "language": "fa", "prompt": "بیمار"}
    assert out["committed"]["type"] == "input_audio_buffer.committed"
    assert out["completed"]["type"] == COMPLETED and out["completed"]["item_id"] == out["committed"]["item_id"]
    assert out["completed"]["transcript"] == "openai transcript fa"  # OpenAI's model name -> stt-realtime
    assert out["cleared"]["type"] == "input_audio_buffer.cleared"
    turn = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
            COMPLETED]
    assert [e for e in out["vad"] if e in turn] == turn and "transcription_session.updated" in out["vad"]
    sent = fakes["openai"].last_request()
    assert sent["path"].endswith("/audio/transcriptions")


BAD_FRAMES: list[tuple[str, str, str | None]] = [
    # (raw frame, error code, param)
    ("not json at all", "invalid_json", None),
    ('["input_audio_buffer.append"]', "invalid_event", None),
    ('{"event_id": "e-notype"}', "missing_required_parameter", "type"),
    ('{"type": "input_audio_buffer.upload", "event_id": "e-unknown"}', "unknown_event_type", "type"),
    ('{"type": "response.create", "event_id": "e-response"}', "unsupported_event", "type"),
    ('{"type": "input_audio_buffer.append", "event_id": "e-noaudio"}', "missing_required_parameter", "audio"),
    ('{"type": "input_audio_buffer.append", "event_id": "e-b64", "audio": "**not base64**"}', "invalid_base64",
     "audio"),
    ('{"type": "input_audio_buffer.append", "event_id": "e-odd", "audio": "AAAA"}', "invalid_audio_length", "audio"),
    ('{"type": "input_audio_buffer.commit", "event_id": "e-empty"}', "input_audio_buffer_commit_empty", None),
    ('{"type": "session.update", "event_id": "e-rate", "session": {"type": "transcription", "audio": {"input": '
     '{"format": {"type": "audio/pcm", "rate": 44100}}}}}', "invalid_value", "session.audio.input.format.rate"),
    ('{"type": "session.update", "event_id": "e-pcmu", "session": {"type": "transcription", "audio": {"input": '
     '{"format": {"type": "audio/pcmu"}}}}}', "unsupported_audio_format", "session.audio.input.format.type"),
    ('{"type": "session.update", "event_id": "e-model", "session": {"type": "transcription", "audio": {"input": '
     '{"transcription": {"model": "no-such-model"}}}}}', "model_not_found", "session.audio.input.transcription.model"),
    ('{"type": "session.update", "event_id": "e-vad", "session": {"type": "transcription", "audio": {"input": '
     '{"turn_detection": {"type": "semantic_vad"}}}}}', "unsupported_turn_detection",
     "session.audio.input.turn_detection.type"),
    ('{"type": "session.update", "event_id": "e-silence", "session": {"type": "transcription", "audio": {"input": '
     '{"turn_detection": {"type": "server_vad", "silence_duration_ms": "long"}}}}}', "invalid_type",
     "session.audio.input.turn_detection.silence_duration_ms"),
    ('{"type": "session.update", "event_id": "e-type", "session": {"type": "realtime"}}', "unsupported_session_type",
     "session.type"),
]


def test_bad_input_gets_an_error_event_and_the_session_goes_on(fake_gateway, fakes):
    async def session() -> tuple[list[dict], list[str], dict]:
        errors = []
        async with connect(fake_gateway) as connection:
            await recv(connection)  # session.created
            for frame, _, _ in BAD_FRAMES:
                await connection.send_raw(frame)
                errors.append(await until(connection, "error"))
            await connection.send_raw(b"\x00\x01binary")
            errors.append(await until(connection, "error"))
            # Nothing was applied by the refused updates; the session still works end to end.
            updated = await configure(connection, language="en")
            run = await stream(connection, sentences(EN)[1], pace=0, expect=1)
            return errors, run.transcripts(), updated

    errors, transcripts, updated = asyncio.run(session())
    for event, (frame, code, param) in zip(errors, BAD_FRAMES):
        assert set(event) == {"type", "event_id", "error"}
        assert set(event["error"]) == {"type", "code", "message", "param", "event_id"}, event
        assert event["error"]["type"] == "invalid_request_error"
        assert (event["error"]["code"], event["error"]["param"]) == (code, param), (frame, event)
        sent_id = re.search(r'"event_id": "([^"]+)"', frame)
        assert event["error"]["event_id"] == (sent_id.group(1) if sent_id else None)
        assert event["error"]["message"]
    assert errors[-1]["error"]["code"] == "invalid_json"  # the binary frame
    assert updated["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert transcripts == ["openai transcript en"]


def test_the_master_key_is_required(fake_gateway, fakes):
    async def attempt(**kwargs: Any) -> Any:
        try:
            async with ws_connect(ws_url(fake_gateway), **kwargs) as ws:
                return json.loads(await ws.recv()), ws.subprotocol
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code, json.loads(exc.response.body)["error"]["code"]

    async def with_sdk(key: str) -> Any:
        client = openai.AsyncOpenAI(base_url=fake_gateway.api_base, api_key=key, max_retries=0)
        try:
            async with client.realtime.connect(model="stt-realtime") as connection:
                return (await recv(connection))["type"]
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(with_sdk("sk-wrong-key-0123456789")) == 401
    assert asyncio.run(with_sdk(fake_gateway.key)) == "session.created"
    assert asyncio.run(attempt()) == (401, "missing_api_key")
    assert asyncio.run(attempt(additional_headers={"x-api-key": "nope"})) == (401, "invalid_api_key")
    # Browsers cannot set headers: the key may come as a subprotocol, as with OpenAI.
    offered = ["realtime", "openai-insecure-api-key." + fake_gateway.key]
    created, subprotocol = asyncio.run(attempt(subprotocols=offered))
    assert created["type"] == "session.created" and subprotocol == "realtime"
    assert asyncio.run(attempt(subprotocols=["realtime", "openai-insecure-api-key.wrong"])) == (401, "invalid_api_key")


# ---- limits and disconnects ------------------------------------------------------------------------------
def test_limits_give_clear_errors_and_a_disconnect_frees_the_session(start_gateway, fakes):
    gw = start_gateway(env={"REALTIME_MAX_SESSIONS": "1", "REALTIME_MAX_BUFFER_S": "2", "REALTIME_MAX_SESSION_S": "6",
                            "PRIMARY_PROVIDER": "openai", **NO_PARTIALS})
    speech = pcm_at(AUDIO / "en_orders.wav", 16000)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with connect(gw) as first:
            await recv(first)
            await configure(first, rate=16000)
            await first.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
            await until(first, "session.updated")
            # A second session is refused while the first is open.
            async with connect(gw) as second:
                out["second"] = await recv(second)
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await recv(second)
                out["second_close"] = closed.value.rcvd.code if closed.value.rcvd else None
            # 1.5 s buffered (no VAD, no commit), then 1 s more: over REALTIME_MAX_BUFFER_S=2.
            await first.input_audio_buffer.append(audio=base64.b64encode(speech[: 2 * 16000 * 3 // 2]).decode())
            await first.input_audio_buffer.append(audio=base64.b64encode(speech[: 2 * 16000]).decode(), event_id="big")
            out["full"] = await until(first, "error")
            # At REALTIME_MAX_SESSION_S the session says so, transcribes what it holds, then closes.
            seen: list[dict] = []
            out["expired"] = await until(first, "error", timeout=15, seen=seen)
            out["after"] = [await recv(first), await recv(first)]
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await recv(first)
        # The slot is free again: open, stream, and vanish mid-utterance without a goodbye.
        headers = {"Authorization": f"Bearer {gw.key}"}
        async with ws_connect(ws_url(gw), additional_headers=headers) as third:
            out["third"] = json.loads(await third.recv())
            await third.send(json.dumps({"type": "input_audio_buffer.append",
                                         "audio": base64.b64encode(pcm_at(AUDIO / "en_orders.wav")[:96000]).decode()}))
            while json.loads(await third.recv())["type"] != "input_audio_buffer.speech_started":
                pass
            third.transport.abort()  # no close handshake: the TCP connection just drops
        await asyncio.sleep(0.5)
        async with connect(gw) as fourth:
            out["fourth"] = await recv(fourth)
        return out

    out = asyncio.run(scenario())
    assert out["second"]["type"] == "error" and out["second"]["error"]["code"] == "too_many_sessions"
    assert out["second"]["error"]["type"] == "rate_limit_error"
    assert out["second_close"] == 1013
    assert out["full"]["error"]["code"] == "input_audio_buffer_full" and out["full"]["error"]["event_id"] == "big"
    assert "REALTIME_MAX_BUFFER_S" in out["full"]["error"]["message"]
    assert out["expired"]["error"]["code"] == "session_expired"
    assert [e["type"] for e in out["after"]] == ["input_audio_buffer.committed", COMPLETED]
    assert out["after"][1]["transcript"] == "openai transcript"
    assert out["after"][1]["usage"]["seconds"] == pytest.approx(1.5, abs=0.01)  # the refused second stayed out
    assert out["third"]["type"] == "session.created" and out["fourth"]["type"] == "session.created"


def test_bench_script_measures_a_streamed_clip(fake_gateway, fakes, capsys):
    from scripts import bench_realtime

    argv = ["--gateway", fake_gateway.api_base, "--key", fake_gateway.key, "--rounds", "1", "--pace", "0",
            "--clips", "en_orders.wav"]
    assert bench_realtime.main(argv) == 0
    out = capsys.readouterr().out
    assert "| en_orders.wav | 1 | 1/1 |" in out
    assert "| en_orders.wav | end of speech -> completed | 1 |" in out
    assert bench_realtime.percentile([3.0, 1.0, 2.0], 50) == 2.0
