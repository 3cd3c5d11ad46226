"""/health and /v1/models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from openai.types import Model

from local_servers.common.errors import OpenAIError

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """200 once the model is loaded; 503 while it loads or when it failed to (the message says which)."""
    executor, admission = request.app.state.executor, request.app.state.admission
    if executor.status != "ready":
        raise OpenAIError(503, executor.error or "model is loading", code="model_not_ready")
    return {"status": "ok", "running": admission.running, "waiting": admission.waiting}


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    model = Model(id=settings.model_id, object="model", created=request.app.state.started,
                  owned_by="modelgate")
    return {"object": "list", "data": [model.model_dump()]}
