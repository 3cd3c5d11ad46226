"""PCM16 in, 16 kHz float32 out: decoding, streaming 24 kHz -> 16 kHz resampling, WAV encoding.

Everything downstream (VAD, partial and final transcription) works on 16 kHz mono float32, Whisper's
and Silero's native rate. 24 kHz input (OpenAI's only rate) goes through a polyphase FIR resampler
(up 2, low-pass, down 3) that keeps its filter state between chunks, so streaming 100 ms chunks gives
the same samples as resampling the whole recording at once.
"""

from __future__ import annotations

import io
import wave

import numpy as np

SAMPLE_RATE = 16000
SUPPORTED_RATES = (24000, 16000)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit PCM to float32 in [-1, 1). `len(data)` must be even."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_wav(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Mono float32 to a 16-bit PCM WAV file (what the transcription providers receive)."""
    pcm = (np.clip(audio, -1.0, 1.0 - 1.0 / 32768) * 32768.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def _lowpass(taps: int, cutoff: float) -> np.ndarray:
    """Windowed-sinc low-pass; `cutoff` in cycles per sample of the rate it runs at."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 8.0)
    return (h / h.sum()).astype(np.float32)


class Resampler:
    """Streaming rational resampler to 16 kHz (24 kHz: up 2, down 3; 16 kHz: pass-through)."""

    TAPS = 96

    def __init__(self, rate: int) -> None:
        if rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported sample rate {rate}")
        self.rate = rate
        self.up, self.down = (2, 3) if rate == 24000 else (1, 1)
        if self.up != 1:
            # At the upsampled 48 kHz: pass up to ~7.2 kHz, stop by 8 kHz (the 16 kHz Nyquist).
            self._h = _lowpass(self.TAPS, 7600 / 48000) * self.up
            self._tail = np.zeros(self.TAPS - 1, dtype=np.float32)
            self._next = 0  # absolute upsampled index of the next input sample

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        if self.up == 1 or len(audio) == 0:
            return audio.astype(np.float32, copy=False)
        up = np.zeros(len(audio) * self.up, dtype=np.float32)
        up[:: self.up] = audio
        buffer = np.concatenate([self._tail, up])
        filtered = np.convolve(buffer, self._h, mode="valid")  # filtered[i] ends at upsampled index base + i
        base = self._next
        first = (-base) % self.down
        out = filtered[first :: self.down]
        self._tail = buffer[-(self.TAPS - 1):]
        self._next = base + len(up)
        return out.astype(np.float32, copy=False)
