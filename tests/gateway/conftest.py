"""Gateway fixtures: the real gateway process in front of the fake providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway, provider_env, write_config


@pytest.fixture
def start_gateway(fakes, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Factory: start_gateway(env={...}, config={...write_config kwargs}) -> a running Gateway.

    Defaults: every provider points at its fake, the local provider at a closed port, cooldown 2 s.
    """
    started: list[Gateway] = []

    def start(env: dict[str, str] | None = None, config: dict[str, Any] | None = None,
              local: dict[str, str] | None = None) -> Gateway:
        cfg = dict(config or {})
        cfg.setdefault("router_settings", {}).setdefault("cooldown_time", 2)
        config_dir = tmp_path / f"gw{len(started)}"
        config_dir.mkdir()
        full_env = {**provider_env(fakes, local), "MODELGATE_CONFIG": str(write_config(config_dir, **cfg)),
                    **(env or {})}
        gateway = Gateway(full_env, config_dir / "flags.yaml", log_name=f"gateway-{len(started)}")
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(start_gateway) -> Gateway:
    """A gateway with groq, openrouter and openai (fakes) and default flags."""
    return start_gateway()
