"""Server VAD: faster-whisper's Silero model run incrementally, and the turn segmenter around it.

`SpeechProbabilities` runs Silero on each complete 512-sample (32 ms) window as audio arrives,
carrying the model's recurrent state and 64-sample context between calls: streaming chunk by chunk
gives exactly the probabilities of one pass over the whole recording.

`Segmenter` turns those probabilities into utterances, like OpenAI's `server_vad`:

- speech starts at the first window whose probability reaches `threshold`, confirmed once 100 ms
  of speech windows have been seen (a click does not open an utterance); the utterance's audio
  begins `prefix_padding_ms` earlier;
- silence starts at the first window below `threshold - 0.15` (Silero's hysteresis) and is undone
  by any window back at `threshold`;
- after `tail_ms` of silence the utterance's audio is complete (`Pause`): the session may start
  transcribing it early; speech coming back undoes that (`Resumed`);
- after `silence_duration_ms` of silence the utterance ends (`SpeechStopped`), with its audio from
  the padded start to `tail_ms` past the last speech;
- an utterance reaching `max_utterance_s` is split at its quietest window of the last 3 seconds.

All of it is plain blocking numpy / onnxruntime: the session runs `feed` in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.realtime.audio import SAMPLE_RATE

WINDOW = 512  # samples per Silero window at 16 kHz (32 ms)
CONTEXT = 64
MIN_SPEECH_MS = 100
SPLIT_SEARCH_S = 3.0


def ms_to_samples(ms: float) -> int:
    return int(round(ms * SAMPLE_RATE / 1000))


class SpeechProbabilities:
    """Incremental Silero VAD: `probs = vad(chunk)` gives one probability per completed window."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model  # imported on first use: it pulls in ctranslate2 and av

        self._model = get_vad_model()  # one ONNX session for the process (onnxruntime runs are thread-safe)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of the windows completed by `audio`, and those windows' samples (n, 512)."""
        audio = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n = len(audio) // WINDOW
        self._pending = audio[n * WINDOW:].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros((0, WINDOW), dtype=np.float32)
        windows = audio[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]], axis=0)
        self._context = windows[-1, -CONTEXT:].copy()
        out, self._h, self._c = self._model.session.run(
            None, {"input": np.concatenate([contexts, windows], axis=1), "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1), windows


@dataclass
class TurnDetection:
    """OpenAI's server_vad parameters."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass
class SpeechStarted:
    start: int  # absolute sample (16 kHz, since the session began) where the utterance's audio begins


@dataclass
class Pause:
    """Silence long enough that the utterance's audio is complete, if speech does not come back."""

    end: int  # absolute sample where the silence began
    audio: np.ndarray = field(repr=False)


@dataclass
class Resumed:
    """Speech came back after a Pause: the utterance goes on."""


@dataclass
class SpeechStopped:
    end: int  # absolute sample where speech stopped
    audio: np.ndarray = field(repr=False)  # the utterance, from its padded start to the tail past `end`
    forced: bool = False  # split because it reached max_utterance_s


Event = SpeechStarted | Pause | Resumed | SpeechStopped


class Segmenter:
    """Utterances out of a stream of 16 kHz float32 audio (see the module docstring)."""

    def __init__(self, params: TurnDetection, max_utterance_s: float = 20.0, tail_ms: int = 200,
                 vad: SpeechProbabilities | None = None) -> None:
        self.params = params
        self.max_utterance = ms_to_samples(max_utterance_s * 1000)
        self.tail_ms = tail_ms
        self.vad = vad or SpeechProbabilities()
        self.position = 0  # absolute samples processed (whole windows)
        self._reset_turn()
        self._preroll: list[np.ndarray] = []

    # --- state ---------------------------------------------------------------------------------

    def _reset_turn(self) -> None:
        self.speaking = False       # an utterance is open (speech confirmed)
        self._candidate = False     # speech seen, not yet confirmed
        self._speech_windows = 0
        self._windows: list[np.ndarray] = []
        self._probs: list[float] = []
        self._start = 0             # absolute sample of self._windows[0]
        self._silence_start: int | None = None
        self._last_speech_end = 0
        self.paused = False

    @property
    def neg_threshold(self) -> float:
        return max(self.params.threshold - 0.15, 0.01)

    @property
    def tail(self) -> int:
        return ms_to_samples(min(self.tail_ms, self.params.silence_duration_ms))

    @property
    def in_silence(self) -> bool:
        """Silence has begun in the open utterance (it may be about to end)."""
        return self._silence_start is not None

    @property
    def held_samples(self) -> int:
        """Samples held for the open utterance (bounded by max_utterance_s plus one silence)."""
        return len(self._windows) * WINDOW if (self.speaking or self._candidate) else 0

    @property
    def utterance_samples(self) -> int:
        return len(self._windows) * WINDOW if self.speaking else 0

    def utterance_audio(self) -> np.ndarray:
        """A copy of the open utterance's audio so far."""
        if not self.speaking or not self._windows:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._windows)

    # --- input ---------------------------------------------------------------------------------

    def feed(self, audio: np.ndarray) -> list[Event]:
        probs, windows = self.vad(audio)
        events: list[Event] = []
        for prob, window in zip(probs.tolist(), windows):
            events.extend(self._step(float(prob), window))
        return events

    def _step(self, prob: float, window: np.ndarray) -> list[Event]:
        start, end = self.position, self.position + WINDOW
        self.position = end
        p = self.params
        if not (self.speaking or self._candidate):
            self._preroll.append(window)
            keep = max(1, -(-ms_to_samples(p.prefix_padding_ms) // WINDOW))
            del self._preroll[:-keep]
            if prob < p.threshold:
                return []
            self._candidate = True
            self._windows, self._probs = list(self._preroll), [0.0] * (len(self._preroll) - 1) + [prob]
            self._preroll = []
            self._start = end - len(self._windows) * WINDOW
            self._speech_windows = 1
            self._last_speech_end = end
            return self._confirm()

        self._windows.append(window)
        self._probs.append(prob)
        events: list[Event] = []
        if prob >= p.threshold:
            self._speech_windows += 1
            self._last_speech_end = end
            self._silence_start = None
            if self.paused:
                self.paused = False
                events.append(Resumed())
            if self._candidate:
                return self._confirm()
        elif prob < self.neg_threshold and self._silence_start is None:
            self._silence_start = start
        if self._silence_start is None:
            if self.speaking and len(self._windows) * WINDOW >= self.max_utterance:
                events.extend(self._split())
            return events
        silent = end - self._silence_start
        if self._candidate:  # never confirmed: a click or a breath
            if silent >= ms_to_samples(p.silence_duration_ms):
                self._preroll = self._windows[-max(1, -(-ms_to_samples(p.prefix_padding_ms) // WINDOW)):]
                self._reset_turn()
            return events
        cut = self._silence_start + self.tail
        if not self.paused and end >= cut:
            self.paused = True
            events.append(Pause(end=self._silence_start, audio=self._audio_until(cut)))
        if silent >= ms_to_samples(p.silence_duration_ms):
            stopped = SpeechStopped(end=self._silence_start, audio=self._audio_until(cut))
            rest = self._windows[(cut - self._start + WINDOW - 1) // WINDOW:]
            self._reset_turn()
            self._preroll = rest[-max(1, -(-ms_to_samples(p.prefix_padding_ms) // WINDOW)):]
            events.append(stopped)
        return events

    def _confirm(self) -> list[Event]:
        if self._speech_windows * WINDOW < ms_to_samples(MIN_SPEECH_MS):
            return []
        self._candidate = False
        self.speaking = True
        return [SpeechStarted(start=self._start)]

    def _audio_until(self, sample: int) -> np.ndarray:
        audio = np.concatenate(self._windows) if self._windows else np.zeros(0, dtype=np.float32)
        return audio[: max(0, sample - self._start)].copy()

    def _split(self) -> list[Event]:
        """The utterance reached max_utterance_s: end it at its quietest recent window, go on after it."""
        search = min(len(self._probs) - 1, int(SPLIT_SEARCH_S * SAMPLE_RATE) // WINDOW)
        first = len(self._probs) - search
        at = first + int(np.argmin(self._probs[first:])) if search > 0 else len(self._probs)
        at = max(at, 1)
        split = self._start + at * WINDOW
        stopped = SpeechStopped(end=split, audio=np.concatenate(self._windows[:at]), forced=True)
        windows, probs = self._windows[at:], self._probs[at:]
        self._windows, self._probs, self._start = windows, probs, split
        self._speech_windows = sum(1 for q in probs if q >= self.params.threshold)
        return [stopped, SpeechStarted(start=split)]

    # --- client commands -----------------------------------------------------------------------

    def flush(self) -> SpeechStopped | None:
        """End the open utterance now (a client commit); None when there is no speech to commit."""
        if not self.speaking:
            return None
        audio = np.concatenate(self._windows)
        stopped = SpeechStopped(end=self._silence_start if self._silence_start is not None else self.position,
                                audio=audio)
        self._reset_turn()
        self._preroll = []
        return stopped

    def clear(self) -> None:
        """Drop the open utterance (and the padding) without committing it."""
        self._reset_turn()
        self._preroll = []
