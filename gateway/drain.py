"""Graceful shutdown: let requests in flight finish, answer new ones 503 + Retry-After meanwhile.

uvicorn alone, on SIGTERM, closes its listening socket at once (a new client gets "connection
refused") and closes idle keep-alive connections (a client about to reuse one gets a reset). With
the drain in front, the gateway keeps accepting while the requests in flight finish, and every
new request gets an OpenAI-shaped 503 `draining` with `Retry-After` and `Connection: close`:
unambiguous (it was not processed), and the openai SDK retries it after Retry-After. `/health` is
503 too, so a load balancer stops sending. Once nothing is in flight and `MODELGATE_DRAIN_MIN_S`
has passed (or `MODELGATE_DRAIN_TIMEOUT_S` is over), uvicorn's own shutdown runs. `DrainingServer`
below ties it to the signals.
"""

from __future__ import annotations

import logging
import time
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway import errors


class Drain:
    def __init__(self, timeout_s: float = 30, min_s: float = 0, retry_after_s: int = 1) -> None:
        self.timeout_s = max(timeout_s, min_s)  # from the first signal to exit, at most
        self.min_s = min_s  # refuse (and fail /health) at least this long, even with nothing in flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0  # HTTP requests only: a realtime session may last for minutes
        self.started: float | None = None  # time.monotonic() of the first signal; None: serving

    @property
    def draining(self) -> bool:
        return self.started is not None

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def left_s(self) -> float:
        """Seconds until the drain gives up on requests still in flight (draining only)."""
        assert self.started is not None
        return self.started + self.timeout_s - time.monotonic()

    def done(self) -> bool:
        """Draining, and nothing left in flight after the minimum time, or out of time."""
        if self.started is None:
            return False
        return self.left_s() <= 0 or (self.in_flight == 0 and time.monotonic() >= self.started + self.min_s)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The ASGI middleware (Starlette's `Middleware(drain.middleware)`) that counts and refuses."""

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await app(scope, receive, send)
            elif self.draining:
                await self._refuse(scope, receive, send)
            elif scope["type"] == "http":
                self.in_flight += 1
                try:
                    await app(scope, receive, send)
                finally:
                    self.in_flight -= 1
            else:
                await app(scope, receive, send)

        return asgi

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = errors.error_response(
            503, f"the gateway is restarting; retry in {self.retry_after_s} s", "draining", None,
            {"Retry-After": str(self.retry_after_s), "Connection": "close"})
        if scope["type"] == "websocket":  # uvicorn's WebSocket servers support denial responses
            await WebSocket(scope, receive, send).send_denial_response(response)
        else:
            await response(scope, receive, send)


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with the drain first: on SIGTERM (or Ctrl-C) the app answers new requests 503
    while those in flight finish; then uvicorn's own shutdown runs and the process exits 0.
    A second signal skips the rest of the drain: uvicorn's shutdown at once (exit status: the signal)."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining:
            super().handle_exit(sig, frame)
            return
        logging.getLogger("modelgate").warning("signal %d: draining %d request(s) in flight", sig,
                                               self.drain.in_flight)
        self.drain.start()

    async def on_tick(self, counter: int) -> bool:  # uvicorn calls this every 0.1 s
        if self.drain.done() and not self.should_exit:
            # uvicorn's shutdown waits for open connections too: only for what is left of the grace.
            self.config.timeout_graceful_shutdown = max(1, int(self.drain.left_s()))
            self.should_exit = True
        return await super().on_tick(counter)
