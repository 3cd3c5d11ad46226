"""What the gateway adds (issue 8): the fake upstream directly, the stock LiteLLM proxy and modelgate.

Three targets answer the same chat request, all in front of the same loopback fake Groq:

- `direct`: the fake Groq itself (`llama-3.1-8b-instant` at its /openai/v1 base);
- `litellm`: the stock LiteLLM proxy (`litellm --config`), given modelgate's resolved model list and
  router/litellm settings (the same deployments, orders and ids), without modelgate's own sections
  or callbacks;
- `modelgate`: `python -m gateway serve` with config/models.yaml as is, every plugin on;
- optionally `bare`: modelgate with `callbacks: []` (what the plugins cost under load);
- optionally `nomemo`: modelgate with MODELGATE_LITELLM_MEMO=false (LiteLLM's lookups as shipped).

A closed-loop load generator (aiohttp, one keep-alive pool per target) keeps `concurrency` requests
in flight for `--seconds`, target after target, level after level, `--rounds` times, so noise on
a shared machine hits every target alike. Added latency is a target's percentile minus the
direct fake's at the same concurrency. The load generator shares the CPUs: the `direct` row shows
what the fake and the client together sustain, an upper bound for the others.

    .venv/bin/python -m scripts.bench_gateway [--concurrency 1 10 50] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.fakes.client import start_fakes, stop_fakes
from tests.support.gateway import MASTER_KEY, Gateway, provider_env, write_config
from tests.support.proc import ServerProcess, free_port

MESSAGES = [{"role": "user", "content": "pubmed: chest pain troponin"}]
TARGETS = ("direct", "litellm", "modelgate", "bare", "nomemo")


@dataclass
class Sample:
    """Latencies (ms) and wall time of every slot a target ran at one concurrency."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    cpu_seconds: float = 0.0     # CPU time the target's process spent meanwhile (all its threads)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(samples: dict[str, Sample]) -> dict[str, dict[str, float]]:
    """Per target: requests, req/s, p50/p99, and p50/p99 added over `direct` (when it ran)."""
    out: dict[str, dict[str, float]] = {}
    for name, s in samples.items():
        if not s.latencies:
            continue
        out[name] = {"requests": len(s.latencies), "errors": s.errors, "rps": s.throughput,
                     "p50": percentile(s.latencies, 0.5), "p99": percentile(s.latencies, 0.99),
                     "cpu_ms": 1000 * s.cpu_seconds / len(s.latencies)}
    base = out.get("direct")
    for row in out.values():
        row["added_p50"] = row["p50"] - base["p50"] if base else float("nan")
        row["added_p99"] = row["p99"] - base["p99"] if base else float("nan")
    return out


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ratios(rows: dict[str, dict[str, float]], ours: str = "modelgate", stock: str = "litellm") -> dict[str, float]:
    """modelgate against the stock proxy: throughput ratio (goal >= 2) and added-p50 ratio (goal <= 0.5)."""
    if ours not in rows or stock not in rows:
        return {}
    a, b = rows[ours], rows[stock]
    return {"throughput": a["rps"] / b["rps"] if b["rps"] else float("nan"),
            "added_p50": a["added_p50"] / b["added_p50"] if b["added_p50"] else float("nan")}


# --- targets -----------------------------------------------------------------------------------------

def stock_config(env: dict[str, str], models_yaml: Path, out: Path) -> Path:
    """modelgate's resolved Router config as stock LiteLLM proxy YAML (no modelgate sections)."""
    from gateway import config
    from gateway.settings import Settings

    settings = Settings(_env_file=None, **env, MODELGATE_CONFIG=str(models_yaml))
    resolved = config.resolve(settings)
    litellm_settings = {k: v for k, v in resolved.litellm_settings.items() if k != "callbacks"}
    out.write_text(yaml.safe_dump({"model_list": resolved.model_list(), "router_settings": resolved.router_settings,
                                   "litellm_settings": litellm_settings}, sort_keys=False))
    return out


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes
    pid: int | None = None       # the process that answers (for its CPU time)
    stop: Any = None


def start_targets(names: list[str], fakes: dict, tmp: Path) -> dict[str, Target]:
    env = provider_env(fakes)
    auth = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    targets: dict[str, Target] = {}
    try:
        for name in names:
            folder = tmp / name
            folder.mkdir()
            body = json.dumps({"model": "fast", "messages": MESSAGES}).encode()
            if name == "direct":
                targets[name] = Target(name, fakes["groq"].api_base + "/chat/completions", auth,
                                       json.dumps({"model": "llama-3.1-8b-instant", "messages": MESSAGES}).encode(),
                                       fakes["groq"].process.proc.pid)
            elif name == "litellm":
                path = stock_config(env, write_config(folder), folder / "litellm.yaml")
                port = free_port()
                proc = ServerProcess(["-m", "litellm.proxy.proxy_cli", "--config", str(path), "--host", "127.0.0.1",
                                      "--port", str(port)], port, {"LITELLM_MASTER_KEY": MASTER_KEY},
                                     log_name="bench-litellm-proxy")
                targets[name] = Target(name, proc.base_url + "/v1/chat/completions", auth, body, proc.proc.pid, proc.stop)
                proc.wait_ready("/health/liveliness", timeout=180)
            else:
                extra = {"litellm_settings": {"callbacks": []}} if name == "bare" else None
                cfg = write_config(folder, extra=extra)
                memo = {"MODELGATE_LITELLM_MEMO": "false"} if name == "nomemo" else {}
                gw = Gateway({**env, **memo, "MODELGATE_CONFIG": str(cfg),
                              "MODELGATE_LEDGER_URL": f"sqlite:///{folder / 'ledger.sqlite'}"},
                             folder / "flags.yaml", log_name=f"bench-{name}")
                targets[name] = Target(name, gw.api_base + "/chat/completions", auth, body, gw.process.proc.pid, gw.stop)
    except BaseException:
        stop_targets(targets)
        raise
    return targets


def stop_targets(targets: dict[str, Target]) -> None:
    for target in targets.values():
        if target.stop is not None:
            target.stop()


# --- load ----------------------------------------------------------------------------------------------

async def run_slot(target: Target, concurrency: int, seconds: float, sample: Sample) -> None:
    """`concurrency` workers, each sending one request after another for `seconds`."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one() -> tuple[float, bool]:
            started = time.perf_counter()
            async with session.post(target.url, data=target.body, headers=target.headers) as response:
                await response.read()
                return (time.perf_counter() - started) * 1000, response.status == 200

        await asyncio.gather(*(one() for _ in range(concurrency)))  # open the pool's connections
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                ms, ok = await one()
                if ok:
                    sample.latencies.append(ms)
                else:
                    sample.errors += 1

        started, cpu = time.perf_counter(), cpu_seconds(target.pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sample.seconds += time.perf_counter() - started
        sample.cpu_seconds += cpu_seconds(target.pid) - cpu


async def run(targets: dict[str, Target], levels: list[int], seconds: float, rounds: int) -> dict[int, dict[str, Sample]]:
    results = {c: {name: Sample() for name in targets} for c in levels}
    for target in targets.values():  # warm-up: connections, LiteLLM's lazy imports and caches
        await run_slot(target, 10, min(2.0, seconds), Sample())
    for _ in range(rounds):
        for c in levels:
            for name, target in targets.items():
                await run_slot(target, c, seconds, results[c][name])
    return results


def report(results: dict[int, dict[str, Sample]], seconds: float, rounds: int) -> str:
    lines = ["| concurrency | target | requests | errors | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
             "| CPU ms/req |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summary = []
    for c, samples in results.items():
        rows = summarize(samples)
        for name, r in rows.items():
            lines.append(f"| {c} | {name} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50']:.2f} | "
                         f"{r['p99']:.2f} | {r['added_p50']:.2f} | {r['added_p99']:.2f} | {r['cpu_ms']:.2f} |")
        ratio = ratios(rows)
        if ratio:
            summary.append(f"- concurrency {c}: modelgate/litellm throughput {ratio['throughput']:.2f}x "
                           f"(goal >= 2), added p50 {ratio['added_p50']:.2f}x (goal <= 0.5)")
    head = f"{rounds} round(s) x {seconds:g} s per target and concurrency, alternating; cpus: {os.cpu_count()}, " \
           f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    return "\n".join([head, "", *lines, "", *summary])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=5.0, help="per target, concurrency and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=["direct", "litellm", "modelgate"], choices=TARGETS)
    args = parser.parse_args(argv)
    fakes = start_fakes(["groq", "openrouter", "openai"])
    targets: dict[str, Target] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            targets = start_targets(args.targets, fakes, Path(tmp))
            results = asyncio.run(run(targets, args.concurrency, args.seconds, args.rounds))
    finally:
        stop_targets(targets)
        stop_fakes(fakes)
    print(report(results, args.seconds, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
