"""create_app(settings): the FastAPI app of the llama server.

The model loads in a background thread so the process answers at once: /health says 503 until the
model is ready (or says why it failed), then 200.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI

from local_servers.common.admission import Admission
from local_servers.common.errors import install_error_handlers
from local_servers.llama.config import Settings
from local_servers.llama.executors.llama import LlamaExecutor
from local_servers.llama.routers import chat, misc


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Daemon: a shutdown during a long load must not wait for it.
        threading.Thread(target=app.state.executor.load, name="llama-load", daemon=True).start()
        yield
        app.state.executor.close()

    app = FastAPI(title="modelgate llama server", lifespan=lifespan)
    app.state.settings = settings
    app.state.started = int(time.time())
    app.state.executor = LlamaExecutor(settings)
    app.state.admission = Admission(max_running=settings.max_concurrency, max_waiting=settings.max_queue)
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(misc.router)
    return app
