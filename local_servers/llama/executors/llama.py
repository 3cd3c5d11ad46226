"""The model: llama-cpp-python `Llama` objects, each running one inference at a time, in threads.

llama.cpp is synchronous and a context cannot serve two generations at once, so every inference
runs on a worker thread and holds one `Llama` from start to end. Pieces of text travel to the event
loop through an asyncio queue. A stop flag, checked before each new token, ends an inference whose
client went away; the `Llama` goes back to the pool only once its thread has really finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import random
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import llama_cpp
from llama_cpp import Llama, LlamaGrammar, StoppingCriteriaList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from local_servers.llama.config import Settings

log = logging.getLogger("local_servers.llama")

_END = object()  # marks the end of an inference on the queue


@dataclass(frozen=True)
class Prompt:
    """A chat rendered by the model's own template and tokenized."""

    tokens: list[int]
    stop: list[str]  # what the template says ends a turn (its end-of-turn text)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    grammar: LlamaGrammar | None = None


class CountingLlama(Llama):
    """A Llama that remembers the tokens its last generation sampled.

    llama-cpp-python reports `usage` for whole completions only; a stream needs the count too.
    """

    sampled_tokens: list[int]

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[int]:  # type: ignore[override]
        self.sampled_tokens = []
        for token in super().generate(*args, **kwargs):
            self.sampled_tokens.append(token)
            yield token


class LlamaExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = "loading"  # then "ready" or "failed"
        self.error: str | None = None
        self._models: list[CountingLlama] = []
        self._idle: queue.SimpleQueue[CountingLlama] = queue.SimpleQueue()
        self._threads = ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="llama")
        self._template: Jinja2ChatFormatter | None = None

    # -- loading ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Load one copy of the model per concurrent inference. Blocking: run it in a thread."""
        path = self.settings.model_path
        try:
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path.resolve()} (set LOCAL_QWEN_MODEL_PATH)")
            if self.settings.device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
                # Otherwise llama.cpp would quietly run a 72B model on the CPU.
                raise RuntimeError("LOCAL_QWEN_DEVICE=cuda, but this llama-cpp-python was built without "
                                   'GPU support: reinstall it with CMAKE_ARGS="-DGGML_CUDA=on"')
            for _ in range(self.settings.max_concurrency):
                self._models.append(
                    CountingLlama(
                        model_path=str(path),
                        n_ctx=self.settings.context,
                        n_threads=self.settings.threads,
                        # The prompt too: llama-cpp-python would use every CPU for it.
                        n_threads_batch=self.settings.threads,
                        n_gpu_layers=self.settings.n_gpu_layers,
                        verbose=False,
                    )
                )
            self._template = self._chat_template(self._models[0])
        except Exception as exc:  # a bad file must not crash-loop the server: /health reports it
            self.status, self.error = "failed", f"model failed to load: {exc}"
            log.error(self.error)
            return
        for model in self._models:
            self._idle.put(model)
        self.status = "ready"
        log.info("model ready: %s (n_ctx=%d, gpu_layers=%d)", path, self.n_ctx, self.settings.n_gpu_layers)

    @staticmethod
    def _chat_template(llm: Llama) -> Jinja2ChatFormatter:
        """The GGUF's own chat template, set up the way `Llama.create_chat_completion` sets it up."""
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError("the GGUF file has no tokenizer.chat_template")

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8") if token != -1 else ""

        return Jinja2ChatFormatter(
            template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
        )

    @property
    def n_ctx(self) -> int:
        return self._models[0].n_ctx()

    # -- preparing a request (before it queues; thread-safe) -------------------------------------

    def render(self, messages: list[dict[str, str]]) -> Prompt:
        """Apply the chat template and tokenize. ValueError when the template rejects the chat."""
        assert self._template is not None
        try:
            formatted = self._template(messages=messages)
        except Exception as exc:  # raise_exception() in templates, or a Jinja error
            raise ValueError(f"the model's chat template rejected these messages: {exc}") from exc
        # Tokenizing only reads the vocabulary, so any copy of the model may do it while others run.
        tokens = self._models[0].tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
        return Prompt(tokens=tokens, stop=[s for s in stop if s])

    def json_grammar(self, schema: dict[str, Any] | None) -> LlamaGrammar:
        """A grammar that only lets the model write JSON (matching `schema` when given).

        ValueError when the schema cannot become a grammar. llama.cpp answers a grammar it cannot
        parse with a null sampler, which would crash at the first token, so it is checked here.
        """
        if schema is None:
            gbnf = JSON_GBNF
        else:
            try:
                gbnf = json_schema_to_gbnf(json.dumps(schema))
            except Exception as exc:
                raise ValueError(f"unsupported JSON schema: {exc}") from exc
        vocab = llama_cpp.llama_model_get_vocab(self._models[0].model)
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            raise ValueError("unsupported JSON schema: llama.cpp could not build a grammar from it")
        llama_cpp.llama_sampler_free(sampler)
        return LlamaGrammar.from_string(gbnf, verbose=False)

    # -- running ---------------------------------------------------------------------------------

    async def complete(self, prompt: Prompt, sampling: Sampling) -> dict[str, Any]:
        """One whole completion: llama-cpp-python's completion dict, with `usage`."""
        async with contextlib.aclosing(self._generate(prompt, sampling, stream=False)) as results:
            async for completion in results:
                return completion
        raise RuntimeError("the inference produced nothing")

    def stream(self, prompt: Prompt, sampling: Sampling) -> AsyncIterator[dict[str, Any]]:
        """llama-cpp-python's completion chunks; the last one has `finish_reason` and `usage`.

        Close the iterator (`contextlib.aclosing`) to stop the inference early.
        """
        return self._generate(prompt, sampling, stream=True)

    async def _generate(
        self, prompt: Prompt, sampling: Sampling, stream: bool
    ) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()
        stop_flag = threading.Event()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(items.put_nowait, item)

        def work() -> None:  # on an inference thread
            llm = self._idle.get()
            try:
                if not stop_flag.is_set():
                    for item in self._infer(llm, prompt, sampling, stream, stop_flag):
                        put(item)
            except Exception as exc:
                put(exc)
            finally:
                self._idle.put(llm)
                put(_END)

        finished = asyncio.wrap_future(self._threads.submit(work))
        try:
            while (item := await items.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop_flag.set()
            # Shielded: even when this task is being cancelled, wait for the thread to let go of
            # its Llama, so the caller's admission slot is freed only when the model really is.
            with anyio.CancelScope(shield=True):
                await finished

    def _infer(
        self, llm: CountingLlama, prompt: Prompt, sampling: Sampling, stream: bool, stop_flag: threading.Event
    ) -> Iterator[dict[str, Any]]:
        n_ctx = llm.n_ctx()
        # llama-cpp-python samples past max_tokens while a UTF-8 character is incomplete; at the end of
        # the context such a token has no KV slot left and llama_decode fails (a 500, found by
        # tests/local_servers/test_fuzz.py). Stop there instead: it is a "length" finish.
        stop_when = StoppingCriteriaList([lambda ids, _logits: stop_flag.is_set() or len(ids) >= n_ctx])

        def finished(choice: dict[str, Any]) -> None:
            if choice["finish_reason"] == "stop" and llm.n_tokens >= n_ctx and not stop_flag.is_set():
                choice["finish_reason"] = "length"  # llama-cpp-python says "stop" for any stopping criterion

        result = llm.create_completion(
            prompt=prompt.tokens,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=sampling.stop + prompt.stop,
            # No seed means a fresh one: llama-cpp-python would otherwise derive it from the last.
            seed=sampling.seed if sampling.seed is not None else random.getrandbits(32),
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=sampling.grammar,
            stream=stream,
            stopping_criteria=stop_when,
        )
        if not stream:
            finished(result["choices"][0])  # type: ignore[index]
            yield result  # type: ignore[misc]
            return
        for chunk in result:
            if chunk["choices"][0]["finish_reason"] is not None:
                finished(chunk["choices"][0])
                completion_tokens = self._completion_tokens(llm)
                chunk["usage"] = {
                    "prompt_tokens": len(prompt.tokens),
                    "completion_tokens": completion_tokens,
                    "total_tokens": len(prompt.tokens) + completion_tokens,
                }
            yield chunk  # type: ignore[misc]

    @staticmethod
    def _completion_tokens(llm: CountingLlama) -> int:
        """Count as llama-cpp-python does for whole completions: an end-of-turn token is not counted."""
        sampled = llm.sampled_tokens
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        if sampled and llama_cpp.llama_vocab_is_eog(vocab, sampled[-1]):
            return len(sampled) - 1
        return len(sampled)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
