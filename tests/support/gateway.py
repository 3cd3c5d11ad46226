"""Start the real gateway process (`python -m gateway serve`, as `make serve` does) for a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai

from tests.support.proc import ServerProcess, free_port

MASTER_KEY = "sk-test-" + "0123456789abcdef" * 2


class Gateway:
    def __init__(self, env: dict[str, str], flags_file: Path, log_name: str = "gateway") -> None:
        self.port = free_port()
        self.key = MASTER_KEY
        self.flags_file = flags_file
        self.ledger_url = env.get("MODELGATE_LEDGER_URL") or f"sqlite:///{flags_file.parent / 'ledger.sqlite'}"
        full_env = {"LITELLM_MASTER_KEY": MASTER_KEY, "GATEWAY_PORT": str(self.port),
                    "MODELGATE_FLAGS_FILE": str(flags_file), **env, "MODELGATE_LEDGER_URL": self.ledger_url}
        self.process = ServerProcess(["-m", "gateway", "serve"], self.port, full_env, log_name=log_name)
        self.process.wait_ready("/health", timeout=90)
        self.base_url = self.process.base_url
        self.api_base = self.base_url + "/v1"

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api_base, api_key=self.key, max_retries=0, **kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.api_base, api_key=self.key, max_retries=0, **kwargs)

    def stop(self) -> int:
        return self.process.stop()


def provider_env(fakes: dict, local: dict[str, str] | None = None) -> dict[str, str]:
    """Env pointing every provider at the fakes (and the local provider at `local` api bases)."""
    env = {
        "GROQ_API_KEY": "gsk_test", "GROQ_API_BASE": fakes["groq"].api_base,
        "OPENROUTER_API_KEY": "sk-or-test", "OPENROUTER_API_BASE": fakes["openrouter"].api_base,
        "OPENAI_API_KEY": "sk-openai-test", "OPENAI_API_BASE": fakes["openai"].api_base,
        # Nothing listens here unless a test passes real local servers: connection refused.
        "LOCAL_WHISPER_API_BASE": "http://127.0.0.1:9/v1", "LOCAL_QWEN_API_BASE": "http://127.0.0.1:9/v1",
    }
    env.update(local or {})
    return env


def write_config(tmp_dir: Path, router_settings: dict[str, Any] | None = None,
                 timeouts: dict[str, float] | None = None, extra: dict[str, Any] | None = None,
                 deployment_params: dict[str, Any] | None = None) -> Path:
    """A copy of config/models.yaml with test-sized knobs (short cooldowns and timeouts).

    `timeouts` maps a provider to the `timeout` (and `stream_timeout`) of its deployments;
    `deployment_params` maps "alias/provider" to extra litellm_params (e.g. rpm).
    """
    import yaml

    from tests.support.proc import ROOT

    data = yaml.safe_load((ROOT / "config" / "models.yaml").read_text())
    data["router_settings"].update(router_settings or {})
    for dep in data["model_list"]:
        provider = dep["model_info"]["provider"]
        if timeouts and provider in timeouts:
            dep["litellm_params"]["timeout"] = timeouts[provider]
            if "stream_timeout" in dep["litellm_params"]:
                dep["litellm_params"]["stream_timeout"] = timeouts[provider]
        dep["litellm_params"].update((deployment_params or {}).get(f"{dep['model_name']}/{provider}", {}))
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp_dir / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
