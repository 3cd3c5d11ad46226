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


def query_days(request: Request, default: int = 7) -> int:
    """The `days` query parameter of the report routes: a whole number from 1 to 366."""
    try:
        days = int(request.query_params.get("days", str(default)))
    except ValueError as exc:
        raise GatewayError(400, "days must be a whole number", "invalid_request", "days") from exc
    if not 1 <= days <= 366:
        raise GatewayError(400, "days must be from 1 to 366", "invalid_request", "days")
    return days
