"""POST /v1/chat/completions (and Groq's /openai/v1/chat/completions): alias in, provider out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.auth import require_key
from gateway.core import Call
from gateway.errors import GatewayError, from_exception
from gateway.routers.responses import json_response, routing_headers


def _parse(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"request body is not valid JSON: {exc}", "invalid_json") from exc
    if not isinstance(data, dict):
        raise GatewayError(400, "request body must be a JSON object", "invalid_request")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "'messages' must be a non-empty array", "invalid_request", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise GatewayError(400, f"messages[{i}] must be an object with a 'role'", "invalid_request",
                               f"messages[{i}]")
    return data


def end_user(request: Request, data: dict[str, Any]) -> str | None:
    user = data.get("user") or request.headers.get("x-modelgate-user")
    return str(user) if user else None


async def chat_completions(request: Request) -> Response:
    require_key(request)
    data = _parse(await request.body())
    gateway = request.app.state.gateway
    call = Call("chat", data, user=end_user(request, data),
                metadata={"pin": request.headers.get("x-modelgate-pin")})  # A/B pin: plugins/migration.py
    result = await gateway.completion(call)
    if not data.get("stream"):
        return json_response(result.model_dump(exclude_none=True), routing_headers(result))
    return StreamingResponse(_sse(result), media_type="text/event-stream", headers=routing_headers(result))


async def _sse(stream: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield b"data: " + orjson.dumps(chunk.model_dump(exclude_none=True)) + b"\n\n"
    except Exception as exc:  # the status line is gone: report the error inside the stream, as OpenAI does
        yield b"data: " + from_exception(exc).body + b"\n\n"
    yield b"data: [DONE]\n\n"

