"""A shorter encoder window for short audio: faster-whisper's WhisperModel reading only what it needs.

Whisper's encoder reads 30 s windows: faster-whisper pads the log-Mel features of a 5 s utterance
with 25 s of zeros, and the encoder's cost grows with its input (whisper-base, int8, 2 threads:
0.34 s for 30 s, 0.04-0.07 s for 5-15 s). CTranslate2's Whisper encoder accepts fewer frames, so
inside `with model.short_window(padding_s):` the encoder reads the audio plus `padding_s` of the
padding only (whisper.cpp's `audio_ctx` idea). Some padding must stay, or the decoder does not see
the audio end and loops; even with it, a window the model was not trained on can loop where the
full one does not (whisper-base's Persian), so callers check the result (see `plausible`) and
decode again the usual way when it looks wrong.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

FRAMES_PER_S = 100  # Whisper's log-Mel hop: 10 ms
FULL_WINDOW_S = 30.0
DEFAULT_WINDOW_PADDING_S = 2.0
# Whisper's own quality thresholds (faster-whisper's defaults), which decide its temperature fallback.
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
# Speech makes ~4 tokens/s in English and ~7 in Persian (the fixtures): more than this is a loop.
MAX_TOKENS_PER_S = 20
PROMPT_TOKENS_MAX = 229  # faster-whisper's longest prompt: 223 prompt tokens + markers; 448 in all


def trimmed(features: np.ndarray, padding_frames: int) -> np.ndarray:
    """`features` (batch?, mels, frames) without its trailing all-zero frames past `padding_frames`.

    faster-whisper pads a window with exact zeros (`pad_or_trim`); a frame of real audio is never
    exactly zero in all its Mel bins (normalized log-Mel: silence is about -0.5 to -1.5)."""
    frames = features.shape[-1]
    nonzero = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    content = int(nonzero[-1]) + 1 if len(nonzero) else 0
    keep = min(frames, content + padding_frames)
    keep += keep % 2  # the encoder's first convolution has stride 2
    return features if keep >= frames else features[..., :keep]


def token_budget(seconds: float) -> int:
    """max_new_tokens for `seconds` of speech: well above real speech, and a loop stops early."""
    return min(int(16 + MAX_TOKENS_PER_S * seconds), 448 - PROMPT_TOKENS_MAX)


def plausible(segments: Sequence[Segment], budget: int, *, log_prob: bool = True) -> bool:
    """Whether a short-window decode can stand: under the token budget and within Whisper's own
    compression-ratio (and, with `log_prob`, log-probability) thresholds, the checks that would
    have made Whisper decode that window again."""
    if sum(len(s.tokens) for s in segments) >= budget:
        return False
    for s in segments:
        if s.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
            return False
        if log_prob and s.avg_logprob < LOG_PROB_THRESHOLD and s.no_speech_prob <= NO_SPEECH_THRESHOLD:
            return False
    return True


class ShortWindowWhisper(WhisperModel):
    """WhisperModel whose encoder, inside `short_window(padding_s)`, reads audio plus padding only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()  # per thread: the server runs one request per worker thread

    @contextlib.contextmanager
    def short_window(self, padding_s: float = DEFAULT_WINDOW_PADDING_S) -> Iterator[None]:
        """Encode short windows in this thread meanwhile (transcribe's segments are decoded lazily:
        consume them inside)."""
        self._local.padding_frames = round(min(padding_s, FULL_WINDOW_S) * FRAMES_PER_S)
        try:
            yield
        finally:
            self._local.padding_frames = None

    def encode(self, features: Any) -> Any:
        padding = getattr(self._local, "padding_frames", None)
        if padding is not None and isinstance(features, np.ndarray):
            features = trimmed(features, padding)
        return super().encode(features)
