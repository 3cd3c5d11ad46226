"""The WebSocket endpoint: /v1/realtime (and /openai/v1/realtime, /realtime), OpenAI's Realtime API
for transcription sessions, as `openai.AsyncOpenAI(base_url=<gateway>/v1).realtime.connect()` speaks it.

Auth as for the HTTP routes: `Authorization: Bearer <LITELLM_MASTER_KEY>` (what the SDK sends) or
`x-api-key`; browsers, which cannot set headers, may offer the subprotocol
`openai-insecure-api-key.<key>` as with OpenAI. A wrong or missing key is refused at the handshake
with HTTP 401 and an OpenAI-shaped error body. Past REALTIME_MAX_SESSIONS, the socket is accepted,
gets a `too_many_sessions` error event and is closed with 1013 (try again later).
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import errors
from gateway.auth import require_key
from gateway.errors import GatewayError
from gateway.realtime import events
from gateway.realtime.handlers import handle_frame
from gateway.realtime.session import Hub, RealtimeSession

log = logging.getLogger("modelgate.realtime")

KEY_SUBPROTOCOL = "openai-insecure-api-key."


class _DenialLogFilter(logging.Filter):
    """uvicorn's websockets implementation logs "ASGI callable returned without completing handshake."
    after a denial response (our 401) although the response went out: drop that one false alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


logging.getLogger("uvicorn.error").addFilter(_DenialLogFilter())


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute(path, endpoint) for path in ("/v1/realtime", "/openai/v1/realtime", "/realtime")]


def _authenticate(websocket: WebSocket) -> None:
    offered = [p for p in websocket.scope.get("subprotocols", []) if p.startswith(KEY_SUBPROTOCOL)]
    if offered and not websocket.headers.get("authorization") and not websocket.headers.get("x-api-key"):
        expected: str = websocket.app.state.gateway.settings.master_key
        if not hmac.compare_digest(offered[0][len(KEY_SUBPROTOCOL):].encode(), expected.encode()):
            raise GatewayError(401, "invalid API key", "invalid_api_key")
        return
    require_key(websocket)  # type: ignore[arg-type] - reads only .headers and .app, which a WebSocket has


async def endpoint(websocket: WebSocket) -> None:
    try:
        _authenticate(websocket)
    except GatewayError as exc:
        response = errors.error_response(exc.status, exc.message, exc.code, exc.param)
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close(1008, exc.message)
        return
    gateway = websocket.app.state.gateway
    hub = Hub.of(websocket.app)
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    session = RealtimeSession(websocket, gateway, hub, user=websocket.headers.get("x-modelgate-user")
                              or websocket.query_params.get("user"),
                              url_model=websocket.query_params.get("model"),
                              beta="realtime=v1" in websocket.headers.get("openai-beta", ""))
    if not hub.admit(session):
        limit = gateway.settings.realtime_max_sessions
        await websocket.send_text(json.dumps(events.error(
            "too_many_sessions", f"the gateway already runs {limit} realtime sessions (REALTIME_MAX_SESSIONS); "
            "retry later", kind="rate_limit_error")))
        await websocket.close(1013, "too many realtime sessions")
        return
    log.info("realtime %s: opened (user=%s, alias=%s)", session.id, session.user, session.config.alias)
    try:
        await session.start()
        while not session.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            await handle_frame(session, message.get("text"), message.get("bytes"))
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: receive() after the socket closed
        pass
    finally:
        await session.close()
        hub.release(session)
        log.info("realtime %s: closed after %.1f s of audio", session.id, session.received_samples / 16000)
