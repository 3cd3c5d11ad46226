"""Partial transcripts: an in-process faster-whisper model that re-transcribes the growing utterance.

Partials are the cheap path on purpose. They do not go through the Router: an utterance is
re-transcribed every `REALTIME_PARTIAL_INTERVAL_MS` of speech, so routing them would multiply the
providers' bill (and the ledger's rows) several times per utterance, and queue them in front of the
final transcripts on the local whisper server (whose 429s would put the `local` deployment in
cooldown and push the *finals* onto a paid provider). Here they run greedy (beam 1), with a single
temperature, without their own VAD pass, one at a time for the whole gateway (a session whose turn
comes while another partial runs skips that turn), and are never billed or written to the ledger.
The final transcript of every utterance goes through the Router (see session.py).

The model (`REALTIME_PARTIAL_MODEL`, default `LOCAL_WHISPER_MODEL`) loads in the background on the
first realtime session; until it is loaded, or if it cannot be loaded, sessions get finals only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from gateway.realtime.audio import SAMPLE_RATE

log = logging.getLogger("modelgate.realtime")


@dataclass
class Segment:
    start: float  # seconds from the start of the transcribed audio
    end: float
    text: str


@dataclass
class Hypothesis:
    segments: list[Segment]
    language: str
    seconds: float  # inference time

    @property
    def words(self) -> list[str]:
        return [w for s in self.segments for w in s.text.split()]


class PartialTranscriber:
    """One in-process Whisper model on one worker thread; `transcribe` returns None when it is busy
    or not loaded, so callers never queue behind it."""

    def __init__(self, model: str, device: str = "cpu", beam_size: int = 1, threads: int = 2) -> None:
        self.model_name, self.device, self.beam_size, self.threads = model, device, beam_size, threads
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="realtime-partial")
        self._model = None
        self._load: concurrent.futures.Future | None = None
        self.error: str | None = None
        self.busy = False

    @property
    def ready(self) -> bool:
        return self._model is not None

    def load_in_background(self) -> None:
        if self._load is None:
            self._load = self._executor.submit(self._load_model)

    def _load_model(self) -> None:
        from local_servers.whisper.config import resolve_model_path
        from local_servers.whisper.executors.short_window import ShortWindowWhisper

        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every call at INFO
        path = resolve_model_path(self.model_name)
        started = time.monotonic()
        try:
            self._model = ShortWindowWhisper(str(path), device=self.device,
                                             compute_type="float16" if self.device == "cuda" else "int8",
                                             cpu_threads=self.threads, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - partials are optional: finals still work
            self.error = f"cannot load the partial-transcript model {path}: {exc}"
            log.warning("realtime: %s; sessions get final transcripts only", self.error)
            return
        log.info("realtime: partial-transcript model %s loaded in %.1fs", path, time.monotonic() - started)

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None,
                         cancelled: threading.Event) -> Hypothesis | None:
        if not self.ready or self.busy:
            return None
        self.busy = True
        job = asyncio.get_running_loop().run_in_executor(self._executor, self._run, audio, language, prompt, cancelled)
        # Busy until the thread is really done: a cancelled caller stops waiting, not the inference
        # (which checks `cancelled` between segments).
        job.add_done_callback(self._done)
        return await asyncio.shield(job)

    def _done(self, job: asyncio.Future) -> None:
        self.busy = False
        if not job.cancelled() and job.exception() is not None:
            log.warning("realtime: partial transcription failed: %s", job.exception())

    def _run(self, audio: np.ndarray, language: str | None, prompt: str | None,
             cancelled: threading.Event) -> Hypothesis | None:
        from local_servers.whisper.executors.short_window import token_budget  # imports faster-whisper

        if cancelled.is_set():
            return None
        started = time.monotonic()
        # Greedy at one temperature (no fallback re-decoding), and a token budget well above real
        # speech: a looping hypothesis stops early instead of running to Whisper's 448-token limit
        # (which the prompt shares). The encoder reads the utterance plus 2 s of padding, not a
        # padded 30 s window (short_window.py): about half the time. The short window may loop where
        # the full one would not; harmless here: LocalAgreement-2 only sends what two hypotheses agree on.
        with self._model.short_window():  # type: ignore[union-attr]
            segments, info = self._model.transcribe(  # type: ignore[union-attr]
                audio, language=language, initial_prompt=prompt or None, beam_size=self.beam_size,
                temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                max_new_tokens=token_budget(len(audio) / SAMPLE_RATE))  # prompt + this <= 448
            out = []
            for segment in segments:  # decoded lazily, one window at a time
                if cancelled.is_set():
                    return None
                out.append(Segment(segment.start, segment.end, segment.text))
        return Hypothesis(out, info.language, time.monotonic() - started)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def seconds(samples: int) -> float:
    return samples / SAMPLE_RATE
