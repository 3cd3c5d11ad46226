"""Shared route helpers: JSON bodies, the headers that say who answered, common query parameters."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError


def json_response(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def routing_headers(result: Any) -> dict[str, str]:
    """`x-modelgate-deployment` (e.g. main/openrouter) and how many fallbacks it took to get there."""
    hidden = getattr(result, "_hidden_params", None) or {}
    extra = hidden.get("additional_headers") or {}
    deployment = str(hidden.get("model_id") or "")
    headers = {
        "x-modelgate-deployment": deployment,
        "x-modelgate-provider": deployment.rpartition("/")[2],
        "x-modelgate-fallbacks": str(extra.get("x-litellm-attempted-fallbacks", 0)),
    }
    return {k: v for k, v in headers.items() if v}


def alias_mode(gateway: Any, alias: str) -> str:
    """What an alias serves: its deployments' `model_info.mode` (LiteLLM's field), "chat" when unset."""
    return next((d.model_info["mode"] for d in gateway.resolved.chains.get(alias, ()) if d.model_info.get("mode")),
                "chat")


def require_mode(gateway: Any, model: Any, mode: str, route: str) -> None:
    """400 for a transcription alias sent to chat or the reverse: the providers would fail on it, count
    that as their failure and cool down, taking the alias's own traffic with them."""
    if not isinstance(model, str) or gateway.resolved.aliases.get(model, model) not in gateway.resolved.chains:
        return  # Gateway.plan answers a missing or unknown model
    actual = alias_mode(gateway, gateway.resolved.aliases.get(model, model))
    if actual != mode:
        raise GatewayError(400, f"model '{model}' serves {actual} calls, not {route}", "invalid_request",
                           "model")


def query_days(request: Request, default: int = 7) -> int:
    """The `days` query parameter of the report routes: a whole number from 1 to 366."""
    try:
        days = int(request.query_params.get("days", str(default)))
    except ValueError as exc:
        raise GatewayError(400, "days must be a whole number", "invalid_request", "days") from exc
    if not 1 <= days <= 366:
        raise GatewayError(400, "days must be from 1 to 366", "invalid_request", "days")
    return days
