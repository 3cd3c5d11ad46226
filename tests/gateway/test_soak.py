"""A short soak (scripts/soak.py): mixed load through the openai SDK while Groq flaps, no request lost.

The full 5-minute soak and its RSS goal are `python -m scripts.soak`; RSS over a few seconds is
noise, so this only checks that memory did not run away.
"""

from __future__ import annotations

import httpx

from scripts.soak import FAULTS, KINDS, soak
from tests.fakes.client import start_fakes, stop_fakes


def test_mixed_load_with_a_flapping_primary_loses_no_request(start_gateway):
    primary = start_fakes(["groq"])["groq"]  # its own process: the `refused` phase stops and restarts it
    try:
        # Test-sized knobs: a hang costs 1 s, and a 2 s cooldown lets each 2.5 s phase be seen.
        gw = start_gateway(env={"GROQ_API_BASE": primary.api_base},
                           config={"timeouts": {"groq": 1.0}, "router_settings": {"cooldown_time": 2}})
        results = soak(gw, primary, seconds=25, flap_s=2.5, workers=3, warmup_s=3)
    finally:
        primary.close()

    assert results.failed == []
    summary = results.summary()
    assert all(summary["ok"].get(kind, 0) >= 5 for kind in KINDS), summary["ok"]
    # Groq answered in its healthy phases, the fallbacks in its failing ones (OpenAI: transcription).
    assert {"groq", "openrouter", "openai"} <= set(summary["served_by"]), summary["served_by"]
    assert results.phases == list(FAULTS[: len(results.phases)]) and len(results.phases) >= 4
    assert summary["rss_end_mb"] < 1.5 * summary["rss_start_mb"]
    assert httpx.get(gw.base_url + "/health").status_code == 200
