"""The gateway's ASGI app: OpenAI routes, Groq's URL layout for the same routes, health."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from gateway import dashboard, errors, openapi, realtime
from gateway.core import Gateway
from gateway.drain import Drain
from gateway.routers import admin, audio, chat, costs, models, shadow
from gateway.settings import Settings


def routes() -> list[Route]:
    api = [
        Route("/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/audio/transcriptions", audio.transcriptions, methods=["POST"]),
        Route("/models", models.list_models, methods=["GET"]),
    ]
    # OpenAI's layout (/v1/...) and Groq's (/openai/v1/...), so an app using the groq SDK only
    # changes base_url and key; plus the bare paths LiteLLM's proxy also answers. The OpenAPI spec
    # lists the /v1 ones only (same handlers).
    prefixed = [Route(prefix + r.path, r.endpoint, methods=r.methods, include_in_schema=prefix == "/v1")
                for prefix in ("/v1", "/openai/v1", "") for r in api]
    return [
        *prefixed,
        Route("/openapi.json", openapi.openapi, methods=["GET"], include_in_schema=False),
        Route("/health", models.health, methods=["GET"]),
        Route("/admin/flags", admin.get_flags, methods=["GET"]),
        Route("/admin/flags", admin.update_flags, methods=["PUT", "PATCH"]),
        Route("/admin/costs", costs.costs, methods=["GET"]),
        Route("/metrics", costs.metrics, methods=["GET"]),
        Route("/admin/shadow", shadow.shadow, methods=["GET"]),  # shadow comparisons (plugins/shadow.py)
        *dashboard.routes(),  # GET /dashboard (page, static files), /admin/state, /admin/stats
        *realtime.routes(),  # WebSocket /v1/realtime (and /openai/v1/realtime, /realtime)
    ]


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await app.state.gateway.start()
    yield
    await app.state.gateway.stop()


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Starlette:
    gateway = gateway or Gateway(settings or Settings())
    # Graceful shutdown: gateway/drain.py
    settings = gateway.settings
    drain = Drain(settings.drain_timeout_s, settings.drain_min_s, settings.drain_retry_after_s)
    app = Starlette(routes=routes(), lifespan=lifespan, middleware=[Middleware(drain.middleware)],
                    exception_handlers=errors.HANDLERS | {404: _not_found, 405: _not_allowed})
    app.state.gateway = gateway
    app.state.drain = drain
    return app


async def _not_found(request, exc):  # noqa: ANN001 - Starlette's handler signature
    return errors.error_response(404, f"no route {request.method} {request.url.path}", "not_found")


async def _not_allowed(request, exc):  # noqa: ANN001
    return errors.error_response(405, f"method {request.method} not allowed on {request.url.path}", "method_not_allowed")
