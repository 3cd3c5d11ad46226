"""GET /admin/shadow?days=N (master key): shadow comparisons per alias (plugins/shadow.py)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import require_key
from gateway.errors import GatewayError
from gateway.routers.responses import json_response, query_days
from plugins.ledger_store import since_days


async def shadow(request: Request) -> Response:
    """Shadow comparisons per alias.
    ---
    summary: Shadow mode comparisons per alias (plugins/shadow.py)
    security: [{bearer: []}, {apiKey: []}]
    parameters:
      - {name: days, in: query, schema: {type: integer, minimum: 1, maximum: 366, default: 7}, description: UTC days, today included}
    responses:
      '200': {description: budget and per-alias comparisons (docs/api.md), content: {application/json: {schema: {type: object, required: [since, days, aliases]}}}}
      '400': {$ref: '#/components/responses/BadRequest'}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
    """
    require_key(request)
    plugin = request.app.state.gateway.plugin("shadow")
    if plugin is None or plugin.ledger is None:
        raise GatewayError(404, "the shadow plugin is not enabled in the YAML", "not_enabled")
    days = query_days(request)
    since = since_days(days)
    aliases = await asyncio.to_thread(plugin.summary, since)
    return json_response({"since": since.isoformat() + "Z", "days": days, **plugin.status(), "aliases": aliases})
