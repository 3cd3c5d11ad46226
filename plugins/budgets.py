"""Daily and monthly USD budgets per provider and per alias, from the `budgets:` section of the YAML.

    budgets:
      on_limit: next            # next (route to the next provider in the chain) | refuse
      provider:
        openrouter: {daily: 5, monthly: 100}
        openai: {daily: 2, monthly: 40, on_limit: refuse}
      alias:
        analysis: {daily: 10}   # an alias budget always refuses: there is no next alias

Spend is the ledger's `cost_usd`, summed per UTC day and UTC calendar month. A limit is reached when
spend >= limit: the request after the one that reached it is the first to be diverted or refused.

- A provider over its limit is filtered out of the Router's candidates (`async_filter_deployments`,
  which the Router calls before its order filter), in both modes: nothing more is sent to it.
  With `next` the Router then takes the lowest remaining `order`, i.e. the next provider of the chain.
- With `refuse`, a request whose chain would start on an over-budget provider is refused up front
  (429, code `budget_exceeded`, Retry-After until the period resets), as is any request once every
  provider of its chain, or its alias, is over budget.

Spend lives in memory (loaded from the ledger at start, then added to by each committed row). With a
shared ledger database (several replicas), `sync_seconds` (default 30 when the ledger is not SQLite)
re-reads the totals so each replica sees the others' spend, and each budget check first re-reads today's
spend from the ledger (this month's earlier days are cached for a minute), so a budget spent through
several replicas stops at its threshold as on one (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments

from gateway import config
from gateway.config import ConfigError
from gateway.errors import GatewayError
from gateway.settings import PROVIDERS
from plugins.ledger_store import utcnow

log = logging.getLogger("modelgate.budgets")

PERIODS = ("daily", "monthly")
MODES = ("next", "refuse")


class BudgetExceeded(GatewayError):
    """A request refused because a budget is spent (OpenAI shape: 429, code budget_exceeded)."""

    def __init__(self, scope: str, name: str, period: str, limit: float, spent: float, resets: dt.datetime) -> None:
        retry = max(1, math.ceil((resets - utcnow()).total_seconds()))
        word = "today" if period == "daily" else "this month"
        super().__init__(429, f"{scope} {name!r} {period} budget of ${limit:.2f} is spent (${spent:.4f} {word}, "
                              f"UTC); it resets at {resets.isoformat(timespec='minutes')}Z",
                         "budget_exceeded", headers={"Retry-After": str(retry)})
        self.scope, self.name, self.period = scope, name, period
        self.provider = name if scope == "provider" else None


@dataclass(frozen=True)
class Limit:
    scope: str            # provider | alias
    name: str
    daily: float | None
    monthly: float | None
    on_limit: str


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"budgets.{where} must be a USD amount >= 0, got {value!r}")
    return float(value)


def parse_budgets(section: Any, aliases: set[str]) -> dict[tuple[str, str], Limit]:
    """Validate the `budgets:` section; returns limits keyed by (scope, name)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError("budgets must be a mapping with provider:, alias: and on_limit:")
    unknown = set(section) - {"provider", "alias", "on_limit", "sync_seconds"}
    if unknown:
        raise ConfigError(f"budgets: unknown key(s) {sorted(unknown)}; expected provider, alias, on_limit, "
                          "sync_seconds")
    default = section.get("on_limit", "next")
    if default not in MODES:
        raise ConfigError(f"budgets.on_limit must be one of {MODES}, got {default!r}")
    limits: dict[tuple[str, str], Limit] = {}
    for scope, known in (("provider", set(PROVIDERS)), ("alias", aliases)):
        entries = section.get(scope) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"budgets.{scope} must map a {scope} name to {{daily, monthly}}")
        for name, spec in entries.items():
            if name not in known:
                raise ConfigError(f"budgets.{scope}: unknown {scope} {name!r}; known: {', '.join(sorted(known))}")
            if not isinstance(spec, dict) or not set(spec) <= {"daily", "monthly", "on_limit"}:
                raise ConfigError(f"budgets.{scope}.{name} must be a mapping of daily / monthly / on_limit")
            mode = spec.get("on_limit", default if scope == "provider" else "refuse")
            if mode not in MODES:
                raise ConfigError(f"budgets.{scope}.{name}.on_limit must be one of {MODES}, got {mode!r}")
            if scope == "alias" and mode != "refuse":
                raise ConfigError(f"budgets.alias.{name}: an alias budget can only refuse (on_limit: refuse)")
            limit = Limit(scope, name, _number(spec.get("daily"), f"{scope}.{name}.daily"),
                          _number(spec.get("monthly"), f"{scope}.{name}.monthly"), mode)
            if limit.daily is None and limit.monthly is None:
                raise ConfigError(f"budgets.{scope}.{name} sets neither daily nor monthly")
            limits[(scope, name)] = limit
    return limits


def period_start(period: str, now: dt.datetime) -> dt.datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "daily" else day.replace(day=1)


def period_end(period: str, now: dt.datetime) -> dt.datetime:
    start = period_start(period, now)
    if period == "daily":
        return start + dt.timedelta(days=1)
    return (start + dt.timedelta(days=32)).replace(day=1)


class Spend:
    """Running totals per (scope, name) for the current UTC day and month."""

    def __init__(self) -> None:
        self.keys = {p: period_start(p, utcnow()) for p in PERIODS}
        self.totals: dict[str, dict[tuple[str, str], float]] = {p: {} for p in PERIODS}

    def _roll(self, now: dt.datetime) -> None:
        for p in PERIODS:
            start = period_start(p, now)
            if start != self.keys[p]:
                self.keys[p], self.totals[p] = start, {}

    def add(self, provider: str | None, alias: str | None, cost: float) -> None:
        self._roll(utcnow())
        for key in (("provider", provider), ("alias", alias)):
            if key[1]:
                for p in PERIODS:
                    self.totals[p][key] = self.totals[p].get(key, 0.0) + cost  # type: ignore[index]

    def get(self, period: str, key: tuple[str, str]) -> float:
        self._roll(utcnow())
        return self.totals[period].get(key, 0.0)

    def replace(self, totals: dict[str, dict[tuple[str, str], float]], keys: dict[str, dt.datetime]) -> None:
        self.totals, self.keys = totals, keys


def reached(spent: float, limit: float) -> bool:
    """spend >= limit, with a nano-dollar tolerance for float sums (k x $0.1 is $0.30000000000000004)."""
    return spent >= limit - max(1e-12, abs(limit) * 1e-9)


class Budgets(CustomLogger):
    name = "budgets"

    def __init__(self) -> None:
        super().__init__()
        self.gateway: Any = None
        self.ledger: Any = None
        self.limits: dict[tuple[str, str], Limit] = {}
        self.spend = Spend()
        self.sync_seconds = 0.0
        self.diverted: dict[str, int] = {}     # provider -> requests routed past it (metrics)
        self._task: asyncio.Task | None = None
        self.shared = False                    # a ledger other replicas write too: read it at each check
        self._month_base: tuple[dt.datetime, float, dict[tuple[str, str], float]] | None = None

    @property
    def litellm_callback(self) -> bool:
        """The Router's deployment filter (LiteLLM's hook) only matters with limits set."""
        return bool(self.limits)

    def setup(self, gateway: Any) -> None:
        self.gateway = gateway
        section = config.plugin_section(gateway.settings, "budgets")
        self.limits = parse_budgets(section, set(gateway.resolved.chains))
        self.ledger = gateway.plugin("ledger")
        if self.limits and self.ledger is None:
            raise ConfigError("budgets need the ledger plugin (plugins.ledger.ledger under litellm_settings.callbacks)")
        if self.ledger is not None:
            self.ledger.subscribe(self._on_row)
        default_sync = 0 if self.ledger is None or self.ledger.store.is_sqlite else 30
        self.shared = default_sync > 0
        self.sync_seconds = float((section or {}).get("sync_seconds", default_sync))

    async def start(self) -> None:
        if self.ledger is None or not self.limits:
            return
        await asyncio.to_thread(self.reload)
        if self.sync_seconds > 0:
            self._task = asyncio.create_task(self._sync())
        for (scope, name), limit in self.limits.items():
            log.info("budget %s %s: daily %s, monthly %s USD, on limit: %s", scope, name, limit.daily,
                     limit.monthly, limit.on_limit)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def reload(self) -> None:
        now = utcnow()
        keys = {p: period_start(p, now) for p in PERIODS}
        totals = {p: self.ledger.store.spend_since(keys[p]) for p in PERIODS}
        self.spend.replace(totals, keys)

    async def _sync(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await asyncio.to_thread(self.reload)
            except Exception as exc:  # noqa: BLE001 - keep the in-memory totals until the next try
                log.warning("budget sync from the ledger failed: %s", exc)

    def read_current(self) -> tuple[dict[str, dict[tuple[str, str], float]], dict[str, dt.datetime]]:
        """Spend as the shared ledger has it now: today's read at each call, earlier days of the month cached."""
        now = utcnow()
        keys = {p: period_start(p, now) for p in PERIODS}
        base = self._month_base
        if base is None or base[0] != keys["daily"] or time.monotonic() - base[1] > 60:
            base = (keys["daily"], time.monotonic(), self.ledger.store.spend_since(keys["monthly"], until=keys["daily"]))
            self._month_base = base
        today = self.ledger.store.spend_since(keys["daily"])
        month = {k: base[2].get(k, 0.0) + today.get(k, 0.0) for k in base[2].keys() | today.keys()}
        return {"daily": today, "monthly": month}, keys

    def _on_row(self, row: dict[str, Any]) -> None:
        if row.get("cost_usd"):
            self.spend.add(row.get("provider"), row.get("alias"), float(row["cost_usd"]))

    # --- checks --------------------------------------------------------------------------------

    def exceeded(self, scope: str, name: str | None) -> BudgetExceeded | None:
        """The refusal for (scope, name) if one of its limits is reached, else None."""
        limit = self.limits.get((scope, name or ""))
        if limit is None:
            return None
        now = utcnow()
        for period in PERIODS:
            amount = getattr(limit, period)
            spent = self.spend.get(period, (scope, limit.name))
            if amount is not None and reached(spent, amount):
                return BudgetExceeded(scope, limit.name, period, amount, spent, period_end(period, now))
        return None

    def mode(self, provider: str) -> str:
        limit = self.limits.get(("provider", provider))
        return limit.on_limit if limit else "next"

    def status(self) -> list[dict[str, Any]]:
        """Every limit with its spend and what is left (for /metrics and /admin/costs)."""
        out = []
        for (scope, name), limit in self.limits.items():
            for period in PERIODS:
                amount = getattr(limit, period)
                if amount is None:
                    continue
                spent = self.spend.get(period, (scope, name))
                out.append({"scope": scope, "name": name, "period": period, "limit_usd": amount,
                            "spent_usd": round(spent, 9), "remaining_usd": round(max(0.0, amount - spent), 9),
                            "reached": reached(spent, amount), "on_limit": limit.on_limit})
        return out

    async def _refuse(self, exc: BudgetExceeded, data: dict, call: Any) -> None:
        log.warning("refused: %s", exc.message)
        if self.ledger is not None:
            await self.ledger.record(self.ledger.failure_row(data, call, exc))
        raise exc

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if not self.limits:
            return data
        if self.shared:  # the other replicas' spend too, committed up to now
            try:
                self.spend.replace(*await asyncio.to_thread(self.read_current))
            except Exception as exc:  # noqa: BLE001 - check against the last spend read
                log.warning("budget check on the last synced spend, the ledger read failed: %s", exc)
        alias = (data.get("metadata") or {}).get("alias") or data.get("model")
        refusal = self.exceeded("alias", alias)
        if refusal is not None:
            await self._refuse(refusal, data, user_api_key_dict)
        router = self.gateway.router
        chain = sorted((d for d in router.model_list if d.get("model_name") == data.get("model")),
                       key=lambda d: d["litellm_params"].get("order") or 0)
        if not any(("provider", d["model_info"].get("provider")) in self.limits for d in chain):
            return data
        try:
            cooled = set(await async_get_cooldown_deployments(litellm_router_instance=router, parent_otel_span=None))
        except Exception:  # noqa: BLE001 - without cooldown info, assume every deployment is up
            cooled = set()
        # Walk the chain as the Router will: an over-budget `next` provider is skipped, an over-budget
        # `refuse` provider refuses; the first provider within budget takes the request.
        first_refusal = None
        for dep in [d for d in chain if d["model_info"]["id"] not in cooled] or chain:
            provider = dep["model_info"].get("provider")
            refusal = self.exceeded("provider", provider)
            if refusal is None:
                return data
            first_refusal = first_refusal or refusal
            if self.mode(provider) == "refuse":
                await self._refuse(refusal, data, user_api_key_dict)
        if first_refusal is not None:  # every provider of the chain is over budget
            await self._refuse(first_refusal, data, user_api_key_dict)
        return data

    async def async_filter_deployments(self, model: str, healthy_deployments: list, messages: Any,
                                       request_kwargs: dict | None = None, parent_otel_span: Any = None) -> list:
        """Called by the Router before it picks a deployment: drop providers over their budget."""
        if not self.limits:
            return healthy_deployments
        keep = []
        refusal = None
        target = (request_kwargs or {}).get("_target_order")
        orders = [(d.get("litellm_params") or {}).get("order") for d in healthy_deployments]
        picked = target if target is not None else min((o for o in orders if o is not None), default=None)
        for dep, order in zip(healthy_deployments, orders, strict=True):
            provider = (dep.get("model_info") or {}).get("provider")
            over = self.exceeded("provider", provider)
            if over is None:
                keep.append(dep)
                continue
            refusal = refusal or over
            if order == picked:  # the Router would have taken it: this request is diverted past it
                self.diverted[provider] = self.diverted.get(provider, 0) + 1
        if not keep and refusal is not None:
            raise refusal
        return keep


budgets = Budgets()
