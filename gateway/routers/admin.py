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
    require_key(request)
    return json_response(_store(request).snapshot())


async def update_flags(request: Request) -> Response:
    """PATCH/PUT a JSON object of flag names to values, e.g. {"ENABLE_GROQ": false, "traffic": {"main": 50}}."""
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
