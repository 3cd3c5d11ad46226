"""Unit tests of the whisper server's pure parts: subtitle timestamps, renderers, temperatures, settings."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from faster_whisper.transcribe import Segment, Word

from local_servers.whisper import formats
from local_servers.whisper.config import REPO_ROOT, Settings
from local_servers.whisper.executors.whisper import Job, Result, WhisperExecutor, fallback_temperatures, within


def segment(i: int, start: float, end: float, text: str, words: list[Word] | None = None) -> Segment:
    return Segment(
        id=i,
        seek=0,
        start=start,
        end=end,
        text=text,
        tokens=[1, 2],
        avg_logprob=-0.2,
        compression_ratio=1.1,
        no_speech_prob=0.01,
        words=words,
        temperature=0.0,
    )


SEGMENTS = [
    segment(1, 0.0, 2.5, " Hello there.", [Word(0.0, 0.8, " Hello", 0.9), Word(0.8, 2.5, " there.", 0.8)]),
    segment(2, 3.0, 3661.0071, " Bye.", [Word(3.0, 3661.0071, " Bye.", 0.7)]),
]


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (2.5, "00:00:02,500", "00:00:02.500"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounds to the millisecond, carrying into minutes
        (3661.0071, "01:01:01,007", "01:01:01.007"),
        (36000.0, "10:00:00,000", "10:00:00.000"),
        (-0.01, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    assert formats.timestamp(seconds, ",") == srt
    assert formats.timestamp(seconds, ".") == vtt


def test_srt() -> None:
    assert formats.srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:03,000 --> 01:01:01,007\nBye.\n"
    )
    assert formats.srt([]) == ""


def test_vtt() -> None:
    assert formats.vtt(SEGMENTS) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n00:00:03.000 --> 01:01:01.007\nBye.\n"
    )
    assert formats.vtt([]) == "WEBVTT\n"


def test_plain_text_joins_and_strips() -> None:
    assert formats.plain_text(SEGMENTS) == "Hello there. Bye."
    assert formats.plain_text([]) == ""


def test_verbose_json_shape() -> None:
    result = Result(language="fa", duration=3700.0, segments=SEGMENTS)
    body = json.loads(formats.render_transcription(result, "verbose_json", with_words=True).body)
    assert body["task"] == "transcribe" and body["language"] == "fa" and body["duration"] == 3700.0
    assert [s["id"] for s in body["segments"]] == [0, 1]  # OpenAI counts from 0
    assert body["segments"][0]["text"] == " Hello there."
    assert body["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.8},
        {"word": "there.", "start": 0.8, "end": 2.5},
        {"word": "Bye.", "start": 3.0, "end": 3661.0071},
    ]
    assert body["usage"] == {"type": "duration", "seconds": 3700}

    without_words = json.loads(formats.render_transcription(result, "verbose_json").body)
    assert "words" not in without_words and len(without_words["segments"]) == 2
    words_only = json.loads(formats.render_transcription(result, "verbose_json", False, True).body)
    assert "segments" not in words_only and len(words_only["words"]) == 3


def test_json_and_translation_shapes() -> None:
    result = Result(language="en", duration=2.2, segments=SEGMENTS)
    assert json.loads(formats.render_transcription(result, "json").body) == {
        "text": "Hello there. Bye.",
        "usage": {"type": "duration", "seconds": 3.0},
    }
    assert json.loads(formats.render_translation(result, "json").body) == {"text": "Hello there. Bye."}
    verbose = json.loads(formats.render_translation(result, "verbose_json").body)
    assert verbose["task"] == "translate" and "words" not in verbose and len(verbose["segments"]) == 2
    vtt = formats.render_translation(result, "vtt")
    assert vtt.media_type == "text/vtt" and vtt.body.decode().startswith("WEBVTT\n\n")


def test_within_clamps_to_the_clip() -> None:
    clamped = within(SEGMENTS[1], duration=10.0)
    assert (clamped.start, clamped.end) == (3.0, 10.0)
    assert [(w.start, w.end) for w in clamped.words] == [(3.0, 10.0)]
    assert within(segment(1, 0.0, 1.0, " x"), 10.0).words is None


@pytest.mark.parametrize(
    ("first", "schedule"),
    [
        (None, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
        (0.0, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
        (0.3, (0.3, 0.4, 0.6, 0.8, 1.0)),
        (1.0, (1.0,)),
    ],
)
def test_client_temperature_starts_the_fallback(first: float | None, schedule: tuple[float, ...]) -> None:
    assert fallback_temperatures(first) == schedule


class _Recorder:
    """Stands in for the model: records the temperatures each decode is given and answers a looping
    segment (compression ratio 3), so the short-window pass is implausible and the full window follows."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, ...]] = []

    def transcribe(self, audio, temperature, **options):  # noqa: ANN001, ANN201, ARG002
        self.calls.append(tuple(temperature))
        looping = replace(segment(1, 0.0, 4.0, " x x x x x x x x"), compression_ratio=3.0, temperature=temperature[-1])
        return iter([looping]), type("Info", (), {"language": "fa"})()

    def short_window(self, padding_s: float):  # noqa: ANN201, ARG002
        return contextlib.nullcontext()


@pytest.mark.parametrize(
    ("job", "full_window"),
    [
        (Job(), (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
        (Job(temperature_fallback=False), (0.0,)),
        (Job(temperature=0.4, temperature_fallback=False), (0.4,)),
    ],
)
def test_temperature_fallback_reaches_the_decoder(job: Job, full_window: tuple[float, ...]) -> None:
    # Whether a real clip needs the fallback depends on the CPU's kernels (AVX2 or AVX-512 round
    # differently), so the wiring is checked here and the HTTP field in test_whisper_server.py.
    executor = WhisperExecutor(Settings())
    executor.model = _Recorder()  # type: ignore[assignment]
    with (REPO_ROOT / "tests" / "fixtures" / "audio" / "fa_history.wav").open("rb") as audio:
        executor.run(audio, job, threading.Event())
    assert executor.model.calls == [full_window[:1], full_window]  # short window first, then the full one


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in [n for n in os.environ if n.startswith("LOCAL_WHISPER_")]:
        monkeypatch.delenv(name)
    defaults = Settings()
    assert (defaults.model, defaults.model_id, defaults.device) == (
        "models/whisper-base",
        "whisper-local",
        "cpu",
    )
    assert (defaults.threads, defaults.beam_size, defaults.vad) == (2, 5, True)
    assert (defaults.max_concurrency, defaults.max_queue, defaults.max_upload_bytes) == (
        1,
        8,
        25 * 1024 * 1024,
    )
    assert defaults.effective_compute_type == "int8"
    assert defaults.model_path == REPO_ROOT / "models" / "whisper-base"  # relative: found from any cwd

    monkeypatch.setenv("LOCAL_WHISPER_DEVICE", "cuda")
    monkeypatch.setenv("LOCAL_WHISPER_VAD", "false")
    monkeypatch.setenv("LOCAL_WHISPER_MODEL", str(tmp_path))
    cuda = Settings()
    assert cuda.effective_compute_type == "float16" and cuda.vad is False and cuda.model_path == tmp_path

    (tmp_path / ".env").write_text("LOCAL_WHISPER_MAX_QUEUE=3\n")
    assert Settings().max_queue == 3
