"""Schemathesis against the local servers' own OpenAPI specs (FastAPI's /openapi.json), real models.

Random bytes rarely decode as audio and the llama server runs with a 256-token context, so most
cases are refusals and the inferences stay short; each fuzz test takes about a minute on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.fuzz import assert_alive, fuzz
from tests.support.proc import ROOT, ServerProcess, free_port


def start(module: str, env: dict[str, str]) -> ServerProcess:
    port = free_port()
    return ServerProcess(["-m", module, "--port", str(port)], port, env, log_name=f"fuzz-{module}").wait_ready(
        "/health", timeout=120)


@pytest.fixture(scope="module")
def llama() -> Iterator[ServerProcess]:
    server = start("local_servers.llama", {
        "LOCAL_QWEN_MODEL_PATH": str(ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf"), "LOCAL_QWEN_THREADS": "2",
        "LOCAL_QWEN_DEVICE": "cpu", "LOCAL_QWEN_GPU_LAYERS": "0", "LOCAL_QWEN_CONTEXT": "256"})
    try:
        yield server
    finally:
        server.stop()


def test_fuzz_whisper_server() -> None:
    server = start("local_servers.whisper", {"LOCAL_WHISPER_MODEL": "models/whisper-base",
                                             "LOCAL_WHISPER_DEVICE": "cpu", "LOCAL_WHISPER_THREADS": "2"})
    try:
        fuzzed = fuzz(server.base_url)
        assert {"POST /v1/audio/transcriptions", "POST /v1/audio/translations"} <= set(fuzzed)
        assert_alive(server.base_url)
    finally:
        server.stop()


def test_fuzz_llama_server(llama: ServerProcess) -> None:
    assert "POST /v1/chat/completions" in fuzz(llama.base_url)
    assert_alive(llama.base_url)


@pytest.mark.parametrize("stream", [False, True])
def test_completion_that_fills_the_context_mid_character_ends_with_length(llama: ServerProcess, stream: bool) -> None:
    """Found by the fuzzer: llama-cpp-python samples past max_tokens while a UTF-8 character is
    incomplete, and at the end of the context llama_decode failed (500). This seed ends on a
    half emoji exactly there."""
    body = {"messages": [{"role": "user", "content": "Reply with emoji only: " + "🌟🌈🌍👍🌊" * 12}],
            "temperature": 2.0, "seed": 206, "stream": stream, "stream_options": {"include_usage": True}}
    response = httpx.post(llama.base_url + "/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    if stream:
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]" and '"error"' not in response.text, events[-3:]
        assert '"finish_reason":"length"' in events[-3]
        assert '"total_tokens":256' in events[-2]
    else:
        answer = response.json()
        assert answer["choices"][0]["finish_reason"] == "length"
        assert answer["usage"]["total_tokens"] == 256
