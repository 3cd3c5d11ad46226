"""create_app(settings): the FastAPI application of the whisper server.

The model loads in a background thread so the server answers at once: /health says 503 until
the model is ready (or says why it failed), then 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from local_servers.common.admission import Admission
from local_servers.common.errors import install_error_handlers
from local_servers.whisper.config import Settings
from local_servers.whisper.executors.whisper import WhisperExecutor
from local_servers.whisper.routers import misc, transcriptions
from local_servers.whisper.upload_limit import install_upload_limit


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    executor = WhisperExecutor(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Not awaited: startup finishes now and /health reports the load as it goes.
        loading = asyncio.get_running_loop().run_in_executor(None, executor.load)
        yield
        loading.cancel()  # a no-op once it runs; the load thread cannot be interrupted

    app = FastAPI(title="modelgate whisper server", lifespan=lifespan)
    app.state.settings = settings
    app.state.executor = executor
    app.state.admission = Admission(settings.max_concurrency, settings.max_queue)
    app.state.started_at = int(time.time())

    install_error_handlers(app)
    install_upload_limit(app, settings.max_upload_bytes)
    app.include_router(transcriptions.router)
    app.include_router(misc.router)
    return app
