"""Admin API behind the master key: read and change the live migration flags."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import require_key
from gateway.config import ConfigError
from gateway.errors import GatewayError
from gateway.routers.responses import json_response
from plugins.flags import FlagError


def _store(request: Request):  # noqa: ANN202
    plugin = request.app.state.gateway.plugin("migration")
    if plugin is None or plugin.store is None:
        raise GatewayError(404, "the migration plugin is not enabled in the YAML", "not_enabled")
    return plugin.store


async def get_flags(request: Request) -> Response:
    """The live migration flags.
    ---
    summary: The live migration flags, their history and defaults
    security: [{bearer: []}, {apiKey: []}]
    responses:
      '200': {description: 'flags, history, file, defaults', content: {application/json: {schema: {$ref: '#/components/schemas/Flags'}}}}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
    """
    require_key(request)
    return json_response(_store(request).snapshot())


async def update_flags(request: Request) -> Response:
    """PATCH/PUT a JSON object of flag names to values, e.g. {"ENABLE_GROQ": false, "traffic": {"main": 50}}.
    ---
    summary: Change flags, all together or none
    security: [{bearer: []}, {apiKey: []}]
    parameters:
      - {name: x-modelgate-operator, in: header, schema: {type: string}, description: who changes them (history)}
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            minProperties: 1
            additionalProperties: false
            properties:
              ENABLE_GROQ: {type: boolean}
              ENABLE_FALLBACK: {type: boolean}
              ENABLE_MODEL_ABSTRACTION: {type: boolean}
              PRIMARY_PROVIDER: {type: string, enum: ['', groq, openrouter, openai, local]}
              FALLBACK_PROVIDERS: {type: array, items: {type: string, enum: [groq, openrouter, openai, local]}}
              traffic: {type: object, additionalProperties: {type: integer, minimum: 0, maximum: 100}}
    responses:
      '200': {description: the flags after the change, as GET, content: {application/json: {schema: {$ref: '#/components/schemas/Flags'}}}}
      '400': {$ref: '#/components/responses/BadRequest'}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
    """
    require_key(request)
    try:
        changes = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"request body is not valid JSON: {exc}", "invalid_json") from exc
    if not isinstance(changes, dict) or not changes:
        raise GatewayError(400, "send a JSON object of flag names to new values", "invalid_request")
    who = request.headers.get("x-modelgate-operator", "admin api")
    try:
        _store(request).update(changes, who=who)
    except (FlagError, ConfigError) as exc:
        raise GatewayError(400, f"flag change refused, nothing changed: {exc}", "invalid_flag") from exc
    return json_response(_store(request).snapshot())
