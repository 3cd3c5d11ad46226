"""Settings of the whisper server, read from LOCAL_WHISPER_* environment variables or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_servers.whisper.executors.short_window import DEFAULT_WINDOW_PADDING_S

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_model_path(name: str) -> Path:
    """A model directory: relative paths are tried against the working directory, then the repo."""
    path = Path(name).expanduser()
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LOCAL_WHISPER_", env_file=".env", extra="ignore", protected_namespaces=()
    )

    # A CTranslate2 model directory. A size name ("base", "large-v3") would need a hub download,
    # which this server refuses: it runs offline.
    model: str = "models/whisper-base"
    model_id: str = "whisper-local"  # the id /v1/models lists; requests may name any model
    device: Literal["cpu", "cuda"] = "cpu"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    threads: int = Field(2, ge=1)  # CPU threads per inference
    beam_size: int = Field(5, ge=1)
    # Audio shorter than Whisper's 30 s window is first encoded with only this much padding, not up
    # to 30 s (short_window.py): about 2x faster; that decode is kept if it passes Whisper's own
    # checks, else the clip is decoded the usual way. 30: always the full window.
    window_padding_s: float = Field(DEFAULT_WINDOW_PADDING_S, ge=0.5, le=30)
    vad: bool = True  # drop silence before decoding, so silence transcribes to ""
    max_concurrency: int = Field(1, ge=1)  # inferences at once
    max_queue: int = Field(8, ge=0)  # requests waiting for a turn; past it, 429
    max_upload_mb: float = Field(25, gt=0)  # MiB, like OpenAI's 25 MB limit

    @property
    def effective_compute_type(self) -> str:
        if self.compute_type:
            return self.compute_type
        return "float16" if self.device == "cuda" else "int8"

    @property
    def model_path(self) -> Path:
        return resolve_model_path(self.model)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
