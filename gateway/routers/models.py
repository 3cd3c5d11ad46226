"""GET /v1/models and /health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import require_key
from gateway.routers.responses import json_response


async def list_models(request: Request) -> Response:
    require_key(request)
    gateway = request.app.state.gateway
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "modelgate"} for name in gateway.model_names()]
    return json_response({"object": "list", "data": data})


async def health(request: Request) -> Response:
    """Liveness and the resolved chains (no key needed: it carries no secrets)."""
    gateway = request.app.state.gateway
    chains = {alias: [d.provider for d in chain] for alias, chain in gateway.resolved.chains.items()}
    return json_response({"status": "ok", "chains": chains, "excluded": gateway.resolved.excluded})
