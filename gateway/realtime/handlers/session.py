"""session.update (GA) and transcription_session.update (beta): validate everything, then apply.

GA: `session = {type: "transcription", audio: {input: {format, transcription, turn_detection,
noise_reduction}}, include}`. Beta: `session = {input_audio_format, input_audio_transcription,
turn_detection, input_audio_noise_reduction, include}`. Fields left out keep their value; an update
with any invalid field changes nothing. Unknown fields are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.realtime import events
from gateway.realtime.audio import SUPPORTED_RATES
from gateway.realtime.events import ClientError
from gateway.realtime.vad import TurnDetection

if TYPE_CHECKING:
    from gateway.realtime.session import RealtimeSession

INCLUDES = ("item.input_audio_transcription.logprobs",)


def _object(value: Any, param: str, nullable: bool = False) -> dict[str, Any] | None:
    if value is None and nullable:
        return None
    if not isinstance(value, dict):
        raise ClientError("invalid_type", f"{param} must be an object" + (" or null" if nullable else ""), param)
    return value


def _optional_string(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ClientError("invalid_type", f"{param} must be a string", param)
    return value


def _number(value: Any, param: str, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and int(value) != value):
        raise ClientError("invalid_type", f"{param} must be {'an integer' if integer else 'a number'}", param)
    if not low <= value <= high:
        raise ClientError("invalid_value", f"{param} must be between {low:g} and {high:g}", param)
    return int(value) if integer else float(value)


def parse_transcription(rt: RealtimeSession, value: Any, param: str) -> dict[str, Any]:
    body = _object(value, param, nullable=True) or {}
    model, alias = rt.resolve_model(body.get("model"), f"{param}.model")
    language = _optional_string(body.get("language"), f"{param}.language")
    if language is not None and not (2 <= len(language) <= 3 and language.isalpha()):
        raise ClientError("invalid_value", f"{param}.language must be an ISO-639-1 code such as 'en' or 'fa'",
                          f"{param}.language")
    return {"model": model, "alias": alias, "language": language.lower() if language else None,
            "prompt": _optional_string(body.get("prompt"), f"{param}.prompt")}


def parse_turn_detection(rt: RealtimeSession, value: Any, param: str) -> TurnDetection | None:
    body = _object(value, param, nullable=True)
    if body is None:
        return None
    kind = body.get("type", "server_vad")
    if kind != "server_vad":
        raise ClientError("unsupported_turn_detection", f"{param}.type '{kind}' is not supported: use 'server_vad' "
                          "or null (the client commits)", f"{param}.type")
    td = TurnDetection(silence_duration_ms=rt.settings.realtime_silence_ms)
    if body.get("threshold") is not None:
        td.threshold = _number(body["threshold"], f"{param}.threshold", 0.0, 1.0)
    if body.get("prefix_padding_ms") is not None:
        td.prefix_padding_ms = int(_number(body["prefix_padding_ms"], f"{param}.prefix_padding_ms", 0, 5000, True))
    if body.get("silence_duration_ms") is not None:
        td.silence_duration_ms = int(_number(body["silence_duration_ms"], f"{param}.silence_duration_ms", 100, 10000,
                                             True))
    return td


def parse_format(value: Any, param: str) -> int:
    """GA `{type: "audio/pcm", rate: 24000}`; rate 16000 is this gateway's extension."""
    body = _object(value, param)
    assert body is not None
    kind = body.get("type", "audio/pcm")
    if kind != "audio/pcm":
        raise ClientError("unsupported_audio_format", f"{param}.type '{kind}' is not supported: send 'audio/pcm' "
                          "(16-bit little-endian mono)", f"{param}.type")
    rate = body.get("rate", 24000)
    if rate not in SUPPORTED_RATES or isinstance(rate, bool):
        raise ClientError("invalid_value", f"{param}.rate must be 24000 (or 16000, an extension of this gateway)",
                          f"{param}.rate")
    return int(rate)


def parse_include(value: Any, param: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(v not in INCLUDES for v in value):
        raise ClientError("invalid_value", f"{param} must be a list of {list(INCLUDES)}", param)
    return list(value)


async def update(rt: RealtimeSession, event: dict[str, Any]) -> None:
    body = event.get("session")
    if body is None:
        raise ClientError("missing_required_parameter", "session.update needs a 'session' object", "session")
    body = _object(body, "session")
    assert body is not None
    kind = body.get("type", "transcription")
    if kind != "transcription":
        raise ClientError("unsupported_session_type", f"session.type '{kind}' is not supported: this endpoint runs "
                          "transcription sessions only (session.type = 'transcription')", "session.type")
    changes: dict[str, Any] = {}
    audio = _object(body.get("audio", {}), "session.audio") or {}
    audio_in = _object(audio.get("input", {}), "session.audio.input") or {}
    if "format" in audio_in:
        changes["rate"] = parse_format(audio_in["format"], "session.audio.input.format")
    if "transcription" in audio_in:
        changes["transcription"] = parse_transcription(rt, audio_in["transcription"],
                                                       "session.audio.input.transcription")
    if "turn_detection" in audio_in:
        changes["turn_detection"] = parse_turn_detection(rt, audio_in["turn_detection"],
                                                         "session.audio.input.turn_detection")
    if "include" in body:
        changes["include"] = parse_include(body["include"], "session.include")
    await rt.apply(**changes)
    await rt.send({"type": "session.updated", "event_id": events.new_id("event"), "session": rt.session_object(False)})


async def update_beta(rt: RealtimeSession, event: dict[str, Any]) -> None:
    body = event.get("session")
    if body is None:
        raise ClientError("missing_required_parameter", "transcription_session.update needs a 'session' object",
                          "session")
    body = _object(body, "session")
    assert body is not None
    changes: dict[str, Any] = {}
    if "input_audio_format" in body:
        if body["input_audio_format"] != "pcm16":
            raise ClientError("unsupported_audio_format", "session.input_audio_format must be 'pcm16' (24 kHz)",
                              "session.input_audio_format")
        changes["rate"] = 24000
    if "input_audio_transcription" in body:
        changes["transcription"] = parse_transcription(rt, body["input_audio_transcription"],
                                                       "session.input_audio_transcription")
    if "turn_detection" in body:
        changes["turn_detection"] = parse_turn_detection(rt, body["turn_detection"], "session.turn_detection")
    if "include" in body:
        changes["include"] = parse_include(body["include"], "session.include")
    await rt.apply(**changes)
    await rt.send({"type": "transcription_session.updated", "event_id": events.new_id("event"),
                   "session": rt.session_object(True)})
