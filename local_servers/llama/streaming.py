"""Server-sent events whose cleanup always runs, however the stream ends."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class EventStream(StreamingResponse):
    """`text/event-stream` that closes its generator, then calls `on_close`, when the stream ends.

    When a client disconnects Starlette just stops iterating; an iterator that never resumes would
    never run its `finally`. Closing it here stops the inference behind it, and `on_close` (which
    frees the admission slot) runs only after that.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncGenerator[str, None], on_close: Callable[[], Awaitable[object]]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._content, self._on_close = content, on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._content.aclose()
                await self._on_close()
