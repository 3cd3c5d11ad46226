"""The Gateway: LiteLLM's Router built from the resolved config, with the plugins around it.

Request path: route -> `Gateway.plan()` (alias lookup, plugins' pre-call hooks pick the model
group) -> Router (order-based fallbacks, cooldowns, timeouts) -> plugins' post-call hooks.
A flag change rebuilds the Router from the YAML; requests in flight finish on the old one.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import litellm
from litellm import Router
from litellm.integrations.custom_logger import CustomLogger

from gateway import config, litellm_speedups
from gateway.errors import GatewayError
from gateway.settings import Settings

log = logging.getLogger("modelgate")

_LITELLM_GLOBALS = {"drop_params", "request_timeout", "set_verbose", "num_retries"}


@dataclass
class Call:
    """What a route asks the gateway for: an alias, the OpenAI params, and who asked."""

    kind: str                    # "chat" | "transcription"
    data: dict[str, Any]         # OpenAI-style params; data["model"] is the alias as the app sent it
    user: str | None = None      # end user (request `user` field or x-modelgate-user header)
    alias: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


class _Executor(ThreadPoolExecutor):
    """The event loop's default executor, except that LiteLLM's request preparation runs inline.

    `litellm.acompletion` runs the sync `completion()` in the loop's default executor only to build
    the provider request and get a coroutine back: pure-Python work, no I/O for the providers here
    (Groq, OpenRouter, OpenAI, local servers). In a thread it still needs the GIL, so it finishes
    no sooner, and the hop costs two thread wake-ups per call, which a busy machine turns into
    milliseconds (docs/performance.md). A provider whose preparation blocks (cloud IAM credential
    refresh: Bedrock, Vertex) would need the thread back. Everything else (asyncio.to_thread:
    ledger reads, budget syncs) still gets one."""

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN201 - Executor.submit's signature
        inner = fn.args[0] if isinstance(fn, functools.partial) and fn.args else None
        if getattr(inner, "func", None) is not litellm.main.completion:
            return super().submit(fn, *args, **kwargs)
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine, as from a thread
            future.set_exception(exc)
        return future


class _Router(Router):
    """LiteLLM's Router with two changes.

    Deployments and their model info once per Router: on every call LiteLLM rebuilds both for its
    rpm/tpm bookkeeping (a pydantic Deployment three times a request, the model info twice, each a
    deep copy of a ~170-key cost-map entry): about 0.7 ms of CPU per request here
    (docs/performance.md). A Router's deployments never change (a flag change builds a new Router),
    so both are cached; model info callers get a copy.

    Attempts released at cooldown: when a deployment is put in cooldown, the attempts still waiting
    on it fail over at once instead of each waiting out its own timeout. Against a hung provider
    the first request pays the timeout and the rest are released with it (docs/performance.md,
    failover cost); without this every request that reached it in that window paid a full one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._model_info_cache: dict[tuple[Any, str], Any] = {}  # before Router's own set-up, which may ask
        self._deployments: dict[str, tuple[Any, Any]] = {}  # id -> (model_list entry, its Deployment)
        # request task -> deployment id it is waiting on; weak, so a task that never reached
        # _releasable's clean-up (a LiteLLM path not wrapped here) is not kept alive by it.
        self._attempts: weakref.WeakKeyDictionary[asyncio.Task, str] = weakref.WeakKeyDictionary()
        self._released: weakref.WeakSet[asyncio.Task] = weakref.WeakSet()
        super().__init__(*args, **kwargs)

    async def async_get_available_deployment(self, *args: Any, **kwargs: Any) -> Any:
        deployment = await super().async_get_available_deployment(*args, **kwargs)
        deployment_id = (deployment.get("model_info") or {}).get("id") if isinstance(deployment, dict) else None
        task = asyncio.current_task()
        if deployment_id is not None and task is not None:
            self._attempts[task] = deployment_id
        return deployment

    async def _acompletion(self, model: str, messages: Any, **kwargs: Any) -> Any:
        return await self._releasable(super()._acompletion(model, messages, **kwargs), model)

    async def _atranscription(self, file: Any, model: str, **kwargs: Any) -> Any:
        return await self._releasable(super()._atranscription(file, model, **kwargs), model)

    async def _releasable(self, attempt: Any, model: str) -> Any:
        task = asyncio.current_task()
        try:
            return await attempt
        except asyncio.CancelledError:
            if task not in self._released:
                raise
            task.uncancel()  # LiteLLM's fallback continues in this task
            deployment_id = self._attempts.get(task, "")
            raise litellm.Timeout(message=f"deployment {deployment_id} was put in cooldown while this request "
                                  "waited on it", model=model, llm_provider=deployment_id.rpartition("/")[2]) from None
        finally:
            self._attempts.pop(task, None)
            self._released.discard(task)

    def deployment_callback_on_failure(self, kwargs, completion_response, start_time, end_time) -> bool:  # noqa: ANN001
        cooled = super().deployment_callback_on_failure(kwargs, completion_response, start_time, end_time)
        if cooled:
            # LiteLLM calls this inline in the failing request's task (its retries rely on that);
            # a call from one of its logging threads (sync SDK paths) has no waiting attempts to see.
            try:
                failing = asyncio.current_task()
            except RuntimeError:
                return cooled
            deployment_id = ((kwargs.get("litellm_params") or {}).get("model_info") or {}).get("id")
            for task, waiting_on in list(self._attempts.items()):
                if waiting_on == deployment_id and task is not failing:
                    task.get_loop().call_soon(self._release, task, deployment_id)
        return cooled

    def _release(self, task: asyncio.Task, deployment_id: str) -> None:
        if self._attempts.get(task) == deployment_id and task not in self._released and not task.done():
            self._released.add(task)
            task.cancel()

    def get_deployment(self, model_id: str) -> Any:
        # LiteLLM validates a new pydantic Deployment from the model_list entry on every call (three
        # a request). Kept per entry: a replaced entry (LiteLLM's own list updates) is validated anew.
        idx = self.model_id_to_deployment_index_map.get(model_id)
        entry = self.model_list[idx] if idx is not None and idx < len(self.model_list) else None
        cached = self._deployments.get(model_id)
        if entry is None or cached is None or cached[0] is not entry:
            deployment = super().get_deployment(model_id)
            if entry is not None and deployment is not None:
                self._deployments[model_id] = (entry, deployment)
            return deployment
        return cached[1]

    def get_router_model_info(self, deployment, received_model_name, id=None):  # noqa: ANN001, ANN201, A002
        model_info = deployment.get("model_info") if deployment is not None else None
        key = (id or (model_info.get("id") if model_info is not None else None), received_model_name)
        if key[0] is None:  # not one of this Router's deployments: nothing to cache it under
            return super().get_router_model_info(deployment, received_model_name, id)
        if key not in self._model_info_cache:
            self._model_info_cache[key] = super().get_router_model_info(deployment, received_model_name, id)
        info = self._model_info_cache[key]
        return dict(info) if info is not None else None


def _load_callbacks(names: list[str]) -> list[CustomLogger]:
    out = []
    for name in names:
        module, _, attr = name.rpartition(".")
        out.append(getattr(importlib.import_module(module), attr))
    return out


def _hooked(plugins: list[CustomLogger], name: str) -> list[CustomLogger]:
    """The plugins that override CustomLogger's no-op `name` hook."""
    return [p for p in plugins if getattr(type(p), name, None) is not getattr(CustomLogger, name, None)]


def _discard(router: Router) -> None:
    """Take a replaced Router's callbacks out of LiteLLM's global lists. Router.discard() leaves its
    checks (enforce_model_rate_limits...) in the lists LiteLLM copied them to from litellm.callbacks."""
    router.discard()
    for callback in router.optional_callbacks or []:
        for callbacks in (litellm.input_callback, litellm.success_callback, litellm.failure_callback,
                          litellm._async_success_callback, litellm._async_failure_callback):
            litellm.logging_callback_manager.remove_callback_from_list_by_object(callbacks, callback, require_self=False)


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.litellm_memo:
            litellm_speedups.install()
        self.resolved = config.resolve(settings)
        self._apply_litellm_settings(self.resolved.litellm_settings)
        self.plugins: list[CustomLogger] = _load_callbacks(self.resolved.litellm_settings.get("callbacks") or [])
        litellm.callbacks = []
        self.router = self._build_router(self.resolved)  # adds the Router's own checks to litellm.callbacks
        for plugin in self.plugins:
            if hasattr(plugin, "setup"):
                plugin.setup(self)
        # Only plugins that use LiteLLM's own per-attempt hooks (deployment hooks, filters, logging
        # events) are LiteLLM callbacks: each one there costs LiteLLM work on every call (its logging
        # loops, guardrail and filter passes), and the gateway calls the request-level hooks itself.
        litellm.callbacks[:0] = [p for p in self.plugins if getattr(p, "litellm_callback", True)]
        self._pre_hooks = _hooked(self.plugins, "async_pre_call_hook")
        self._success_hooks = _hooked(self.plugins, "async_post_call_success_hook")
        self._failure_hooks = _hooked(self.plugins, "async_post_call_failure_hook")
        for provider, why in self.resolved.excluded.items():
            log.warning("provider %s left out of routing: %s", provider, why)

    async def warm_up(self) -> None:
        """One mocked call per group at start-up: LiteLLM imports and caches lazily (tokenizers, cost
        helpers), which otherwise costs the first real requests over a second each."""
        # Imported lazily by LiteLLM's first success callback (~1 s): take that hit now.
        importlib.import_module("litellm.litellm_core_utils.custom_logger_registry")
        for model in {d["litellm_params"]["model"] for d in self.router.model_list}:
            try:  # token counting picks (and caches) a tokenizer per model family
                litellm.token_counter(model=model, messages=[{"role": "user", "content": "warm-up"}])
            except Exception as exc:  # noqa: BLE001
                log.debug("warm-up token count for %s failed: %s", model, exc)
        for group in self.router.model_names:
            try:
                await self.router.acompletion(model=group, messages=[{"role": "user", "content": "warm-up"}],
                                              mock_response="ok", metadata={"warm_up": True})
            except Exception as exc:  # noqa: BLE001 - warm-up must never stop the gateway
                log.debug("warm-up of %s failed: %s", group, exc)

    @staticmethod
    def _apply_litellm_settings(values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key in _LITELLM_GLOBALS:
                setattr(litellm, key, value)

    @staticmethod
    def _build_router(resolved: config.ResolvedConfig) -> Router:
        model_list = resolved.model_list()
        for deployment in model_list:
            # The router walks the chain; the provider SDK's own retries would only stack timeouts.
            deployment["litellm_params"].setdefault("max_retries", 0)
        return _Router(model_list=model_list, **resolved.router_settings)

    def plugin(self, name: str) -> Any:
        return next((p for p in self.plugins if getattr(p, "name", None) == name), None)

    async def start(self) -> None:
        asyncio.get_running_loop().set_default_executor(_Executor(thread_name_prefix="asyncio"))
        await self.warm_up()
        for plugin in self.plugins:
            if hasattr(plugin, "start"):
                await plugin.start()
        # LiteLLM leaves ~440,000 long-lived objects after import and warm-up; every collection of
        # the oldest generation walked them all. Frozen, they are skipped: GC time per request
        # halves (~0.17 -> ~0.09 ms at 10 in flight, docs/performance.md).
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        for plugin in self.plugins:
            if hasattr(plugin, "stop"):
                await plugin.stop()

    def rebuild(self, flags: config.Flags) -> config.ResolvedConfig:
        """Re-resolve the YAML under new flags and swap the Router; raises ConfigError and keeps the old."""
        resolved = config.resolve(self.settings, flags)
        router = self._build_router(resolved)
        old, (self.resolved, self.router) = self.router, (resolved, router)
        # The old Router's success/failure callbacks and checks stay in LiteLLM's global lists until
        # discarded: without this every flag change would add one more set to every later call.
        _discard(old)
        return resolved

    # --- request planning -------------------------------------------------------------------

    def alias_for(self, name: object) -> str:
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "'model' is required: one of " + ", ".join(self.model_names()), "invalid_request",
                               "model")
        alias = self.resolved.aliases.get(name, name)
        if alias not in self.resolved.chains:
            raise GatewayError(404, f"The model '{name}' does not exist. Use one of: {', '.join(self.model_names())}",
                               "model_not_found", "model")
        return alias

    def model_names(self) -> list[str]:
        return [*self.resolved.chains, *self.resolved.aliases]

    def has_group(self, group: str) -> bool:
        return group in self.router.model_names

    async def plan(self, call: Call) -> Call:
        """Resolve the alias and let plugins pick the group and tweak params before routing."""
        call.metadata["started"] = time.perf_counter()
        call.alias = self.alias_for(call.data.get("model"))
        call.data["model"] = call.alias
        metadata = call.data.setdefault("metadata", {})
        metadata.update({"alias": call.alias, "end_user": call.user, "call_kind": call.kind})
        if call.user and "user" not in call.data and call.kind == "chat":
            call.data["user"] = call.user
        for plugin in self._pre_hooks:
            result = await plugin.async_pre_call_hook(user_api_key_dict=call, cache=None, data=call.data,
                                                      call_type=call.kind)
            if isinstance(result, dict):
                call.data = result
        return call

    # --- calls ------------------------------------------------------------------------------
    # Post-call hooks are awaited before the app gets its answer, so a plugin such as the ledger
    # has written its row before the client sees a 200 (nothing answered is lost on a crash).

    async def completion(self, call: Call) -> Any:
        await self.plan(call)
        try:
            result = await self.router.acompletion(**call.data)
        except Exception as exc:
            await self._post_failure(call, exc)
            raise
        if call.data.get("stream"):
            return _Stream(self, call, result)
        return await self._post_success(call, result)

    async def transcription(self, call: Call) -> Any:
        await self.plan(call)
        try:
            result = await self.router.atranscription(**call.data)
        except Exception as exc:
            await self._post_failure(call, exc)
            raise
        return await self._post_success(call, result)

    async def _post_success(self, call: Call, result: Any) -> Any:
        for plugin in self._success_hooks:
            replaced = await plugin.async_post_call_success_hook(data=call.data, user_api_key_dict=call,
                                                                 response=result)
            if replaced is not None:
                result = replaced
        return result

    async def _post_failure(self, call: Call, exc: Exception) -> None:
        for plugin in self._failure_hooks:
            try:
                await plugin.async_post_call_failure_hook(request_data=call.data, original_exception=exc,
                                                          user_api_key_dict=call)
            except Exception:  # noqa: BLE001 - a failing plugin must not mask the upstream error
                log.exception("post-call failure hook of %s failed", type(plugin).__name__)


class _Stream:
    """A streamed answer: passes chunks through, then runs the success hooks on the whole answer
    (rebuilt with LiteLLM's stream_chunk_builder) before the route writes `[DONE]`."""

    def __init__(self, gateway: Gateway, call: Call, stream: Any) -> None:
        self.gateway, self.call, self.stream = gateway, call, stream
        self._hidden_params = getattr(stream, "_hidden_params", {})

    async def __aiter__(self):  # noqa: ANN204
        chunks = []
        try:
            async for chunk in self.stream:
                chunks.append(chunk)
                yield chunk
        except Exception as exc:
            await self.gateway._post_failure(self.call, exc)
            raise
        whole = litellm.stream_chunk_builder(chunks, messages=self.call.data.get("messages"))
        if whole is not None:
            whole._hidden_params = {**self._hidden_params, **(getattr(whole, "_hidden_params", None) or {})}
            await self.gateway._post_success(self.call, whole)
