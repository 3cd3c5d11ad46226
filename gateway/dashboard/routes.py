"""Dashboard routes: the page, its static files, and two keyed JSON endpoints.

    GET /dashboard                 the page (no data in it: the data endpoints below need the master key)
    GET /dashboard/static/...      dashboard.js, dashboard.css (Starlette StaticFiles)
    GET /admin/state   (key)       every alias's chain in order with each deployment's state:
                                   healthy | cooling_down | over_budget | excluded (flag / no key);
                                   the legacy chains, flags, traffic percentages and budgets
    GET /admin/stats   (key)       from the ledger: per provider, traffic share / errors / p50 / p95
                                   latency over the last 5 and 60 minutes; spend today and this month
                                   against the Groq counterfactual; budgets left; shadow rows if any

The flags and their history come from GET/PATCH /admin/flags (gateway/routers/admin.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from pathlib import Path
from typing import Any

from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments_with_debug_info
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway import config
from gateway.auth import require_key
from gateway.config import LEGACY_SUFFIX
from gateway.routers.responses import json_response
from plugins.ledger_store import groq_cost, reference_rates, utcnow

STATIC = Path(__file__).resolve().parent / "static"
WINDOWS_MIN = (5, 60)

# The page and its files come from this host only; nothing else may be loaded or called.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", page, methods=["GET"], include_in_schema=False),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
        Route("/admin/state", state, methods=["GET"]),
        Route("/admin/stats", stats, methods=["GET"]),
    ]


async def page(request: Request) -> Response:
    """The migration dashboard page.
    ---
    summary: The migration dashboard (HTML; its data comes from /admin/state and /admin/stats)
    responses:
      '200': {description: the page, content: {text/html: {schema: {type: string}}}}
    """
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache",
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


# --- /admin/state ---------------------------------------------------------------------------------

_YAML_CACHE: dict[str, Any] = {}


def _yaml_providers(gateway: Any) -> dict[str, list[str]]:
    """alias -> every provider the YAML lists for it (in YAML order), excluded ones included."""
    key = str(gateway.settings.config_path)
    cached = _YAML_CACHE.get(key)
    if cached is None:
        deployments, _ = config.parse(gateway.settings.config_path, gateway.settings)
        cached = {}
        for dep in deployments:
            cached.setdefault(dep.alias, []).append(dep.provider)
        _YAML_CACHE.clear()
        _YAML_CACHE[key] = cached
    return cached


async def _cooldowns(router: Any) -> dict[str, float]:
    """deployment id -> seconds of cooldown left (LiteLLM's cooldown cache, read the async way)."""
    try:
        active = await async_get_cooldown_deployments_with_debug_info(litellm_router_instance=router,
                                                                      parent_otel_span=None)
    except Exception:  # noqa: BLE001 - without cooldown info, show every deployment as up
        return {}
    now = dt.datetime.now(dt.UTC).timestamp()
    out = {}
    for model_id, value in active or []:
        value = value or {}
        left = float(value.get("timestamp", now)) + float(value.get("cooldown_time", 0)) - now
        out[str(model_id)] = round(max(0.0, left), 1)
    return out


def _deployment(group: str, dep: config.Deployment, order: int, cooled: dict[str, float],
                budgets: Any) -> dict[str, Any]:
    dep_id = f"{group}/{dep.provider}"
    over = budgets.exceeded("provider", dep.provider) if budgets is not None else None
    entry: dict[str, Any] = {"id": dep_id, "provider": dep.provider, "model": dep.litellm_params.get("model"),
                             "order": order, "legacy": dep.legacy, "state": "healthy", "detail": ""}
    if dep_id in cooled:
        entry.update(state="cooling_down", detail=f"{cooled[dep_id]:.0f} s left", cooldown_left_s=cooled[dep_id])
    if over is not None:
        entry.update(state="over_budget", detail=over.message)
    return entry


async def state(request: Request) -> Response:
    """Every alias's chain and each deployment's state.
    ---
    summary: Chains in order with each deployment's state (healthy, cooling_down, over_budget, excluded); flags, traffic, budgets
    security: [{bearer: []}, {apiKey: []}]
    responses:
      '200': {description: the state (docs/dashboard.md), content: {application/json: {schema: {type: object, required: [aliases]}}}}
      '401': {$ref: '#/components/responses/Unauthorized'}
    """
    require_key(request)
    gateway = request.app.state.gateway
    resolved, router = gateway.resolved, gateway.router
    budgets = gateway.plugin("budgets")
    migration = gateway.plugin("migration")
    cooled = await _cooldowns(router)
    yaml_providers = await asyncio.to_thread(_yaml_providers, gateway)
    aliases = []
    for alias, chain in resolved.chains.items():
        deployments = [_deployment(alias, d, i, cooled, budgets) for i, d in enumerate(chain, start=1)]
        in_chain = {d.provider for d in chain}
        for provider in yaml_providers.get(alias, []):
            if provider not in in_chain:
                deployments.append({"id": f"{alias}/{provider}", "provider": provider, "model": None, "order": None,
                                    "legacy": False, "state": "excluded",
                                    "detail": resolved.excluded.get(provider, "not in the chain")})
        legacy = resolved.legacy_chains.get(alias)
        group = alias + LEGACY_SUFFIX
        aliases.append({
            "alias": alias,
            "traffic_percent": migration.traffic_percent(alias) if migration is not None and legacy else 100,
            "chain": deployments,
            "legacy_chain": [_deployment(group, d, i, cooled, budgets) for i, d in enumerate(legacy, start=1)]
            if legacy else [],
        })
    return json_response({
        "time": utcnow().isoformat() + "Z",
        "aliases": aliases,
        "legacy_names": resolved.aliases,
        "excluded": resolved.excluded,
        "cooldowns": cooled,
        "budgets": budgets.status() if budgets is not None else [],
    })


# --- /admin/stats ---------------------------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(pct/100 x n)); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def window_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per provider: requests, share of all requests, errors (error + refused), error rate, p50/p95 latency."""
    total = len(rows)
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row.get("provider") or "-", []).append(row)
    providers = {}
    for provider, items in sorted(by.items()):
        errors = sum(1 for r in items if r["status"] != "ok")
        latencies = [float(r["latency_ms"]) for r in items if r["status"] == "ok" and r.get("latency_ms") is not None]
        providers[provider] = {
            "requests": len(items),
            "share": len(items) / total if total else 0.0,
            "errors": errors,
            "error_rate": errors / len(items),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
        }
    return {"requests": total, "providers": providers}


def spend_summary(aggregates: list[dict[str, Any]], rates: dict[str, dict[str, float]],
                  today: str) -> dict[str, Any]:
    """Per provider: spend and Groq counterfactual today and this month (answered calls only for the latter)."""
    out: dict[str, dict[str, float]] = {}
    total = {"today_usd": 0.0, "month_usd": 0.0, "groq_today_usd": 0.0, "groq_month_usd": 0.0}
    for agg in aggregates:
        bucket = out.setdefault(agg["provider"] or "-", dict.fromkeys(total, 0.0))
        counterfactual = groq_cost(agg, rates) if agg["status"] == "ok" else 0.0
        for target in (bucket, total):
            target["month_usd"] += agg["cost_usd"]
            target["groq_month_usd"] += counterfactual
            if agg["day"] == today:
                target["today_usd"] += agg["cost_usd"]
                target["groq_today_usd"] += counterfactual
    return {"providers": dict(sorted(out.items())), "total": total}


def _ledger_stats(store: Any, rates: dict[str, dict[str, float]]) -> dict[str, Any]:
    now = utcnow()
    since = now - dt.timedelta(minutes=max(WINDOWS_MIN))
    rows, shadow = [], []
    for row in store.rows(since=since):
        (shadow if row.get("shadow") else rows).append(row)
    windows = {}
    for minutes in WINDOWS_MIN:
        start = now - dt.timedelta(minutes=minutes)
        windows[f"{minutes}m"] = window_summary([r for r in rows if r["ts"] >= start])
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spend = spend_summary(store.aggregate(month_start), rates, now.date().isoformat())
    out: dict[str, Any] = {"time": now.isoformat() + "Z", "windows": windows, "spend": spend}
    if shadow:  # shadow / A-B traffic (issue 7): only a count for now, the page shows a placeholder
        out["shadow"] = {"rows_60m": len(shadow), "window": window_summary(shadow)}
    return out


async def stats(request: Request) -> Response:
    """Traffic, errors, latency and spend per provider from the ledger.
    ---
    summary: Per provider over the last 5 and 60 minutes (share, errors, p50/p95); spend against Groq; budgets
    security: [{bearer: []}, {apiKey: []}]
    responses:
      '200': {description: the stats (docs/dashboard.md), content: {application/json: {schema: {type: object, required: [ledger, budgets]}}}}
      '401': {$ref: '#/components/responses/Unauthorized'}
    """
    require_key(request)
    gateway = request.app.state.gateway
    ledger = gateway.plugin("ledger")
    budgets = gateway.plugin("budgets")
    body: dict[str, Any] = {"ledger": ledger is not None and ledger.store is not None,
                            "budgets": budgets.status() if budgets is not None else []}
    if body["ledger"]:
        rates = reference_rates(config.plugin_section(gateway.settings, "groq_reference_prices"))
        body.update(await asyncio.to_thread(_ledger_stats, ledger.store, rates))
    return json_response(body)
