"""Shared response helpers: JSON bodies and the headers that say who answered."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


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
