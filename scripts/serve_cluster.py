"""`make serve-cluster`: the local model servers and N gateway replicas sharing one Redis and one PostgreSQL.

Every replica gets REDIS_URL (shared cooldowns, rpm/tpm usage and live flags) and the same
MODELGATE_LEDGER_URL (one ledger, budgets across replicas); see docs/scale-out.md. Defaults suit a
box with Redis and PostgreSQL on loopback; override with the environment:

    REDIS_URL              redis://127.0.0.1:6379/0
    MODELGATE_LEDGER_URL   postgresql+psycopg://postgres@127.0.0.1:5432/test
    CLUSTER_PORTS          4000,4010          (one replica per port)

Put any load balancer in front of the ports. Ctrl-C or SIGTERM stops every process.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit

from scripts.serve import OFFLINE_ENV, ROOT, Supervisor, ensure_master_key, wait_healthy

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_LEDGER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_PORTS = "4000,4010"


def redacted_redis(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, ("***@" if "@" in parts.netloc else "") + netloc, parts.path, "", ""))


def replica_env(base: dict[str, str], port: int, first: bool) -> dict[str, str]:
    """One replica's environment: its port, its own flags file and ledger spool (the rest is shared)."""
    env = {**base, "GATEWAY_PORT": str(port)}
    if not first:  # the first keeps config/flags.yaml; Redis carries changes between replicas
        env["MODELGATE_FLAGS_FILE"] = str(ROOT / "var" / f"flags-{port}.yaml")
    env["MODELGATE_LEDGER_SPOOL"] = str(ROOT / "var" / f"ledger-spool-{port}.jsonl")
    return env


def main() -> int:
    os.chdir(ROOT)
    key = ensure_master_key()
    from gateway.settings import Settings  # after .env exists, so Settings reads the key
    from plugins.ledger_store import redacted

    settings = Settings()
    ports = [int(p) for p in os.environ.get("CLUSTER_PORTS", DEFAULT_PORTS).split(",") if p.strip()]
    shared = {"REDIS_URL": settings.redis_url or DEFAULT_REDIS,
              "MODELGATE_LEDGER_URL": os.environ.get("MODELGATE_LEDGER_URL") or DEFAULT_LEDGER}
    env = {**os.environ, **OFFLINE_ENV, "LITELLM_MASTER_KEY": key, **shared}
    (ROOT / "var").mkdir(exist_ok=True)
    with Supervisor("serve-cluster") as supervisor:
        supervisor.start_local_servers(settings, env)
        bases = {port: f"http://{settings.gateway_host}:{port}" for port in ports}
        replicas = {port: supervisor.start(f"gateway:{port}", ["-m", "gateway", "serve"],
                                           replica_env(env, port, first=index == 0))
                    for index, port in enumerate(ports)}
        for port, proc in replicas.items():
            wait_healthy(f"gateway:{port}", bases[port] + "/health", proc)
        print(f"\nmodelgate cluster is up: {len(ports)} replicas.\n"
              + "".join(f"  base URL: {base}/v1\n" for base in bases.values())
              + f"  API key:  {key}\n  Redis:    {redacted_redis(shared['REDIS_URL'])}\n"
              f"  ledger:   {redacted(shared['MODELGATE_LEDGER_URL'])}\nCtrl-C stops everything.", flush=True)
        supervisor.wait()
    return 1


if __name__ == "__main__":
    sys.exit(main())
