"""The request body of /v1/chat/completions, validated the way OpenAI validates it.

Strict types: OpenAI refuses `"temperature": "0.5"` or `"max_tokens": true`, so this does too.
Anything invalid becomes a 400 in OpenAI's shape (local_servers.common.errors).
Parameters this server has no use for (`user`, `logprobs`, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    # No tool messages: this server does not run tools.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        # A text-only model gets the parts as one text, a paragraph each.
        return "\n".join(part.text for part in self.content)


class JsonSchema(_Strict):
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None  # the grammar always enforces the schema
    description: str | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str | None = None  # any value: this server serves one model
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    n: int | None = Field(None, ge=1, le=1)  # one choice only
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None  # ignored

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops if s]

    def chat(self) -> list[dict[str, str]]:
        """The messages as the chat template expects them."""
        # Templates know `system`; `developer` is OpenAI's newer name for it.
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]
