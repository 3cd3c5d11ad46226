"""Deterministic reply content: chat text, JSON-mode objects, schema instances, transcripts, timings."""

from __future__ import annotations

import io
import json
import re
import wave
from typing import Any

# ISO-639-1 code -> the language name Whisper reports in verbose_json.
LANGUAGE_NAMES = {
    "en": "english",
    "fa": "persian",
    "ar": "arabic",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "tr": "turkish",
    "ru": "russian",
    "zh": "chinese",
    "ja": "japanese",
    "hi": "hindi",
    "ur": "urdu",
    "nl": "dutch",
    "pt": "portuguese",
}


def count_tokens(text: str) -> int:
    """Deterministic token count: whitespace-separated words, at least 1."""
    return max(1, len(text.split()))


def message_text(messages: Any) -> str:
    """All text of a chat `messages` list (string contents and text parts), joined by spaces."""
    parts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
    return " ".join(parts)


def schema_instance(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal instance that validates against a (JSON Schema subset) `schema`.

    Handles $ref into $defs/definitions, const, enum, anyOf/oneOf/allOf (first branch / merged), type lists,
    objects (required properties; every property when `required` is absent and additionalProperties is false),
    arrays (minItems), strings (minLength, format date/date-time/email/uri), numbers/integers (minimum).
    """
    if not isinstance(schema, dict) or depth > 20:
        return None
    if defs is None:
        defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_instance(defs.get(name, {}), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")]
            return schema_instance((branches or schema[key])[0], defs, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for branch in schema["allOf"]:
            if isinstance(branch, dict) and "$ref" in branch:
                branch = defs.get(branch["$ref"].rsplit("/", 1)[-1], {})
            for k, v in branch.items():
                if k in ("properties",):
                    merged.setdefault(k, {}).update(v)
                elif k == "required":
                    merged.setdefault(k, []).extend(v)
                else:
                    merged[k] = v
        return schema_instance(merged, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties", {})
        names = schema.get("required")
        if names is None:
            names = list(props) if schema.get("additionalProperties") is False else []
        return {name: schema_instance(props.get(name, {"type": "string"}), defs, depth + 1) for name in names}
    if kind == "array":
        count = schema.get("minItems", 1 if schema.get("items") else 0)
        items = schema.get("items", {})
        return [schema_instance(items, defs, depth + 1) for _ in range(count)]
    if kind == "string":
        fmt = schema.get("format")
        value = {
            "date": "2024-01-01",
            "date-time": "2024-01-01T00:00:00Z",
            "email": "a@example.com",
            "uri": "https://example.com",
            "uuid": "00000000-0000-4000-8000-000000000000",
        }.get(fmt, "x")
        return value.ljust(schema.get("minLength", 0), "x")
    if kind == "integer":
        return int(max(schema.get("minimum", 0), schema.get("exclusiveMinimum", -1) + 1))
    if kind == "number":
        if "exclusiveMinimum" in schema:
            return schema["exclusiveMinimum"] + 1
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def chat_content(provider: str, model: str, response_format: Any) -> str:
    """Default assistant content for a chat request."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"provider": provider, "model": model, "answer": f"{provider} {model} reply"})
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        return json.dumps(schema_instance(spec.get("schema", spec)))
    return f"{provider} {model} reply"


def invalid_json_content(provider: str) -> str:
    """Content a JSON-mode caller cannot parse (a truncated object)."""
    return '{"provider": "' + provider + '", "answer": "truncated'


def wav_duration(data: bytes) -> float:
    """Seconds of audio: from the WAV header when `data` is a WAV, else bytes / 32000 (16 kHz 16-bit mono)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate = w.getframerate()
            if rate > 0:
                return round(w.getnframes() / rate, 3)
    except (wave.Error, EOFError, ValueError):
        pass
    return round(len(data) / 32000, 3)


def transcript_text(provider: str, language: str | None, translate: bool = False) -> str:
    base = f"{provider} translation" if translate else f"{provider} transcript"
    return f"{base} {language}" if language and not translate else base


def segments_and_words(text: str, duration: float) -> tuple[list[dict], list[dict]]:
    """Whisper-style segments (up to 8 words each) and words, spread evenly over `duration`."""
    words = text.split() or [""]
    span = max(duration, 0.1)
    step = span / len(words)
    word_list = [
        {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(words)
    ]
    segments = []
    for seg_id, first in enumerate(range(0, len(words), 8)):
        chunk = word_list[first : first + 8]
        segments.append(
            {
                "id": seg_id,
                "seek": 0,
                "start": chunk[0]["start"],
                "end": chunk[-1]["end"],
                "text": " " + " ".join(w["word"] for w in chunk),
                "tokens": [50364 + seg_id * 10 + j for j in range(len(chunk))],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.1,
                "no_speech_prob": 0.01,
            }
        )
    return segments, word_list


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(segments: list[dict]) -> str:
    return "".join(
        f"{i + 1}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n{s['text'].strip()}\n\n"
        for i, s in enumerate(segments)
    )


def vtt(segments: list[dict]) -> str:
    return "WEBVTT\n\n" + "".join(
        f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n{s['text'].strip()}\n\n"
        for s in segments
    )


def split_chunks(content: str, pieces: int = 3) -> list[str]:
    """Split content into up to `pieces` consecutive, non-empty parts (at word boundaries where it can)
    that join back to exactly `content`."""
    if not content:
        return []
    words = re.findall(r"\s*\S+\s*|\s+", content)
    if len(words) < pieces:  # too few words: split by characters
        size = max(1, -(-len(content) // pieces))
        return [content[i : i + size] for i in range(0, len(content), size)]
    per = -(-len(words) // pieces)
    return ["".join(words[i : i + per]) for i in range(0, len(words), per)]
