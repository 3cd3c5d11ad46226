"""`make serve`: the local model servers and the gateway, started together and stopped together.

- writes `.env` with a generated strong LITELLM_MASTER_KEY when there is none;
- starts the faster-whisper and llama.cpp servers (unless ENABLE_LOCAL=false or their base URLs
  point elsewhere), then the gateway, all with HF_HUB_OFFLINE=1 and LITELLM_LOCAL_MODEL_COST_MAP=True;
- prints the base URL and the key; Ctrl-C or SIGTERM stops every process cleanly.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = Path(os.environ.get("MODELGATE_ENV_FILE", ROOT / ".env"))
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}


def ensure_master_key(env_file: Path = ENV_FILE) -> str:
    """Return LITELLM_MASTER_KEY from the environment or .env, writing a new one into .env if absent."""
    if os.environ.get("LITELLM_MASTER_KEY"):
        return os.environ["LITELLM_MASTER_KEY"]
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    for line in lines:
        if line.startswith("LITELLM_MASTER_KEY=") and len(line.split("=", 1)[1].strip()) >= 16:
            return line.split("=", 1)[1].strip()
    key = "sk-mg-" + secrets.token_urlsafe(32)
    lines = [line for line in lines if not line.startswith("LITELLM_MASTER_KEY=")] + [f"LITELLM_MASTER_KEY={key}"]
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    print(f"serve: wrote a new LITELLM_MASTER_KEY into {env_file}")
    return key


def local_port(api_base: str) -> int | None:
    """The port to run a local server on, or None when the base URL is not on this machine."""
    url = urlparse(api_base)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return url.port


def wait_healthy(name: str, url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve: {name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"serve: {name} not healthy after {timeout:.0f}s ({url})")


class Supervisor:
    """Child processes started in order and stopped in reverse, on Ctrl-C, SIGTERM or when one dies."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.procs: list[tuple[str, subprocess.Popen]] = []
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, *args], env=env)
        self.procs.append((name, proc))
        return proc

    def start_local_servers(self, settings, env: dict[str, str]) -> None:  # noqa: ANN001 - gateway Settings
        """The whisper and llama servers, unless ENABLE_LOCAL=false or their base URLs point elsewhere."""
        servers = [("whisper", "local_servers.whisper", settings.local_whisper_api_base),
                   ("llama", "local_servers.llama", settings.local_qwen_api_base)]
        for name, module, api_base in servers:
            port = local_port(api_base) if settings.enable_local else None
            if port is None:
                continue
            proc = self.start(name, ["-m", module, "--port", str(port)], env)
            wait_healthy(f"local {name} server", f"http://127.0.0.1:{port}/health", proc)
            print(f"{self.label}: local {name} server ready on 127.0.0.1:{port}")

    def stop(self, *_: object) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise SystemExit(0)

    def wait(self) -> None:
        """Block until a child exits, then stop the rest."""
        while all(proc.poll() is None for _, proc in self.procs):
            time.sleep(0.5)
        dead = [name for name, proc in self.procs if proc.poll() is not None]
        print(f"{self.label}: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        self.stop()

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *_: object) -> None:
        # However we leave (a failed start, an exception), no child outlives the supervisor.
        for _name, proc in self.procs:
            if proc.poll() is None:
                proc.kill()


def main() -> int:
    os.chdir(ROOT)
    key = ensure_master_key()
    from gateway.settings import Settings  # after .env exists, so Settings reads the key

    settings = Settings()
    env = {**os.environ, **OFFLINE_ENV, "LITELLM_MASTER_KEY": key}
    with Supervisor("serve") as supervisor:
        supervisor.start_local_servers(settings, env)
        gateway = supervisor.start("gateway", ["-m", "gateway", "serve"], env)
        base = f"http://{settings.gateway_host}:{settings.gateway_port}"
        wait_healthy("gateway", base + "/health", gateway)
        print(f"\nmodelgate is up.\n  base URL: {base}/v1\n  API key:  {key}\n"
              f"  try: curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {key}' "
              "-H 'Content-Type: application/json' -d '{\"model\":\"main\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'\n"
              "Ctrl-C stops everything.", flush=True)
        supervisor.wait()
    return 1


if __name__ == "__main__":
    sys.exit(main())
