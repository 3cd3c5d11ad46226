"""The Gateway: LiteLLM's Router built from the resolved config, with the plugins around it.

Request path: route -> `Gateway.plan()` (alias lookup, plugins' pre-call hooks pick the model
group) -> Router (order-based fallbacks, cooldowns, timeouts) -> plugins' post-call hooks.
A flag change rebuilds the Router from the YAML; requests in flight finish on the old one.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import litellm
from litellm import Router
from litellm.integrations.custom_logger import CustomLogger

from gateway import config
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


def _load_callbacks(names: list[str]) -> list[CustomLogger]:
    out = []
    for name in names:
        module, _, attr = name.rpartition(".")
        out.append(getattr(importlib.import_module(module), attr))
    return out


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.resolved = config.resolve(settings)
        self._apply_litellm_settings(self.resolved.litellm_settings)
        self.plugins: list[CustomLogger] = _load_callbacks(self.resolved.litellm_settings.get("callbacks") or [])
        litellm.callbacks = list(self.plugins)
        self.router = self._build_router(self.resolved)
        for plugin in self.plugins:
            if hasattr(plugin, "setup"):
                plugin.setup(self)
        self._rebuild_lock = asyncio.Lock()
        for provider, why in self.resolved.excluded.items():
            log.warning("provider %s left out of routing: %s", provider, why)

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
        return Router(model_list=model_list, **resolved.router_settings)

    def rebuild(self, flags: config.Flags) -> config.ResolvedConfig:
        """Re-resolve the YAML under new flags and swap the Router; raises ConfigError and keeps the old."""
        resolved = config.resolve(self.settings, flags)
        router = self._build_router(resolved)
        self.resolved, self.router = resolved, router
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
        call.alias = self.alias_for(call.data.get("model"))
        call.data["model"] = call.alias
        metadata = call.data.setdefault("metadata", {})
        metadata.update({"alias": call.alias, "end_user": call.user, "call_kind": call.kind})
        if call.user and "user" not in call.data and call.kind == "chat":
            call.data["user"] = call.user
        for plugin in self.plugins:
            hook = getattr(plugin, "async_pre_call_hook", None)
            if hook is not None and type(plugin).async_pre_call_hook is not CustomLogger.async_pre_call_hook:
                result = await hook(user_api_key_dict=call, cache=None, data=call.data, call_type=call.kind)
                if isinstance(result, dict):
                    call.data = result
        return call

    # --- calls ------------------------------------------------------------------------------

    async def completion(self, call: Call) -> Any:
        await self.plan(call)
        return await self.router.acompletion(**call.data)

    async def transcription(self, call: Call) -> Any:
        await self.plan(call)
        return await self.router.atranscription(**call.data)
