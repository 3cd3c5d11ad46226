"""The cost ledger's storage: one SQLAlchemy table, any SQLAlchemy URL (SQLite file by default).

Used by the ledger plugin (writes), the budgets plugin (spend so far), `scripts/cost_report.py`
and `GET /admin/costs` (reads). Timestamps are naive UTC; a "day" is a UTC day.

SQLite runs in WAL mode. `synchronous` is NORMAL by default: a committed row survives any crash of
the gateway process, SIGKILL included (the WAL write reaches the OS before the commit returns), and
only an OS crash or power loss can lose the last commits. FULL (MODELGATE_LEDGER_SYNC=full) fsyncs
the WAL on every commit, surviving a power cut too, for one fsync per group commit (~2 ms a
request here, against ~0.3 ms).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import (Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, create_engine,
                        event, func, select)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from gateway.settings import ROOT

DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'ledger.sqlite'}"

metadata = MetaData()

ledger = Table(
    "ledger", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),     # LiteLLM's call id, or a fresh uuid
    Column("ts", DateTime, nullable=False),               # UTC, when the answer (or error) came back
    Column("kind", String(16), nullable=False),           # chat | transcription
    Column("alias", String(64), nullable=False),          # main, fast, stt... (legacy names resolved)
    Column("model_group", String(80)),                    # main or main~legacy (the cohort's chain)
    Column("provider", String(32)),                       # groq | openrouter | openai | local
    Column("deployment", String(96)),                     # <group>/<provider>, e.g. main/openrouter
    Column("model", String(160)),                         # upstream model as LiteLLM names it
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("audio_seconds", Float, nullable=False, default=0.0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("cost_source", String(16)),                    # provider | config | price_map | estimate | unpriced
    Column("latency_ms", Float),
    Column("status", String(16), nullable=False),         # ok | error | refused
    Column("http_status", Integer),
    Column("error_class", String(80)),
    Column("fallback_depth", Integer),
    Column("stream", Boolean, nullable=False, default=False),
    Column("end_user", String(128)),
    Column("cohort", String(16)),                         # migration | legacy
    Column("shadow", Boolean, nullable=False, default=False),
    Index("ix_ledger_ts", "ts"),
    Index("ix_ledger_provider_ts", "provider", "ts"),
    Index("ix_ledger_alias_ts", "alias", "ts"),
    Index("ix_ledger_end_user", "end_user"),
)

COLUMNS = [c.name for c in ledger.columns if c.name != "id"]


def ledger_url(url: str | None = None) -> str:
    """The URL to use: the argument, else MODELGATE_LEDGER_URL, else var/ledger.sqlite.

    `postgresql://` and `postgres://` mean psycopg 3 (the driver the project ships)."""
    url = url or os.environ.get("MODELGATE_LEDGER_URL") or DEFAULT_URL
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return url


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class LedgerStore:
    def __init__(self, url: str | None = None, sync: str | None = None, create: bool = True) -> None:
        self.url = ledger_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        sync = (sync or os.environ.get("MODELGATE_LEDGER_SYNC") or "normal").upper()
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"MODELGATE_LEDGER_SYNC must be full or normal, got {sync.lower()!r}")
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=4, max_overflow=4)
        self.sync = sync
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._local = threading.local()  # each writing thread's open connection (insert_many)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record) -> None:  # noqa: ANN001
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync}")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        if create:
            try:
                metadata.create_all(self.engine)
            except (ProgrammingError, IntegrityError):  # replicas starting together on a fresh database:
                metadata.create_all(self.engine)        # another one created it first; now it exists

    def close(self) -> None:
        self.release()
        self.engine.dispose()

    # --- writes --------------------------------------------------------------------------------

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """One transaction for the whole batch: committed (and on SQLite FULL, fsynced) on return.

        The calling thread keeps its connection open between batches (the ledger's writer thread
        writes every row): a pool check-out, reset and check-in per batch cost about as much as the
        insert itself. A failed batch drops the connection, so the next one starts on a fresh one."""
        if not rows:
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.connect()
        try:
            self.write(conn, rows)
        except BaseException:
            self._local.conn = None
            conn.invalidate()
            conn.close()
            raise

    @staticmethod
    def write(conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` and commit, on `conn`."""
        conn.execute(ledger.insert(), [{c: row.get(c) for c in COLUMNS} for row in rows])
        conn.commit()

    def release(self) -> None:
        """Close the calling thread's write connection (a thread that wrote calls this before it ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    # --- reads ---------------------------------------------------------------------------------

    def rows(self, since: dt.datetime | None = None, **where: Any) -> list[dict[str, Any]]:
        query = select(ledger).order_by(ledger.c.id)
        if since is not None:
            query = query.where(ledger.c.ts >= since)
        for name, value in where.items():
            query = query.where(ledger.c[name] == value)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def spend_since(self, since: dt.datetime, until: dt.datetime | None = None) -> dict[tuple[str, str], float]:
        """Cost since `since` (and before `until`) per ("provider", name) and ("alias", name)."""
        out: dict[tuple[str, str], float] = {}
        with self.engine.connect() as conn:
            for scope in ("provider", "alias"):
                col = ledger.c[scope]
                query = (select(col, func.sum(ledger.c.cost_usd)).where(ledger.c.ts >= since)
                         .where(col.is_not(None)).group_by(col))
                if until is not None:
                    query = query.where(ledger.c.ts < until)
                for name, total in conn.execute(query):
                    out[(scope, name)] = float(total or 0.0)
        return out

    def aggregate(self, since: dt.datetime) -> list[dict[str, Any]]:
        """Per UTC day, provider, alias and status: requests, tokens, audio seconds, cost."""
        day = func.date(ledger.c.ts).label("day")
        query = (select(day, ledger.c.provider, ledger.c.alias, ledger.c.status,
                        func.count().label("requests"),
                        func.coalesce(func.sum(ledger.c.prompt_tokens), 0).label("prompt_tokens"),
                        func.coalesce(func.sum(ledger.c.completion_tokens), 0).label("completion_tokens"),
                        func.coalesce(func.sum(ledger.c.audio_seconds), 0.0).label("audio_seconds"),
                        func.coalesce(func.sum(ledger.c.cost_usd), 0.0).label("cost_usd"),
                        func.coalesce(func.sum(ledger.c.fallback_depth), 0).label("fallbacks"))
                 .where(ledger.c.ts >= since)
                 .group_by(day, ledger.c.provider, ledger.c.alias, ledger.c.status))
        with self.engine.connect() as conn:
            out = []
            for r in conn.execute(query):
                row = dict(r._mapping)
                row["day"] = str(row["day"])[:10]
                row["provider"] = row["provider"] or "-"
                for key in ("requests", "prompt_tokens", "completion_tokens", "fallbacks"):
                    row[key] = int(row[key] or 0)
                for key in ("audio_seconds", "cost_usd"):
                    row[key] = float(row[key] or 0.0)
                out.append(row)
            return out


# --- reports: shared by scripts/cost_report.py and GET /admin/costs -----------------------------

def reference_rates(prices: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """`groq_reference_prices` from the YAML as USD per token / per second, by alias.

    YAML form: {alias: {model, input_per_million, output_per_million}} or {alias: {model, per_audio_hour}}.
    """
    out: dict[str, dict[str, float]] = {}
    for alias, spec in (prices or {}).items():
        if not isinstance(spec, dict):
            raise ValueError(f"groq_reference_prices.{alias} must be a mapping")
        out[alias] = {
            "model": spec.get("model", ""),
            "input_per_token": float(spec.get("input_per_million", 0)) / 1e6,
            "output_per_token": float(spec.get("output_per_million", 0)) / 1e6,
            "per_second": float(spec.get("per_audio_hour", 0)) / 3600,
        }
    return out


def groq_cost(row: dict[str, Any], rates: dict[str, dict[str, float]]) -> float:
    """What `row`'s traffic (an aggregate or a single ledger row) would have cost on Groq."""
    rate = rates.get(row.get("alias") or "")
    if not rate:
        return 0.0
    return (row.get("prompt_tokens", 0) * rate["input_per_token"]
            + row.get("completion_tokens", 0) * rate["output_per_token"]
            + row.get("audio_seconds", 0.0) * rate["per_second"])


def _bucket(groups: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    return groups.setdefault(key, {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                   "audio_minutes": 0.0, "cost_usd": 0.0, "groq_cost_usd": 0.0, "fallbacks": 0})


def summarize(aggregates: Iterable[dict[str, Any]], rates: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Spend by day, provider and alias, with the Groq counterfactual (answered requests only)."""
    by: dict[str, dict[str, dict[str, Any]]] = {"day": {}, "provider": {}, "alias": {}}
    total = _bucket({}, "total")
    for agg in aggregates:
        ok = agg["status"] == "ok"
        counterfactual = groq_cost(agg, rates) if ok else 0.0
        for name, key in (("day", agg["day"]), ("provider", agg["provider"]), ("alias", agg["alias"]), (None, None)):
            b = total if name is None else _bucket(by[name], key)
            b["requests"] += agg["requests"]
            b["errors"] += 0 if ok else agg["requests"]
            b["prompt_tokens"] += agg["prompt_tokens"]
            b["completion_tokens"] += agg["completion_tokens"]
            b["audio_minutes"] += agg["audio_seconds"] / 60
            b["cost_usd"] += agg["cost_usd"]
            b["groq_cost_usd"] += counterfactual
            b["fallbacks"] += agg["fallbacks"]
    return {"by_day": dict(sorted(by["day"].items())), "by_provider": dict(sorted(by["provider"].items())),
            "by_alias": dict(sorted(by["alias"].items())), "total": total}


def since_days(days: int) -> dt.datetime:
    """Midnight UTC `days - 1` days ago: --days 1 is today, --days 7 today and the 6 days before."""
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=max(1, days) - 1)
