"""What a failing primary costs each request: issue 8, item 2.

Two gateways run as real processes (as `make serve` runs them) with config/models.yaml as it is:
a healthy one, and one whose primary (Groq, the first provider of every alias) fails. Both fall
back to the same loopback fake OpenRouter. Requests alternate between them, so machine noise hits
both alike, and the failing gateway is started afresh for each fault so its first failure is
measured too. Faults: `429` (with Retry-After), `500`, `refused` (the primary's process is stopped:
connection refused), `hang` (accepts and never answers: the deployment's timeout bites), `drop`.

    .venv/bin/python -m scripts.bench_failover                       # fast, 200 requests, conc 1 and 10
    .venv/bin/python -m scripts.bench_failover --alias main --stream --requests 100
    .venv/bin/python -m scripts.bench_failover --kinds hang,500 \
        --router num_retries=2,allowed_fails=3,cooldown_time=5       # closer to stock LiteLLM settings
    .venv/bin/python -m scripts.bench_failover --kinds hang --concurrency 10 --seconds 100  # sustained
    .venv/bin/python -m scripts.bench_failover --kinds hang --rate 5 --requests 100  # open loop

Prints a markdown table per alias: for each fault and concurrency, how many calls reached the
failing primary, how many requests paid a primary failure (`x-modelgate-fallbacks` >= 1, or a
timeout) and how many paid a timeout, the first failing request's latency, and p50/p99 of the
healthy and failing gateway for the requests that started after the first failure was recorded,
with the difference ("extra"), and the seconds the failing gateway's requests lost in all
("lost": each request's latency over the healthy median, summed).
`--rate` replaces the closed loop with open-loop arrivals (a request every 1/rate s, whatever is
in flight), as real traffic arrives: the way to see what a hang costs the requests that arrive
while the first one waits out its timeout.
Goal (issue 8): after the first failure, at most 20 ms extra at p99; a hang costs at most
allowed_fails + 1 timeouts (LiteLLM cools a deployment down once its fails exceed allowed_fails).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.client import FakeProvider, start_fakes, stop_fakes
from tests.support.gateway import Gateway, provider_env, write_config

KINDS = ("429", "500", "refused", "hang", "drop")
MESSAGES = [{"role": "user", "content": "pubmed: chest pain troponin"}]


@dataclass
class Sample:
    """One request as the client saw it (times from time.perf_counter(), in seconds)."""

    start: float
    end: float
    fallbacks: int  # providers that failed before the one that answered (-1: the request failed)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def summarise(healthy: list[Sample], failing: list[Sample], timeout_s: float,
              primary_attempts: int | None = None) -> dict[str, Any]:
    """Split the failing gateway's requests at the first recorded primary failure and compare.

    "After the first failure" = requests that started once the first request that paid a failure
    had its answer: by then LiteLLM has seen the failure (and cooled the deployment down).
    A request "paid a timeout" when it took at least 90% of the primary's timeout; it "paid a
    failure" when a provider failed before the one that answered, or it paid a timeout (a retry
    of the same group can answer from the next deployment without counting as a fallback).
    """
    timed_out = [s for s in failing if s.ms >= 900 * timeout_s]
    base = [s.ms for s in healthy if s.fallbacks >= 0]
    paid = [s for s in failing if s.fallbacks >= 1 or s.ms >= 900 * timeout_s]
    first_end = min((s.end for s in paid), default=float("-inf"))
    after = [s.ms for s in failing if s.start >= first_end and s.fallbacks >= 0]
    out: dict[str, Any] = {
        "requests": len(failing),
        "failed": sum(s.fallbacks < 0 for s in failing + healthy),
        "paid_failure": len(paid),
        "paid_timeout": len(timed_out),
        "primary_attempts": primary_attempts,
        "first_ms": min(paid, key=lambda s: s.start).ms if paid else None,
        "after": len(after),
        "healthy_p50": percentile(base, 0.5) if base else None,
        "healthy_p99": percentile(base, 0.99) if base else None,
    }
    if base:
        out["lost_s"] = sum(max(0.0, s.ms - out["healthy_p50"]) for s in failing) / 1000
    if after and base:
        out.update(failing_p50=percentile(after, 0.5), failing_p99=percentile(after, 0.99))
        out.update(extra_p50=out["failing_p50"] - out["healthy_p50"],
                   extra_p99=out["failing_p99"] - out["healthy_p99"])
    return out


def primary_timeout(config: Path, alias: str, stream: bool) -> float:
    """The timeout that bites when the alias's first deployment hangs (stream_timeout for streams)."""
    first = next(d for d in yaml.safe_load(config.read_text())["model_list"] if d["model_name"] == alias)
    params = first["litellm_params"]
    return float(params.get("stream_timeout", params["timeout"]) if stream else params["timeout"])


class Client:
    """One request at a time to a gateway; a stream is read to its end."""

    def __init__(self, gateway: Gateway, alias: str, stream: bool) -> None:
        # Open-loop runs hold hundreds of requests at once: no client-side connection cap.
        self.http = httpx.Client(base_url=gateway.api_base, timeout=300, limits=httpx.Limits(max_connections=None),
                                 headers={"Authorization": f"Bearer {gateway.key}"})
        self.body = {"model": alias, "messages": MESSAGES, "stream": stream}

    def one(self) -> Sample:
        start = time.perf_counter()
        try:
            with self.http.stream("POST", "/chat/completions", json=self.body) as response:
                data = response.read()
            # A stream that fails after its status line carries the error as an event (routers/chat.py).
            ok = response.status_code == 200 and b'data: {"error"' not in data
            fallbacks = int(response.headers.get("x-modelgate-fallbacks", 0)) if ok else -1
        except httpx.HTTPError:
            fallbacks = -1
        return Sample(start, time.perf_counter(), fallbacks)


def parse_router(text: str) -> dict[str, Any]:
    """`num_retries=2,cooldown_time=5` -> {"num_retries": 2, "cooldown_time": 5} (values as YAML)."""
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def start_gateway(fakes: dict[str, FakeProvider], folder: Path, groq_base: str,
                  router: dict[str, Any]) -> Gateway:
    folder.mkdir()
    config = write_config(folder, router_settings=router)
    env = {**provider_env(fakes), "GROQ_API_BASE": groq_base, "MODELGATE_CONFIG": str(config)}
    return Gateway(env, folder / "flags.yaml", log_name=f"bench-failover-{folder.name}")


def run_case(fakes: dict[str, FakeProvider], healthy: Client, tmp: Path, kind: str, concurrency: int,
             args: argparse.Namespace) -> tuple[list[Sample], list[Sample], int | None]:
    """A fresh failing gateway (fresh cooldowns) in front of its own Groq fake.

    Returns the healthy and failing samples and how many calls reached the failing primary
    (None for `refused`: nothing is listening to count them)."""
    primary = start_fakes(["groq"])["groq"]
    gateway = None
    try:
        gateway = start_gateway(fakes, tmp / f"{kind}-c{concurrency}", primary.api_base, args.router)
        failing = Client(gateway, args.alias, args.stream)
        for _ in range(args.warmup):  # warm both while the primary is healthy
            healthy.one(), failing.one()
        if kind == "refused":
            primary.close()  # the port is closed from now on: connection refused
        else:
            primary.fail(kind, count=-1, retry_after=args.retry_after)
            primary.clear_requests()
        samples: dict[str, list[Sample]] = {"healthy": [], "failing": []}
        lock = threading.Lock()
        per_worker = max(1, args.requests // max(1, concurrency))
        deadline = time.monotonic() + (args.seconds or 0)

        clients = (("failing", failing), ("healthy", healthy))

        def send(name: str, client: Client) -> None:  # httpx clients are thread-safe: threads share them
            sample = client.one()
            with lock:
                samples[name].append(sample)

        def worker(_: int) -> None:
            for i in itertools.count():
                if (i >= per_worker) if not args.seconds else (time.monotonic() >= deadline):
                    return
                for name, client in clients:  # the outage starts now
                    send(name, client)

        def arrival(i: int) -> None:  # open loop: both gateways get a request every 1/rate s
            time.sleep(max(0.0, t0 + i / (2 * args.rate) - time.monotonic()))
            send(*clients[i % 2])

        t0 = time.monotonic()
        if args.rate:
            with concurrent.futures.ThreadPoolExecutor(512) as pool:
                list(pool.map(arrival, range(2 * args.requests)))
        else:
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(worker, range(concurrency)))
        attempts = None if kind == "refused" else len(primary.requests())
        return samples["healthy"], samples["failing"], attempts
    finally:
        if gateway is not None:
            gateway.stop()
        primary.close()


HEADER = ("| fault | conc | requests | failed | primary calls | paid a failure | paid a timeout "
          "| first failing ms | healthy p50 / p99 ms | failing p50 / p99 ms (after first failure) "
          "| extra p50 / p99 ms | lost s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def row(kind: str, concurrency: int | str, s: dict[str, Any]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    cells = [kind, concurrency, s["requests"], s["failed"],
             "-" if s["primary_attempts"] is None else s["primary_attempts"], s["paid_failure"],
             s["paid_timeout"], fmt(s["first_ms"]), f"{fmt(s['healthy_p50'])} / {fmt(s['healthy_p99'])}",
             f"{fmt(s.get('failing_p50'))} / {fmt(s.get('failing_p99'))}",
             f"{fmt(s.get('extra_p50'))} / {fmt(s.get('extra_p99'))}", fmt(s.get("lost_s"))]
    return "| " + " | ".join(map(str, cells)) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alias", default="fast", help="alias to call (its first provider is Groq)")
    parser.add_argument("--requests", type=int, default=200, help="failing-gateway requests per case")
    parser.add_argument("--seconds", type=float, default=0,
                        help="run each case this long instead (a sustained outage, past cooldown_time)")
    parser.add_argument("--concurrency", default="1,10", help="comma-separated client concurrencies")
    parser.add_argument("--rate", type=float, default=0,
                        help="open loop instead: requests per second to each gateway (--requests of them)")
    parser.add_argument("--kinds", default="429,500,refused,hang", help=f"comma-separated: {','.join(KINDS)}")
    parser.add_argument("--retry-after", type=float, default=1, help="Retry-After seconds the 429s carry")
    parser.add_argument("--stream", action="store_true", help="stream the answers (stream_timeout bites)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--router", type=parse_router, default={},
                        help="router_settings overrides, e.g. num_retries=2,allowed_fails=3,cooldown_time=5")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}")
    concurrencies = [int(c) for c in args.concurrency.split(",")] if not args.rate else [0]

    fakes = start_fakes(["groq", "openrouter", "openai"])
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            config = write_config(tmp, router_settings=args.router)
            timeout_s = primary_timeout(config, args.alias, args.stream)
            settings = yaml.safe_load(config.read_text())["router_settings"]
            knobs = ", ".join(f"{k} {settings.get(k)}" for k in ("num_retries", "allowed_fails",
                                                                   "cooldown_time"))
            stream = " (stream)" if args.stream else ""
            print(f"alias `{args.alias}`{stream}: primary timeout {timeout_s:g} s, "
                  f"{knobs}, 429 Retry-After {args.retry_after:g} s\n\n{HEADER}", flush=True)
            base = start_gateway(fakes, tmp / "healthy", fakes["groq"].api_base, args.router)
            try:
                healthy = Client(base, args.alias, args.stream)
                for kind in kinds:
                    for conc in concurrencies:
                        h, f, attempts = run_case(fakes, healthy, tmp, kind, conc, args)
                        label = f"{args.rate:g}/s" if args.rate else conc
                        print(row(kind, label, summarise(h, f, timeout_s, attempts)), flush=True)
            finally:
                base.stop()
    finally:
        stop_fakes(fakes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
