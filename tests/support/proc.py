"""Start a real server process for a test and wait until it answers.

Every server under test (gateway, local servers, fake providers) runs as its own process, the
way `make serve` runs it; tests talk to it over loopback with real clients.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1:port; `stop()` sends SIGTERM then SIGKILL."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None, log_name: str = "server"):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        log_dir = ROOT / ".pytest-logs"
        log_dir.mkdir(exist_ok=True)
        self.log_path = log_dir / f"{log_name}-{port}.log"
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        # Coverage of subprocesses: pytest-cov sets COV_CORE_* and this hook starts coverage in children.
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/health", timeout: float = 120.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                if httpx.get(self.base_url + path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s; log:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-8000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
