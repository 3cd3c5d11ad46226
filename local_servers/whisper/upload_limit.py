"""Refuse request bodies over the upload limit with 413, without buffering them.

A client that announces its size (Content-Length, as the openai SDK and LiteLLM do) is refused
before a byte of the body is read. A chunked upload is counted as it streams in and stopped as
soon as it passes the limit, so at most the limit is ever spooled to disk.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_servers.common.errors import error_response

# Room for the multipart framing and the small text fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


class UploadTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's form parsing lets it through unchanged.
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def too_large(message: str) -> JSONResponse:
    return error_response(413, message, code="file_too_large", param="file")


class UploadLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, message: str) -> None:
        self.app, self.max_bytes, self.message = app, max_bytes, message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await too_large(self.message)(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.message)
            return message

        await self.app(scope, counting_receive, send)


def install_upload_limit(app: FastAPI, max_upload_bytes: int) -> None:
    message = f"file too large: the limit is {max_upload_bytes / 1024 / 1024:g} MB"
    app.add_middleware(
        UploadLimitMiddleware, max_bytes=max_upload_bytes + FORM_OVERHEAD_BYTES, message=message
    )

    @app.exception_handler(UploadTooLarge)
    async def _too_large(_: Request, exc: UploadTooLarge) -> JSONResponse:
        return too_large(exc.detail)
