"""Every gateway setting, read from the environment and `.env` (documented in .env.example)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("groq", "openrouter", "openai", "local")


def _provider_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[arg-type]
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown provider(s) {unknown}; expected some of {list(PROVIDERS)}")
    return names


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Routing. PRIMARY_PROVIDER leads every alias that has a deployment of it; FALLBACK_PROVIDERS
    # then orders the rest; providers named in neither keep the YAML's order after them.
    primary_provider: str = Field("", alias="PRIMARY_PROVIDER")
    fallback_providers: str = Field("", alias="FALLBACK_PROVIDERS")
    enable_groq: bool = Field(True, alias="ENABLE_GROQ")
    enable_fallback: bool = Field(True, alias="ENABLE_FALLBACK")
    enable_model_abstraction: bool = Field(True, alias="ENABLE_MODEL_ABSTRACTION")

    # Cloud providers: a provider without a key is left out of routing.
    groq_api_key: str = Field("", alias="GROQ_API_KEY")
    openai_api_key: str = Field("", alias="OPENAI_API_KEY")
    openrouter_api_key: str = Field("", alias="OPENROUTER_API_KEY")
    groq_api_base: str = Field("https://api.groq.com/openai/v1", alias="GROQ_API_BASE")
    openai_api_base: str = Field("https://api.openai.com/v1", alias="OPENAI_API_BASE")
    openrouter_api_base: str = Field("https://openrouter.ai/api/v1", alias="OPENROUTER_API_BASE")
    openai_whisper_model: str = Field("whisper-1", alias="OPENAI_WHISPER_MODEL")
    openrouter_main_model: str = Field("qwen/qwen-2.5-72b-instruct", alias="OPENROUTER_MAIN_MODEL")
    openrouter_fast_model: str = Field("qwen/qwen-2.5-7b-instruct", alias="OPENROUTER_FAST_MODEL")

    # Local servers (local_servers/): always available, the embedded default.
    enable_local: bool = Field(True, alias="ENABLE_LOCAL")
    local_whisper_api_base: str = Field("http://127.0.0.1:4001/v1", alias="LOCAL_WHISPER_API_BASE")
    local_qwen_api_base: str = Field("http://127.0.0.1:4002/v1", alias="LOCAL_QWEN_API_BASE")
    local_whisper_model: str = Field("models/whisper-base", alias="LOCAL_WHISPER_MODEL")
    local_whisper_device: str = Field("cpu", alias="LOCAL_WHISPER_DEVICE")
    local_qwen_model_path: str = Field("models/smollm2-135m-instruct-q4_1.gguf", alias="LOCAL_QWEN_MODEL_PATH")
    local_qwen_device: str = Field("cpu", alias="LOCAL_QWEN_DEVICE")

    # The gateway itself.
    master_key: str = Field("", alias="LITELLM_MASTER_KEY")
    gateway_host: str = Field("127.0.0.1", alias="GATEWAY_HOST")
    gateway_port: int = Field(4000, alias="GATEWAY_PORT")
    config_path: Path = Field(ROOT / "config" / "models.yaml", alias="MODELGATE_CONFIG")
    max_audio_mb: int = Field(25, alias="MODELGATE_MAX_AUDIO_MB")
    # LiteLLM's model-map lookups memoized (gateway/litellm_speedups.py); off: LiteLLM's own, as shipped.
    litellm_memo: bool = Field(True, alias="MODELGATE_LITELLM_MEMO")
    # Graceful shutdown (gateway/drain.py): how long requests in flight get after SIGTERM; how long
    # /health answers 503 at least before the port closes (for a load balancer's health checks);
    # the Retry-After of the 503s meanwhile.
    drain_timeout_s: int = Field(30, ge=1, alias="MODELGATE_DRAIN_TIMEOUT_S")
    drain_min_s: float = Field(0, ge=0, alias="MODELGATE_DRAIN_MIN_S")
    drain_retry_after_s: int = Field(1, ge=0, alias="MODELGATE_DRAIN_RETRY_AFTER_S")
    # Several replicas (docs/scale-out.md): one Redis shares cooldowns, rpm/tpm usage and live flags.
    redis_url: str = Field("", alias="REDIS_URL")

    # Realtime transcription over WebSocket (/v1/realtime, docs/realtime.md).
    realtime_model: str = Field("stt-realtime", alias="REALTIME_MODEL")
    realtime_max_sessions: int = Field(8, ge=1, alias="REALTIME_MAX_SESSIONS")
    realtime_max_session_s: float = Field(3600, gt=0, alias="REALTIME_MAX_SESSION_S")
    realtime_max_buffer_s: float = Field(60, gt=0, alias="REALTIME_MAX_BUFFER_S")
    realtime_max_utterance_s: float = Field(20, ge=2, le=30, alias="REALTIME_MAX_UTTERANCE_S")
    realtime_silence_ms: int = Field(500, ge=100, le=10000, alias="REALTIME_SILENCE_MS")
    realtime_early_final_ms: int = Field(200, ge=0, le=10000, alias="REALTIME_EARLY_FINAL_MS")
    realtime_partials: bool = Field(True, alias="REALTIME_PARTIALS")
    realtime_partial_model: str = Field("", alias="REALTIME_PARTIAL_MODEL")
    realtime_partial_interval_ms: int = Field(1000, ge=200, alias="REALTIME_PARTIAL_INTERVAL_MS")
    realtime_partial_beam_size: int = Field(1, ge=1, alias="REALTIME_PARTIAL_BEAM_SIZE")
    realtime_partial_threads: int = Field(1, ge=1, alias="REALTIME_PARTIAL_THREADS")

    @field_validator("primary_provider")
    @classmethod
    def _primary(cls, value: str) -> str:
        names = _provider_list(value)
        if len(names) > 1:
            raise ValueError("PRIMARY_PROVIDER takes one provider")
        return names[0] if names else ""

    @field_validator("fallback_providers")
    @classmethod
    def _fallbacks(cls, value: str) -> str:
        return ",".join(_provider_list(value))

    @cached_property
    def fallback_order(self) -> list[str]:
        return _provider_list(self.fallback_providers)

    def api_key(self, provider: str) -> str:
        """The key a provider's deployments use; local servers take any non-empty key."""
        return {
            "groq": self.groq_api_key,
            "openai": self.openai_api_key,
            "openrouter": self.openrouter_api_key,
            "local": "local",
        }[provider]

    def template_values(self) -> dict[str, str]:
        """The values `${NAME}` placeholders in the YAML expand to."""
        return {field.alias: str(getattr(self, name)) for name, field in type(self).model_fields.items() if field.alias}


def flags_path() -> Path:
    """The live flags file (config/flags.yaml unless MODELGATE_FLAGS_FILE says otherwise)."""
    return Path(os.environ.get("MODELGATE_FLAGS_FILE", ROOT / "config" / "flags.yaml"))
