"""input_audio_buffer.append / .commit / .clear."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from gateway.realtime.events import ClientError

if TYPE_CHECKING:
    from gateway.realtime.session import RealtimeSession

MAX_APPEND_BYTES = 15 << 20  # OpenAI's limit per append event


async def append(rt: RealtimeSession, event: dict[str, Any]) -> None:
    audio = event.get("audio")
    if audio is None:
        raise ClientError("missing_required_parameter", "input_audio_buffer.append needs 'audio': base64 PCM16",
                          "audio")
    if not isinstance(audio, str):
        raise ClientError("invalid_type", "'audio' must be a base64 string", "audio")
    if len(audio) > MAX_APPEND_BYTES * 4 // 3 + 4:
        raise ClientError("invalid_value", "one append may carry at most 15 MiB of audio", "audio")
    try:
        pcm = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError("invalid_base64", "'audio' is not valid base64", "audio") from None
    if len(pcm) % 2:
        raise ClientError("invalid_audio_length", f"'audio' decodes to {len(pcm)} bytes, an odd count: PCM16 "
                          "samples are 2 bytes each (little-endian, mono)", "audio")
    await rt.append(pcm)


async def commit(rt: RealtimeSession, event: dict[str, Any]) -> None:
    await rt.commit()


async def clear(rt: RealtimeSession, event: dict[str, Any]) -> None:
    await rt.clear()
