"""Rendering a transcription in OpenAI's response formats: json, text, srt, vtt and verbose_json.

The JSON bodies are the openai SDK's own models, so their shape follows OpenAI's API. One
deliberate difference: `language` is the ISO code Whisper reports ("fa"), where OpenAI writes a
name ("persian"); modelgate's consumers expect the code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from fastapi.responses import JSONResponse, PlainTextResponse, Response
from faster_whisper.transcribe import Segment
from openai.types.audio import (
    Transcription,
    TranscriptionSegment,
    TranscriptionVerbose,
    TranscriptionWord,
    Translation,
    TranslationVerbose,
)

from local_servers.whisper.executors.whisper import Result

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


def timestamp(seconds: float, decimal_marker: str) -> str:
    """`HH:MM:SS,mmm` (SRT, marker ",") or `HH:MM:SS.mmm` (WebVTT, marker ".")."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def plain_text(segments: Sequence[Segment]) -> str:
    # Whisper starts each segment's text with a space; OpenAI's `text` has none at the ends.
    return "".join(segment.text for segment in segments).strip()


def srt(segments: Sequence[Segment]) -> str:
    cues = [
        f"{i}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def vtt(segments: Sequence[Segment]) -> str:
    cues = [f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments]
    return "\n".join(["WEBVTT\n", *cues])


def openai_segments(segments: Sequence[Segment]) -> list[TranscriptionSegment]:
    # ids count from 0 as OpenAI's do (faster-whisper counts from 1).
    return [
        TranscriptionSegment(
            id=i,
            seek=s.seek,
            start=s.start,
            end=s.end,
            text=s.text,
            tokens=s.tokens,
            temperature=s.temperature or 0.0,
            avg_logprob=s.avg_logprob,
            compression_ratio=s.compression_ratio,
            no_speech_prob=s.no_speech_prob,
        )
        for i, s in enumerate(segments)
    ]


def openai_words(segments: Sequence[Segment]) -> list[TranscriptionWord]:
    # OpenAI's words carry no surrounding spaces; Whisper's start with one.
    return [
        TranscriptionWord(word=w.word.strip(), start=w.start, end=w.end)
        for s in segments
        for w in (s.words or [])
    ]


def usage(duration: float) -> dict:
    # OpenAI bills whisper by the second and reports it this way; useful to a gateway's metering.
    return {"type": "duration", "seconds": math.ceil(duration)}


def render_transcription(
    result: Result, response_format: ResponseFormat, with_segments: bool = True, with_words: bool = False
) -> Response:
    text = plain_text(result.segments)
    if response_format == "json":
        return json_response(Transcription(text=text, usage=usage(result.duration)))
    if response_format == "verbose_json":
        return json_response(
            TranscriptionVerbose(
                task="transcribe",  # OpenAI sends it; the SDK model keeps extra fields
                language=result.language,
                duration=result.duration,
                text=text,
                segments=openai_segments(result.segments) if with_segments else None,
                words=openai_words(result.segments) if with_words else None,
                usage=usage(result.duration),
            )
        )
    return render_text(result, response_format)


def render_translation(result: Result, response_format: ResponseFormat) -> Response:
    text = plain_text(result.segments)
    if response_format == "json":
        return json_response(Translation(text=text))
    if response_format == "verbose_json":
        return json_response(
            TranslationVerbose(
                task="translate",
                language=result.language,
                duration=result.duration,
                text=text,
                segments=openai_segments(result.segments),
            )
        )
    return render_text(result, response_format)


def render_text(result: Result, response_format: Literal["text", "srt", "vtt"]) -> Response:
    if response_format == "srt":
        return PlainTextResponse(srt(result.segments))
    if response_format == "vtt":
        return PlainTextResponse(vtt(result.segments), media_type="text/vtt")
    return PlainTextResponse(plain_text(result.segments))


def json_response(
    model: Transcription | TranscriptionVerbose | Translation | TranslationVerbose,
) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", exclude_none=True))
