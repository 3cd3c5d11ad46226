"""Server events, typed with the openai SDK's own models (openai.types.realtime), and the ids they carry."""

from __future__ import annotations

import secrets
from typing import Any

from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeError,
    RealtimeErrorEvent,
)
from openai.types.realtime.conversation_item_input_audio_transcription_completed_event import (
    UsageTranscriptTextUsageDuration,
)
from openai.types.realtime.conversation_item_input_audio_transcription_failed_event import Error as FailedError

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str) -> str:
    """OpenAI-style ids: event_..., item_..., sess_..."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(21))


class ClientError(Exception):
    """A client event the session cannot take: answered with an `error` event, the session goes on."""

    def __init__(self, code: str, message: str, param: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.kind = code, message, param, kind


def error(code: str, message: str, param: str | None = None, client_event_id: str | None = None,
          kind: str = "invalid_request_error") -> dict[str, Any]:
    event = RealtimeErrorEvent(type="error", event_id=new_id("event"), error=RealtimeError(
        type=kind, code=code, message=message, param=param, event_id=client_event_id))
    return event.model_dump(mode="json")  # param and event_id present even when null, as OpenAI sends them


def _dump(event: Any) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


def speech_started(item_id: str, audio_start_ms: int) -> dict[str, Any]:
    return _dump(InputAudioBufferSpeechStartedEvent(type="input_audio_buffer.speech_started", event_id=new_id("event"),
                                                    item_id=item_id, audio_start_ms=audio_start_ms))


def speech_stopped(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    return _dump(InputAudioBufferSpeechStoppedEvent(type="input_audio_buffer.speech_stopped", event_id=new_id("event"),
                                                    item_id=item_id, audio_end_ms=audio_end_ms))


def committed(item_id: str, previous_item_id: str | None) -> dict[str, Any]:
    event = InputAudioBufferCommittedEvent(type="input_audio_buffer.committed", event_id=new_id("event"),
                                           item_id=item_id, previous_item_id=previous_item_id)
    return event.model_dump(mode="json")  # previous_item_id: null for the first item, as OpenAI sends it


def cleared() -> dict[str, Any]:
    return _dump(InputAudioBufferClearedEvent(type="input_audio_buffer.cleared", event_id=new_id("event")))


def delta(item_id: str, text: str) -> dict[str, Any]:
    return _dump(ConversationItemInputAudioTranscriptionDeltaEvent(
        type="conversation.item.input_audio_transcription.delta", event_id=new_id("event"), item_id=item_id,
        content_index=0, delta=text))


def completed(item_id: str, transcript: str, seconds: float) -> dict[str, Any]:
    return _dump(ConversationItemInputAudioTranscriptionCompletedEvent(
        type="conversation.item.input_audio_transcription.completed", event_id=new_id("event"), item_id=item_id,
        content_index=0, transcript=transcript,
        usage=UsageTranscriptTextUsageDuration(type="duration", seconds=round(seconds, 3))))


def failed(item_id: str, kind: str, code: str | None, message: str) -> dict[str, Any]:
    return _dump(ConversationItemInputAudioTranscriptionFailedEvent(
        type="conversation.item.input_audio_transcription.failed", event_id=new_id("event"), item_id=item_id,
        content_index=0, error=FailedError(type=kind, code=code, message=message)))
