"""GET /health and GET /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from openai.types import Model

from local_servers.common.errors import OpenAIError
from local_servers.whisper.executors.whisper import WhisperExecutor

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    """200 once the model is loaded; 503 while it loads or if it failed to load (the message says which)."""
    executor: WhisperExecutor = request.app.state.executor
    if not executor.ready:
        raise OpenAIError(503, executor.status, code="model_not_ready")
    return {"status": "ok"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    model = Model(
        id=request.app.state.settings.model_id,
        object="model",
        created=request.app.state.started_at,
        owned_by="modelgate",
    )
    return {"object": "list", "data": [model.model_dump()]}
