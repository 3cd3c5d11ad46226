"""Settings of the llama server, read from LOCAL_QWEN_* environment variables or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # `.env` is shared with the gateway, hence extra="ignore".
    model_config = SettingsConfigDict(env_prefix="LOCAL_QWEN_", env_file=".env", extra="ignore")

    model_path: Path = Path("models/smollm2-135m-instruct-q4_1.gguf")  # relative to the working directory
    device: Literal["cpu", "cuda"] = "cpu"
    gpu_layers: int | None = None  # overrides what `device` implies (-1 = all layers)
    threads: int = Field(2, ge=1)
    context: int = Field(4096, ge=64)  # n_ctx: prompt + completion tokens
    max_concurrency: int = Field(1, ge=1)  # inferences at once; each one needs its own copy of the model
    max_queue: int = Field(8, ge=0)  # requests waiting for a turn before 429
    model_id: str = "qwen-local"  # the id /v1/models lists and responses carry

    @property
    def n_gpu_layers(self) -> int:
        if self.gpu_layers is not None:
            return self.gpu_layers
        return -1 if self.device == "cuda" else 0
