"""Langfuse tracing through LiteLLM's built-in `langfuse_otel` callback, on when keys are set.

On when LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are set (environment or .env); LANGFUSE_HOST
picks the server (default Langfuse cloud). Off and silent otherwise. Every provider call becomes a
Langfuse generation carrying the model, tokens and cost, with the request metadata (alias, end user,
cohort) and the deployment (model_id, e.g. main/openrouter) that LiteLLM attaches.

`langfuse_otel` needs OpenTelemetry's SDK and OTLP/HTTP exporter (opentelemetry-sdk and
opentelemetry-exporter-otlp-proto-http, same version as opentelemetry-api), not the langfuse SDK. If
they are missing while keys are set, one warning says so and tracing stays off.

Prompts and completions are sent to Langfuse unless LANGFUSE_REDACT=true (the default here), which
sets LiteLLM's `turn_off_message_logging`: traces then carry metadata, usage and cost only.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

log = logging.getLogger("modelgate.tracing")

KEYS = ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST", "LANGFUSE_OTEL_HOST", "LANGFUSE_REDACT")


def _dotenv() -> dict[str, str]:
    try:
        from dotenv import dotenv_values
    except ImportError:  # pragma: no cover - python-dotenv comes with pydantic-settings
        return {}
    return {k: v for k, v in dotenv_values(".env").items() if k in KEYS and v}


class Tracing(CustomLogger):
    name = "tracing"

    def __init__(self) -> None:
        super().__init__()
        self.logger: Any = None

    def setup(self, gateway: Any) -> None:
        for key, value in _dotenv().items():  # LiteLLM reads os.environ; .env values fill the gaps
            os.environ.setdefault(key, value)
        if not (os.environ.get("LANGFUSE_PUBLIC_KEY") and os.environ.get("LANGFUSE_SECRET_KEY")):
            return
        try:
            from litellm.integrations.langfuse.langfuse_otel import LangfuseOtelLogger
            import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
            import opentelemetry.sdk.trace  # noqa: F401
        except ImportError as exc:
            log.warning("Langfuse keys are set but tracing is off: %s (install opentelemetry-sdk and "
                        "opentelemetry-exporter-otlp-proto-http)", exc)
            return
        if os.environ.get("LANGFUSE_REDACT", "true").strip().lower() not in ("false", "0", "no", "off"):
            litellm.turn_off_message_logging = True
        if self.logger is None:
            self.logger = LangfuseOtelLogger()
        if self.logger not in litellm.callbacks:
            litellm.callbacks.append(self.logger)
        host = os.environ.get("LANGFUSE_OTEL_HOST") or os.environ.get("LANGFUSE_HOST") or "Langfuse cloud"
        log.info("Langfuse tracing on: %s (prompts %s)", host,
                 "redacted" if litellm.turn_off_message_logging else "included")

    async def stop(self) -> None:
        """Flush spans still batched so a clean shutdown loses no trace."""
        if self.logger is None:
            return
        try:
            from opentelemetry import trace
            provider = trace.get_tracer_provider()
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush(5000)
            tracer_provider = getattr(self.logger, "tracer_provider", None) or getattr(self.logger, "_tracer_provider",
                                                                                      None)
            if tracer_provider is not None and hasattr(tracer_provider, "force_flush"):
                tracer_provider.force_flush(5000)
        except Exception:  # noqa: BLE001 - shutdown must go on
            log.debug("langfuse flush failed", exc_info=True)


tracing = Tracing()
