"""POST /v1/chat/completions (and Groq's /openai/v1/chat/completions): alias in, provider out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.auth import end_user, require_key
from gateway.core import Call
from gateway.errors import GatewayError, from_exception
from gateway.routers.responses import json_response, require_mode, routing_headers


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
        # As OpenAI: only an assistant turn (tool calls) may come without content. LiteLLM would
        # fail on it with a KeyError, a 502 instead of the caller's 400.
        if message.get("content") is None and message["role"] != "assistant":
            raise GatewayError(400, f"messages[{i}].content is required for role '{message['role']}'",
                               "invalid_request", f"messages[{i}].content")
    _check_response_format(data.get("response_format"))
    return data


def _check_response_format(fmt: Any) -> None:
    """OpenAI's rules, plus a `schema` for json_schema: without one, LiteLLM's Groq adapter and the
    JSON guard have nothing to go by, and a provider's reply would count as its failure (cooldown)."""
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise GatewayError(400, "response_format must be an object with type 'text', 'json_object' or "
                           "'json_schema'", "invalid_request", "response_format")
    spec = fmt.get("json_schema")
    if fmt["type"] == "json_schema" and not (isinstance(spec, dict) and isinstance(spec.get("schema"), dict)):
        raise GatewayError(400, "response_format.json_schema must be an object with a 'schema' (a JSON Schema "
                           "object)", "invalid_request", "response_format.json_schema")


async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions on an alias (docs/api.md).
    ---
    summary: Chat completion on an alias; the chain of providers behind it answers
    security: [{bearer: []}, {apiKey: []}]
    parameters:
      - {$ref: '#/components/parameters/EndUser'}
      - {$ref: '#/components/parameters/Pin'}
    requestBody:
      required: true
      content:
        application/json: {schema: {$ref: '#/components/schemas/ChatCompletionRequest'}}
    responses:
      '200':
        description: the completion (OpenAI's chat.completion), or Server-Sent Events with stream true
        content:
          application/json: {schema: {type: object}}
          text/event-stream: {schema: {type: string}}
      '400': {$ref: '#/components/responses/BadRequest'}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
      '429': {$ref: '#/components/responses/RateLimited'}
      '502': {$ref: '#/components/responses/Upstream'}
      '503': {$ref: '#/components/responses/Draining'}
      '504': {$ref: '#/components/responses/Upstream'}
    """
    require_key(request)
    data = _parse(await request.body())
    gateway = request.app.state.gateway
    require_mode(gateway, data.get("model"), "chat", "/chat/completions")
    call = Call("chat", data, user=end_user(request, data.get("user")),
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

