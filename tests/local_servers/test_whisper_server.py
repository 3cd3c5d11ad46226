"""The faster-whisper server as a real process with the real whisper-base model, driven by real clients.

Two server processes per module: `server` (the defaults: whisper-base on CPU, 2 threads) for
transcription quality and formats, and `limited_server` (1 running, 1 waiting, 2 MB uploads) for
the bounds. Audio fixtures are espeak-ng speech listed in tests/fixtures/audio/manifest.json.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import jiwer
import numpy as np
import openai
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from tests.support.proc import ROOT, ServerProcess, free_port

AUDIO = ROOT / "tests" / "fixtures" / "audio"
CLIPS: dict[str, dict] = json.loads((AUDIO / "manifest.json").read_text())["clips"]
ENGLISH = sorted(name for name, clip in CLIPS.items() if clip["language"] == "en")
normalize = EnglishTextNormalizer()

BASE_ENV = {
    "LOCAL_WHISPER_MODEL": "models/whisper-base",
    "LOCAL_WHISPER_DEVICE": "cpu",
    "LOCAL_WHISPER_THREADS": "2",
}


# ---- servers and clients ---------------------------------------------------------------------------------
def start(env: dict[str, str], name: str) -> tuple[ServerProcess, list[int]]:
    """Start a whisper server; return it once /health says 200, with the statuses /health gave before."""
    port = free_port()
    proc = ServerProcess(
        ["-m", "local_servers.whisper", "--port", str(port)], port, env={**BASE_ENV, **env}, log_name=name
    )
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while not seen or seen[-1] != 200:
        assert time.monotonic() < deadline, f"server not ready; log:\n{proc.log()}"
        assert proc.proc.poll() is None, f"server exited; log:\n{proc.log()}"
        try:
            response = httpx.get(proc.base_url + "/health", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if response.status_code != 200:
            assert_openai_error(response, 503, "model_not_ready")
        seen.append(response.status_code)
        time.sleep(0.05)
    return proc, seen


@pytest.fixture(scope="module")
def started() -> Iterator[tuple[ServerProcess, list[int]]]:
    proc, seen = start({}, "whisper")
    try:
        yield proc, seen
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server(started: tuple[ServerProcess, list[int]]) -> ServerProcess:
    return started[0]


@pytest.fixture(scope="module")
def limited_server() -> Iterator[ServerProcess]:
    proc, _ = start(
        {
            "LOCAL_WHISPER_MAX_CONCURRENCY": "1",
            "LOCAL_WHISPER_MAX_QUEUE": "1",
            "LOCAL_WHISPER_MAX_UPLOAD_MB": "2",
        },
        "whisper-limited",
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    # max_retries=0: the SDK would otherwise retry 429s and 5xx behind the test's back.
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="local", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def english_json(client: openai.OpenAI) -> dict[str, str]:
    """The `json` transcription of every English fixture, shared by the tests that compare against it."""
    return {
        name: client.audio.transcriptions.create(model="whisper-local", file=AUDIO / name).text
        for name in ENGLISH
    }


# ---- helpers ---------------------------------------------------------------------------------------------
def assert_openai_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def assert_still_serving(server: ServerProcess) -> None:
    assert server.proc.poll() is None, server.log()
    assert httpx.get(server.base_url + "/health", timeout=5).json() == {"status": "ok"}
    response = post(server, AUDIO / "silence_3s.wav")
    assert response.status_code == 200 and response.json()["text"] == "", response.text


def post(
    server: ServerProcess,
    audio: Path | bytes,
    path: str = "transcriptions",
    timeout: float = 120,
    **fields: str | list[str],
) -> httpx.Response:
    content = audio.read_bytes() if isinstance(audio, Path) else audio
    name = audio.name if isinstance(audio, Path) else "audio.wav"
    return httpx.post(
        f"{server.base_url}/v1/audio/{path}",
        files={"file": (name, content)},
        data={"model": "whisper-local", **fields},
        timeout=timeout,
    )


def wav_duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalize(reference), normalize(hypothesis))


def arabic_script_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum("\u0600" <= c <= "\u06ff" or "\ufb50" <= c <= "\ufeff" for c in letters) / max(len(letters), 1)


def assert_ordered_within(spans: list[tuple[float, float]], duration: float) -> None:
    """Each span well-formed, inside the clip, and after the previous one (no overlap)."""
    assert spans
    previous_end = 0.0
    for start, end in spans:
        assert 0 <= start <= end <= duration + 1e-6, (start, end, duration)
        assert start >= previous_end - 1e-6, spans
        previous_end = end


# ---- health and models -----------------------------------------------------------------------------------
def test_health_is_503_while_loading_then_200(started: tuple[ServerProcess, list[int]]) -> None:
    _, seen = started
    # The model loads in the background (>1 s); the port answers within milliseconds of startup.
    assert seen[0] == 503 and seen[-1] == 200, seen


def test_models_lists_the_served_id(server: ServerProcess, client: openai.OpenAI) -> None:
    body = httpx.get(server.base_url + "/v1/models", timeout=5).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["whisper-local"]
    assert [m.id for m in client.models.list()] == ["whisper-local"]


def test_size_name_is_refused_with_a_clear_503() -> None:
    # "large-v3" would need a hub download: the server must say so, not hang or die.
    port = free_port()
    proc = ServerProcess(
        ["-m", "local_servers.whisper", "--port", str(port)],
        port,
        env={**BASE_ENV, "LOCAL_WHISPER_MODEL": "large-v3"},
        log_name="whisper-missing",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and proc.proc.poll() is None, proc.log()
            try:
                health = httpx.get(proc.base_url + "/health", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            error = assert_openai_error(health, 503, "model_not_ready")
            if "not a model directory" in error["message"]:
                break
            time.sleep(0.1)
        assert "large-v3" in error["message"]
        assert_openai_error(post(proc, AUDIO / "silence_3s.wav"), 503, "model_not_ready")
        assert proc.proc.poll() is None
        assert proc.log().count("cannot load the whisper model") == 1, proc.log()
    finally:
        proc.stop()


# ---- transcription quality -------------------------------------------------------------------------------
def test_english_word_error_rate(english_json: dict[str, str]) -> None:
    per_clip = {name: round(wer(CLIPS[name]["text"], text), 3) for name, text in english_json.items()}
    corpus = jiwer.wer(
        [normalize(CLIPS[n]["text"]) for n in ENGLISH], [normalize(english_json[n]) for n in ENGLISH]
    )
    # Corpus WER over the English fixtures. Per clip, whisper-base hears espeak's "aspirin" and
    # "troponin" badly in en_orders (about 0.44 alone); see test_prompt_reaches_the_model.
    assert corpus <= 0.15, (corpus, per_clip, english_json)
    assert per_clip["en_chest_pain.wav"] <= 0.15, per_clip


def test_short_clips_are_encoded_with_a_short_window(server: ServerProcess, english_json: dict[str, str]) -> None:
    # Every English fixture is under 30 s: the encoder read it plus 2 s of padding
    # (LOCAL_WHISPER_WINDOW_PADDING_S), not a 30 s window, and that decode passed Whisper's checks
    # (the WER test above holds it to the reference).
    lines = [line for line in server.log().splitlines() if "language=en" in line and " transcribe " in line]
    assert lines and all("2s window padding" in line for line in lines), lines


def test_temperature_fallback_can_be_turned_off(client: openai.OpenAI, server: ServerProcess) -> None:
    # Whether this clip needs the fallback by default depends on the CPU (whisper-base loops on it at
    # temperature 0 on some hosts, not on others): the decoder's side is in test_whisper_units.py.
    def temperatures(**extra: object) -> list[float]:
        result = client.audio.transcriptions.create(
            model="whisper-local", file=AUDIO / "fa_history.wav", language="fa", response_format="verbose_json",
            extra_body=extra or None,
        )
        assert result.segments and arabic_script_share(result.text) >= 0.9, result.text
        return [s.temperature for s in result.segments]

    assert set(temperatures(temperature_fallback=False)) == {0.0}  # what stt-realtime's deployment sends
    assert set(temperatures(temperature_fallback=False, temperature=0.4)) == {0.4}
    refused = post(server, AUDIO / "en_orders.wav", temperature_fallback="maybe")
    assert_openai_error(refused, 400, "invalid_request", "temperature_fallback")


def test_prompt_reaches_the_model(client: openai.OpenAI, english_json: dict[str, str]) -> None:
    reference = CLIPS["en_orders.wav"]["text"]
    prompted = client.audio.transcriptions.create(
        model="whisper-local",
        file=AUDIO / "en_orders.wav",
        prompt="Medications: aspirin. Labs: troponin.",
    ).text
    assert wer(reference, prompted) <= 0.15, prompted
    assert wer(reference, prompted) < wer(reference, english_json["en_orders.wav"]), prompted


@pytest.mark.parametrize("name", ["fa_dictation_2_sentences.wav", "fa_history.wav"])
def test_persian_with_language_hint(client: openai.OpenAI, name: str) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-local", file=AUDIO / name, language="fa", response_format="verbose_json"
    )
    assert result.language == "fa"
    assert arabic_script_share(result.text) >= 0.9, result.text
    assert result.segments and result.words is None  # segments are the default granularity


@pytest.mark.xfail(
    strict=True,
    reason="whisper-base does not recognise espeak-ng's synthetic Persian: it detects Thai (p=0.32) "
    "before Persian (p=0.06) on this clip; a real recording or a larger model is needed",
)
def test_persian_detected_without_hint(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-local", file=AUDIO / "fa_chest_pain.wav", response_format="verbose_json"
    )
    assert result.language == "fa" and arabic_script_share(result.text) >= 0.9, (result.language, result.text)


def test_audio_without_samples_gives_empty_text(server: ServerProcess) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    response = post(server, buffer.getvalue(), response_format="verbose_json")
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "" and response.json()["duration"] == 0


def test_silence_gives_empty_text(server: ServerProcess) -> None:
    verbose = post(server, AUDIO / "silence_3s.wav", response_format="verbose_json").json()
    assert verbose["text"] == "" and verbose["segments"] == [], verbose
    assert verbose["duration"] == pytest.approx(3.0, abs=0.01)
    assert post(server, AUDIO / "silence_3s.wav", response_format="text").text == ""


# ---- response formats ------------------------------------------------------------------------------------
def test_verbose_json_segments_and_words(client: openai.OpenAI, english_json: dict[str, str]) -> None:
    name = "en_dictation_3_sentences.wav"
    result = client.audio.transcriptions.create(
        model="whisper-local",
        file=AUDIO / name,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    duration = wav_duration(AUDIO / name)
    assert result.language == "en"
    assert result.duration == pytest.approx(duration, abs=0.01)
    assert result.text == english_json[name]  # word timing is a pass after decoding: same text

    segments = result.segments or []
    assert [s.id for s in segments] == list(range(len(segments))) and len(segments) >= 2
    assert_ordered_within([(s.start, s.end) for s in segments], duration)
    assert "".join(s.text for s in segments).strip() == result.text

    words = result.words or []
    assert_ordered_within([(w.start, w.end) for w in words], duration)
    assert all(w.word == w.word.strip() and w.word for w in words)
    assert wer(result.text, " ".join(w.word for w in words)) == 0


SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(\S.*)")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(\S.*)")


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_srt_parses(client: openai.OpenAI, english_json: dict[str, str]) -> None:
    name = "en_dictation_3_sentences.wav"
    body = client.audio.transcriptions.create(model="whisper-local", file=AUDIO / name, response_format="srt")
    assert isinstance(body, str) and body.endswith("\n") and not body.endswith("\n\n")
    cues = [SRT_CUE.fullmatch(block) for block in body.rstrip("\n").split("\n\n")]
    assert all(cues), body
    assert [int(c[1]) for c in cues] == list(range(1, len(cues) + 1)) and len(cues) >= 2
    assert_ordered_within(
        [(seconds(*c.groups()[1:5]), seconds(*c.groups()[5:9])) for c in cues], wav_duration(AUDIO / name)
    )
    assert " ".join(c[10] for c in cues) == english_json[name]


def test_vtt_parses(client: openai.OpenAI, english_json: dict[str, str]) -> None:
    name = "en_chest_pain.wav"  # one cue is enough here: test_srt_parses covers several
    body = client.audio.transcriptions.create(model="whisper-local", file=AUDIO / name, response_format="vtt")
    assert body.startswith("WEBVTT\n\n"), body
    cues = [VTT_CUE.fullmatch(block) for block in body.removeprefix("WEBVTT\n\n").rstrip("\n").split("\n\n")]
    assert all(cues), body
    assert_ordered_within(
        [(seconds(*c.groups()[0:4]), seconds(*c.groups()[4:8])) for c in cues], wav_duration(AUDIO / name)
    )
    assert " ".join(c[9] for c in cues) == english_json[name]


def test_text_is_plain(server: ServerProcess, english_json: dict[str, str]) -> None:
    response = post(server, AUDIO / "en_chest_pain.wav", response_format="text")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == english_json["en_chest_pain.wav"]


def test_translation(client: openai.OpenAI) -> None:
    # English speech "translated" is English text: checks the route and task end to end.
    result = client.audio.translations.create(
        model="whisper-local", file=AUDIO / "en_chest_pain.wav", response_format="verbose_json"
    )
    assert result.language == "en" and result.segments
    assert wer(CLIPS["en_chest_pain.wav"]["text"], result.text) <= 0.15, result.text
    assert result.model_extra and result.model_extra["task"] == "translate"


# ---- containers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ext", "codec"),
    [("flac", "flac"), ("mp3", "mp3"), ("ogg", "libopus"), ("webm", "libopus"), ("m4a", "aac")],
)
def test_other_containers(client: openai.OpenAI, tmp_path: Path, ext: str, codec: str) -> None:
    src, dst = AUDIO / "en_chest_pain.wav", tmp_path / f"en_chest_pain.{ext}"
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=16000, layout="mono")
        for frame in inp.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    text = client.audio.transcriptions.create(model="whisper-local", file=dst).text
    assert wer(CLIPS["en_chest_pain.wav"]["text"], text) <= 0.15, text


# ---- bad input -------------------------------------------------------------------------------------------
BAD_REQUESTS = [
    # (id, fields, file, status, code, param)
    ("empty file", {}, b"", 400, "empty_file", "file"),
    ("bad response_format", {"response_format": "xml"}, None, 400, "invalid_request", "response_format"),
    ("temperature above 1", {"temperature": "1.5"}, None, 400, "invalid_request", "temperature"),
    ("temperature not a number", {"temperature": "warm"}, None, 400, "invalid_request", "temperature"),
    ("unknown language", {"language": "xx"}, None, 400, "unsupported_language", "language"),
    ("bad granularity", {"timestamp_granularities[]": "sentence"}, None, 400, "invalid_request", None),
    ("undecodable bytes", {}, b"definitely not audio " * 100, 415, "unsupported_audio", "file"),
]


@pytest.mark.parametrize(
    ("fields", "content", "status", "code", "param"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_refused_in_openai_shape(
    server: ServerProcess, fields: dict, content: bytes | None, status: int, code: str, param: str | None
) -> None:
    response = post(server, AUDIO / "silence_3s.wav" if content is None else content, **fields)
    assert_openai_error(response, status, code, param)


def test_missing_file_is_400(server: ServerProcess) -> None:
    response = httpx.post(
        server.base_url + "/v1/audio/transcriptions", data={"model": "whisper-local"}, timeout=10
    )
    assert_openai_error(response, 400, "invalid_request", "file")
    not_multipart = httpx.post(server.base_url + "/v1/audio/transcriptions", json={"file": "x"}, timeout=10)
    assert_openai_error(not_multipart, 400, "invalid_request", "file")


def test_sdk_sees_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-local", file=("x.wav", b"not audio at all"))
    assert caught.value.status_code == 415
    assert caught.value.body["code"] == "unsupported_audio"


def test_server_survives_bad_input(server: ServerProcess) -> None:
    for fields, content, *_ in [case[1:] for case in BAD_REQUESTS]:
        post(server, AUDIO / "silence_3s.wav" if content is None else content, **fields)
    assert_still_serving(server)


# ---- bounds: upload size, queue, disconnects --------------------------------------------------------------
def test_upload_over_the_limit_is_413(limited_server: ServerProcess) -> None:
    too_big = b"\0" * (3 * 1024 * 1024)
    # With Content-Length (what the SDKs send): refused before the body is read.
    assert_openai_error(post(limited_server, too_big), 413, "file_too_large", "file")

    # Chunked, no Content-Length: counted as it streams and stopped at the limit.
    def chunks() -> Iterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n"
        )
        for _ in range(48):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    # Just over the limit: the body passes the framing allowance, the file itself is refused.
    just_over = b"\0" * (2 * 1024 * 1024 + 1024)
    assert_openai_error(post(limited_server, just_over), 413, "file_too_large", "file")

    chunked = httpx.post(
        limited_server.base_url + "/v1/audio/transcriptions",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert_openai_error(chunked, 413, "file_too_large")
    assert_still_serving(limited_server)


def long_clip(repeats: int) -> bytes:
    """The 19 s dictation repeated with short pauses, as one WAV."""
    with wave.open(str(AUDIO / "en_dictation_3_sentences.wav")) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    audio = np.concatenate([pcm, np.zeros(rate // 2, np.int16)] * repeats)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.tobytes())
    return buffer.getvalue()


def test_queue_bound_gives_429_with_retry_after(limited_server: ServerProcess) -> None:
    # 1 running + 1 waiting allowed: of 4 simultaneous requests, 2 are served and 2 refused at once.
    # temperature=1 means one decoding pass per window (no fallback), which keeps the cost down.
    clip = (AUDIO / "en_orders.wav").read_bytes()
    responses: list[httpx.Response] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        responses.append(post(limited_server, clip, temperature="1"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429], [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 429):
        assert_openai_error(refused, 429, "rate_limit_exceeded")
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert int(refused.headers["retry-after"]) >= 1
    assert_still_serving(limited_server)


def test_disconnect_mid_inference_frees_the_slot(limited_server: ServerProcess) -> None:
    # A 58 s clip takes three 30 s windows; the client leaves during the first one.
    with pytest.raises(httpx.ReadTimeout):
        post(limited_server, long_clip(3), temperature="1", language="en", timeout=1.0)
    deadline = time.monotonic() + 60
    while "client disconnected: stopped" not in limited_server.log():
        assert time.monotonic() < deadline, limited_server.log()
        time.sleep(0.1)
    assert re.search(
        r"client disconnected: stopped (before transcribing|after \d+ segments)", limited_server.log()
    )
    assert_still_serving(limited_server)


# ---- through LiteLLM, the way the gateway calls it --------------------------------------------------------
def test_litellm_atranscription(server: ServerProcess) -> None:
    import litellm  # slow to import: only this test needs it

    with (AUDIO / "fa_history.wav").open("rb") as audio:
        response = asyncio.run(
            litellm.atranscription(
                model="openai/whisper-local",
                api_base=server.base_url + "/v1",
                api_key="local",
                file=audio,
                language="fa",
            )
        )
    assert arabic_script_share(response.text) >= 0.9, response.text
