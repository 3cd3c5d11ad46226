"""Bounded concurrency with a bounded wait queue.

At most `max_running` inferences run at once and at most `max_waiting` requests wait for a turn;
past that the request is refused at once with 429 and Retry-After, so a burst cannot pile up
unbounded memory. A waiting client that disconnects gives its place back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Request

from local_servers.common.errors import OpenAIError


class Admission:
    def __init__(self, max_running: int, max_waiting: int, retry_after_s: int = 1) -> None:
        self._slots = asyncio.Semaphore(max_running)
        self.max_running, self.max_waiting = max_running, max_waiting
        self.retry_after_s = retry_after_s
        self.running = 0
        self.waiting = 0

    def _refuse(self) -> OpenAIError:
        return OpenAIError(
            429,
            f"server busy: {self.running} running and {self.waiting} waiting (limit {self.max_waiting}); retry later",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(self.retry_after_s)},
        )

    @contextlib.asynccontextmanager
    async def slot(self, request: Request | None = None) -> AsyncIterator[None]:
        """Hold one inference slot for the body of the `async with`."""
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise self._refuse()
        self.waiting += 1
        try:
            await self._wait_for_slot(request)
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    async def _wait_for_slot(self, request: Request | None) -> None:
        if request is None:
            await self._slots.acquire()
            return
        acquire = asyncio.ensure_future(self._slots.acquire())
        try:
            while True:
                done, _ = await asyncio.wait({acquire}, timeout=0.25)
                if done:
                    return
                if await request.is_disconnected():
                    raise OpenAIError(499, "client disconnected while queued", code="client_closed")
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                self._slots.release()
            else:
                acquire.cancel()
            raise
