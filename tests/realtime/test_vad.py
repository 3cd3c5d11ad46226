"""The server VAD (Silero, incremental) and the turn segmenter, on the dictation fixtures; the resampler."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.realtime.audio import Resampler, float_to_wav, pcm16_to_float
from gateway.realtime.vad import (
    Pause,
    Resumed,
    Segmenter,
    SpeechProbabilities,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
)
from scripts.bench_realtime import AUDIO, read_wav, speech_spans

SR = 16000


def load(name: str) -> np.ndarray:
    samples, rate = read_wav(AUDIO / name)
    assert rate == SR
    return samples.astype(np.float32) / 32768


def run(segmenter: Segmenter, audio: np.ndarray, chunk: int = 1600, tail_s: float = 1.0) -> list:
    audio = np.concatenate([audio, np.zeros(int(tail_s * SR), dtype=np.float32)])
    events = []
    for i in range(0, len(audio), chunk):
        events += segmenter.feed(audio[i:i + chunk])
    return events


def test_streamed_probabilities_equal_one_pass():
    from faster_whisper.vad import get_vad_model

    audio = load("en_chest_pain.wav")
    audio = audio[: len(audio) // 512 * 512]
    whole = np.asarray(get_vad_model()(audio)).reshape(-1)
    vad = SpeechProbabilities()
    streamed = np.concatenate([vad(audio[i:i + 1000])[0] for i in range(0, len(audio), 1000)])
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("name", ["en_dictation_3_sentences.wav", "fa_dictation_2_sentences.wav"])
def test_one_utterance_per_sentence_with_padding_and_tail(name):
    audio = load(name)
    spans = speech_spans(AUDIO / name)
    events = run(Segmenter(TurnDetection()), audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, Pause, SpeechStopped] * len(spans)
    starts = [e.start / SR for e in events if isinstance(e, SpeechStarted)]
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    for (begin, end), start, stop in zip(spans, starts, stops):
        assert begin - 0.45 <= start <= begin  # 300 ms prefix padding, window granularity
        assert abs(stop.end / SR - end) < 0.15  # where speech stopped
        # The audio: from the padded start to 200 ms past the end of speech.
        assert abs(len(stop.audio) / SR - (stop.end / SR + 0.2 - start)) < 0.04
    pauses = [e for e in events if isinstance(e, Pause)]
    assert [len(p.audio) for p in pauses] == [len(s.audio) for s in stops]  # the early final sees the same audio


def test_silence_and_a_click_open_no_utterance():
    seg = Segmenter(TurnDetection())
    assert run(seg, load("silence_3s.wav")) == []
    click = np.zeros(SR, dtype=np.float32)
    click[8000:8100] = 0.9
    assert run(seg, click) == []
    assert seg.held_samples == 0


def test_a_short_pause_resumes_the_same_utterance():
    speech = load("en_chest_pain.wav")
    gap = np.zeros(int(0.35 * SR), dtype=np.float32)
    audio = np.concatenate([speech[: 3 * SR], gap, speech[3 * SR:]])
    events = run(Segmenter(TurnDetection(silence_duration_ms=500)), audio)
    kinds = [type(e) for e in events]
    assert kinds.count(SpeechStarted) == 1 and kinds.count(SpeechStopped) == 1
    assert kinds.index(Pause) < kinds.index(Resumed) < kinds.index(SpeechStopped)


def test_silence_duration_decides_the_turn():
    # 1 s pauses between sentences: a 1.5 s silence_duration keeps the dictation one utterance.
    events = run(Segmenter(TurnDetection(silence_duration_ms=1500)), load("fa_dictation_2_sentences.wav"), tail_s=2)
    assert [type(e) for e in events].count(SpeechStopped) == 1


def test_long_utterance_is_split_at_a_quiet_point_and_nothing_is_lost():
    audio = load("en_chest_pain.wav")
    seg = Segmenter(TurnDetection(), max_utterance_s=2.0)
    events = run(seg, audio)
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert sum(e.forced for e in stops) >= 2
    assert all(len(e.audio) <= 2.2 * SR + 512 for e in stops)  # the limit, plus the tail of a last silence
    starts = [e.start for e in events if isinstance(e, SpeechStarted)]
    # Each split utterance starts exactly where the previous one was cut.
    for stop, start in zip([s for s in stops if s.forced], starts[1:]):
        assert stop.end == start


def test_flush_commits_open_speech_and_clear_drops_it():
    audio = load("en_chest_pain.wav")[: 2 * SR]
    seg = Segmenter(TurnDetection())
    assert isinstance(seg.feed(audio)[0], SpeechStarted)
    assert seg.speaking and seg.held_samples > SR
    stopped = seg.flush()
    assert stopped is not None and len(stopped.audio) > 1.5 * SR
    assert seg.flush() is None and seg.held_samples == 0
    seg.feed(audio)
    seg.clear()
    assert not seg.speaking and seg.held_samples == 0 and seg.flush() is None


def test_resampler_24k_streams_like_one_pass_and_keeps_speech_band():
    t = np.arange(24000) / 24000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    whole = Resampler(24000)(tone)
    chunked_rs = Resampler(24000)
    chunked = np.concatenate([chunked_rs(tone[i:i + 2400]) for i in range(0, len(tone), 2400)])
    assert len(whole) == len(chunked) == 16000
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    # 1 kHz passes (amplitude kept), 10 kHz (above the new Nyquist) is filtered out rather than aliased.
    assert abs(np.abs(whole[1000:15000]).max() - 0.5) < 0.02
    high = Resampler(24000)((0.5 * np.sin(2 * np.pi * 10000 * t)).astype(np.float32))
    assert np.abs(high[1000:15000]).max() < 0.01
    assert Resampler(16000)(tone) is not None and len(Resampler(16000)(tone)) == len(tone)
    with pytest.raises(ValueError):
        Resampler(8000)


def test_pcm_and_wav_round_trip():
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    audio = pcm16_to_float(pcm)
    np.testing.assert_allclose(audio, [0, 0.5, -1, 32767 / 32768])
    wav = float_to_wav(audio)
    assert wav[:4] == b"RIFF" and wav.endswith(pcm)
