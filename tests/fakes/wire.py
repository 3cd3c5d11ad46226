"""Per-provider wire shapes: response bodies, stream chunks, error bodies and headers.

Each provider class replays what the real service sends (field names, id prefixes, usage fields, error
envelopes, rate-limit headers); `app.py` only decides *what* to answer and asks the wire *how* to say it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

from . import content as text

# USD per token, as OpenRouter's /models `pricing` lists them.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "qwen/qwen-2.5-72b-instruct": {"prompt": 0.12e-6, "completion": 0.39e-6},
    "qwen/qwen-2.5-7b-instruct": {"prompt": 0.04e-6, "completion": 0.10e-6},
}
FALLBACK_PRICE = DEFAULT_PRICES["qwen/qwen-2.5-72b-instruct"]


def _hex(n: int = 24) -> str:
    return uuid.uuid4().hex[:n]


def sse(data: Any) -> bytes:
    """One server-sent event carrying `data` (a dict is JSON-encoded; a str is sent as is)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


DONE = b"data: [DONE]\n\n"


class Wire:
    """OpenAI-shaped defaults; providers override what differs."""

    name = "openai"
    prefix = "/v1"
    has_audio = True
    audio_formats = ("json", "text", "verbose_json", "srt", "vtt")
    models: tuple[dict[str, Any], ...] = ()

    def __init__(self) -> None:
        self.served = 0  # requests answered, for x-ratelimit-remaining-*

    # ---- ids and headers -------------------------------------------------------------------------------
    def completion_id(self) -> str:
        return f"chatcmpl-{_hex(29)}"

    def request_id(self) -> str:
        return f"req_{_hex(32)}"

    def headers(self, request_id: str) -> dict[str, str]:
        self.served += 1
        return {"x-request-id": request_id}

    def retry_headers(self, retry_after: float) -> dict[str, str]:
        return {"retry-after": _seconds(retry_after)}

    # ---- errors ----------------------------------------------------------------------------------------
    def error_body(
        self, status: int, model: str | None, message: str | None = None, retry_after: float = 1
    ) -> dict[str, Any]:
        kind, code, default = {
            400: ("invalid_request_error", None, "Invalid request: the fake provider was told to reject it."),
            401: (
                "invalid_request_error",
                "invalid_api_key",
                (
                    "Incorrect API key provided: sk-fake***. You can "
                    "find your API key at https://platform.openai.com/account/api-keys."
                ),
            ),
            404: ("invalid_request_error", "model_not_found", f"The model `{model}` does not exist."),
            429: (
                "requests",
                "rate_limit_exceeded",
                (
                    f"Rate limit reached for {model} in organization "
                    "org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. "
                    f"Please try again in {_seconds(retry_after)}s."
                ),
            ),
            500: (
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
            502: ("server_error", None, "Bad gateway."),
            503: ("server_error", None, "The engine is currently overloaded, please try again later."),
        }.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}"))
        return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}

    def stream_error_event(self, model: str, completion_id: str) -> dict[str, Any]:
        return {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }

    # ---- usage -----------------------------------------------------------------------------------------
    def usage(self, model: str, prompt_tokens: int, completion_tokens: int, prices: dict) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    # ---- chat ------------------------------------------------------------------------------------------
    def message(self, content: str) -> dict[str, Any]:
        return {"role": "assistant", "content": content, "refusal": None, "annotations": []}

    def choice_extra(self, finish_reason: str | None) -> dict[str, Any]:
        return {"logprobs": None}

    def completion_extra(self) -> dict[str, Any]:
        return {"service_tier": "default", "system_fingerprint": "fp_fake0penai"}

    def chat_completion(
        self, *, completion_id: str, request_id: str, model: str, content: str, usage: dict
    ) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(content),
                    **self.choice_extra("stop"),
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            **self.completion_extra(),
        }

    def chunk(
        self,
        completion_id: str,
        model: str,
        delta: dict | None,
        finish_reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        choices = (
            []
            if delta is None
            else [
                {
                    "index": 0,
                    "delta": delta,
                    **self.choice_extra(finish_reason),
                    "finish_reason": finish_reason,
                }
            ]
        )
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            **self.completion_extra(),
            "choices": choices,
            **extra,
        }

    def preamble(self) -> list[bytes]:
        """Bytes sent before the first data event (OpenRouter's keep-alive comments)."""
        return []

    def stream_chunks(
        self,
        *,
        completion_id: str,
        request_id: str,
        model: str,
        content: str,
        usage: dict,
        include_usage: bool,
    ) -> list[dict[str, Any]]:
        """The data events of a good stream, without [DONE]."""
        extra = {"usage": None} if include_usage else {}
        chunks = [
            self.chunk(completion_id, model, {"role": "assistant", "content": "", "refusal": None}, **extra)
        ]
        chunks += [
            self.chunk(completion_id, model, {"content": piece}, **extra)
            for piece in text.split_chunks(content)
        ]
        chunks.append(self.chunk(completion_id, model, {}, "stop", **extra))
        if include_usage:
            chunks.append(self.chunk(completion_id, model, None, usage=usage))
        return chunks

    # ---- audio -----------------------------------------------------------------------------------------
    def audio_usage(self, duration: float) -> dict[str, Any] | None:
        return {"type": "duration", "seconds": max(1, math.ceil(duration))}

    def language_name(self, code: str | None, translate: bool) -> str:
        if translate or not code:
            return "english"
        return text.LANGUAGE_NAMES.get(code, code)

    def transcription_json(self, *, request_id: str, transcript: str, duration: float) -> dict[str, Any]:
        body: dict[str, Any] = {"text": transcript}
        usage = self.audio_usage(duration)
        if usage:
            body["usage"] = usage
        return body

    def transcription_verbose(
        self,
        *,
        request_id: str,
        transcript: str,
        duration: float,
        language: str | None,
        translate: bool,
        granularities: list[str],
    ) -> dict[str, Any]:
        segments, words = text.segments_and_words(transcript, duration)
        body: dict[str, Any] = {
            "task": "translate" if translate else "transcribe",
            "language": self.language_name(language, translate),
            "duration": duration,
            "text": transcript,
        }
        if "word" in granularities:
            body["words"] = words
        if "segment" in granularities or not granularities:
            body["segments"] = segments
        usage = self.audio_usage(duration)
        if usage and not translate:
            body["usage"] = usage
        return body

    # ---- models ----------------------------------------------------------------------------------------
    def models_list(self, prices: dict) -> dict[str, Any]:
        return {"object": "list", "data": [dict(m) for m in self.models]}


class OpenAIWire(Wire):
    name = "openai"
    prefix = "/v1"
    models = tuple(
        {"id": m, "object": "model", "created": 1686935002, "owned_by": owner}
        for m, owner in (
            ("gpt-4o-mini", "system"),
            ("gpt-4o", "system"),
            ("gpt-4.1-mini", "system"),
            ("whisper-1", "openai-internal"),
            ("gpt-4o-transcribe", "system"),
            ("gpt-4o-mini-transcribe", "system"),
        )
    )

    def headers(self, request_id: str) -> dict[str, str]:
        super().headers(request_id)
        return {
            "x-request-id": request_id,
            "openai-processing-ms": "42",
            "openai-version": "2020-10-01",
            "openai-organization": "org-fake",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-requests": str(max(0, 9999 - self.served % 10000)),
            "x-ratelimit-remaining-tokens": "1999950",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "1ms",
        }


class GroqWire(Wire):
    name = "groq"
    prefix = "/openai/v1"
    audio_formats = ("json", "text", "verbose_json")
    models = tuple(
        {
            "id": m,
            "object": "model",
            "created": 1733447754,
            "owned_by": owner,
            "active": True,
            "context_window": ctx,
            "public_apps": None,
            "max_completion_tokens": out,
        }
        for m, owner, ctx, out in (
            ("llama-3.3-70b-versatile", "Meta", 131072, 32768),
            ("llama-3.1-8b-instant", "Meta", 131072, 131072),
            ("openai/gpt-oss-120b", "OpenAI", 131072, 65536),
            ("whisper-large-v3", "OpenAI", 448, 448),
            ("whisper-large-v3-turbo", "OpenAI", 448, 448),
        )
    )

    def headers(self, request_id: str) -> dict[str, str]:
        super().headers(request_id)
        return {
            "x-request-id": request_id,
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-requests": str(max(0, 14399 - self.served % 14400)),
            "x-ratelimit-remaining-tokens": "5950",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-reset-tokens": "7.66s",
            "cache-control": "private, max-age=0, no-store, no-cache, must-revalidate",
        }

    def error_body(
        self, status: int, model: str | None, message: str | None = None, retry_after: float = 1
    ) -> dict[str, Any]:
        kind, code, default = {
            400: ("invalid_request_error", None, "The fake provider was told to reject this request."),
            401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
            404: (
                "invalid_request_error",
                "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
            ),
            429: (
                "requests",
                "rate_limit_exceeded",
                (
                    f"Rate limit reached for model `{model}` in organization "
                    "`org_fake` service tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, "
                    f"Requested 1. Please try again in {_seconds(retry_after)}s. "
                    "Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
                ),
            ),
            500: ("internal_server_error", None, "Internal Server Error"),
            502: ("internal_server_error", None, "Bad Gateway"),
            503: (
                "internal_server_error",
                "service_unavailable",
                (
                    f"{model} is currently over capacity. Please "
                    "try again and back off exponentially. "
                    "Visit https://groqstatus.com to see if there is an active incident."
                ),
            ),
        }.get(
            status,
            ("internal_server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}"),
        )
        err: dict[str, Any] = {"message": message or default, "type": kind}
        if code:
            err["code"] = code
        return {"error": err}

    def stream_error_event(self, model: str, completion_id: str) -> dict[str, Any]:
        return {"error": {"message": "Internal Server Error", "type": "internal_server_error"}}

    def usage(self, model: str, prompt_tokens: int, completion_tokens: int, prices: dict) -> dict[str, Any]:
        prompt_time = round(prompt_tokens * 0.0001, 6)
        completion_time = round(completion_tokens * 0.004, 6)
        return {
            "queue_time": 0.021,
            "prompt_tokens": prompt_tokens,
            "prompt_time": prompt_time,
            "completion_tokens": completion_tokens,
            "completion_time": completion_time,
            "total_tokens": prompt_tokens + completion_tokens,
            "total_time": round(prompt_time + completion_time, 6),
        }

    def message(self, content: str) -> dict[str, Any]:
        return {"role": "assistant", "content": content}

    def completion_extra(self) -> dict[str, Any]:
        return {"system_fingerprint": "fp_fake9r0q", "service_tier": "on_demand"}

    def chat_completion(
        self, *, completion_id: str, request_id: str, model: str, content: str, usage: dict
    ) -> dict[str, Any]:
        body = super().chat_completion(
            completion_id=completion_id, request_id=request_id, model=model, content=content, usage=usage
        )
        body["usage_breakdown"] = None
        body["x_groq"] = {"id": request_id}
        return body

    def stream_chunks(
        self,
        *,
        completion_id: str,
        request_id: str,
        model: str,
        content: str,
        usage: dict,
        include_usage: bool,
    ) -> list[dict[str, Any]]:
        chunks = [
            self.chunk(
                completion_id,
                model,
                {"role": "assistant", "content": ""},
                x_groq={"id": request_id, "seed": 1414499071},
            )
        ]
        chunks += [
            self.chunk(completion_id, model, {"content": piece}) for piece in text.split_chunks(content)
        ]
        chunks.append(self.chunk(completion_id, model, {}, "stop", x_groq={"id": request_id, "usage": usage}))
        if include_usage:
            chunks.append(self.chunk(completion_id, model, None, x_groq={"id": request_id}, usage=usage))
        return chunks

    def audio_usage(self, duration: float) -> None:
        return None

    def language_name(self, code: str | None, translate: bool) -> str:
        return super().language_name(code, translate).capitalize()

    def transcription_json(self, *, request_id: str, transcript: str, duration: float) -> dict[str, Any]:
        return {"text": transcript, "x_groq": {"id": request_id}}

    def transcription_verbose(self, *, request_id: str, **kwargs: Any) -> dict[str, Any]:
        body = super().transcription_verbose(request_id=request_id, **kwargs)
        body["x_groq"] = {"id": request_id}
        return body


class OpenRouterWire(Wire):
    name = "openrouter"
    prefix = "/api/v1"
    has_audio = False
    upstream = "DeepInfra"

    def completion_id(self) -> str:
        return f"gen-{int(time.time())}-{_hex(20)}"

    def request_id(self) -> str:
        return self.completion_id()

    def headers(self, request_id: str) -> dict[str, str]:
        super().headers(request_id)
        return {"x-generation-id": request_id, "access-control-allow-origin": "*"}

    def retry_headers(self, retry_after: float) -> dict[str, str]:
        return {"Retry-After": _seconds(retry_after), **self.rate_limit_headers(retry_after)}

    @staticmethod
    def rate_limit_headers(retry_after: float) -> dict[str, str]:
        reset_ms = int((time.time() + max(retry_after, 0)) * 1000)
        return {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}

    def error_body(
        self, status: int, model: str | None, message: str | None = None, retry_after: float = 1
    ) -> dict[str, Any]:
        raw = None
        metadata: dict[str, Any] | None = None
        if status == 400:
            default = "Provider returned error"
            raw = json.dumps({"error": {"message": "invalid request", "type": "invalid_request_error"}})
            metadata = {"raw": raw, "provider_name": self.upstream}
        elif status == 401:
            default = "No auth credentials found"
        elif status == 402:
            default = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"
        elif status == 404:
            default = "Not Found"
        elif status == 429:
            default = f"{model} is temporarily rate-limited upstream. Please retry shortly."
            raw = f"{model} is temporarily rate-limited upstream."
            metadata = {
                "raw": raw,
                "provider_name": self.upstream,
                "headers": self.rate_limit_headers(retry_after),
            }
        elif status == 502:
            default = "Provider returned error"
            metadata = {"raw": "upstream connection error", "provider_name": self.upstream}
        elif status == 503:
            default = "No instances available"
            metadata = {"provider_name": self.upstream}
        else:
            default = "Internal Server Error" if status >= 500 else f"HTTP {status}"
        err: dict[str, Any] = {"message": message or default, "code": status}
        if metadata:
            err["metadata"] = metadata
        body: dict[str, Any] = {"error": err}
        if status not in (401, 404):
            body["user_id"] = "user_fake"
        return body

    def stream_error_event(self, model: str, completion_id: str) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "provider": self.upstream,
            "error": {
                "code": 502,
                "message": "Provider returned error",
                "metadata": {"provider_name": self.upstream, "raw": "upstream stream interrupted"},
            },
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
            ],
        }

    def usage(self, model: str, prompt_tokens: int, completion_tokens: int, prices: dict) -> dict[str, Any]:
        price = {**DEFAULT_PRICES, **prices}.get(model, FALLBACK_PRICE)
        cost = prompt_tokens * float(price["prompt"]) + completion_tokens * float(price["completion"])
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": round(cost, 12),
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": 0,
                "upstream_inference_completions_cost": 0,
            },
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
        }

    def message(self, content: str) -> dict[str, Any]:
        return {"role": "assistant", "content": content, "refusal": None, "reasoning": None}

    def choice_extra(self, finish_reason: str | None) -> dict[str, Any]:
        return {"logprobs": None, "native_finish_reason": finish_reason}

    def completion_extra(self) -> dict[str, Any]:
        return {}

    def chat_completion(
        self, *, completion_id: str, request_id: str, model: str, content: str, usage: dict
    ) -> dict[str, Any]:
        return {
            "id": completion_id,
            "provider": self.upstream,
            "model": model,
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [
                {
                    "logprobs": None,
                    "finish_reason": "stop",
                    "native_finish_reason": "stop",
                    "index": 0,
                    "message": self.message(content),
                }
            ],
            "usage": usage,
        }

    def chunk(
        self,
        completion_id: str,
        model: str,
        delta: dict | None,
        finish_reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = super().chunk(completion_id, model, delta, finish_reason, **extra)
        return {"id": body.pop("id"), "provider": self.upstream, **body}

    def preamble(self) -> list[bytes]:
        return [b": OPENROUTER PROCESSING\n\n", b": OPENROUTER PROCESSING\n\n"]

    def stream_chunks(
        self,
        *,
        completion_id: str,
        request_id: str,
        model: str,
        content: str,
        usage: dict,
        include_usage: bool,
    ) -> list[dict[str, Any]]:
        # OpenRouter always ends with a usage chunk (stream_options.include_usage is deprecated there).
        chunks = [
            self.chunk(completion_id, model, {"role": "assistant", "content": piece})
            for piece in text.split_chunks(content)
        ]
        chunks.append(self.chunk(completion_id, model, {"role": "assistant", "content": ""}, "stop"))
        chunks.append(self.chunk(completion_id, model, None, usage=usage))
        return chunks

    def models_list(self, prices: dict) -> dict[str, Any]:
        data = []
        for slug, price in {**DEFAULT_PRICES, **prices}.items():
            data.append(
                {
                    "id": slug,
                    "canonical_slug": slug,
                    "name": slug,
                    "created": 1727049600,
                    "context_length": 32768,
                    "pricing": {
                        "prompt": f"{float(price['prompt']):.10f}".rstrip("0"),
                        "completion": f"{float(price['completion']):.10f}".rstrip("0"),
                    },
                    "architecture": {
                        "modality": "text->text",
                        "input_modalities": ["text"],
                        "output_modalities": ["text"],
                        "tokenizer": "Qwen",
                    },
                }
            )
        return {"data": data}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


WIRES: dict[str, type[Wire]] = {"groq": GroqWire, "openrouter": OpenRouterWire, "openai": OpenAIWire}


def make_wire(provider: str) -> Wire:
    try:
        return WIRES[provider]()
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; choose one of {sorted(WIRES)}") from None
