"""The ledger's store and writer without a gateway: group commit, spool on database failure, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from plugins.ledger import Ledger, _Writer, audio_seconds, wav_seconds
from plugins.ledger_store import LedgerStore, ledger_url, utcnow
from tests.support.proc import ROOT
from tests.test_cost_report import row

PG_URL = os.environ.get("MODELGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def test_url_defaults_and_postgres_driver(monkeypatch):
    monkeypatch.delenv("MODELGATE_LEDGER_URL", raising=False)
    assert ledger_url().endswith("var/ledger.sqlite")
    assert ledger_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert ledger_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("MODELGATE_LEDGER_URL", "sqlite:////tmp/x.sqlite")
    assert ledger_url() == "sqlite:////tmp/x.sqlite"


def test_sqlite_pragmas(tmp_path):
    store = LedgerStore(f"sqlite:///{tmp_path / 'l.sqlite'}", sync="normal")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.close()
    with pytest.raises(ValueError):
        LedgerStore(f"sqlite:///{tmp_path / 'l.sqlite'}", sync="off")


def test_writer_group_commits_and_spools_when_the_database_fails(tmp_path):
    store = LedgerStore(f"sqlite:///{tmp_path / 'l.sqlite'}")
    spool = tmp_path / "spool.jsonl"
    writer = _Writer(store, spool)
    futures = [writer.submit(row("main", "groq", 0.001 * i)) for i in range(20)]
    for fut in futures:
        fut.result(timeout=10)
    assert len(store.rows()) == 20

    broken = LedgerStore(f"sqlite:///{tmp_path / 'l.sqlite'}")
    broken.insert_many = lambda rows: (_ for _ in ()).throw(RuntimeError("database down"))  # type: ignore
    writer.store = broken
    writer.submit(row("fast", "openrouter", 0.5)).result(timeout=10)  # spooled: still a success
    writer.close()
    assert spool.exists() and len(store.rows()) == 20

    # The next start replays the spool into the database, then removes it.
    os.environ["MODELGATE_LEDGER_SPOOL"] = str(spool)
    ledger = Ledger()
    ledger.store = store
    ledger.spool = spool
    ledger._replay_spool()
    del os.environ["MODELGATE_LEDGER_SPOOL"]
    assert not spool.exists()
    assert [r["alias"] for r in store.rows()][-1] == "fast"
    store.close()


def test_audio_seconds_sources():
    wav = (ROOT / "tests" / "fixtures" / "audio" / "silence_3s.wav").read_bytes()
    assert wav_seconds(wav) == pytest.approx(3.0, abs=0.01)
    assert wav_seconds(b"not a wav") is None

    class Verbose:
        duration = 7.5

    assert audio_seconds(Verbose(), {"file": ("a.wav", wav)}, {}) == 7.5
    assert audio_seconds(None, {"file": ("a.wav", wav)}, {}) == pytest.approx(3.0, abs=0.01)
    assert audio_seconds(None, {"file": ("a.mp3", b"x" * 64000)}, {"audio_transcription_duration": 4.0}) == 4.0
    assert audio_seconds(None, {"file": ("a.mp3", b"x" * 64000)}, {}) == 2.0


def test_store_on_postgresql():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    name = f"modelgate_ledger_{uuid.uuid4().hex[:10]}"
    try:
        admin.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        admin.close()
        pytest.skip(f"cannot create a scratch database: {exc}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        store = LedgerStore(url)
        store.insert_many([row("main", "openrouter", 0.25, prompt=10, completion=5), row("stt", "groq", 0.01, audio=60)])
        assert [r["alias"] for r in store.rows()] == ["main", "stt"]
        assert store.spend_since(utcnow().replace(hour=0, minute=0, second=0, microsecond=0)) == \
            {("provider", "openrouter"): 0.25, ("provider", "groq"): 0.01, ("alias", "main"): 0.25, ("alias", "stt"): 0.01}
        aggregates = store.aggregate(utcnow().replace(hour=0, minute=0, second=0, microsecond=0))
        assert {a["alias"]: a["prompt_tokens"] for a in aggregates} == {"main": 10, "stt": 0}
        assert all(len(a["day"]) == 10 for a in aggregates)
        store.close()
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_hook_never_fails_a_call(tmp_path):
    """A row that cannot be built is logged; the answer still goes out."""
    ledger = Ledger()
    assert asyncio.run(ledger.async_post_call_success_hook({"model": "main"}, object(), object())) is None


def test_locked_sqlite_hands_the_row_to_the_writer(tmp_path):
    """Rows are committed on the event loop (local SQLite, NORMAL); a file another process holds
    locked must not stall the loop: after a short wait the row goes to the writer thread, which
    waits out the lock, and the row lands once the lock is gone."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "l.sqlite"
    ledger = Ledger()
    ledger.store = LedgerStore(f"sqlite:///{path}")
    ledger.writer = _Writer(ledger.store, tmp_path / "spool.jsonl")
    ledger.commit_on_loop = True
    seen = []
    ledger.subscribe(seen.append)

    asyncio.run(ledger.record(row("main", "groq", 0.001)))
    assert ledger._loop_conn is not None and len(ledger.store.rows()) == 1  # committed on the loop

    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    release = threading.Timer(1.0, lambda: (other.execute("COMMIT"), other.close()))
    release.start()
    started = time.monotonic()
    asyncio.run(ledger.record(row("fast", "openrouter", 0.002)))
    release.join()
    assert time.monotonic() - started >= 0.9  # waited for the writer's commit, after the lock went
    assert [r["alias"] for r in ledger.store.rows()] == ["main", "fast"]
    assert [r["alias"] for r in seen] == ["main", "fast"]
    assert ledger._loop_conn is None  # dropped; the next row reconnects
    asyncio.run(ledger.record(row("stt", "openai", 0.0)))
    assert len(ledger.store.rows()) == 3 and ledger._loop_conn is not None
    asyncio.run(ledger.stop())
