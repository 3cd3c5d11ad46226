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
    plugin = request.app.state.gateway.plugin("metrics")
    if plugin is not None and plugin.require_key:
        require_key(request)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
