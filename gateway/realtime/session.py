"""One realtime transcription session: its configuration, audio state, limits and tasks.

Audio path: `input_audio_buffer.append` -> PCM16 -> 16 kHz float32 (audio.Resampler) -> server VAD
(vad.Segmenter, in a worker thread) -> utterances. While an utterance is spoken, its audio is
re-transcribed every `REALTIME_PARTIAL_INTERVAL_MS` by the in-process partial model (partials.py) and
LocalAgreement-2 (agreement.py) turns the hypotheses into append-only `...delta` events. When it ends
(VAD silence, a client commit, or the utterance length limit) it is committed and transcribed once
more, **through `Gateway.transcription` on the session's alias** (`stt-realtime` unless the client
names another): provider order, flags, traffic split, fallbacks, cooldowns, budgets and the cost
ledger apply to it as to any HTTP transcription, and that is the `...completed` text.

Finals of one session run concurrently but are answered in commit order (a FIFO the emitter task
drains). With `REALTIME_EARLY_FINAL_MS` (200 ms by default) the final transcription starts as soon as
the utterance's audio is complete, `silence_duration_ms` - 200 ms before the VAD declares the turn
over; speech coming back cancels it (a cancelled call writes no ledger row) and the utterance goes on.

Limits: audio held by the session (the open utterance, or the manual buffer, plus committed audio
waiting for its transcript) is capped at `REALTIME_MAX_BUFFER_S`; an append past it is refused with
an `input_audio_buffer_full` error. A session lives at most `REALTIME_MAX_SESSION_S`; then it gets a
`session_expired` error, its buffered speech is committed and transcribed, and the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway import errors
from gateway.core import Call
from gateway.realtime import events
from gateway.realtime.agreement import LocalAgreement, finished_sentences, join
from gateway.realtime.audio import SAMPLE_RATE, Resampler, float_to_wav, pcm16_to_float
from gateway.realtime.events import ClientError
from gateway.realtime.partials import Hypothesis, PartialTranscriber
from gateway.realtime.vad import Pause, Resumed, Segmenter, SpeechStarted, SpeechStopped, TurnDetection

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from gateway.core import Gateway
    from gateway.settings import Settings

log = logging.getLogger("modelgate.realtime")

MIN_COMMIT_MS = 100       # OpenAI refuses to commit less than 100 ms of audio
MIN_PARTIAL_S = 0.6       # no partial before this much speech
FINALS_DRAIN_S = 60       # how long an expiring session waits for its last transcripts
# Names OpenAI clients put in `transcription.model`: served by the session's default alias.
OPENAI_TRANSCRIBERS = ("whisper-1", "gpt-")


@dataclass
class SessionConfig:
    """The effective configuration, in the GA API's terms."""

    alias: str                         # the gateway alias finals go to
    model: str | None = None           # the transcription model as the client named it (echoed back)
    language: str | None = None
    prompt: str | None = None
    rate: int = 24000
    turn_detection: TurnDetection | None = None
    include: list[str] | None = None

    def transcription(self) -> dict[str, Any]:
        return {"model": self.model or self.alias, "language": self.language, "prompt": self.prompt}

    def turn_detection_object(self) -> dict[str, Any] | None:
        td = self.turn_detection
        if td is None:
            return None
        return {"type": "server_vad", "threshold": td.threshold, "prefix_padding_ms": td.prefix_padding_ms,
                "silence_duration_ms": td.silence_duration_ms}

    def ga(self, session_id: str, expires_at: int) -> dict[str, Any]:
        """The GA `session` object (RealtimeTranscriptionSessionCreateResponse's shape)."""
        return {"type": "transcription", "object": "realtime.transcription_session", "id": session_id,
                "expires_at": expires_at, "include": self.include,
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": self.rate},
                                    "transcription": self.transcription(), "noise_reduction": None,
                                    "turn_detection": self.turn_detection_object()}}}

    def beta(self, session_id: str, expires_at: int) -> dict[str, Any]:
        """The beta `transcription_session` object (OpenAI-Beta: realtime=v1)."""
        return {"id": session_id, "object": "realtime.transcription_session", "expires_at": expires_at,
                "input_audio_format": "pcm16", "input_audio_transcription": self.transcription(),
                "turn_detection": self.turn_detection_object(), "input_audio_noise_reduction": None,
                "include": self.include}


class Hub:
    """Gateway-wide realtime state (app.state.realtime): live sessions and the partial model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions: set[RealtimeSession] = set()
        self.finals_in_flight = 0  # final transcriptions running, all sessions: partials wait for them
        model = settings.realtime_partial_model or settings.local_whisper_model
        self.partials = (PartialTranscriber(model, settings.local_whisper_device, settings.realtime_partial_beam_size,
                                            settings.realtime_partial_threads)
                         if settings.realtime_partials and model else None)

    @classmethod
    def of(cls, app: Any) -> Hub:
        hub = getattr(app.state, "realtime", None)
        if hub is None:
            hub = app.state.realtime = cls(app.state.gateway.settings)
        return hub

    def admit(self, session: RealtimeSession) -> bool:
        if len(self.sessions) >= self.settings.realtime_max_sessions:
            return False
        self.sessions.add(session)
        if self.partials is not None:
            self.partials.load_in_background()
        return True

    def release(self, session: RealtimeSession) -> None:
        self.sessions.discard(session)


@dataclass
class Utterance:
    """The item being spoken (between speech_started and its commit)."""

    item_id: str
    start: int                                   # absolute 16 kHz sample where its audio begins
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    sent: str = ""                               # delta text sent so far
    frozen: list[str] = field(default_factory=list)  # committed words of finished sentences
    offset: int = 0                              # utterance samples no longer re-transcribed (frozen)
    partial_at: int = 0                          # utterance length when the last partial started
    partial: asyncio.Task | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    early: asyncio.Task | None = None            # final started at the Pause, before the turn ended
    early_samples: int = 0
    finished: bool = False                       # its completed/failed event is out: no more deltas


def _ms(samples: int) -> int:
    return int(samples * 1000 // SAMPLE_RATE)


class RealtimeSession:
    def __init__(self, websocket: WebSocket, gateway: Gateway, hub: Hub, *, user: str | None = None,
                 url_model: str | None = None, beta: bool = False) -> None:
        self.ws, self.gateway, self.hub, self.user, self.beta = websocket, gateway, hub, user, beta
        self.settings = settings = gateway.settings
        self.id = events.new_id("sess")
        self.started = time.time()
        self.expires_at = int(self.started + settings.realtime_max_session_s)
        alias = settings.realtime_model
        if url_model:
            with contextlib.suppress(Exception):
                alias = gateway.alias_for(url_model)  # ?model=<alias>; OpenAI's model names keep the default
        self.default_alias = alias
        self.config = SessionConfig(alias=alias,
                                    turn_detection=TurnDetection(silence_duration_ms=settings.realtime_silence_ms))
        self.resampler = Resampler(self.config.rate)
        self.segmenter: Segmenter | None = self._segmenter(self.config.turn_detection)
        self.manual: list[np.ndarray] = []     # turn_detection null: audio until the client commits
        self.manual_samples = 0
        self.utterance: Utterance | None = None
        self.last_item_id: str | None = None
        self.pending_samples = 0               # committed audio still waiting for its transcript
        self.received_samples = 0              # 16 kHz samples appended so far (the audio clock)
        self.detected_language: str | None = None
        self.finals: asyncio.Queue[tuple[str, asyncio.Task, int, Utterance | None]] = asyncio.Queue()
        self.tasks: set[asyncio.Task] = set()
        self.closed = False
        self.expired = False
        self._send_lock = asyncio.Lock()
        self._audio_lock = asyncio.Lock()

    def _segmenter(self, td: TurnDetection | None) -> Segmenter | None:
        if td is None:
            return None
        return Segmenter(td, max_utterance_s=self.settings.realtime_max_utterance_s,
                         tail_ms=self.settings.realtime_early_final_ms or 200)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        kind = "transcription_session.created" if self.beta else "session.created"
        await self.send({"type": kind, "event_id": events.new_id("event"), "session": self.session_object()})
        self._spawn(self._emit_finals())
        self._spawn(self._expire_after(self.settings.realtime_max_session_s))

    def session_object(self, beta: bool | None = None) -> dict[str, Any]:
        beta = self.beta if beta is None else beta
        return self.config.beta(self.id, self.expires_at) if beta else self.config.ga(self.id, self.expires_at)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def close(self) -> None:
        """The client is gone (or the session ended): stop and free everything."""
        self.closed = True
        if self.utterance is not None:
            self._drop_utterance(self.utterance)
            self.utterance = None
        while not self.finals.empty():
            _, task, _, utt = self.finals.get_nowait()
            task.cancel()
            if utt is not None:
                self._drop_utterance(utt)
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.manual.clear()
        self.segmenter = None

    async def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps(event, ensure_ascii=False))
            except Exception:  # noqa: BLE001 - the client went away; the receive loop ends the session
                self.closed = True

    async def send_error(self, exc: ClientError, client_event_id: str | None = None) -> None:
        await self.send(events.error(exc.code, exc.message, exc.param, client_event_id, exc.kind))

    # --- configuration ---------------------------------------------------------------------------

    def resolve_model(self, name: Any, param: str) -> tuple[str | None, str]:
        """(model as named, alias) for a `transcription.model` value."""
        if name is None or name == "":
            return None, self.default_alias
        if not isinstance(name, str):
            raise ClientError("invalid_type", f"{param} must be a string", param)
        try:
            return name, self.gateway.alias_for(name)
        except Exception:  # noqa: BLE001 - GatewayError: not a gateway alias
            if name.startswith(OPENAI_TRANSCRIBERS):
                return name, self.default_alias
            raise ClientError("model_not_found", f"unknown transcription model '{name}': use one of "
                              + ", ".join(self.gateway.model_names()) + " (OpenAI's names map to "
                              f"'{self.default_alias}')", param) from None

    async def apply(self, *, rate: int | None = None, transcription: dict[str, Any] | None = None,
                    turn_detection: Any = ..., include: Any = ...) -> None:
        """Apply a validated update (every argument already checked by the handler)."""
        async with self._audio_lock:
            if rate is not None and rate != self.config.rate:
                self.config.rate = rate
                self.resampler = Resampler(rate)
            if transcription is not None:
                self.config.model, self.config.alias = transcription["model"], transcription["alias"]
                self.config.language, self.config.prompt = transcription["language"], transcription["prompt"]
                self.detected_language = None
            if include is not ...:
                self.config.include = include
            if turn_detection is not ...:
                await self._set_turn_detection(turn_detection)

    async def _set_turn_detection(self, td: TurnDetection | None) -> None:
        old = self.config.turn_detection
        self.config.turn_detection = td
        if td is not None and old is not None and self.segmenter is not None:
            self.segmenter.params = td  # same mode: new parameters apply from the next window
            return
        if td is None and self.segmenter is not None:  # VAD off: open speech stays for a manual commit
            audio = self.segmenter.utterance_audio()
            if self.utterance is not None:
                self._drop_utterance(self.utterance)
                self.utterance = None
            self.segmenter = None
            self.manual, self.manual_samples = ([audio], len(audio)) if len(audio) else ([], 0)
        elif td is not None and self.segmenter is None:  # VAD on: what was buffered goes through it
            self.segmenter = self._segmenter(td)
            buffered = np.concatenate(self.manual) if self.manual else np.zeros(0, dtype=np.float32)
            self.manual, self.manual_samples = [], 0
            if len(buffered):
                await self._run_vad(buffered)

    # --- audio -----------------------------------------------------------------------------------

    @property
    def held_samples(self) -> int:
        current = self.segmenter.held_samples if self.segmenter is not None else self.manual_samples
        return current + self.pending_samples

    async def append(self, pcm: bytes) -> None:
        if self.expired:
            return  # the session_expired error was sent once; the rest of the stream is dropped
        async with self._audio_lock:
            audio = self.resampler(pcm16_to_float(pcm))
            limit = int(self.settings.realtime_max_buffer_s * SAMPLE_RATE)
            if self.held_samples + len(audio) > limit:
                raise ClientError(
                    "input_audio_buffer_full",
                    f"the session holds {self.held_samples / SAMPLE_RATE:.1f} s of audio not yet transcribed; "
                    f"the limit is {self.settings.realtime_max_buffer_s:g} s (REALTIME_MAX_BUFFER_S). This "
                    "audio was dropped: commit the buffer (or let the server VAD end the turn) and wait "
                    "for transcripts before sending more", "audio")
            self.received_samples += len(audio)
            if self.segmenter is None:
                if len(audio):
                    self.manual.append(audio)
                    self.manual_samples += len(audio)
                return
            await self._run_vad(audio)
            self._maybe_partial()

    async def _run_vad(self, audio: np.ndarray) -> None:
        segmenter = self.segmenter
        assert segmenter is not None
        for event in await asyncio.to_thread(segmenter.feed, audio):
            if self.closed or segmenter is not self.segmenter:
                return
            await self._on_vad(event)

    async def _on_vad(self, event: Any) -> None:
        if isinstance(event, SpeechStarted):
            self.utterance = Utterance(item_id=events.new_id("item"), start=event.start)
            await self.send(events.speech_started(self.utterance.item_id, _ms(event.start)))
            return
        utt = self.utterance
        if utt is None:
            return
        if isinstance(event, Pause):
            if self.settings.realtime_early_final_ms and utt.early is None:
                utt.early = self._spawn(self._transcribe(utt.item_id, event.audio))
                utt.early_samples = len(event.audio)
        elif isinstance(event, Resumed):
            if utt.early is not None:
                utt.early.cancel()
                utt.early = None
        elif isinstance(event, SpeechStopped):
            await self.send(events.speech_stopped(utt.item_id, _ms(event.end)))
            await self._commit(utt.item_id, event.audio, utt)

    async def commit(self) -> None:
        """input_audio_buffer.commit: the open utterance (VAD) or the whole buffer (no VAD) becomes an item."""
        async with self._audio_lock:
            await self._commit_buffer()

    async def _commit_buffer(self) -> None:
        if self.segmenter is not None:
            stopped = self.segmenter.flush()
            audio = stopped.audio if stopped is not None else np.zeros(0, dtype=np.float32)
            utt = self.utterance
        else:
            audio = np.concatenate(self.manual) if self.manual else np.zeros(0, dtype=np.float32)
            utt = None
        if len(audio) < SAMPLE_RATE * MIN_COMMIT_MS // 1000:
            raise ClientError("input_audio_buffer_commit_empty",
                              f"nothing to commit: the buffer holds {_ms(len(audio))} ms of "
                              + ("speech" if self.segmenter is not None else "audio")
                              + f", at least {MIN_COMMIT_MS} ms are needed")
        self.manual, self.manual_samples = [], 0
        await self._commit(utt.item_id if utt else events.new_id("item"), audio, utt)

    async def clear(self) -> None:
        async with self._audio_lock:
            if self.segmenter is not None:
                self.segmenter.clear()
            if self.utterance is not None:
                self._drop_utterance(self.utterance)
                self.utterance = None
            self.manual, self.manual_samples = [], 0
        await self.send(events.cleared())

    def _drop_utterance(self, utt: Utterance) -> None:
        utt.cancel.set()
        for task in (utt.partial, utt.early):
            if task is not None:
                task.cancel()

    async def _commit(self, item_id: str, audio: np.ndarray, utt: Utterance | None) -> None:
        early = None
        if utt is not None:
            # A partial still running may send its delta until the completed event is out.
            early, utt.early = utt.early, None
            if self.utterance is utt:
                self.utterance = None
        if early is not None and utt is not None and utt.early_samples == len(audio) and not early.cancelled():
            task = early  # the audio did not change since the Pause: that transcription is the final
        else:
            if early is not None:
                early.cancel()
            task = self._spawn(self._transcribe(item_id, audio))
        await self.send(events.committed(item_id, self.last_item_id))
        self.last_item_id = item_id
        self.pending_samples += len(audio)
        self.finals.put_nowait((item_id, task, len(audio), utt))

    # --- transcription ---------------------------------------------------------------------------

    async def _transcribe(self, item_id: str, audio: np.ndarray) -> Any:
        """The final transcript of one utterance, through the gateway's Router and plugins."""
        wav = float_to_wav(audio)
        data: dict[str, Any] = {
            "model": self.config.alias, "file": (f"{item_id}.wav", wav), "response_format": "json",
            "metadata": {"realtime": "final", "realtime_session": self.id, "realtime_item": item_id}}
        if self.config.language:
            data["language"] = self.config.language
        if self.config.prompt:
            data["prompt"] = self.config.prompt
        call = Call("transcription", data, user=self.user,
                    metadata={"audio_bytes": len(wav), "realtime": "final", "session_id": self.id, "item_id": item_id})
        self.hub.finals_in_flight += 1
        try:
            return await self.gateway.transcription(call)
        finally:
            self.hub.finals_in_flight -= 1

    async def _emit_finals(self) -> None:
        """Answer committed items in commit order: `...completed`, or `...failed` when every provider failed."""
        while True:
            item_id, task, samples, utt = await self.finals.get()
            try:
                result = await task
                text = str(getattr(result, "text", "") or "").strip()
                if utt is not None:
                    utt.finished = True
                await self.send(events.completed(item_id, text, samples / SAMPLE_RATE))
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self.closed or (current is not None and current.cancelling()):
                    raise  # the session is closing
                if utt is not None:
                    utt.finished = True
                await self.send(events.failed(item_id, "server_error", "cancelled", "the transcription was cancelled"))
            except Exception as exc:  # noqa: BLE001 - every provider of the chain failed: say so, go on
                body = json.loads(errors.from_exception(exc).body)["error"]
                log.warning("realtime %s: transcription of %s failed: %s", self.id, item_id, body["message"])
                if utt is not None:
                    utt.finished = True
                await self.send(events.failed(item_id, "server_error" if body["type"] == "api_error" else body["type"],
                                              body.get("code"), body["message"]))
            finally:
                self.pending_samples -= samples
                self.finals.task_done()

    def _maybe_partial(self) -> None:
        utt, partials, segmenter = self.utterance, self.hub.partials, self.segmenter
        if utt is None or partials is None or segmenter is None or not partials.ready or partials.busy:
            return
        # Finals first: no partial while any final runs (they share the CPU with the local whisper
        # server), nor once silence has begun (the utterance may be ending: its final comes next).
        if utt.partial is not None or segmenter.in_silence or self.hub.finals_in_flight:
            return
        length = segmenter.utterance_samples
        interval = self.settings.realtime_partial_interval_ms * SAMPLE_RATE // 1000
        if length < MIN_PARTIAL_S * SAMPLE_RATE or length - utt.partial_at < interval:
            return
        utt.partial_at = length
        utt.partial = self._spawn(self._partial(utt, segmenter.utterance_audio()[utt.offset:]))

    async def _partial(self, utt: Utterance, audio: np.ndarray) -> None:
        assert self.hub.partials is not None
        prompt = " ".join(filter(None, [self.config.prompt, " ".join(utt.frozen)[-200:]])) or None
        try:
            hypothesis = await self.hub.partials.transcribe(audio, self.config.language or self.detected_language,
                                                            prompt, utt.cancel)
        except Exception:  # noqa: BLE001 - logged by the transcriber; partials are best effort
            hypothesis = None
        finally:
            utt.partial = None
        # After the commit, a partial may still add its delta until the completed event is out
        # (the check and the send happen without an await in between, so the order holds).
        if hypothesis is None or utt.finished or self.closed:
            return
        if not self.config.language and not self.detected_language:
            self.detected_language = hypothesis.language
        new = utt.agreement.insert(hypothesis.words)
        if utt is self.utterance:
            self._freeze_sentences(utt, hypothesis)
        if new:
            text = join(new, after=utt.sent)
            utt.sent += text
            await self.send(events.delta(utt.item_id, text))

    @staticmethod
    def _freeze_sentences(utt: Utterance, hypothesis: Hypothesis) -> None:
        """Committed whole sentences (Whisper segments ending in . ! ? ؟ ...) are frozen: later partials
        transcribe only the audio after them, with their text as the prompt."""
        count, cut = finished_sentences(utt.agreement.committed, [(s.end, s.text) for s in hypothesis.segments])
        if count:
            utt.frozen += utt.agreement.freeze(count)
            utt.offset += int(cut * SAMPLE_RATE)

    # --- limits ----------------------------------------------------------------------------------

    async def _expire_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.expired = True
        await self.send(events.error(
            "session_expired", f"the session reached its maximum duration of {seconds:g} s (REALTIME_MAX_SESSION_S): "
            "the speech buffered so far is transcribed, then the connection closes; open a new session to go on"))
        async with self._audio_lock:
            with contextlib.suppress(ClientError):  # nothing (or under 100 ms) to commit
                await self._commit_buffer()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finals.join(), FINALS_DRAIN_S)
        self.hub.release(self)  # the slot is free before the client sees the close
        with contextlib.suppress(Exception):
            await self.ws.close(1000, "session expired")
