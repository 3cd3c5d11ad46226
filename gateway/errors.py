"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with a fitting status."""

from __future__ import annotations

import math

import litellm
import openai
from litellm.types.router import RouterRateLimitError, RouterRateLimitErrorBasic
from starlette.requests import Request
from starlette.responses import JSONResponse

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """An error the gateway itself raises (bad input, auth, budget...)."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    kind = _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)


def from_exception(exc: Exception) -> JSONResponse:
    """Map a GatewayError or an upstream (LiteLLM) exception to an OpenAI-shaped response."""
    if isinstance(exc, GatewayError):
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)
    if isinstance(exc, RouterRateLimitError | RouterRateLimitErrorBasic):
        # No deployment of the chain can take the call now (all over their rpm/tpm or cooling down);
        # LiteLLM's own proxy answers this with 429 + Retry-After as well.
        wait = max(1, math.ceil(getattr(exc, "cooldown_time", 0) or 60))
        return error_response(429, f"no provider for '{str(exc.model).split('~')[0]}' can take a request now "
                                   f"(rate limit or cooldown); retry in {wait} s", "rate_limited", None,
                              {"Retry-After": str(wait)})
    if isinstance(exc, openai.OpenAIError) or hasattr(exc, "status_code"):
        status = int(getattr(exc, "status_code", 500) or 500)
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, litellm.Timeout):
            status = 504
        elif isinstance(exc, litellm.APIConnectionError) or "Connection error" in message:
            status = 502  # the upstream could not be reached: not the gateway's own failure
        headers = {}
        retry_after = _retry_after(exc)
        if retry_after:
            headers["Retry-After"] = retry_after
        code = getattr(exc, "code", None)
        if status >= 500:
            message = f"upstream {getattr(exc, 'model', None) or 'provider'} failed: {message}"
        return error_response(status, message, str(code) if code else None, None, headers)
    return error_response(500, f"internal gateway error: {type(exc).__name__}", "internal_error")


def _retry_after(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    return str(value) if value else None


async def handle(_: Request, exc: Exception) -> JSONResponse:
    return from_exception(exc)


# GatewayError and upstream errors are answered in place; anything else is a 500 (and logged).
HANDLERS = {GatewayError: handle, openai.OpenAIError: handle, RouterRateLimitError: handle,
            RouterRateLimitErrorBasic: handle, Exception: handle}
