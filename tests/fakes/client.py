"""Test-side handle on a running fake provider: start it as a process, steer its faults, read its log.

fakes = start_fakes()                      # {"groq": FakeProvider, "openrouter": ..., "openai": ...}
groq = fakes["groq"]
groq.api_base                              # http://127.0.0.1:PORT/openai/v1  (LiteLLM api_base)
groq.fail("429", count=2, retry_after=3)   # next two matching requests get a Groq-shaped 429
groq.fail("hang", path_contains="audio")
groq.reply(content="not json")             # fixed chat content until reset()
groq.requests()                            # what the fake received (model, params, auth, fault)
groq.reset()                               # faults, replies, prices, log cleared; held requests freed
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.proc import ServerProcess, free_port

from . import PROVIDERS
from .wire import WIRES


class FakeProvider:
    """A fake provider listening at `base_url`; `api_base` adds the provider's own path prefix."""

    def __init__(self, provider: str, base_url: str, process: ServerProcess | None = None) -> None:
        if provider not in WIRES:
            raise ValueError(f"unknown provider {provider!r}")
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.prefix = WIRES[provider].prefix
        self.api_base = self.base_url + self.prefix
        self.process = process
        self._http = httpx.Client(base_url=self.base_url, timeout=10)

    def __repr__(self) -> str:
        return f"FakeProvider({self.provider!r}, {self.api_base!r})"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    # ---- control -------------------------------------------------------------------------------------
    def control(self, **body: Any) -> dict[str, Any]:
        """POST /_control with `body` (faults / reply / prices / clear_faults); returns the fake's state."""
        response = self._http.post("/_control", json=body)
        if response.status_code != 200:
            raise ValueError(f"fake {self.provider} refused control {body!r}: {response.text}")
        return response.json()

    def fail(
        self,
        kind: str | int,
        count: int = 1,
        *,
        path_contains: str | None = None,
        model: str | None = None,
        model_contains: str | None = None,
        stream: bool | None = None,
        delay_s: float | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Append one fault to the program (count=-1: forever). See tests/fakes/faults.py for kinds."""
        match = {
            k: v
            for k, v in {
                "path_contains": path_contains,
                "model": model,
                "model_contains": model_contains,
                "stream": stream,
            }.items()
            if v is not None
        }
        fault: dict[str, Any] = {"kind": str(kind), "count": count}
        if match:
            fault["match"] = match
        if delay_s is not None:
            fault["delay_s"] = delay_s
        if retry_after is not None:
            fault["retry_after"] = retry_after
        if message is not None:
            fault["message"] = message
        return self.control(faults=[fault])

    def reply(self, content: str | None = None, text: str | None = None) -> dict[str, Any]:
        """Fix the chat content and/or the transcript text until reset()."""
        return self.control(reply={"content": content, "text": text})

    def set_price(self, model: str, prompt: float, completion: float) -> dict[str, Any]:
        """OpenRouter usage.cost prices for `model`, in USD per token."""
        return self.control(prices={model: {"prompt": prompt, "completion": completion}})

    def state(self) -> dict[str, Any]:
        """Remaining faults, reply overrides, prices and the number of logged requests."""
        return self._http.get("/_control").json()

    def reset(self) -> None:
        self._http.post("/_reset").raise_for_status()

    # ---- request log -----------------------------------------------------------------------------------
    def requests(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        """Requests received since the last reset/clear, oldest first."""
        log = self._http.get("/_requests").json()
        return [r for r in log if path_contains is None or path_contains in r["path"]]

    def wait_requests(
        self, count: int, timeout: float = 5.0, path_contains: str | None = None
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` requests (matching `path_contains`) have arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.requests(path_contains)
            if len(log) >= count or time.monotonic() > deadline:
                if len(log) < count:
                    raise AssertionError(
                        f"fake {self.provider}: {len(log)} of {count} requests after {timeout}s"
                    )
                return log
            time.sleep(0.05)

    def last_request(self) -> dict[str, Any]:
        log = self.requests()
        if not log:
            raise AssertionError(f"fake {self.provider} received no request")
        return log[-1]

    def clear_requests(self) -> None:
        self._http.delete("/_requests").raise_for_status()

    # ---- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()
        if self.process is not None:
            self.process.stop()
            self.process = None


def start_fakes(
    providers: tuple[str, ...] | list[str] = PROVIDERS, timeout: float = 60
) -> dict[str, FakeProvider]:
    """Start one fake process per provider (all at once, then wait), each on a free loopback port."""
    procs = {}
    try:
        for provider in providers:
            port = free_port()
            procs[provider] = ServerProcess(
                ["-m", "tests.fakes", "--provider", provider, "--port", str(port)],
                port,
                log_name=f"fake-{provider}",
            )
        for proc in procs.values():
            proc.wait_ready("/health", timeout=timeout)
    except BaseException:
        for proc in procs.values():
            proc.stop()
        raise
    return {name: FakeProvider(name, proc.base_url, proc) for name, proc in procs.items()}


def stop_fakes(fakes: dict[str, FakeProvider]) -> None:
    for fake in fakes.values():
        fake.close()
