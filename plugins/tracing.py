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

    @property
    def litellm_callback(self) -> bool:
        """Its LiteLLM logging hook (the provider on the trace) only matters while tracing is on."""
        return self.logger is not None

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
            self.logger = LangfuseOtelLogger(config=None, callback_name="langfuse_otel")  # as LiteLLM builds it
        host = os.environ.get("LANGFUSE_OTEL_HOST") or os.environ.get("LANGFUSE_HOST") or "Langfuse cloud"
        log.info("Langfuse tracing on: %s (prompts %s)", host,
                 "redacted" if litellm.turn_off_message_logging else "included")

    async def start(self) -> None:
        """Registered after the gateway's warm-up, so its mocked calls are not traced."""
        if self.logger is not None and self.logger not in litellm.callbacks:
            litellm.callbacks.append(self.logger)

    # Langfuse reads these request metadata keys: trace_name, trace_user_id, tags, trace_metadata,
    # generation_name. The alias and cohort are known before routing, the provider only after.
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if self.logger is None:
            return data
        md = data.setdefault("metadata", {})
        alias, cohort, kind = md.get("alias"), md.get("cohort"), md.get("call_kind")
        md["trace_name"] = f"{kind or 'call'} {alias}"
        md["generation_name"] = alias
        if md.get("end_user"):
            md["trace_user_id"] = md["end_user"]
        md["tags"] = [t for t in (f"alias:{alias}", f"cohort:{cohort}" if cohort else None,
                                  "shadow" if md.get("shadow") else None) if t]
        md["trace_metadata"] = {"alias": alias, "cohort": cohort, "kind": kind}
        return data

    async def async_logging_hook(self, kwargs: dict, result: Any, call_type: str) -> tuple[dict, Any]:
        """Runs before LiteLLM's success loggers: add the provider that answered to the trace."""
        if self.logger is None:
            return kwargs, result
        params = kwargs.get("litellm_params") or {}
        info, md = params.get("model_info") or {}, params.get("metadata")
        if isinstance(md, dict) and info.get("provider"):
            md["trace_metadata"] = {**(md.get("trace_metadata") or {}), "provider": info["provider"],
                                    "deployment": info.get("id")}
            md["tags"] = [*(md.get("tags") or []), f"provider:{info['provider']}"]
        return kwargs, result

    async def stop(self) -> None:
        """Flush spans still batched so a clean shutdown loses no trace."""
        if self.logger is None:
            return
        from opentelemetry import trace
        for provider in {id(p): p for p in (getattr(self.logger, "_tracer_provider", None),
                                             trace.get_tracer_provider())}.values():
            try:
                if hasattr(provider, "force_flush"):
                    provider.force_flush(5000)
            except Exception:  # noqa: BLE001 - shutdown must go on
                log.debug("langfuse flush failed", exc_info=True)


tracing = Tracing()
