"""POST /v1/chat/completions: OpenAI's chat API, whole or streamed, on the local model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta

from local_servers.common.errors import OpenAIError
from local_servers.llama.executors.llama import LlamaExecutor, Prompt, Sampling
from local_servers.llama.schemas import ChatRequest
from local_servers.llama.streaming import EventStream

router = APIRouter()
T = TypeVar("T")


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request) -> Response:
    state = request.app.state
    executor: LlamaExecutor = state.executor
    if executor.status != "ready":
        raise OpenAIError(503, executor.error or "model is loading", code="model_not_ready",
                          headers={"Retry-After": "5"})
    # Everything that can be refused is checked before the request takes a place in the queue.
    # In a thread: a long prompt takes a while to template and tokenize, and streams must flow meanwhile.
    prompt, sampling = await anyio.to_thread.run_sync(prepare, body, executor)
    reply = Reply(model=state.settings.model_id)

    if not body.stream:
        async with state.admission.slot(request):
            completion = await unless_disconnected(request, executor.complete(prompt, sampling))
        return JSONResponse(reply.completion(completion).model_dump(mode="json", exclude_unset=True))

    # A stream keeps its slot until the last event is sent or the client leaves: EventStream frees it.
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    slot = contextlib.AsyncExitStack()
    await slot.enter_async_context(state.admission.slot(request))
    try:
        events = reply.events(executor.stream(prompt, sampling), include_usage)
        return EventStream(events, on_close=slot.aclose)
    except BaseException:
        await slot.aclose()
        raise


def prepare(body: ChatRequest, executor: LlamaExecutor) -> tuple[Prompt, Sampling]:
    """Render the prompt and turn the request's options into sampling settings, or refuse (400)."""
    try:
        prompt = executor.render(body.chat())
    except ValueError as exc:
        raise OpenAIError(400, str(exc), code="invalid_request", param="messages") from exc

    grammar = None
    response_format = body.response_format
    if response_format is not None and response_format.type != "text":
        schema = None
        if response_format.type == "json_schema":
            if response_format.json_schema is None:
                raise OpenAIError(400, "response_format.json_schema is required when type is json_schema",
                                  code="invalid_request", param="response_format.json_schema")
            schema = response_format.json_schema.schema_
        try:
            grammar = executor.json_grammar(schema)
        except ValueError as exc:
            raise OpenAIError(400, str(exc), code="invalid_request", param="response_format") from exc

    sampling = Sampling(
        max_tokens=max_tokens(body, len(prompt.tokens), executor.n_ctx),
        temperature=1.0 if body.temperature is None else body.temperature,  # OpenAI's defaults
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=body.stop_list(),
        seed=body.seed,
        frequency_penalty=body.frequency_penalty or 0.0,
        presence_penalty=body.presence_penalty or 0.0,
        grammar=grammar,
    )
    return prompt, sampling


def max_tokens(body: ChatRequest, n_prompt: int, n_ctx: int) -> int:
    """The completion's token budget; 400 `context_length_exceeded` when it cannot fit."""
    requested = body.max_completion_tokens or body.max_tokens
    start = f"This model's maximum context length is {n_ctx} tokens. However, "
    if requested is None:
        if n_prompt >= n_ctx:  # at least one token must fit after the prompt
            raise OpenAIError(400, start + f"your messages resulted in {n_prompt} tokens. "
                              "Please reduce the length of the messages.",
                              code="context_length_exceeded", param="messages")
        return n_ctx - n_prompt  # no limit asked: until the context is full
    if n_prompt + requested > n_ctx:
        raise OpenAIError(400, start + f"you requested {n_prompt + requested} tokens ({n_prompt} in the "
                          f"messages, {requested} in the completion). Please reduce the length of the "
                          "messages or completion.", code="context_length_exceeded", param="messages")
    return requested


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client goes away (a gateway timeout, say) meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise OpenAIError(499, "client disconnected", code="client_closed")
    finally:
        if not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(task, return_exceptions=True)


class Reply:
    """Turns llama-cpp-python's completion dicts into OpenAI's chat objects, for one request."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def completion(self, completion: dict[str, Any]) -> ChatCompletion:
        choice = completion["choices"][0]
        return ChatCompletion(
            id=self.id, object="chat.completion", created=self.created, model=self.model,
            choices=[Choice(
                index=0,
                message=ChatCompletionMessage(role="assistant", content=choice["text"]),
                # "length" also when a JSON answer was cut short: it will not parse.
                finish_reason=choice["finish_reason"],
                logprobs=None,
            )],
            usage=CompletionUsage(**completion["usage"]),
        )

    async def events(
        self, chunks: AsyncIterator[dict[str, Any]], include_usage: bool
    ) -> AsyncGenerator[str, None]:
        """SSE lines: a role chunk, content chunks, a finish chunk, [usage chunk], [DONE]."""
        # With include_usage, OpenAI puts "usage": null on every chunk but the last.
        no_usage: dict[str, Any] = {"usage": None} if include_usage else {}

        def event(choice: ChunkChoice | None = None, **extra: Any) -> str:
            chunk = ChatCompletionChunk(id=self.id, object="chat.completion.chunk", created=self.created,
                                        model=self.model, choices=[choice] if choice else [], **extra)
            return f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"

        def delta(finish_reason: Any = None, **fields: Any) -> ChunkChoice:
            return ChunkChoice(index=0, delta=ChoiceDelta(**fields), finish_reason=finish_reason)

        async with contextlib.aclosing(chunks):
            yield event(delta(role="assistant", content=""), **no_usage)
            last: dict[str, Any] = {}
            try:
                async for last in chunks:
                    text = last["choices"][0]["text"]
                    if text:
                        yield event(delta(content=text), **no_usage)
            except Exception as exc:  # headers are gone already: report it the way OpenAI does in a stream
                error = {"message": f"inference failed: {type(exc).__name__}: {exc}", "type": "server_error",
                         "param": None, "code": "internal_error"}
                yield f"data: {json.dumps({'error': error})}\n\n"
                return
        yield event(delta(finish_reason=last["choices"][0]["finish_reason"]), **no_usage)
        if include_usage:
            yield event(usage=CompletionUsage(**last["usage"]))
        yield "data: [DONE]\n\n"
