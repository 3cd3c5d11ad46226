"""The cost ledger: one row per call (chat, transcription), committed before the client gets its answer.

The gateway awaits `async_post_call_success_hook` / `async_post_call_failure_hook` before it answers,
and this plugin's hooks return only once the row is committed. A local SQLite file at
synchronous=NORMAL (the default) is committed right on the event loop: ~60 us, where a round trip
through a thread costs about 1 ms a request (docs/performance.md). Otherwise (PostgreSQL, or SQLite
with an fsync per commit) a single writer thread drains a queue and commits everything waiting in
one transaction (group commit), so a burst of requests shares one round trip or fsync. If the
database refuses the write, the row goes through the writer, which retries once and then spools it
to a file (JSON lines, fsynced) that is replayed into the database at the next start.

What a row holds: see plugins/ledger_store.py and docs/costs.md. No prompt, completion or transcript
text is stored or logged.

Cost, in order of precedence:
  1. the provider's own figure: OpenRouter's `usage.cost` (LiteLLM keeps it on `response.usage.cost`);
  2. transcription priced per second: audio seconds x `input_cost_per_second` of the deployment
     (YAML `model_info`, else LiteLLM's price map for the upstream model);
  3. LiteLLM's `_hidden_params["response_cost"]` (its price map, with the deployment's YAML
     `model_info` prices registered under the deployment id taking precedence), else
     `litellm.completion_cost()`;
  4. nothing known: 0 with cost_source "unpriced".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import queue
import threading
import time
import uuid
import wave
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from sqlalchemy.engine import Connection

from gateway.config import ConfigError
from gateway.settings import ROOT
from plugins.ledger_store import LedgerStore, ledger_url, redacted, utcnow

log = logging.getLogger("modelgate.ledger")

_PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token", "input_cost_per_second", "output_cost_per_second")
_BATCH = 500


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def wav_seconds(data: bytes) -> float | None:
    """Duration from a WAV header, or None when `data` is not a readable WAV."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate > 0 else None
    except (wave.Error, EOFError, ValueError):
        return None


def audio_seconds(response: Any, data: dict[str, Any], hidden: dict[str, Any]) -> float:
    """The transcription's `duration` when the provider sent one (verbose_json), else the WAV header,
    else LiteLLM's own estimate, else bytes / 32000 (16 kHz 16-bit mono PCM)."""
    duration = _get(response, "duration")
    if isinstance(duration, int | float) and duration > 0:
        return float(duration)
    file = data.get("file")
    raw = file[1] if isinstance(file, tuple) and len(file) > 1 else file
    if isinstance(raw, bytes | bytearray):
        seconds = wav_seconds(bytes(raw))
        if seconds is not None:
            return seconds
    estimate = hidden.get("audio_transcription_duration")
    if isinstance(estimate, int | float) and estimate > 0:
        return float(estimate)
    return len(raw) / 32000 if isinstance(raw, bytes | bytearray) else 0.0


class Pricing:
    """Per-deployment prices: the YAML `model_info` (LiteLLM's field names), else LiteLLM's price map."""

    def __init__(self) -> None:
        self._source: Callable[[], list[dict[str, Any]]] = list
        self._seen: int | None = None
        self._configured: dict[str, dict[str, float]] = {}   # deployment id -> YAML prices

    def follow(self, model_list: Callable[[], list[dict[str, Any]]]) -> None:
        """Read prices from the live Router's model list (a flag change rebuilds it)."""
        self._source, self._seen = model_list, None

    @property
    def configured(self) -> dict[str, dict[str, float]]:
        current = self._source()
        if id(current) != self._seen:
            self._seen, self._configured = id(current), {}
            for dep in current:
                info = dep.get("model_info") or {}
                prices = {k: float(info[k]) for k in _PRICE_KEYS if info.get(k) is not None}
                if prices:
                    self._configured[str(info.get("id"))] = prices
        return self._configured

    def per_second(self, deployment: str, model: str) -> tuple[float | None, str]:
        configured = self.configured.get(deployment) or {}
        if "input_cost_per_second" in configured:
            return configured["input_cost_per_second"], "config"
        entry = litellm.model_cost.get(model) or litellm.model_cost.get(model.split("/", 1)[-1]) or {}
        if entry.get("input_cost_per_second") is not None:
            return float(entry["input_cost_per_second"]), "price_map"
        return None, "unpriced"

    def per_token(self, deployment: str, model: str) -> tuple[float, float, str]:
        configured = self.configured.get(deployment) or {}
        if "input_cost_per_token" in configured or "output_cost_per_token" in configured:
            return (configured.get("input_cost_per_token", 0.0), configured.get("output_cost_per_token", 0.0),
                    "config")
        entry = litellm.model_cost.get(model) or {}
        if entry.get("input_cost_per_token") is not None or entry.get("output_cost_per_token") is not None:
            return (float(entry.get("input_cost_per_token") or 0.0), float(entry.get("output_cost_per_token") or 0.0),
                    "price_map")
        return 0.0, 0.0, "unpriced"

    def is_priced(self, deployment: str, model: str) -> str:
        if deployment in self.configured:
            return "config"
        entry = litellm.model_cost.get(model) or {}
        if any(entry.get(k) is not None for k in _PRICE_KEYS):
            return "price_map"
        return "unpriced"


class _Writer:
    """One thread, one connection, group commits; futures resolved once the batch is committed."""

    def __init__(self, store: LedgerStore, spool: Path) -> None:
        self.store, self.spool = store, spool
        self.queue: queue.SimpleQueue[tuple[dict[str, Any], Future] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self.thread.start()

    def submit(self, row: dict[str, Any]) -> Future:
        fut: Future = Future()
        self.queue.put((row, fut))
        return fut

    def close(self, timeout: float = 10) -> None:
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            self._drain()
        finally:
            self.store.release()

    def _drain(self) -> None:
        stop = False
        while not stop:
            item = self.queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            error = self._commit([row for row, _ in batch])
            for _, fut in batch:
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

    def _commit(self, rows: list[dict[str, Any]]) -> Exception | None:
        for attempt in range(2):
            try:
                self.store.insert_many(rows)
                return None
            except Exception as exc:  # noqa: BLE001 - any database failure: retry once, then spool
                if attempt == 0:
                    time.sleep(0.05)
                    continue
                log.error("ledger database write failed (%s: %s); spooling %d row(s) to %s",
                          type(exc).__name__, exc, len(rows), self.spool)
        try:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("a", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return None
        except OSError as exc:
            for row in rows:  # last resort: the row is in the log (it carries no text)
                log.error("ledger row lost to database and spool: %s", json.dumps(row, default=str))
            return exc


class Ledger(CustomLogger):
    name = "ledger"
    litellm_callback = False  # only the gateway's awaited post-call hooks (core._post_success/_post_failure)

    def __init__(self) -> None:
        super().__init__()
        self.gateway: Any = None
        self.store: LedgerStore | None = None
        self.writer: _Writer | None = None
        self.pricing = Pricing()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.spool = Path()
        self.commit_on_loop = False
        self._loop_conn: Connection | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def setup(self, gateway: Any) -> None:
        self.gateway = gateway
        try:
            self.store = LedgerStore()
        except Exception as exc:
            try:
                where = redacted(ledger_url())
            except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot even parse
                where = "MODELGATE_LEDGER_URL"
            raise ConfigError(f"ledger database {where} unusable: {type(exc).__name__}: {exc}") from exc
        database = self.store.engine.url.database if self.store.is_sqlite else None
        default = Path(database + ".spool.jsonl") if database and database != ":memory:" else \
            ROOT / "var" / "ledger-spool.jsonl"
        self.spool = Path(os.environ.get("MODELGATE_LEDGER_SPOOL") or default)
        self._replay_spool()
        self.writer = _Writer(self.store, self.spool)
        self.commit_on_loop = self.store.is_sqlite and self.store.sync == "NORMAL"
        self.pricing.follow(lambda: gateway.router.model_list)
        log.info("ledger: %s", redacted(self.store.url))

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """`listener(row)` runs on the event loop after each row is committed (budgets, metrics)."""
        self.listeners.append(listener)

    async def stop(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        if self.store is not None:
            self.store.close()

    def _replay_spool(self) -> None:
        """Rows spooled while the database was refusing writes go in now (before any new row)."""
        if not self.spool.exists() or self.store is None:
            return
        rows = []
        for line in self.spool.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["ts"] = _parse_ts(row.get("ts"))
                rows.append(row)
        try:
            self.store.insert_many(rows)
        except Exception as exc:  # noqa: BLE001 - keep the spool for the next start
            log.error("ledger: %d spooled row(s) not replayed, kept in %s: %s", len(rows), self.spool, exc)
            return
        self.spool.unlink()
        log.warning("ledger: replayed %d spooled row(s) into the database", len(rows))

    # --- rows ----------------------------------------------------------------------------------

    def _base_row(self, data: dict[str, Any], call: Any) -> dict[str, Any]:
        metadata = data.get("metadata") or {}
        started = (getattr(call, "metadata", None) or {}).get("started")
        group = str(data.get("model") or "")
        return {
            "request_id": uuid.uuid4().hex,
            "ts": utcnow(),
            "kind": getattr(call, "kind", None) or metadata.get("call_kind") or "chat",
            "alias": getattr(call, "alias", None) or metadata.get("alias") or group,
            "model_group": group or None,
            "provider": None, "deployment": None, "model": None,
            "prompt_tokens": 0, "completion_tokens": 0, "audio_seconds": 0.0,
            "cost_usd": 0.0, "cost_source": None,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
            "status": "ok", "http_status": 200, "error_class": None, "fallback_depth": 0,
            "stream": bool(data.get("stream")),
            "end_user": getattr(call, "user", None) or metadata.get("end_user"),
            "cohort": metadata.get("cohort"),
            "shadow": bool(metadata.get("shadow", False)),
        }

    def success_row(self, data: dict[str, Any], call: Any, response: Any) -> dict[str, Any]:
        row = self._base_row(data, call)
        hidden = getattr(response, "_hidden_params", None) or {}
        deployment = str(hidden.get("model_id") or "")
        model = str(hidden.get("litellm_model_name") or "")
        row.update(request_id=str(hidden.get("litellm_call_id") or row["request_id"]),
                   deployment=deployment or None, provider=deployment.rpartition("/")[2] or None,
                   model=model or None,
                   fallback_depth=int((hidden.get("additional_headers") or {}).get("x-litellm-attempted-fallbacks")
                                      or 0))
        usage = _get(response, "usage")
        row["prompt_tokens"] = int(_get(usage, "prompt_tokens") or _get(usage, "input_tokens") or 0)
        row["completion_tokens"] = int(_get(usage, "completion_tokens") or _get(usage, "output_tokens") or 0)
        if row["kind"] == "transcription":
            row["audio_seconds"] = round(audio_seconds(response, data, hidden), 3)
        elif row["stream"] and not row["prompt_tokens"] and not row["completion_tokens"] \
                and _get(usage, "cost") is None:
            return self._estimated(row, data, response)
        row["cost_usd"], row["cost_source"] = self._cost(row, response, usage, hidden)
        return row

    def _estimated(self, row: dict[str, Any], data: dict[str, Any], response: Any) -> dict[str, Any]:
        """A stream whose provider sent no usage (no stream_options.include_usage, and LiteLLM does not
        read Groq's x_groq.usage): count the tokens here and price them per token."""
        model = row["model"] or "gpt-3.5-turbo"
        try:
            row["prompt_tokens"] = litellm.token_counter(model=model, messages=data.get("messages") or [])
            choices = _get(response, "choices") or []
            text = "".join(_get(_get(c, "message"), "content") or "" for c in choices)
            row["completion_tokens"] = litellm.token_counter(model=model, text=text, count_response_tokens=True)
        except Exception:  # noqa: BLE001 - leave the zeros
            log.debug("token estimate failed for %s", model, exc_info=True)
        price_in, price_out, source = self.pricing.per_token(row["deployment"] or "", row["model"] or "")
        row["cost_usd"] = row["prompt_tokens"] * price_in + row["completion_tokens"] * price_out
        row["cost_source"] = "estimate" if source != "unpriced" else source
        return row

    def _cost(self, row: dict[str, Any], response: Any, usage: Any, hidden: dict[str, Any]) -> tuple[float, str]:
        reported = _get(usage, "cost")
        if isinstance(reported, int | float) and not isinstance(reported, bool):
            return float(reported), "provider"
        deployment, model = row["deployment"] or "", row["model"] or ""
        if row["kind"] == "transcription":
            price, source = self.pricing.per_second(deployment, model)
            if price is not None:
                return row["audio_seconds"] * price, source
        source = self.pricing.is_priced(deployment, model)
        cost = hidden.get("response_cost")
        if cost is None:
            try:
                cost = litellm.completion_cost(completion_response=response, model=model or None,
                                               router_model_id=deployment or None,
                                               call_type="atranscription" if row["kind"] == "transcription"
                                               else "acompletion")
            except Exception:  # noqa: BLE001 - no price known for this model
                cost = None
        if cost is None:
            return 0.0, "unpriced"
        return float(cost), source

    def failure_row(self, data: dict[str, Any], call: Any, exc: BaseException) -> dict[str, Any]:
        row = self._base_row(data, call)
        deployment = str(getattr(exc, "failed_deployment_id", None) or "")
        status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
        try:
            status = int(status) if status is not None else None
        except (TypeError, ValueError):
            status = None
        row.update(status="refused" if getattr(exc, "code", None) == "budget_exceeded" else "error",
                   http_status=status or (504 if isinstance(exc, litellm.Timeout) else 500),
                   error_class=type(exc).__name__, deployment=deployment or getattr(exc, "deployment", None),
                   provider=deployment.rpartition("/")[2] if deployment else getattr(exc, "provider", None),
                   model=getattr(exc, "model", None) if isinstance(getattr(exc, "model", None), str) else None,
                   fallback_depth=None)
        return row

    async def record(self, row: dict[str, Any]) -> None:
        """Commit `row` (on the loop, else waiting for the writer's group commit), then tell the listeners."""
        if self.writer is None:
            return
        try:
            if not self._commit_here(row):
                await asyncio.wrap_future(self.writer.submit(row))
        except Exception:  # noqa: BLE001 - logged by the writer; the answer still goes out
            log.exception("ledger row not recorded")
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:  # noqa: BLE001 - a listener must not break the call
                log.exception("ledger listener %r failed", listener)

    def _commit_here(self, row: dict[str, Any]) -> bool:
        """Commit on the event loop when that is cheap (local SQLite, NORMAL); False: the writer's job."""
        if not self.commit_on_loop or self.store is None:
            return False
        try:
            if self._loop_conn is None:
                self._loop_conn = self.store.engine.connect()
                # A file locked by another process must not stall the loop: after 50 ms the row goes
                # to the writer thread, which waits out the lock (30 s), retries and spools.
                self._loop_conn.exec_driver_sql("PRAGMA busy_timeout=50")
            self.store.write(self._loop_conn, [row])
            return True
        except Exception as exc:  # noqa: BLE001 - the writer retries and spools; reconnect next time
            log.warning("ledger: commit on the event loop failed (%s: %s); handing the row to the writer",
                        type(exc).__name__, exc)
            if self._loop_conn is not None:
                self._loop_conn.invalidate()
                self._loop_conn.close()
                self._loop_conn = None
            return False

    # --- LiteLLM proxy-style hooks (awaited by gateway.core before the client gets its answer) ------

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        try:
            row = self.success_row(data, user_api_key_dict, response)
        except Exception:  # noqa: BLE001 - never fail an answered call over bookkeeping
            log.exception("ledger: could not build the row")
            return None
        await self.record(row)
        return None

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        await self.record(self.failure_row(request_data, user_api_key_dict, original_exception))


def _parse_ts(value: Any) -> Any:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


ledger = Ledger()
