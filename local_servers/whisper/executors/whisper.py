"""Loading and running faster-whisper.

Everything here is blocking and runs in worker threads: the model load at startup, and one call
of `run` per request (decode the upload, then transcribe it). `run` checks a cancel flag between
segments, so a client that goes away stops the work at the next segment instead of at the end.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Literal

import numpy as np
from faster_whisper import decode_audio
from faster_whisper.transcribe import Segment

from local_servers.whisper.config import Settings
from local_servers.whisper.executors.short_window import (
    FULL_WINDOW_S,
    ShortWindowWhisper,
    plausible,
    token_budget,
)

log = logging.getLogger("local_servers.whisper")

# faster-whisper's own fallback schedule: a window that decodes badly (too repetitive, too
# unlikely) is decoded again at the next temperature, so a hard clip cannot loop forever.
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SAMPLE_RATE = 16000


class AudioDecodeError(Exception):
    """The upload is not audio that FFmpeg (through PyAV) can decode."""


class Cancelled(Exception):
    """The client went away; the transcription stopped early."""


@dataclass(frozen=True)
class Job:
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str | None = None  # None: detect it
    prompt: str | None = None
    temperature: float | None = None  # None: the default schedule
    # False: decode at `temperature` (0 if None) only. Live dictation asks for it: a clip that fails
    # Whisper's quality thresholds is otherwise decoded up to 6 times (Persian on whisper-base: 3-6x slower).
    temperature_fallback: bool = True
    word_timestamps: bool = False


@dataclass
class Result:
    language: str  # ISO code as Whisper reports it, e.g. "fa"
    duration: float  # seconds of input audio, silence included
    segments: list[Segment]


def fallback_temperatures(first: float | None, fallback: bool = True) -> tuple[float, ...]:
    """The client's temperature comes first, then (with `fallback`) the default steps above it."""
    if not fallback:
        return (first or 0.0,)
    if first is None:
        return DEFAULT_TEMPERATURES
    return (first, *(t for t in DEFAULT_TEMPERATURES if t > first))


class WhisperExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: ShortWindowWhisper | None = None
        self.load_error: str | None = None

    @property
    def ready(self) -> bool:
        return self.model is not None

    @property
    def status(self) -> str:
        if self.model is not None:
            return "ready"
        return self.load_error or f"model {self.settings.model!r} is loading"

    @property
    def supported_languages(self) -> list[str]:
        assert self.model is not None
        return self.model.supported_languages

    def load(self) -> None:
        """Load the model; on failure keep the reason for /health instead of raising."""
        path, s = self.settings.model_path, self.settings
        if not path.is_dir():
            self.load_error = (
                f"LOCAL_WHISPER_MODEL={s.model!r} is not a model directory (looked for {path}); "
                "size names need a download from the Hugging Face hub, which this offline server "
                "does not do: point it at a CTranslate2 Whisper directory"
            )
            log.error("cannot load the whisper model: %s", self.load_error)
            return
        started = time.monotonic()
        try:
            self.model = ShortWindowWhisper(
                str(path),
                device=s.device,
                compute_type=s.effective_compute_type,
                cpu_threads=s.threads,
                # One ctranslate2 worker per allowed concurrent request, or they would queue inside.
                num_workers=s.max_concurrency,
                local_files_only=True,
            )
        except Exception as exc:  # a broken directory, an unsupported compute type, no CUDA...
            self.load_error = f"cannot load the whisper model from {path}: {exc}"
            log.error("%s", self.load_error)
            return
        log.info(
            "whisper model %s loaded in %.1fs (device=%s, compute_type=%s, threads=%d, window padding %gs)",
            path,
            time.monotonic() - started,
            s.device,
            s.effective_compute_type,
            s.threads,
            s.window_padding_s,
        )

    def run(self, file: BinaryIO, job: Job, cancelled: threading.Event) -> Result:
        """Decode the upload and transcribe (or translate) it. Raises AudioDecodeError or Cancelled."""
        assert self.model is not None
        started = time.monotonic()
        audio = decode(file)
        duration = len(audio) / SAMPLE_RATE
        if len(audio) == 0:
            return Result(language=job.language or "", duration=0.0, segments=[])
        if cancelled.is_set():
            raise Cancelled("stopped before transcribing")

        temperatures = fallback_temperatures(job.temperature, job.temperature_fallback)
        language, segments, how = None, None, "full window"
        padding = self.settings.window_padding_s
        if duration + padding < FULL_WINDOW_S:
            # Short audio: first a short encoder window at the first temperature, with a token budget;
            # kept if Whisper's own checks pass (with fallback, the log-prob one too), else decoded
            # again below the usual way (full window, temperature schedule). short_window.py.
            budget = token_budget(duration)
            with self.model.short_window(padding):
                language, segments = self._decode(
                    audio, job, temperatures[:1], cancelled, max_new_tokens=budget
                )
            if plausible(segments, budget, log_prob=len(temperatures) > 1):
                how = f"{padding:g}s window padding"
            else:
                how = "full window after an implausible short-window decode"
                segments = None
        if segments is None:
            language, segments = self._decode(audio, job, temperatures, cancelled)
        segments = [within(segment, duration) for segment in segments]

        elapsed = time.monotonic() - started
        log.info(
            "%s %.1fs of audio (language=%s) in %.2fs, real-time factor %.3f, %s, temperature %s",
            job.task,
            duration,
            language,
            elapsed,
            elapsed / duration,
            how,
            max((s.temperature or 0.0 for s in segments), default=0.0),  # > first: it fell back
        )
        return Result(language=language or "", duration=duration, segments=segments)

    def _decode(
        self,
        audio: np.ndarray,
        job: Job,
        temperatures: tuple[float, ...],
        cancelled: threading.Event,
        **options: Any,
    ) -> tuple[str, list[Segment]]:
        assert self.model is not None
        segment_iter, info = self.model.transcribe(
            audio,
            task=job.task,
            language=job.language,
            initial_prompt=job.prompt,
            temperature=temperatures,
            beam_size=self.settings.beam_size,
            vad_filter=self.settings.vad,
            word_timestamps=job.word_timestamps,
            **options,
        )
        # Segments are decoded lazily, one window at a time: check for a departed client in between.
        segments = []
        for segment in segment_iter:
            if cancelled.is_set():
                raise Cancelled(f"stopped after {len(segments)} segments")
            segments.append(segment)
        return info.language, segments


def within(segment: Segment, duration: float) -> Segment:
    """Clamp timestamps to the clip: Whisper's 20 ms timestamp tokens can overshoot the end."""
    words = [replace(w, start=min(w.start, duration), end=min(w.end, duration)) for w in segment.words or []]
    return replace(
        segment,
        start=min(segment.start, duration),
        end=min(segment.end, duration),
        words=words if segment.words is not None else None,
    )


def decode(file: BinaryIO) -> np.ndarray:
    """Any container FFmpeg reads (wav, flac, mp3, ogg, webm, m4a, mp4...) to 16 kHz mono float32."""
    file.seek(0)
    try:
        return decode_audio(file, sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many types: InvalidDataError, IndexError (no audio stream)...
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise AudioDecodeError(f"could not decode the file as audio: {reason}") from exc
