"""Realtime transcription over WebSocket: OpenAI's Realtime API (transcription sessions) on /v1/realtime.

    route.py         the endpoint: auth, session limit, the receive loop
    handlers/        one module per client event family: session.*, input_audio_buffer.*
    session.py       a session's state, limits and tasks; finals through Gateway.transcription
    vad.py           Silero VAD run incrementally, and the server_vad turn segmenter
    agreement.py     LocalAgreement-2: stable partial text from re-transcriptions
    partials.py      the in-process model behind partial transcripts
    audio.py         PCM16 decoding, 24 -> 16 kHz resampling, WAV encoding
    events.py        server events, typed with the openai SDK's models

See docs/realtime.md.
"""

from __future__ import annotations

from typing import Any


def routes() -> list[Any]:
    """The WebSocket routes (imported here lazily: the pure modules above need neither LiteLLM nor Starlette)."""
    from gateway.realtime.route import routes as websocket_routes

    return websocket_routes()
