"""Migration controls as a LiteLLM callback: flags, gradual traffic shift and one-flag rollback.

- ENABLE_GROQ / PRIMARY_PROVIDER / FALLBACK_PROVIDERS / ENABLE_MODEL_ABSTRACTION reshape the
  chains, so a change rebuilds the Router (gateway.rebuild) and nothing else has to know.
- ENABLE_FALLBACK=false turns off the chain walk per request: the first provider's error goes
  back to the app as is.
- Traffic shift: per alias, `traffic[alias]` percent of end users take the migration chain and
  the rest the legacy (Groq-first) chain. The split hashes the end user, so one clinician keeps
  one model; requests without a user are split at random.
- Pinning (A/B runs, scripts/ab_compare.py): a request with the header `x-modelgate-pin: <provider>`
  goes to the deployment `<alias>/<provider>` only: no traffic split, no fallback, no retry; an
  unknown or left-out provider is a 400 `invalid_pin`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from gateway.config import LEGACY_SUFFIX, Flags
from gateway.settings import flags_path
from plugins.flags import FlagStore


def bucket(user: str) -> int:
    """A stable 0-99 bucket for an end user."""
    return int.from_bytes(hashlib.sha256(user.encode()).digest()[:4], "big") % 100


class MigrationControls(CustomLogger):
    name = "migration"
    litellm_callback = False  # its pre-call hook is the gateway's (core.plan), not LiteLLM's

    def __init__(self) -> None:
        super().__init__()
        self.gateway: Any = None
        self.store: FlagStore | None = None
        self._task: asyncio.Task | None = None

    def setup(self, gateway: Any) -> None:
        self.gateway = gateway
        base = Flags.from_settings(gateway.settings)
        remote = None
        if gateway.settings.redis_url:  # several replicas: flags shared through Redis (docs/scale-out.md)
            from plugins.flags_redis import RedisFlags
            # LiteLLM's own key prefix (router_settings.cache_kwargs.namespace) keeps clusters on one Redis apart.
            namespace = (gateway.resolved.router_settings.get("cache_kwargs") or {}).get("namespace") or "modelgate"
            remote = RedisFlags(gateway.settings.redis_url, key=f"{namespace}:flags")
        self.store = FlagStore(base, flags_path(), set(gateway.resolved.chains), gateway.rebuild, remote)
        if self.store.current != gateway.resolved.flags:
            gateway.rebuild(self.store.current)

    async def start(self) -> None:
        if self.store is not None:
            self._task = asyncio.create_task(self.store.watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def traffic_percent(self, alias: str) -> int:
        flags = self.gateway.resolved.flags
        return flags.traffic.get(alias, self.gateway.resolved.traffic.get(alias, 100))

    def cohort(self, alias: str, user: str | None) -> str:
        """'migration' or 'legacy' for this request."""
        if not self.gateway.has_group(alias + LEGACY_SUFFIX):
            return "migration"
        pct = self.traffic_percent(alias)
        draw = bucket(user) if user else random.randrange(100)
        return "migration" if draw < pct else "legacy"

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        alias = data["model"]
        pin = (getattr(user_api_key_dict, "metadata", None) or {}).get("pin")
        if pin:  # x-modelgate-pin: <provider> (A/B runs): that one deployment, no fallback
            return self.pinned(alias, str(pin), data)
        user = data.get("metadata", {}).get("end_user")
        cohort = self.cohort(alias, user)
        data["metadata"]["cohort"] = cohort
        if cohort == "legacy":
            data["model"] = alias + LEGACY_SUFFIX
        if not self.gateway.resolved.flags.enable_fallback:
            data["disable_fallbacks"] = True
        return data

    def pinned(self, alias: str, provider: str, data: dict) -> dict:
        """Target the deployment `<alias>/<provider>` of the migration chain, without fallback or retry."""
        deployment = f"{alias}/{provider}"
        if not self.gateway.router.has_model_id(deployment):
            from gateway.errors import GatewayError
            raise GatewayError(400, f"x-modelgate-pin: {alias} has no routable provider {provider!r}",
                               "invalid_pin", "x-modelgate-pin")
        data["model"] = deployment
        data["metadata"]["cohort"] = "pinned"
        data.update(disable_fallbacks=True, num_retries=0)
        return data


controls = MigrationControls()
