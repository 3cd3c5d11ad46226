"""Shadow mode: a sampled share of live requests is also sent to a candidate, in the background.

    shadow:
      main: {candidate: openrouter, sample: 10}     # 10% of main's answered calls also go to main/openrouter
      stt: {candidate: openai, sample: 5}
      fast: {candidate: main, sample: 2}            # or another alias (its first provider, no fallback)
    shadow_budget_usd: 5                            # daily (UTC) cap on shadow spend, default 5; 0 stops it

- After the primary answered (this plugin's `async_post_call_success_hook`, run by gateway.core before
  the answer goes out), an asyncio task is started and the hook returns at once: the app gets only the
  primary's answer, with no added latency. A primary that failed is not shadowed, nor one answered by
  the candidate deployment itself (after a fallback).
- The candidate is the Router deployment `<alias>/<provider>` (its id, see gateway/config.py), or another
  alias's model group. Shadow calls go through the Router with `disable_fallbacks=True` and
  `num_retries=0`: they never retry and never fall back; a failing candidate is recorded as an error.
  The Router still counts the failure for that deployment (cooldown), as for any call to it.
- Each shadow call writes a ledger row with `shadow=True` (through the ledger plugin, so budgets see the
  spend); plugins/metrics.py leaves shadow rows out of the modelgate_* series, and this plugin counts
  them in `modelgate_shadow_requests_total{alias,candidate,status}`, `modelgate_shadow_cost_usd_total`,
  `modelgate_shadow_skipped_total{alias,reason}`.
- Shadow spend of the current UTC day (ledger rows with shadow=True, then each new one) is capped by
  `shadow_budget_usd`: at the cap, sampled requests are skipped (reason `budget`).
- Each pair is compared and stored in the `shadow_comparisons` table (same database as the ledger):
  latency and cost of both, JSON validity of both and key agreement (Jaccard of top-level keys, share
  of the shared keys with equal values) when the request asked for JSON or the primary answered JSON,
  text similarity (difflib ratio of the normalised texts), and for transcriptions the WER of the
  candidate's transcript against the primary's (jiwer, after whisper_normalizer). No text is stored.
  `GET /admin/shadow` (gateway/routers/shadow.py) summarises it per alias.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import json
import logging
import random
import time
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from prometheus_client import Counter
from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, func, select
from sqlalchemy.exc import IntegrityError, ProgrammingError

from gateway import config
from gateway.config import ConfigError
from plugins.ledger_store import ledger as ledger_table
from plugins.ledger_store import utcnow

log = logging.getLogger("modelgate.shadow")

DEFAULT_BUDGET_USD = 5.0

metadata = MetaData()

comparisons = Table(
    "shadow_comparisons", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime, nullable=False),                # UTC, when the shadow call ended
    Column("kind", String(16), nullable=False),            # chat | transcription
    Column("alias", String(64), nullable=False),
    Column("primary_deployment", String(96)),              # e.g. main/groq
    Column("candidate", String(96), nullable=False),       # deployment id or alias, e.g. main/openrouter
    Column("status", String(16), nullable=False),          # ok | error (the candidate's)
    Column("error_class", String(80)),
    Column("primary_latency_ms", Float),
    Column("candidate_latency_ms", Float),
    Column("primary_cost_usd", Float),
    Column("candidate_cost_usd", Float),
    Column("json_expected", Boolean, nullable=False, default=False),
    Column("primary_json_valid", Boolean),
    Column("candidate_json_valid", Boolean),
    Column("key_jaccard", Float),                          # |keys A & keys B| / |keys A | keys B|
    Column("value_agreement", Float),                      # share of shared keys with equal values
    Column("similarity", Float),                           # difflib ratio of normalised texts, 0..1
    Column("wer", Float),                                  # transcriptions: candidate vs primary
    Index("ix_shadow_alias_ts", "alias", "ts"),
)

SHADOW_REQUESTS = Counter("modelgate_shadow_requests", "Shadow calls by outcome", ["alias", "candidate", "status"])
SHADOW_COST = Counter("modelgate_shadow_cost_usd", "Shadow spend in USD", ["alias", "candidate"])
SHADOW_SKIPPED = Counter("modelgate_shadow_skipped", "Sampled requests not shadowed (budget, no_candidate)",
                         ["alias", "reason"])

_JSON_FORMATS = {"json_object", "json_schema"}


# --- comparisons (pure functions) ------------------------------------------------------------------

def parse_json(text: Any) -> Any:
    """The parsed JSON of `text` (code fences allowed), or None when it is not JSON."""
    if not isinstance(text, str):
        return None
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[4:] if body.lower().startswith("json") else body
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def key_agreement(a: Any, b: Any) -> tuple[float | None, float | None]:
    """(Jaccard of top-level keys, share of shared keys whose values are equal); None when not objects."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None, None
    keys_a, keys_b = set(a), set(b)
    union = keys_a | keys_b
    jaccard = len(keys_a & keys_b) / len(union) if union else 1.0
    shared = keys_a & keys_b
    equal = sum(1 for k in shared if _norm_value(a[k]) == _norm_value(b[k]))
    return jaccard, (equal / len(shared) if shared else (1.0 if not union else 0.0))


def _norm_value(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.lower().split())
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def text_similarity(a: str, b: str) -> float:
    """difflib's ratio of the lower-cased, whitespace-normalised texts (0..1)."""
    a, b = " ".join((a or "").lower().split()), " ".join((b or "").lower().split())
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def normalizer(language: str | None):  # noqa: ANN201
    if language in (None, "", "en"):
        from whisper_normalizer.english import EnglishTextNormalizer
        return EnglishTextNormalizer()
    from whisper_normalizer.basic import BasicTextNormalizer
    return BasicTextNormalizer()


def word_error_rate(reference: str, hypothesis: str, language: str | None = None) -> float:
    """jiwer's WER after whisper_normalizer (English rules for en/unknown, basic rules otherwise)."""
    import jiwer
    norm = normalizer(language)
    ref, hyp = norm(reference or "").strip(), norm(hypothesis or "").strip()
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp or ""))


def answer_text(kind: str, response: Any) -> str:
    if kind == "transcription":
        return str(getattr(response, "text", None) or "")
    try:
        return str(response.choices[0].message.content or "")
    except (AttributeError, IndexError, TypeError):
        return ""


def wants_json(data: dict[str, Any]) -> bool:
    fmt = data.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in _JSON_FORMATS


def compare(kind: str, data: dict[str, Any], primary: str, candidate: str | None,
            candidate_error: str | None = None) -> dict[str, Any]:
    """The comparison columns for one pair (candidate None: the candidate failed)."""
    out: dict[str, Any] = {"json_expected": False, "primary_json_valid": None, "candidate_json_valid": None,
                           "key_jaccard": None, "value_agreement": None, "similarity": None, "wer": None}
    if kind == "transcription":
        if candidate is not None:
            out["similarity"] = text_similarity(primary, candidate)
            out["wer"] = word_error_rate(primary, candidate, data.get("language"))
        return out
    parsed_a = parse_json(primary)
    expected = wants_json(data) or isinstance(parsed_a, dict | list)
    if expected:
        out["json_expected"] = True
        out["primary_json_valid"] = isinstance(parsed_a, dict | list)
        if candidate is None:
            # the JSON guard rejects a non-JSON reply as the deployment's failure: invalid JSON
            out["candidate_json_valid"] = False if candidate_error == "InvalidJSONReply" else None
        else:
            parsed_b = parse_json(candidate)
            out["candidate_json_valid"] = isinstance(parsed_b, dict | list)
            out["key_jaccard"], out["value_agreement"] = key_agreement(parsed_a, parsed_b)
    if candidate is not None:
        out["similarity"] = text_similarity(primary, candidate)
    return out


# --- the plugin -------------------------------------------------------------------------------------

class _ShadowCall:
    """What the ledger reads off a call (gateway.core.Call's fields), for the shadow's own row."""

    def __init__(self, kind: str, alias: str, user: str | None) -> None:
        self.kind, self.alias, self.user = kind, alias, user
        self.metadata = {"started": time.perf_counter()}


class Shadow(CustomLogger):
    name = "shadow"
    litellm_callback = False  # only the gateway's post-call hook

    def __init__(self) -> None:
        super().__init__()
        self.gateway: Any = None
        self.ledger: Any = None
        self.targets: dict[str, dict[str, Any]] = {}   # alias -> {candidate, sample}
        self.budget_usd = DEFAULT_BUDGET_USD
        self.spent_today = 0.0
        self._day: dt.date | None = None
        self.tasks: set[asyncio.Task] = set()
        self.skipped: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------------

    def setup(self, gateway: Any) -> None:
        self.gateway = gateway
        self.ledger = gateway.plugin("ledger")
        if self.ledger is None or self.ledger.store is None:
            raise ConfigError("the shadow plugin needs the ledger plugin listed before it "
                              "(plugins.ledger.ledger under litellm_settings.callbacks)")
        section = config.plugin_section(gateway.settings, "shadow") or {}
        if not isinstance(section, dict):
            raise ConfigError("shadow must be a mapping of alias: {candidate: <provider or alias>, sample: <0-100>}")
        targets = {}
        for alias, spec in section.items():
            if alias not in gateway.resolved.chains:
                raise ConfigError(f"shadow: unknown alias {alias!r}")
            if not isinstance(spec, dict) or not set(spec) <= {"candidate", "sample"} or not spec.get("candidate"):
                raise ConfigError(f"shadow.{alias} must be {{candidate: <provider or alias>, sample: <0-100>}}")
            sample = spec.get("sample", 100)
            if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 100:
                raise ConfigError(f"shadow.{alias}.sample must be a percentage from 0 to 100, got {sample!r}")
            targets[alias] = {"candidate": str(spec["candidate"]), "sample": float(sample)}
        self.targets = targets
        budget = config.plugin_section(gateway.settings, "shadow_budget_usd")
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0:
                raise ConfigError(f"shadow_budget_usd must be a USD amount >= 0, got {budget!r}")
            self.budget_usd = float(budget)
        try:
            metadata.create_all(self.ledger.store.engine)
        except (ProgrammingError, IntegrityError):  # replicas starting together: another one created it
            metadata.create_all(self.ledger.store.engine)
        self._load_spend()
        if targets:
            log.info("shadow: %s; daily budget $%.2f", ", ".join(
                f"{a} -> {t['candidate']} ({t['sample']:g}%)" for a, t in targets.items()), self.budget_usd)

    def _load_spend(self) -> None:
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        query = (select(func.coalesce(func.sum(ledger_table.c.cost_usd), 0.0))
                 .where(ledger_table.c.ts >= today).where(ledger_table.c.shadow.is_(True)))
        with self.ledger.store.engine.connect() as conn:
            self.spent_today = float(conn.execute(query).scalar() or 0.0)
        self._day = today.date()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # --- budget ------------------------------------------------------------------------------------

    def _roll(self) -> None:
        today = utcnow().date()
        if today != self._day:
            self._day, self.spent_today = today, 0.0

    def budget_left(self) -> float:
        self._roll()
        return max(0.0, self.budget_usd - self.spent_today)

    def status(self) -> dict[str, Any]:
        self._roll()
        return {"budget_usd": self.budget_usd, "spent_today_usd": round(self.spent_today, 8),
                "remaining_usd": round(self.budget_left(), 8), "in_flight": len(self.tasks),
                "skipped": dict(self.skipped),
                "targets": {a: {**t, "target": self.target(a)} for a, t in self.targets.items()}}

    def _skip(self, alias: str, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        SHADOW_SKIPPED.labels(alias, reason).inc()

    # --- targets -----------------------------------------------------------------------------------

    def target(self, alias: str) -> str | None:
        """The Router model for `alias`'s candidate: a deployment id `<alias>/<provider>`, or an alias's
        group; None when the candidate is not routable now (provider left out, unknown name)."""
        spec = self.targets.get(alias)
        if spec is None:
            return None
        candidate, router = spec["candidate"], self.gateway.router
        if self.gateway.has_group(candidate):
            return candidate
        deployment = candidate if "/" in candidate else f"{alias}/{candidate}"
        return deployment if router.has_model_id(deployment) else None

    # --- the hook ----------------------------------------------------------------------------------

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        try:
            self._maybe_shadow(data, user_api_key_dict, response)
        except Exception:  # noqa: BLE001 - shadowing must never touch the primary's answer
            log.exception("shadow: could not start the shadow call")
        return None

    def _maybe_shadow(self, data: dict, call: Any, response: Any) -> None:
        metadata = data.get("metadata") or {}
        if metadata.get("shadow") or metadata.get("warm_up"):
            return
        alias = getattr(call, "alias", None) or metadata.get("alias")
        spec = self.targets.get(alias or "")
        if spec is None or random.random() * 100 >= spec["sample"]:
            return
        target = self.target(alias)
        if target is None:
            self._skip(alias, "no_candidate")
            return
        hidden = getattr(response, "_hidden_params", None) or {}
        primary_deployment = str(hidden.get("model_id") or "")
        same_provider = "/" in target and primary_deployment.rpartition("/")[2] == target.rpartition("/")[2]
        if primary_deployment == target or same_provider or primary_deployment.partition("/")[0] == target:
            self._skip(alias, "same_deployment")
            return
        if self.budget_left() <= 0:
            self._skip(alias, "budget")
            return
        started = (getattr(call, "metadata", None) or {}).get("started")
        primary_latency = (time.perf_counter() - started) * 1000 if started else None
        kind = getattr(call, "kind", None) or metadata.get("call_kind") or "chat"
        user = getattr(call, "user", None) or metadata.get("end_user")
        task = asyncio.get_running_loop().create_task(
            self._run(kind, alias, target, dict(data), user, response, primary_deployment, primary_latency))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, kind: str, alias: str, target: str, data: dict[str, Any], user: str | None,
                   primary: Any, primary_deployment: str, primary_latency: float | None) -> None:
        await asyncio.sleep(0)  # let the primary's answer go out first
        params = {k: v for k, v in data.items()
                  if k not in ("stream", "stream_options", "metadata", "disable_fallbacks", "num_retries",
                               "fallbacks", "model")}
        params.update(model=target, disable_fallbacks=True, num_retries=0,
                      metadata={"alias": alias, "end_user": user, "call_kind": kind, "shadow": True,
                                "shadow_of": primary_deployment})
        shadow_call = _ShadowCall(kind, alias, user)
        router = self.gateway.router
        result, error = None, None
        try:
            if kind == "transcription":
                result = await router.atranscription(**params)
            else:
                result = await router.acompletion(**params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the candidate's failure is what we record
            error = exc
        candidate_latency = (time.perf_counter() - shadow_call.metadata["started"]) * 1000
        try:
            await self._record(kind, alias, target, data, params, shadow_call, primary, primary_deployment,
                               primary_latency, result, error, candidate_latency)
        except Exception:  # noqa: BLE001
            log.exception("shadow: could not record the comparison for %s", alias)

    async def _record(self, kind: str, alias: str, target: str, data: dict[str, Any], params: dict[str, Any],
                      shadow_call: _ShadowCall, primary: Any, primary_deployment: str,
                      primary_latency: float | None, result: Any, error: BaseException | None,
                      candidate_latency: float) -> None:
        if error is None:
            row = self.ledger.success_row(params, shadow_call, result)
        else:
            row = self.ledger.failure_row(params, shadow_call, error)
            if not row.get("deployment") and "/" in target:
                row["deployment"], row["provider"] = target, target.rpartition("/")[2]
        row.update(model_group=(row.get("deployment") or target).partition("/")[0], shadow=True, cohort="shadow")
        await self.ledger.record(row)
        self._roll()
        self.spent_today += max(0.0, row.get("cost_usd") or 0.0)
        candidate_name = row.get("deployment") or target
        SHADOW_REQUESTS.labels(alias, candidate_name, row["status"]).inc()
        if row.get("cost_usd"):
            SHADOW_COST.labels(alias, candidate_name).inc(max(0.0, row["cost_usd"]))
        try:
            primary_cost = float(self.ledger.success_row(data, None, primary).get("cost_usd") or 0.0)
        except Exception:  # noqa: BLE001
            primary_cost = None
        primary_text = answer_text(kind, primary)
        candidate_text = answer_text(kind, result) if error is None else None
        measures = await asyncio.to_thread(compare, kind, data, primary_text, candidate_text,
                                           type(error).__name__ if error is not None else None)
        record = {"ts": utcnow(), "kind": kind, "alias": alias, "primary_deployment": primary_deployment or None,
                  "candidate": candidate_name, "status": "ok" if error is None else "error",
                  "error_class": type(error).__name__ if error is not None else None,
                  "primary_latency_ms": primary_latency, "candidate_latency_ms": candidate_latency,
                  "primary_cost_usd": primary_cost,
                  "candidate_cost_usd": row.get("cost_usd") if error is None else None, **measures}
        await asyncio.to_thread(self._insert, record)

    def _insert(self, record: dict[str, Any]) -> None:
        with self.ledger.store.engine.begin() as conn:
            conn.execute(comparisons.insert(), [record])

    # --- reads -------------------------------------------------------------------------------------

    def summary(self, since: dt.datetime) -> dict[str, Any]:
        return summarize_comparisons(self.ledger.store.engine, since)


def _mean(values: list[Any]) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 6) if values else None


def comparison_rows(engine: Any, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every stored comparison since `since` (empty when the table does not exist yet)."""
    from sqlalchemy import inspect
    if not inspect(engine).has_table("shadow_comparisons"):
        return []
    query = select(comparisons).order_by(comparisons.c.id)
    if since is not None:
        query = query.where(comparisons.c.ts >= since)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def summarize_comparisons(engine: Any, since: dt.datetime | None = None) -> dict[str, Any]:
    """Per alias (and candidate): count, errors, mean agreement / similarity / WER, JSON validity rates,
    mean latencies and total costs of both sides and their deltas (candidate - primary)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in comparison_rows(engine, since):
        groups.setdefault(row["alias"], []).append(row)
    out: dict[str, Any] = {}
    for alias, rows in sorted(groups.items()):
        ok = [r for r in rows if r["status"] == "ok"]
        json_rows = [r for r in rows if r["json_expected"]]
        lat_a, lat_b = _mean([r["primary_latency_ms"] for r in ok]), _mean([r["candidate_latency_ms"] for r in ok])
        cost_a = sum(r["primary_cost_usd"] or 0.0 for r in ok)
        cost_b = sum(r["candidate_cost_usd"] or 0.0 for r in ok)

        def rate(values: list[Any]) -> float | None:
            values = [v for v in values if v is not None]
            return round(sum(1 for v in values if v) / len(values), 6) if values else None

        out[alias] = {
            "count": len(rows), "errors": len(rows) - len(ok),
            "error_rate": round((len(rows) - len(ok)) / len(rows), 6),
            "candidates": sorted({r["candidate"] for r in rows}),
            "primaries": sorted({r["primary_deployment"] for r in rows if r["primary_deployment"]}),
            "mean_key_jaccard": _mean([r["key_jaccard"] for r in ok]),
            "mean_value_agreement": _mean([r["value_agreement"] for r in ok]),
            "mean_similarity": _mean([r["similarity"] for r in ok]),
            "mean_wer": _mean([r["wer"] for r in ok]),
            "json_requests": len(json_rows),
            "primary_json_valid_rate": rate([r["primary_json_valid"] for r in json_rows]),
            "candidate_json_valid_rate": rate([r["candidate_json_valid"] for r in json_rows]),
            "mean_primary_latency_ms": lat_a, "mean_candidate_latency_ms": lat_b,
            "latency_delta_ms": round(lat_b - lat_a, 3) if lat_a is not None and lat_b is not None else None,
            "primary_cost_usd": round(cost_a, 8), "candidate_cost_usd": round(cost_b, 8),
            "cost_delta_usd": round(cost_b - cost_a, 8),
        }
    return out


shadow = Shadow()
