"""Shared pytest fixtures.

The environment is set here, before any test module is imported: LiteLLM reads these at import time.
Nothing imported by this file imports LiteLLM.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.client import FakeProvider, start_fakes, stop_fakes

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no Hugging Face downloads (tokenizers) from tests
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map fetch from GitHub


# ---- fake cloud providers (tests/fakes) ------------------------------------------------------------------
@pytest.fixture(scope="session")
def fake_providers() -> Iterator[dict[str, FakeProvider]]:
    """The three fake providers as processes for the whole session: {"groq", "openrouter", "openai"}."""
    fakes = start_fakes()
    try:
        yield fakes
    finally:
        stop_fakes(fakes)


@pytest.fixture
def fakes(fake_providers: dict[str, FakeProvider]) -> dict[str, FakeProvider]:
    """`fake_providers`, reset (no faults, no overrides, empty request log) before the test."""
    for fake in fake_providers.values():
        fake.reset()
    return fake_providers
