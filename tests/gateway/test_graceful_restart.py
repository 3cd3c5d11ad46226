"""SIGTERM drains the real gateway process: requests in flight finish, new ones get an OpenAI-shaped
503 + Retry-After, the process exits 0; a restart under steady load loses no request that the
openai SDK retried (gateway/drain.py, docs/operations.md)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from tests.support.gateway import MASTER_KEY, provider_env, write_config
from tests.support.proc import ServerProcess, free_port

HELLO = [{"role": "user", "content": "hello"}]


def test_sigterm_lets_requests_in_flight_finish(start_gateway, fakes) -> None:
    gateway = start_gateway()
    fakes["groq"].fail("slow", count=-1, delay_s=3)  # main's first provider answers after 3 s
    client = gateway.client(timeout=30)
    idle = httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {gateway.key}"})
    assert idle.get("/v1/models").status_code == 200  # a keep-alive connection, idle at SIGTERM

    with ThreadPoolExecutor(3) as pool:
        in_flight = [pool.submit(client.chat.completions.with_raw_response.create, model="main", messages=HELLO)
                     for _ in range(3)]
        fakes["groq"].wait_requests(3, timeout=20)
        gateway.process.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)

        # During the drain: a new connection and the idle keep-alive one both get a clear 503.
        for response in (httpx.post(gateway.api_base + "/chat/completions", json={"model": "main", "messages": HELLO},
                                    headers={"Authorization": f"Bearer {gateway.key}"}),
                         idle.get("/health")):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.headers["connection"] == "close"
            assert response.json()["error"]["code"] == "draining"
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        with pytest.raises(InvalidStatus) as refused:  # and a new realtime session, at the handshake
            websockets.sync.client.connect(gateway.base_url.replace("http", "ws", 1) + "/v1/realtime",
                                           additional_headers={"Authorization": f"Bearer {gateway.key}"})
        assert refused.value.response.status_code == 503

        answers = [future.result() for future in in_flight]
    assert [a.http_response.status_code for a in answers] == [200, 200, 200]
    assert all(a.parse().choices[0].message.content for a in answers)
    assert gateway.process.proc.wait(timeout=30) == 0, gateway.process.log()
    assert len(fakes["groq"].requests()) == 3  # the refused request never reached a provider


def test_drain_settings_hold_health_down_then_exit(start_gateway) -> None:
    """MODELGATE_DRAIN_MIN_S keeps /health at 503 that long even with nothing in flight (a load
    balancer must see it fail before the port closes); Retry-After is MODELGATE_DRAIN_RETRY_AFTER_S."""
    gateway = start_gateway(env={"MODELGATE_DRAIN_MIN_S": "2", "MODELGATE_DRAIN_RETRY_AFTER_S": "4"})
    signalled = time.monotonic()
    gateway.process.proc.send_signal(signal.SIGTERM)
    seen = []
    while time.monotonic() - signalled < 1.5:
        response = httpx.get(gateway.base_url + "/health")
        assert response.status_code == 503 and response.headers["retry-after"] == "4", response.text
        seen.append(response.json()["error"]["code"])
        time.sleep(0.2)
    assert seen and set(seen) == {"draining"}
    assert gateway.process.proc.wait(timeout=30) == 0, gateway.process.log()
    assert time.monotonic() - signalled >= 2


def start_on(port: int, env: dict[str, str], name: str) -> ServerProcess:
    return ServerProcess(["-m", "gateway", "serve"], port, env, log_name=name).wait_ready("/health", timeout=90)


def test_restart_under_load_loses_no_request(fakes, tmp_path: Path) -> None:
    port = free_port()
    env = {**provider_env(fakes), "LITELLM_MASTER_KEY": MASTER_KEY, "GATEWAY_PORT": str(port),
           "MODELGATE_CONFIG": str(write_config(tmp_path)), "MODELGATE_FLAGS_FILE": str(tmp_path / "flags.yaml"),
           "MODELGATE_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}
    fakes["groq"].fail("slow", count=-1, delay_s=0.3)  # so that requests are in flight at SIGTERM
    old = start_on(port, env, "gateway-old")

    # The app's client as it would be configured: the SDK retries 503 after Retry-After, and
    # connection errors (refused while no process listens) with its own backoff, up to ~2 minutes.
    statuses: list[int] = []
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=20, timeout=30,
                           http_client=httpx.Client(event_hooks={"response": [lambda r: statuses.append(r.status_code)]}))
    stop = threading.Event()
    answered: list[float] = []  # when each request got its answer
    failures: list[BaseException] = []

    def steady_load() -> None:
        while not stop.is_set():
            try:
                client.chat.completions.create(model="main", messages=HELLO)
                answered.append(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - what the test counts
                failures.append(exc)

    workers = [threading.Thread(target=steady_load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        _wait_for(lambda: len(answered) >= 10, "the load to get going")
        assert old.stop(timeout=35) == 0, old.log()
        new = start_on(port, env, "gateway-new")
        restarted = time.monotonic()
        _wait_for(lambda: sum(t > restarted for t in answered) >= 10, "answers from the new process")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    new.stop()
    assert not failures, failures[:3]
    assert all(status in (200, 503) for status in statuses), statuses  # 503: draining, retried
    assert statuses.count(200) == len(answered)


def _wait_for(condition, what: str, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
