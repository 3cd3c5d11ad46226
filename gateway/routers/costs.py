"""GET /admin/costs?days=N (master key): the cost report as JSON, and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gateway import config
from gateway.auth import require_key
from gateway.errors import GatewayError
from gateway.routers.responses import json_response, query_days
from plugins.ledger_store import reference_rates, since_days, summarize


async def costs(request: Request) -> Response:
    """The cost report from the ledger.
    ---
    summary: Spend by day, provider and alias against Groq prices; budgets
    security: [{bearer: []}, {apiKey: []}]
    parameters:
      - {name: days, in: query, schema: {type: integer, minimum: 1, maximum: 366, default: 7}, description: UTC days, today included}
    responses:
      '200': {description: the report (docs/costs.md), content: {application/json: {schema: {type: object, required: [since, days, total, budgets]}}}}
      '400': {$ref: '#/components/responses/BadRequest'}
      '401': {$ref: '#/components/responses/Unauthorized'}
      '404': {$ref: '#/components/responses/NotFound'}
    """
    require_key(request)
    gateway = request.app.state.gateway
    ledger = gateway.plugin("ledger")
    if ledger is None or ledger.store is None:
        raise GatewayError(404, "the ledger plugin is not enabled in the YAML", "not_enabled")
    days = query_days(request)
    rates = reference_rates(config.plugin_section(gateway.settings, "groq_reference_prices"))
    since = since_days(days)
    aggregates = await asyncio.to_thread(ledger.store.aggregate, since)
    report = summarize(aggregates, rates)
    budgets = gateway.plugin("budgets")
    return json_response({"since": since.isoformat() + "Z", "days": days, **report,
                          "budgets": budgets.status() if budgets is not None else []})


async def metrics(request: Request) -> Response:
    """Prometheus metrics.
    ---
    summary: Prometheus metrics (key needed only with metrics.require_key in the YAML)
    responses:
      '200': {description: Prometheus text format, content: {text/plain: {schema: {type: string}}}}
      '401': {$ref: '#/components/responses/Unauthorized'}
    """
    plugin = request.app.state.gateway.plugin("metrics")
    if plugin is not None and plugin.require_key:
        require_key(request)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
