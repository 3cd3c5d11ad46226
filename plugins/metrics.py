"""Prometheus metrics, served at GET /metrics: LiteLLM's own Prometheus callback plus what it lacks.

LiteLLM's `PrometheusLogger` (no premium needed in 1.106) counts requests, spend, tokens, latency
and deployment successes/failures/fallbacks, labelled by `model_group` (main, main~legacy), `model_id`
(our deployment id, e.g. main/openrouter) and `api_provider` (LiteLLM's provider: a local model shows
as "openai"). It has no label for our alias or provider, no audio seconds and no budgets, so this
plugin adds `modelgate_*` series labelled by alias and provider, fed by the ledger's committed rows:

    modelgate_requests_total{kind,alias,provider,status}         calls answered (ok), failed, refused
    modelgate_errors_total{alias,provider,error_class}           calls the client saw fail (incl. refusals)
    modelgate_upstream_errors_total{alias,provider,error_class}  every failed provider attempt,
                                                                 including those a fallback recovered
    modelgate_request_latency_seconds{kind,alias,provider}       histogram, answered calls
    modelgate_tokens_total{alias,provider,direction}             input / output tokens
    modelgate_audio_seconds_total{alias,provider}
    modelgate_cost_usd_total{alias,provider}
    modelgate_fallbacks_total{alias,provider}                    fallback hops taken to reach provider
    modelgate_budget_limit_usd / _spent_usd / _remaining_usd{scope,name,period}
    modelgate_budget_diverted_total{provider}                    requests routed past an over-budget provider

YAML (optional): `metrics: {litellm: false, require_key: false}`. LiteLLM's logger is off by default
(see `start()`: it drags in LiteLLM's proxy server, +7 s start-up and +120 MB); the modelgate_*
series cover the requests, errors, latency, tokens, cost, fallbacks and budgets on their own.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway import config
from gateway.config import ConfigError

log = logging.getLogger("modelgate.metrics")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)

REQUESTS = Counter("modelgate_requests", "Calls by outcome (ok, error, refused)",
                   ["kind", "alias", "provider", "status"])
ERRORS = Counter("modelgate_errors", "Calls that failed or were refused, by error class",
                 ["alias", "provider", "error_class"])
UPSTREAM_ERRORS = Counter("modelgate_upstream_errors",
                          "Failed provider attempts (including ones a fallback recovered), by error class",
                          ["alias", "provider", "error_class"])
LATENCY = Histogram("modelgate_request_latency_seconds", "Gateway latency of answered calls",
                    ["kind", "alias", "provider"], buckets=LATENCY_BUCKETS)
TOKENS = Counter("modelgate_tokens", "Tokens by direction", ["alias", "provider", "direction"])
AUDIO = Counter("modelgate_audio_seconds", "Seconds of audio transcribed", ["alias", "provider"])
COST = Counter("modelgate_cost_usd", "Spend in USD (the ledger's cost_usd)", ["alias", "provider"])
FALLBACKS = Counter("modelgate_fallbacks", "Fallback hops taken before the answering provider",
                    ["alias", "provider"])


class _BudgetCollector:
    """Budget gauges computed at scrape time (a period rolling over shows at once)."""

    def __init__(self) -> None:
        self.gateway: Any = None

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        plugin = self.gateway.plugin("budgets") if self.gateway is not None else None
        labels = ["scope", "name", "period"]
        limit = GaugeMetricFamily("modelgate_budget_limit_usd", "Budget limit in USD", labels=labels)
        spent = GaugeMetricFamily("modelgate_budget_spent_usd", "Spend in the current period", labels=labels)
        left = GaugeMetricFamily("modelgate_budget_remaining_usd", "Budget left in the current period",
                                 labels=labels)
        diverted = CounterMetricFamily("modelgate_budget_diverted", "Requests routed past an over-budget provider",
                                       labels=["provider"])
        if plugin is not None:
            for s in plugin.status():
                key = [s["scope"], s["name"], s["period"]]
                limit.add_metric(key, s["limit_usd"])
                spent.add_metric(key, s["spent_usd"])
                left.add_metric(key, s["remaining_usd"])
            for provider, count in plugin.diverted.items():
                diverted.add_metric([provider], count)
        yield from (limit, spent, left, diverted)


_BUDGET_COLLECTOR = _BudgetCollector()
REGISTRY.register(_BUDGET_COLLECTOR)
_LITELLM_LOGGER: Any = None


def _litellm_prometheus() -> Any:
    """LiteLLM's PrometheusLogger, created once per process (its collectors are process-global)."""
    global _LITELLM_LOGGER
    if _LITELLM_LOGGER is None:
        from litellm.integrations.prometheus import PrometheusLogger
        _LITELLM_LOGGER = PrometheusLogger()
    return _LITELLM_LOGGER


class Metrics(CustomLogger):
    name = "metrics"
    # Not a LiteLLM callback (core.Gateway): that would put it on LiteLLM's success path of every
    # call for nothing. It only needs LiteLLM's per-attempt failure events: see setup().
    litellm_callback = False

    def __init__(self) -> None:
        super().__init__()
        self.require_key = False
        self.litellm_builtin = True

    def setup(self, gateway: Any) -> None:
        section = config.plugin_section(gateway.settings, "metrics") or {}
        if not isinstance(section, dict) or not set(section) <= {"litellm", "require_key"}:
            raise ConfigError("metrics must be a mapping of litellm: bool, require_key: bool")
        self.require_key = bool(section.get("require_key", False))
        _BUDGET_COLLECTOR.gateway = gateway
        ledger = gateway.plugin("ledger")
        if ledger is None:
            raise ConfigError("the metrics plugin needs the ledger plugin (plugins.ledger.ledger under "
                              "litellm_settings.callbacks)")
        ledger.subscribe(self.observe)
        litellm.logging_callback_manager.add_litellm_async_failure_callback(self)  # async_log_failure_event
        self.litellm_builtin = bool(section.get("litellm", False))

    async def start(self) -> None:
        """LiteLLM's logger joins after the gateway's warm-up, so its mocked calls are not counted.

        It imports LiteLLM's proxy server lazily (to look for the proxy's router and database) on its
        first failure or first answer without rate-limit headers: ~7 s and +120 MB, on the event loop,
        and the import appends the proxy's own hooks to litellm.callbacks. So the import happens here,
        in a thread before the first request, and the proxy's hooks are taken out again."""
        if not self.litellm_builtin:
            return
        before, quiet = list(litellm.callbacks), litellm.suppress_debug_info
        await asyncio.to_thread(importlib.import_module, "litellm.proxy.proxy_server")
        litellm.callbacks[:] = before
        litellm.suppress_debug_info = quiet
        builtin = _litellm_prometheus()
        if builtin not in litellm.callbacks:
            litellm.callbacks.append(builtin)

    @staticmethod
    def observe(row: dict[str, Any]) -> None:
        if row.get("shadow"):
            return  # shadow calls are counted apart: modelgate_shadow_* (plugins/shadow.py)
        alias, provider = row.get("alias") or "none", row.get("provider") or "none"
        REQUESTS.labels(row.get("kind") or "chat", alias, provider, row["status"]).inc()
        if row["status"] != "ok":
            ERRORS.labels(alias, provider, row.get("error_class") or "unknown").inc()
            return
        if row.get("latency_ms") is not None:
            LATENCY.labels(row.get("kind") or "chat", alias, provider).observe(row["latency_ms"] / 1000)
        TOKENS.labels(alias, provider, "input").inc(row.get("prompt_tokens") or 0)
        TOKENS.labels(alias, provider, "output").inc(row.get("completion_tokens") or 0)
        if row.get("audio_seconds"):
            AUDIO.labels(alias, provider).inc(row["audio_seconds"])
        COST.labels(alias, provider).inc(max(0.0, row.get("cost_usd") or 0.0))
        if row.get("fallback_depth"):
            FALLBACKS.labels(alias, provider).inc(row["fallback_depth"])

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """LiteLLM's per-attempt failure callback: one provider attempt failed (a fallback may follow)."""
        try:
            params = kwargs.get("litellm_params") or {}
            info = params.get("model_info") or {}
            metadata = params.get("metadata") or {}
            exc = kwargs.get("exception")
            if not info.get("provider") or metadata.get("warm_up"):
                return  # not a routed provider attempt (e.g. a budget refusal in the Router's filter)
            UPSTREAM_ERRORS.labels(info.get("alias") or metadata.get("alias") or "none", info["provider"],
                                   type(exc).__name__ if exc is not None else "unknown").inc()
        except Exception:  # noqa: BLE001 - metrics must never break a call
            log.debug("upstream error metric failed", exc_info=True)


metrics = Metrics()
