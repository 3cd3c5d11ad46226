"""Who is calling: the master key (`Authorization: Bearer <key>`, what the openai and groq SDKs send,
or `x-api-key`) and the end user."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from gateway.errors import GatewayError


def require_key(request: Request) -> None:
    expected: str = request.app.state.gateway.settings.master_key
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    if not given:
        raise GatewayError(401, "missing API key: send 'Authorization: Bearer <LITELLM_MASTER_KEY>'",
                           "missing_api_key")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise GatewayError(401, "invalid API key", "invalid_api_key")


def end_user(request: Request, user: object) -> str | None:
    """The request's own `user` field (body or form), else the `x-modelgate-user` header."""
    user = user or request.headers.get("x-modelgate-user")
    return str(user) if user else None
