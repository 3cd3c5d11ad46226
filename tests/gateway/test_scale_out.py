"""Scale-out (docs/scale-out.md): two real gateway replicas sharing a real Redis (REDIS_URL) and a real
PostgreSQL ledger behave as one gateway: shared cooldowns, rpm limits, budgets, ledger and flags.

Each test gets its own Redis key prefix (LiteLLM's router_settings.cache_kwargs.namespace, which the
shared flags key follows; its keys are deleted afterwards) and its own PostgreSQL schema (created and
dropped), so tests don't see each other, earlier runs or a concurrent run. Redis and PostgreSQL must be
reachable (CI has them): a test fails, with the reason, when one is not.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy

from plugins.ledger_store import LedgerStore
from tests.support.gateway import Gateway, provider_env, write_config

REDIS_URL = os.environ.get("MODELGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
PG_URLS = [os.environ["MODELGATE_TEST_PG_URL"]] if os.environ.get("MODELGATE_TEST_PG_URL") else [
    "postgresql+psycopg://postgres@127.0.0.1:5432/test", "postgresql+psycopg://root@127.0.0.1:5432/test"]

MSG = [{"role": "user", "content": "a b"}]      # the fakes count 2 prompt tokens
REPLY = "one two three"                          # and 3 completion tokens
C_GROQ = 2 * 0.59e-6 + 3 * 0.79e-6               # analysis on Groq at the YAML's model_info prices


class SharedRedis:
    """This test's slice of the shared Redis: every key under `namespace`."""

    def __init__(self) -> None:
        self.namespace = "mgtest-" + uuid.uuid4().hex[:10]
        self.client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.namespace + ":*", count=1000))
        if keys:
            self.client.delete(*keys)


@pytest.fixture
def shared_redis() -> Iterator[SharedRedis]:
    shared = SharedRedis()
    try:
        shared.client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"scale-out tests need Redis at {REDIS_URL} (MODELGATE_TEST_REDIS_URL): {exc}")
    yield shared
    shared.clear()
    shared.client.close()


@pytest.fixture
def ledger_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test's ledger, dropped afterwards."""
    schema = "mg_scale_" + uuid.uuid4().hex[:10]
    errors = []
    for url in PG_URLS:
        try:
            engine = sqlalchemy.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            break
        except sqlalchemy.exc.SQLAlchemyError as exc:
            errors.append(f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    else:
        pytest.fail("scale-out tests need PostgreSQL (MODELGATE_TEST_PG_URL); none reachable:\n" + "\n".join(errors))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def cluster(fakes, shared_redis, ledger_url, tmp_path: Path) -> Iterator[Callable[..., tuple[Gateway, Gateway]]]:
    """Factory: cluster(config={write_config kwargs}, env={...}) -> replicas (A, B), started together."""
    started: list[Gateway] = []

    def start(config: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> tuple[Gateway, Gateway]:
        cfg = dict(config or {})
        cfg.setdefault("router_settings", {}).setdefault("cooldown_time", 2)
        cfg["router_settings"]["cache_kwargs"] = {"namespace": shared_redis.namespace}
        config_path = write_config(tmp_path, **cfg)

        def replica(name: str) -> Gateway:
            directory = tmp_path / name
            directory.mkdir()
            full_env = {**provider_env(fakes), "MODELGATE_CONFIG": str(config_path), "REDIS_URL": REDIS_URL,
                        "MODELGATE_LEDGER_URL": ledger_url,
                        "MODELGATE_LEDGER_SPOOL": str(directory / "spool.jsonl"), **(env or {})}
            return Gateway(full_env, directory / "flags.yaml", log_name=f"replica-{name}")

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            replicas = list(pool.map(replica, ["a", "b"]))
        started.extend(replicas)
        # The start-up warm-up's mocked calls count toward rpm in Redis: start every test from zero.
        shared_redis.clear()
        return replicas[0], replicas[1]

    yield start
    for gateway in started:
        gateway.stop()


def chat(gw: Gateway, model: str = "main", user: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {gw.key}", **({"x-modelgate-user": user} if user else {})}
    return httpx.post(gw.api_base + "/chat/completions", headers=headers, timeout=30,
                      json={"model": model, "messages": MSG})


def ledger_rows(url: str) -> list[dict]:
    store = LedgerStore(url, create=False)
    try:
        return store.rows()
    finally:
        store.close()


def clear_of_minute_boundary(margin_s: float) -> None:
    """LiteLLM counts rpm per UTC minute: keep the burst inside one minute."""
    second = time.time() % 60
    if second > 60 - margin_s:
        time.sleep(60 - second + 0.2)


def test_provider_cooled_down_by_one_replica_is_skipped_by_the_other(cluster, fakes):
    a, b = cluster(config={"router_settings": {"cooldown_time": 30}})
    fakes["groq"].fail("500", count=1)
    first = chat(a)
    assert first.status_code == 200 and first.headers["x-modelgate-provider"] == "openrouter"
    assert first.headers["x-modelgate-fallbacks"] == "1" and len(fakes["groq"].requests()) == 1
    time.sleep(1.2)  # a replica re-reads a cooldown it has not seen from Redis at most every second
    served = [chat(b).headers["x-modelgate-provider"] for _ in range(3)] + [chat(a).headers["x-modelgate-provider"]]
    assert served == ["openrouter"] * 4
    assert len(fakes["groq"].requests()) == 1  # B never tried Groq: the cooldown A set holds for B


def test_rpm_limit_holds_across_both_replicas(cluster, fakes):
    rpm, burst = 4, 12
    clear_of_minute_boundary(15)
    a, b = cluster(config={"deployment_params": {"fast/groq": {"rpm": rpm}}})
    clear_of_minute_boundary(8)
    with concurrent.futures.ThreadPoolExecutor(burst) as pool:
        responses = list(pool.map(lambda i: chat((a, b)[i % 2], "fast", f"r{i}"), range(burst)))
    assert [r.status_code for r in responses] == [200] * burst
    served = Counter(r.headers["x-modelgate-provider"] for r in responses)
    # Each replica alone would let `rpm` through: together they let exactly `rpm` through.
    assert served["groq"] == len(fakes["groq"].requests()) == rpm
    assert served["openrouter"] == burst - rpm


def test_budget_spent_across_replicas_stops_at_the_threshold(cluster, fakes):
    fakes["groq"].reply(content=REPLY)
    a, b = cluster(config={"extra": {"budgets": {"alias": {"analysis": {"daily": 4 * C_GROQ}}}}})
    for gw, user in ((a, "u1"), (b, "u2"), (a, "u3"), (b, "u4")):  # half through A, half through B
        response = chat(gw, "analysis", user)
        assert response.status_code == 200 and response.headers["x-modelgate-provider"] == "groq"
    for gw, user in ((a, "u5"), (b, "u6")):
        refused = chat(gw, "analysis", user)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "budget_exceeded"
    assert len(fakes["groq"].requests()) == 4


def test_ledger_rows_from_both_replicas_land_in_postgres_once(cluster, fakes, ledger_url):
    a, b = cluster()
    users = [f"l{i}" for i in range(30)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda iu: chat((a, b)[iu[0] % 2], "fast", iu[1]), enumerate(users)))
    assert [r.status_code for r in responses] == [200] * len(users)
    rows = ledger_rows(ledger_url)
    assert sorted(r["end_user"] for r in rows) == sorted(users)  # none lost, none doubled
    assert len({r["request_id"] for r in rows}) == len(users)
    assert all(r["status"] == "ok" and r["alias"] == "fast" for r in rows)


def test_killing_a_replica_under_load_loses_nothing(cluster, fakes, ledger_url):
    a, b = cluster()
    # A little upstream latency keeps requests in flight on B when it dies.
    fakes["groq"].fail("slow", count=-1, delay_s=0.05)
    answered: dict[str, str] = {}

    def client_session(worker: int) -> None:
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {a.key}"}) as http:
            for i in range(15):
                user = f"k{worker}-{i}"
                for gw in ((b, a) if i % 2 else (a, b)):  # retry on the other replica when one is gone
                    try:
                        response = http.post(gw.api_base + "/chat/completions",
                                             json={"model": "fast", "messages": MSG},
                                             headers={"x-modelgate-user": user})
                    except httpx.TransportError:
                        continue
                    assert response.status_code == 200, response.text
                    answered[user] = gw.base_url
                    break

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client_session, w) for w in range(4)]
        time.sleep(0.6)
        b.process.proc.kill()  # SIGKILL, mid-load
        for future in futures:
            future.result()
    assert len(answered) == 60  # every request was answered, by B before the kill or by A
    assert set(answered.values()) == {a.base_url, b.base_url}
    rows = ledger_rows(ledger_url)
    counts = Counter(r["end_user"] for r in rows if r["status"] == "ok")
    assert set(counts) == set(answered)  # every answered request has its ledger row
    # A row more than once only where B committed it and died before answering (the client retried on A).
    assert all(n <= 2 for n in counts.values())


def test_flags_changed_through_one_replica_reach_the_other_within_2s(cluster, fakes, shared_redis):
    a, b = cluster()
    assert chat(b, "fast").headers["x-modelgate-provider"] == "groq"
    headers = {"Authorization": f"Bearer {a.key}", "x-modelgate-operator": "dr-test"}
    changed = httpx.patch(a.base_url + "/admin/flags", headers=headers, timeout=30,
                          json={"PRIMARY_PROVIDER": "openrouter", "traffic": {"main": 40}})
    assert changed.status_code == 200
    started = time.monotonic()
    while True:
        flags = httpx.get(b.base_url + "/admin/flags", headers=headers).json()
        if flags["flags"]["PRIMARY_PROVIDER"] == "openrouter":
            break
        assert time.monotonic() - started < 2, flags
        time.sleep(0.05)
    assert flags["flags"]["traffic"]["main"] == 40
    assert any(h["who"].startswith("dr-test") and h["flag"] == "PRIMARY_PROVIDER" for h in flags["history"])
    assert chat(b, "fast").headers["x-modelgate-provider"] == "openrouter"
    assert shared_redis.client.exists(shared_redis.namespace + ":flags")  # under the cluster's own prefix
