"""Routes of a fake provider: the provider's API under its own prefix, plus the control API.

    create_app("groq")        -> /openai/v1/chat/completions, /openai/v1/audio/transcriptions, ...
    create_app("openrouter")  -> /api/v1/chat/completions, ... (audio routes: 404, OpenRouter has none)
    create_app("openai")      -> /v1/chat/completions, /v1/audio/transcriptions, ...

Control API (outside the prefix): POST /_control, GET /_control, POST /_reset, GET /_requests,
DELETE /_requests, GET /health.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from . import content as text
from .faults import STATE, Fault, FaultSpecError
from .wire import DONE, Wire, make_wire, sse

CHAT_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "response_format",
    "user",
    "seed",
    "stop",
    "n",
    "tools",
    "tool_choice",
)


class DropConnection(Response):
    """Closes the client's TCP connection without writing a byte (needs uvicorn's transport)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("drop fault: no transport behind this ASGI server's receive()")
        transport.abort()
        for _ in range(3):  # let connection_lost run so the server marks the request disconnected
            await asyncio.sleep(0)


async def _hold(request: Request, release: asyncio.Event) -> bool:
    """Wait until the client disconnects (False) or /_reset releases us (True)."""
    while not release.is_set():
        if await request.is_disconnected():
            return False
        try:
            await asyncio.wait_for(release.wait(), 0.2)
        except TimeoutError:
            pass
    return True


def create_app(provider: str) -> FastAPI:
    wire: Wire = make_wire(provider)
    app = FastAPI(title=f"fake {provider}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.wire = wire
    p = wire.prefix

    def error(
        status: int, model: str | None, request_id: str, message: str | None = None, retry_after: float = 1
    ) -> JSONResponse:
        headers = wire.headers(request_id)
        if status == 429:
            headers.update(wire.retry_headers(retry_after))
        return JSONResponse(
            wire.error_body(status, model, message, retry_after=retry_after),
            status_code=status,
            headers=headers,
        )

    def record(request: Request, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.url.path,
            "provider": provider,
            "authorization": request.headers.get("authorization"),
            "headers": dict(request.headers),
            "fault": None,
            **entry,
        }
        STATE.requests.append(entry)
        return entry

    async def pre_fault(
        fault: Fault | None, request: Request, model: str | None, request_id: str
    ) -> Response | None:
        """Faults that replace the answer: errors, hang, drop. `slow` waits here and lets the answer go."""
        if fault is None:
            return None
        if fault.status is not None:
            return error(fault.status, model, request_id, fault.message, fault.retry_after)
        if fault.kind == "hang":
            if await _hold(request, STATE.release):
                return error(503, model, request_id, "hang released by /_reset")
            return Response(status_code=499)  # the client is gone; nothing is read
        if fault.kind == "drop":
            return DropConnection()
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
        return None

    def check_auth(request: Request, model: str | None, request_id: str) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return error(401, model, request_id)
        return None

    # ---- chat ------------------------------------------------------------------------------------------
    @app.post(f"{p}/chat/completions")
    async def chat_completions(request: Request) -> Response:
        request_id = wire.request_id()
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            record(request, {"model": None, "body": None})
            return error(400, None, request_id, "We could not parse the JSON body of your request.")
        model = body.get("model")
        messages = body.get("messages")
        stream = bool(body.get("stream"))
        entry = record(
            request,
            {
                "model": model,
                "messages": len(messages) if isinstance(messages, list) else None,
                **{k: body.get(k) for k in CHAT_PARAMS},
                "stream": stream,
                "body": body,
            },
        )
        if (denied := check_auth(request, model, request_id)) is not None:
            return denied
        if not model or not isinstance(messages, list) or not messages:
            return error(400, model, request_id, "'model' and a non-empty 'messages' are required")
        fault = STATE.take(request.url.path, model, stream)
        entry["fault"] = fault.kind if fault else None
        if (early := await pre_fault(fault, request, model, request_id)) is not None:
            return early

        reply = STATE.reply.get("content")
        if fault is not None and fault.kind == "invalid_json":
            reply = text.invalid_json_content(provider)
        if reply is None:
            reply = text.chat_content(provider, model, body.get("response_format"))
        usage = wire.usage(
            model, text.count_tokens(text.message_text(messages)), text.count_tokens(reply), {**STATE.prices}
        )
        completion_id = wire.completion_id() if provider != "openrouter" else request_id
        headers = wire.headers(request_id)
        if not stream:
            return JSONResponse(
                wire.chat_completion(
                    completion_id=completion_id,
                    request_id=request_id,
                    model=model,
                    content=reply,
                    usage=usage,
                ),
                headers=headers,
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = wire.stream_chunks(
            completion_id=completion_id,
            request_id=request_id,
            model=model,
            content=reply,
            usage=usage,
            include_usage=include_usage,
        )
        return StreamingResponse(
            _stream(wire, chunks, fault, model, completion_id, request),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )

    # ---- audio -----------------------------------------------------------------------------------------
    async def audio(request: Request, translate: bool) -> Response:
        request_id = wire.request_id()
        try:
            form = await request.form()
        except HTTPException:  # broken multipart: the real services answer 400 too
            record(request, {"model": None})
            return error(400, None, request_id, "Request must be multipart/form-data with a 'file' field")
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        model = form.get("model")
        language = form.get("language") or None
        response_format = form.get("response_format") or "json"
        granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
        entry = record(
            request,
            {
                "model": model,
                "language": language,
                "prompt": form.get("prompt"),
                "temperature": _float(form.get("temperature")),
                "audio_response_format": response_format,
                "response_format": response_format,
                "timestamp_granularities": granularities,
                "audio_bytes": len(data),
                "filename": upload.filename if isinstance(upload, UploadFile) else None,
                "stream": False,
            },
        )
        if not wire.has_audio:
            return error(404, model, request_id)
        if (denied := check_auth(request, model, request_id)) is not None:
            return denied
        if not isinstance(upload, UploadFile) or not data or not model:
            return error(400, model, request_id, "'file' and 'model' are required")
        if response_format not in wire.audio_formats:
            return error(400, model, request_id, f"response_format must be one of {list(wire.audio_formats)}")
        fault = STATE.take(request.url.path, str(model), False)
        entry["fault"] = fault.kind if fault else None
        if (early := await pre_fault(fault, request, str(model), request_id)) is not None:
            return early
        headers = wire.headers(request_id)
        if fault is not None and fault.kind == "invalid_json":
            return Response(
                '{"text": "' + provider + " transcr", media_type="application/json", headers=headers
            )

        duration = text.wav_duration(data)
        transcript = STATE.reply.get("text")
        if transcript is None:
            transcript = text.transcript_text(provider, language, translate)
        if response_format == "text":
            return PlainTextResponse(transcript + "\n", headers=headers)
        if response_format in ("srt", "vtt"):
            segments, _ = text.segments_and_words(transcript, duration)
            body = text.srt(segments) if response_format == "srt" else text.vtt(segments)
            return PlainTextResponse(body, headers=headers)
        if response_format == "verbose_json":
            return JSONResponse(
                wire.transcription_verbose(
                    request_id=request_id,
                    transcript=transcript,
                    duration=duration,
                    language=language,
                    translate=translate,
                    granularities=granularities,
                ),
                headers=headers,
            )
        return JSONResponse(
            wire.transcription_json(request_id=request_id, transcript=transcript, duration=duration),
            headers=headers,
        )

    @app.post(f"{p}/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await audio(request, translate=False)

    @app.post(f"{p}/audio/translations")
    async def translations(request: Request) -> Response:
        return await audio(request, translate=True)

    @app.get(f"{p}/models")
    async def models() -> JSONResponse:
        return JSONResponse(wire.models_list(STATE.prices), headers=wire.headers(wire.request_id()))

    # ---- control ---------------------------------------------------------------------------------------
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "provider": provider, "prefix": p}

    @app.post("/_control")
    async def control(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise FaultSpecError("the control body is a JSON object")
            STATE.control(body)
        except (FaultSpecError, ValueError, TypeError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(STATE.snapshot())

    @app.get("/_control")
    async def control_state() -> JSONResponse:
        return JSONResponse(STATE.snapshot())

    @app.post("/_reset")
    async def reset() -> JSONResponse:
        STATE.reset()
        return JSONResponse(STATE.snapshot())

    @app.get("/_requests")
    async def requests_log() -> JSONResponse:
        return JSONResponse(STATE.requests)

    @app.delete("/_requests")
    async def clear_requests() -> JSONResponse:
        STATE.requests.clear()
        return JSONResponse([])

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(wire.error_body(404, None, f"Not found: {request.url.path}"), status_code=404)

    return app


async def _stream(
    wire: Wire, chunks: list[dict], fault: Fault | None, model: str, completion_id: str, request: Request
) -> AsyncIterator[bytes]:
    kind = fault.kind if fault else None
    release = STATE.release
    for comment in wire.preamble():
        yield comment
    if kind == "stream_error_first":
        yield sse(wire.stream_error_event(model, completion_id))
        return
    for i, chunk in enumerate(chunks):
        if kind in ("stream_error", "stream_stall") and i == 2:  # after the first two good chunks
            if kind == "stream_error":
                yield sse(wire.stream_error_event(model, completion_id))
            else:  # Starlette cancels this generator when the client disconnects
                await release.wait()
            return
        yield sse(chunk)
        await asyncio.sleep(0)
    yield DONE


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
