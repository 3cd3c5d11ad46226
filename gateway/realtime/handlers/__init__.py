"""Client events -> handlers, one small module per event family (session.*, input_audio_buffer.*).

`handle_frame` parses one WebSocket frame and dispatches it. Anything wrong with a frame (not JSON,
not an event, an unknown or unsupported type, a bad field) is answered with an `error` event in
OpenAI's shape, carrying the client's `event_id`, and the session goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.realtime.events import ClientError
from gateway.realtime.handlers import input_audio_buffer, session

if TYPE_CHECKING:
    from gateway.realtime.session import RealtimeSession

log = logging.getLogger("modelgate.realtime")

Handler = Callable[["RealtimeSession", dict[str, Any]], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "session.update": session.update,
    "transcription_session.update": session.update_beta,
    "input_audio_buffer.append": input_audio_buffer.append,
    "input_audio_buffer.commit": input_audio_buffer.commit,
    "input_audio_buffer.clear": input_audio_buffer.clear,
}

# Realtime API events of conversation sessions: valid elsewhere, not in a transcription session.
UNSUPPORTED = ("response.create", "response.cancel", "conversation.item.create", "conversation.item.delete",
               "conversation.item.retrieve", "conversation.item.truncate", "output_audio_buffer.clear")


async def handle_frame(rt: RealtimeSession, text: str | None, data: bytes | None) -> None:
    event_id = None
    try:
        event = _parse(text)
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        if not isinstance(kind, str) or not kind:
            raise ClientError("missing_required_parameter", "the event has no 'type'", "type")
        handler = HANDLERS.get(kind)
        if handler is None:
            if kind in UNSUPPORTED:
                raise ClientError("unsupported_event", f"'{kind}' is not supported in a transcription session: "
                                  "this endpoint transcribes input audio only", "type")
            raise ClientError("unknown_event_type", f"unknown event type '{kind}'; supported: "
                              + ", ".join(HANDLERS), "type")
        await handler(rt, event)
    except ClientError as exc:
        await rt.send_error(exc, event_id)
    except Exception as exc:  # noqa: BLE001 - a bug must not end the session
        log.exception("realtime %s: event failed", rt.id)
        await rt.send_error(ClientError("server_error", f"internal error handling the event: {type(exc).__name__}",
                                        kind="server_error"), event_id)


def _parse(text: str | None) -> dict[str, Any]:
    if text is None:
        raise ClientError("invalid_json", "binary frames are not accepted: send events as JSON text frames "
                          "(audio goes base64-encoded in input_audio_buffer.append)")
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise ClientError("invalid_json", f"the frame is not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ClientError("invalid_event", "an event must be a JSON object with a 'type'")
    return event
