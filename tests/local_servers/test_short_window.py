"""The short encoder window (local_servers/whisper/executors/short_window.py): trimming, the checks that
send a decode back to the full window, and the real whisper-base model encoding and transcribing with it."""

from __future__ import annotations

import json

import jiwer
import numpy as np
import pytest
from faster_whisper import decode_audio
from faster_whisper.transcribe import Segment
from whisper_normalizer.english import EnglishTextNormalizer

from local_servers.whisper.executors.short_window import (
    ShortWindowWhisper,
    plausible,
    token_budget,
    trimmed,
)
from tests.support.proc import ROOT

AUDIO = ROOT / "tests" / "fixtures" / "audio"
CLIPS = json.loads((AUDIO / "manifest.json").read_text())["clips"]
normalize = EnglishTextNormalizer()


def padded(content_frames: int, batch: bool = False) -> np.ndarray:
    """Features as faster-whisper hands them to the encoder: content, then exact zeros up to 3000 frames."""
    features = np.zeros((80, 3000), dtype=np.float32)
    features[:, :content_frames] = np.random.default_rng(0).uniform(-1.5, 1.0, (80, content_frames))
    features[:, content_frames - 1] = 0.0
    features[3, content_frames - 1] = -0.7  # a last frame with only one nonzero bin still counts
    return features[None] if batch else features


@pytest.mark.parametrize("batch", [False, True])
def test_trimmed_keeps_content_and_padding(batch: bool) -> None:
    features = padded(431, batch)
    out = trimmed(features, 200)
    assert out.shape[-1] == 632  # 431 + 200, rounded up to even for the stride-2 convolution
    assert out.shape[:-1] == features.shape[:-1]
    np.testing.assert_array_equal(out, features[..., :632])


def test_trimmed_leaves_full_windows_and_silence_alone() -> None:
    assert trimmed(padded(2900), 200).shape[-1] == 3000
    assert trimmed(padded(3000), 0).shape[-1] == 3000
    assert trimmed(np.zeros((80, 3000), dtype=np.float32), 200).shape[-1] == 200


def segment(tokens: int, compression_ratio: float = 1.2, avg_logprob: float = -0.3,
            no_speech_prob: float = 0.01) -> Segment:
    return Segment(id=1, seek=0, start=0.0, end=1.0, text=" x", tokens=list(range(tokens)), avg_logprob=avg_logprob,
                   compression_ratio=compression_ratio, no_speech_prob=no_speech_prob, words=None, temperature=0.0)


def test_token_budget_grows_with_speech_and_leaves_room_for_the_prompt() -> None:
    assert token_budget(0.0) == 16
    assert token_budget(4.0) == 96
    assert token_budget(29.0) == 448 - 229  # prompt (up to 229 tokens) + budget stays within Whisper's 448


@pytest.mark.parametrize(
    ("segments", "log_prob", "ok"),
    [
        ([segment(25)], True, True),
        ([], True, True),                                          # silence
        ([segment(60), segment(36)], True, False),                 # the budget (96) was reached: maybe cut short
        ([segment(40, compression_ratio=8.5)], False, False),      # a loop
        ([segment(40, avg_logprob=-1.02)], True, False),           # Whisper would fall back
        ([segment(40, avg_logprob=-1.02)], False, True),           # ... unless the caller asked for one temperature
        ([segment(10, avg_logprob=-1.5, no_speech_prob=0.9)], True, True),  # Whisper's silence exemption
    ],
)
def test_plausible_applies_whispers_own_checks(segments: list[Segment], log_prob: bool, ok: bool) -> None:
    assert plausible(segments, token_budget(4.0), log_prob=log_prob) is ok


@pytest.fixture(scope="module")
def model() -> ShortWindowWhisper:
    return ShortWindowWhisper(str(ROOT / "models" / "whisper-base"), device="cpu", compute_type="int8",
                              cpu_threads=2, local_files_only=True)


def test_real_model_encodes_a_short_window_only_inside_the_context(model: ShortWindowWhisper) -> None:
    features = padded(431)
    assert model.encode(features).shape == [1, 1500, 512]  # Whisper's 30 s window
    with model.short_window(2.0):
        assert model.encode(features).shape == [1, 316, 512]  # (431 + 200) frames, halved by the stride
    assert model.encode(features).shape == [1, 1500, 512]


@pytest.mark.parametrize("clip", ["en_chest_pain.wav", "en_orders.wav"])
def test_real_model_transcribes_as_well_with_a_short_window(model: ShortWindowWhisper, clip: str) -> None:
    audio = decode_audio(str(AUDIO / clip), sampling_rate=16000)
    reference = normalize(CLIPS[clip]["text"])

    def error() -> float:
        segments, _ = model.transcribe(audio, language="en", beam_size=5, temperature=0.0)
        return jiwer.wer(reference, normalize(" ".join(s.text for s in segments)))

    full = error()
    with model.short_window(2.0):
        short = error()
    # Not always the same words (a borderline word may flip either way), as accurate within one word.
    assert short <= full + 1 / len(reference.split()), (short, full)
