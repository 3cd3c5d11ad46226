"""GET /v1/models and /health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import require_key
from gateway.routers.responses import json_response


async def list_models(request: Request) -> Response:
    """The aliases and legacy names this gateway serves.
    ---
    summary: List the models (aliases and legacy Groq names)
    security: [{bearer: []}, {apiKey: []}]
    responses:
      '200':
        description: OpenAI's model list
        content:
          application/json:
            schema:
              type: object
              required: [object, data]
              properties:
                object: {type: string, enum: [list]}
                data: {type: array, items: {type: object, required: [id, object], properties: {id: {type: string}, object: {type: string}}}}
      '401': {$ref: '#/components/responses/Unauthorized'}
    """
    require_key(request)
    gateway = request.app.state.gateway
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "modelgate"} for name in gateway.model_names()]
    return json_response({"object": "list", "data": data})


async def health(request: Request) -> Response:
    """Liveness and the resolved chains (no key needed: it carries no secrets).
    ---
    summary: Liveness and each alias's resolved chain; 503 while draining
    responses:
      '200':
        description: up
        content:
          application/json:
            schema:
              type: object
              required: [status, chains, excluded]
              properties:
                status: {type: string}
                chains: {type: object, additionalProperties: {type: array, items: {type: string}}}
                excluded: {type: object, additionalProperties: {type: string}}
      '503': {$ref: '#/components/responses/Draining'}
    """
    gateway = request.app.state.gateway
    chains = {alias: [d.provider for d in chain] for alias, chain in gateway.resolved.chains.items()}
    return json_response({"status": "ok", "chains": chains, "excluded": gateway.resolved.excluded})
