"""GET /openapi.json: the gateway's OpenAPI spec, from the YAML after `---` in each route's docstring.

Starlette's SchemaGenerator collects those docstrings; the shared parts (error shape, auth, request
bodies) are below. Only the OpenAI layout (/v1/...) is listed: Groq's /openai/v1/... and the bare
paths are the same handlers. `ChatModel` and `TranscriptionModel` list the aliases and legacy names
this gateway serves now, so a generated client or a fuzzer (tests/gateway/test_fuzz.py) gets past
the model lookup.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.schemas import SchemaGenerator

from gateway.routers.responses import alias_mode, json_response


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


BASE: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "modelgate", "version": "1",
             "description": "OpenAI-compatible gateway: aliases in, providers out (docs/api.md). Every route "
                            "under /v1 also answers under /openai/v1 (Groq's layout) and without the prefix."},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "LITELLM_MASTER_KEY"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "LITELLM_MASTER_KEY"},
        },
        "parameters": {  # the headers every alias route reads (chat, audio)
            "EndUser": {"name": "x-modelgate-user", "in": "header", "schema": {"type": "string"},
                        "description": "end user when the request has no `user` field (traffic split, ledger)"},
            "Pin": {"name": "x-modelgate-pin", "in": "header", "schema": {"type": "string"},
                    "description": "only this provider (A/B runs)"},
        },
        "responses": {
            "BadRequest": _error("invalid body or parameter"),
            "Unauthorized": _error("missing_api_key or invalid_api_key"),
            "NotFound": _error("unknown model, or the plugin behind the route is not enabled"),
            "RateLimited": _error("a budget or rate limit: retry after Retry-After"),
            "Upstream": _error("the whole chain failed: the last provider's error (504: a timeout)"),
            "Draining": _error("the gateway is restarting (code draining): retry after Retry-After"),
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {
                    "type": "object", "required": ["message", "type", "param", "code"],
                    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                   "param": {"type": "string", "nullable": True},
                                   "code": {"type": "string", "nullable": True}}}},
            },
            "Flags": {"type": "object", "required": ["flags", "history"],
                      "properties": {"flags": {"type": "object"}, "history": {"type": "array"}}},
            "ChatModel": {"type": "string", "description": "a chat alias or legacy Groq name (GET /v1/models)"},
            "TranscriptionModel": {"type": "string",
                                   "description": "a speech-to-text alias or legacy Groq name (GET /v1/models)"},
            "ChatCompletionRequest": {
                # What the gateway itself checks; every other OpenAI parameter passes through to LiteLLM.
                "type": "object", "required": ["model", "messages"],
                "properties": {
                    "model": {"$ref": "#/components/schemas/ChatModel"},
                    "messages": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["role"],
                        "properties": {"role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                                       "content": {"type": "string"}}}},
                    "stream": {"type": "boolean"},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "response_format": {"type": "object", "required": ["type"], "properties": {
                        "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]},
                        "json_schema": {"type": "object", "required": ["name", "schema"],
                                        "description": "required with type json_schema",
                                        "properties": {"name": {"type": "string"}, "schema": {"type": "object"},
                                                       "strict": {"type": "boolean"}}}}},
                    "user": {"type": "string"},
                },
            },
            "TranscriptionRequest": {
                "type": "object", "required": ["file", "model"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "model": {"$ref": "#/components/schemas/TranscriptionModel"},
                    "language": {"type": "string"},
                    "prompt": {"type": "string"},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                    "response_format": {"type": "string", "enum": ["json", "text", "srt", "verbose_json", "vtt"]},
                    "timestamp_granularities[]": {"type": "array",
                                                  "items": {"type": "string", "enum": ["word", "segment"]}},
                    "user": {"type": "string"},
                },
            },
        },
    },
}

_generator = SchemaGenerator(BASE)


async def openapi(request: Request) -> Response:
    gateway = request.app.state.gateway
    spec = copy.deepcopy(_generator.get_schema(routes=request.app.routes))
    schemas = spec["components"]["schemas"]
    for name, mode in (("ChatModel", "chat"), ("TranscriptionModel", "audio_transcription")):
        schemas[name]["enum"] = [m for m in gateway.model_names()
                                 if alias_mode(gateway, gateway.resolved.aliases.get(m, m)) == mode]
    return json_response(spec)
