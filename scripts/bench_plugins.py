"""What the plugins cost: the same gateway with every plugin on against none, in the same run.

Both gateways run as real processes (as `make serve` runs them) in front of the same loopback
fake Groq; requests alternate between them so machine noise hits both alike.

    .venv/bin/python -m scripts.bench_plugins --requests 400

Prints a markdown table: median and p99 latency per request of each gateway, and the difference.
Goal (issue 4): all plugins together add at most 1 ms median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from tests.fakes.client import start_fakes, stop_fakes
from tests.support.gateway import Gateway, provider_env, write_config

BODY = {"model": "fast", "messages": [{"role": "user", "content": "pubmed: chest pain troponin"}]}


def start(fakes: dict, tmp: Path, name: str, plugins: bool, sync: str) -> Gateway:
    folder = tmp / name
    folder.mkdir()
    config = write_config(folder)
    if not plugins:
        data = yaml.safe_load(config.read_text())
        data["litellm_settings"]["callbacks"] = []
        config.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**provider_env(fakes), "MODELGATE_CONFIG": str(config),
           "MODELGATE_LEDGER_URL": f"sqlite:///{folder / 'ledger.sqlite'}", "MODELGATE_LEDGER_SYNC": sync}
    return Gateway(env, folder / "flags.yaml", log_name=f"bench-{name}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--sync", default="normal", choices=["full", "normal"], help="ledger SQLite sync mode")
    args = parser.parse_args(argv)
    fakes = start_fakes(["groq", "openrouter", "openai"])
    gateways: dict[str, Gateway] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateways["none"] = start(fakes, Path(tmp), "none", plugins=False, sync=args.sync)
            gateways["all"] = start(fakes, Path(tmp), "all", plugins=True, sync=args.sync)
            clients = {name: httpx.Client(base_url=gw.api_base, headers={"Authorization": f"Bearer {gw.key}"})
                       for name, gw in gateways.items()}
            for client in clients.values():  # warm up connections and caches
                for _ in range(20):
                    client.post("/chat/completions", json=BODY).raise_for_status()
            times: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(args.requests):
                for name, client in clients.items():
                    started = time.perf_counter()
                    client.post("/chat/completions", json=BODY).raise_for_status()
                    times[name].append((time.perf_counter() - started) * 1000)
    finally:
        for gw in gateways.values():
            gw.stop()
        stop_fakes(fakes)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"| gateway (ledger sync={args.sync}) | median ms | p99 ms |\n|---|---:|---:|")
    for name, values in times.items():
        print(f"| plugins: {name} | {median[name]:.2f} | {percentile(values, 0.99):.2f} |")
    print(f"\nplugins add {median['all'] - median['none']:.2f} ms median per request "
          f"({args.requests} sequential requests each, alternating)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
