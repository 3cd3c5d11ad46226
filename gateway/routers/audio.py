"""POST /v1/audio/transcriptions (and Groq's /openai/v1/audio/transcriptions), OpenAI multipart."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.auth import end_user, require_key
from gateway.core import Call
from gateway.errors import GatewayError
from gateway.routers.responses import json_response, require_mode, routing_headers

FORMATS = {"json", "text", "srt", "verbose_json", "vtt"}
_CHUNK = 1 << 20


async def _read_bounded(upload: UploadFile, limit: int) -> bytes:
    """Read the upload but never more than `limit` bytes into memory."""
    data = bytearray()
    while chunk := await upload.read(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise GatewayError(413, f"audio file is larger than the {limit // (1 << 20)} MB limit", "file_too_large",
                               "file")
    return bytes(data)


async def transcriptions(request: Request) -> Response:
    """OpenAI audio transcriptions on an alias (docs/api.md).
    ---
    summary: Transcribe an audio file on an alias (stt, stt-realtime or a legacy Groq name)
    security: [{bearer: []}, {apiKey: []}]
    parameters:
      - {$ref: '#/components/parameters/EndUser'}
      - {$ref: '#/components/parameters/Pin'}
    requestBody:
      required: true
      content:
        multipart/form-data: {schema: {$ref: '#/components/schemas/TranscriptionRequest'}}
    responses:
      '200':
        description: the transcript; text for response_format text, srt and vtt
        content:
          application/json: {schema: {type: object, required: [text], properties: {text: {type: string}}}}
          text/plain: {schema: {type: string}}
      '400': {$ref: '#/components/responses/BadRequest'}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
      '413': {$ref: '#/components/responses/BadRequest'}
      '429': {$ref: '#/components/responses/RateLimited'}
      '502': {$ref: '#/components/responses/Upstream'}
      '503': {$ref: '#/components/responses/Draining'}
      '504': {$ref: '#/components/responses/Upstream'}
    """
    require_key(request)
    gateway = request.app.state.gateway
    limit = gateway.settings.max_audio_mb << 20
    if int(request.headers.get("content-length") or 0) > limit + (1 << 16):
        raise GatewayError(413, f"audio file is larger than the {gateway.settings.max_audio_mb} MB limit",
                           "file_too_large", "file")
    try:
        form = await request.form(max_part_size=limit + 1)
    except Exception as exc:  # malformed multipart, or a part over the limit
        raise GatewayError(400, f"could not read multipart form: {exc}", "invalid_request") from exc
    require_mode(gateway, form.get("model"), "audio_transcription", "/audio/transcriptions")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise GatewayError(400, "'file' is required: the audio file to transcribe", "invalid_request", "file")
    audio = await _read_bounded(upload, limit)
    if not audio:
        raise GatewayError(400, "the audio file is empty", "invalid_request", "file")

    response_format = str(form.get("response_format") or "json")
    if response_format not in FORMATS:
        raise GatewayError(400, f"response_format must be one of {sorted(FORMATS)}", "invalid_request",
                           "response_format")
    data: dict[str, Any] = {"model": form.get("model"), "file": (upload.filename or "audio.wav", audio),
                            "response_format": response_format}
    for name in ("language", "prompt"):
        if form.get(name):
            data[name] = str(form.get(name))
    if form.get("temperature") not in (None, ""):
        try:
            data["temperature"] = float(str(form.get("temperature")))
        except ValueError as exc:
            raise GatewayError(400, "temperature must be a number", "invalid_request", "temperature") from exc
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
    if granularities:
        data["timestamp_granularities"] = [str(g) for g in granularities]

    call = Call("transcription", data, user=end_user(request, form.get("user")),
                metadata={"audio_bytes": len(audio), "pin": request.headers.get("x-modelgate-pin")})
    result = await gateway.transcription(call)
    headers = routing_headers(result)
    if response_format in ("text", "srt", "vtt"):
        return PlainTextResponse(result.text, headers=headers)
    return json_response(result.model_dump(exclude_none=True), headers)
