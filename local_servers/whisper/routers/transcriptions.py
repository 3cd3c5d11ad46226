"""POST /v1/audio/transcriptions and /v1/audio/translations, with OpenAI's multipart parameters.

A request goes: validate the parameters (400), wait for an inference slot (429 when the queue is
full), then decode and transcribe in a worker thread while watching for the client to leave.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from local_servers.common.admission import Admission
from local_servers.common.errors import OpenAIError
from local_servers.whisper import formats
from local_servers.whisper.executors.whisper import (
    AudioDecodeError,
    Cancelled,
    Job,
    Result,
    WhisperExecutor,
)
from local_servers.whisper.formats import ResponseFormat

router = APIRouter(prefix="/v1/audio", tags=["audio"])
log = logging.getLogger("local_servers.whisper")

Granularity = Literal["word", "segment"]
# temperature is OpenAI's 0..1; the form layer turns anything else into a 400.
Temperature = Annotated[float | None, Form(ge=0, le=1)]
DISCONNECT_POLL_S = 0.25


@router.post("/transcriptions")
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str | None, Form()] = None,  # any name: this server serves one model
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Temperature = None,
    timestamp_granularities: Annotated[
        list[Granularity] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    # Not OpenAI's: false decodes at `temperature` only, without the fallback re-decoding
    # (stt-realtime's local deployment sends it through LiteLLM's extra_body).
    temperature_fallback: Annotated[bool, Form()] = True,
) -> Response:
    executor = ready_executor(request)
    granularities = set(timestamp_granularities or ["segment"])
    job = Job(
        task="transcribe",
        language=checked_language(executor, language),
        prompt=prompt or None,
        temperature=temperature,
        temperature_fallback=temperature_fallback,
        # Word timings cost an extra alignment pass: only when they will be returned.
        word_timestamps=response_format == "verbose_json" and "word" in granularities,
    )
    result = await transcribe(request, executor, file, job)
    return formats.render_transcription(
        result, response_format, with_segments="segment" in granularities, with_words=job.word_timestamps
    )


@router.post("/translations")
async def create_translation(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Temperature = None,
) -> Response:
    executor = ready_executor(request)
    job = Job(task="translate", prompt=prompt or None, temperature=temperature)
    result = await transcribe(request, executor, file, job)
    return formats.render_translation(result, response_format)


def ready_executor(request: Request) -> WhisperExecutor:
    executor: WhisperExecutor = request.app.state.executor
    if not executor.ready:
        raise OpenAIError(503, executor.status, code="model_not_ready", headers={"Retry-After": "2"})
    return executor


def checked_language(executor: WhisperExecutor, language: str | None) -> str | None:
    if not language:
        return None  # detect it
    code = language.strip().lower()
    if code not in executor.supported_languages:
        raise OpenAIError(
            400,
            f"language {language!r} is not supported: use an ISO-639-1 code such as 'en' or 'fa'",
            code="unsupported_language",
            param="language",
        )
    return code


async def transcribe(request: Request, executor: WhisperExecutor, upload: UploadFile, job: Job) -> Result:
    if not upload.size:
        raise OpenAIError(400, "the uploaded file is empty", code="empty_file", param="file")
    max_bytes = request.app.state.settings.max_upload_bytes
    if upload.size > max_bytes:
        raise OpenAIError(
            413,
            f"file too large: the limit is {max_bytes / 1024 / 1024:g} MB",
            code="file_too_large",
            param="file",
        )

    admission: Admission = request.app.state.admission
    async with admission.slot(request):
        try:
            return await run_while_connected(request, executor, upload, job)
        except AudioDecodeError as exc:
            raise OpenAIError(415, str(exc), code="unsupported_audio", param="file") from exc
        except Cancelled as exc:
            log.info("client disconnected: %s", exc)
            raise OpenAIError(499, f"client disconnected: {exc}", code="client_closed") from exc


async def run_while_connected(
    request: Request, executor: WhisperExecutor, upload: UploadFile, job: Job
) -> Result:
    """Run the job in a thread; if the client disconnects meanwhile, tell the thread to stop.

    The inference slot is held until the thread has really stopped, so the concurrency bound
    stays true; faster-whisper stops at the next segment, within one 30-second window.
    """
    cancelled = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(executor.run, upload.file, job, cancelled))
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=DISCONNECT_POLL_S)
            if done:
                return work.result()
            if await request.is_disconnected():
                log.info("client disconnected; stopping the transcription at the next segment")
                cancelled.set()
                await asyncio.wait({work})
                return work.result()  # raises Cancelled unless it had just finished
    finally:
        cancelled.set()  # also when this request task is itself cancelled
