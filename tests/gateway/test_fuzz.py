"""Schemathesis against the real gateway's own OpenAPI spec (GET /openapi.json), fake providers behind it.

The fakes answer every request normally, so any 5xx is the gateway's own failure: a relayed
upstream 502/503/504 would need a provider fault, and none is set here. The local provider is left
out (ENABLE_LOCAL=false): nothing listens for it in this test.
"""

from __future__ import annotations

import httpx

from tests.support.fuzz import assert_alive, fuzz


def test_spec_lists_routes_and_serves_models(gateway) -> None:
    spec = httpx.get(gateway.base_url + "/openapi.json").json()
    assert set(spec["paths"]) >= {"/v1/chat/completions", "/v1/audio/transcriptions", "/v1/models", "/health",
                                  "/admin/flags", "/admin/costs", "/admin/shadow", "/metrics",
                                  "/dashboard", "/admin/state", "/admin/stats"}
    assert set(spec["paths"]["/admin/flags"]) == {"get", "put", "patch"}
    schemas = spec["components"]["schemas"]
    assert {"main", "fast", "llama-3.3-70b-versatile"} <= set(schemas["ChatModel"]["enum"])
    assert set(schemas["TranscriptionModel"]["enum"]) == {"stt", "stt-realtime", "whisper-large-v3-turbo", "whisper-large-v3"}
    assert "/openai/v1/chat/completions" not in spec["paths"]  # same handlers as /v1: listed once


def test_fuzz_gateway(start_gateway) -> None:
    gateway = start_gateway(env={"ENABLE_LOCAL": "false"})
    fuzzed = fuzz(gateway.base_url, headers={"Authorization": f"Bearer {gateway.key}"})
    assert "POST /v1/chat/completions" in fuzzed and "POST /v1/audio/transcriptions" in fuzzed
    assert "GET /admin/state" in fuzzed and "GET /admin/stats" in fuzzed
    assert_alive(gateway.base_url)
