"""Prometheus metrics match the requests sent; Langfuse traces reach the (fake) Langfuse when keys are set."""

from __future__ import annotations

import importlib.util
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.test_ledger import AUDIO, SECRET, ledger_rows
from tests.support.langfuse import FakeLangfuse

MSG = [{"role": "user", "content": SECRET}]
HAVE_OTEL = all(importlib.util.find_spec(m) is not None for m in
                ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http", "opentelemetry.proto"))


def samples(gw) -> list:
    response = httpx.get(gw.base_url + "/metrics")
    assert response.status_code == 200
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def total(all_samples, name: str, **labels) -> float:
    return sum(s.value for s in all_samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def eventually(check, timeout: float = 10):  # noqa: ANN001, ANN201 - LiteLLM's loggers run after the answer
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def langfuse():
    fake = FakeLangfuse()
    yield fake
    fake.close()


def test_metrics_match_requests_sent(start_gateway, fakes, langfuse):
    gw = start_gateway(env={"LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-test",
                            "LANGFUSE_HOST": langfuse.url, "OTEL_BSP_SCHEDULE_DELAY": "100"},
                       config={"extra": {"metrics": {"litellm": True}}})
    client = gw.client()
    for i in range(3):
        client.chat.completions.create(model="main", messages=MSG, user=f"m{i}")
    fakes["groq"].fail("500", count=1, model="llama-3.1-8b-instant")  # fast: Groq fails once, OpenRouter answers
    for i in range(2):
        client.chat.completions.create(model="fast", messages=MSG, user=f"f{i}")
    with (AUDIO / "en_orders.wav").open("rb") as f:
        client.audio.transcriptions.create(model="stt", file=f)

    def check_counts():
        s = samples(gw)
        assert total(s, "modelgate_requests_total", provider="groq", status="ok") == 4
        assert total(s, "modelgate_requests_total", provider="groq", alias="main") == 3
        assert total(s, "modelgate_requests_total", provider="groq", alias="stt", kind="transcription") == 1
        assert total(s, "modelgate_requests_total", provider="openrouter") == 2
        assert total(s, "modelgate_upstream_errors_total", provider="groq", alias="fast",
                     error_class="InternalServerError") == 1
        assert total(s, "modelgate_fallbacks_total", provider="openrouter", alias="fast") == 1
        assert total(s, "modelgate_request_latency_seconds_count", provider="groq", alias="main") == 3
        # LiteLLM's own Prometheus callback, by deployment id (warm-up calls are not counted)
        assert total(s, "litellm_proxy_total_requests_metric_total", model_id="main/groq") == 3
        assert total(s, "litellm_proxy_total_requests_metric_total", model_id="fast/openrouter") == 2
        return s

    s = eventually(check_counts)
    rows = ledger_rows(gw)
    assert len(fakes["groq"].requests()) == 5 and len(fakes["openrouter"].requests()) == 2
    for provider in ("groq", "openrouter"):
        mine = [r for r in rows if r["provider"] == provider]
        assert total(s, "modelgate_tokens_total", provider=provider, direction="input") == \
            sum(r["prompt_tokens"] for r in mine)
        assert total(s, "modelgate_tokens_total", provider=provider, direction="output") == \
            sum(r["completion_tokens"] for r in mine)
        assert total(s, "modelgate_cost_usd_total", provider=provider) == pytest.approx(sum(r["cost_usd"] for r in mine))
    assert total(s, "modelgate_audio_seconds_total", alias="stt") == pytest.approx(4.412, abs=0.01)

    if not HAVE_OTEL:  # keys set, packages missing: one warning, no tracing, no error
        log = gw.process.log()
        assert "Langfuse keys are set but tracing is off" in log and "Traceback" not in log
        assert langfuse.posts == []


@pytest.mark.skipif(not HAVE_OTEL, reason="langfuse_otel needs opentelemetry-sdk and "
                                          "opentelemetry-exporter-otlp-proto-http (not in the lock yet)")
def test_langfuse_traces_carry_alias_provider_and_cost(start_gateway, fakes, langfuse):
    gw = start_gateway(env={"LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-test",
                            "LANGFUSE_HOST": langfuse.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    client = gw.client()
    fakes["groq"].fail("500", count=1, model="llama-3.1-8b-instant")  # fast: Groq fails once, OpenRouter answers
    for i in range(2):
        client.chat.completions.create(model="fast", messages=MSG, user=f"f{i}")
    rows = ledger_rows(gw)

    def check_traces():
        spans = langfuse.spans()
        tagged = [sp for sp in spans if "provider:openrouter" in (sp["attributes"].get("langfuse.trace.tags") or "")]
        assert tagged, [sp["attributes"].get("langfuse.trace.tags") for sp in spans]
        return spans, tagged[0]["attributes"]

    spans, attrs = eventually(check_traces, timeout=15)
    assert '"alias": "fast"' in attrs["langfuse.trace.metadata"]
    assert '"provider": "openrouter"' in attrs["langfuse.trace.metadata"]
    user = attrs["user.id"]
    assert user in ("f0", "f1") and attrs["langfuse.trace.name"] == "chat fast"
    cost = next(r["cost_usd"] for r in rows if r["end_user"] == user)
    assert attrs["llm.cost.total"] == pytest.approx(cost) and attrs["llm.provider"] == "openrouter"
    assert all(sp["authorization"] == FakeLangfuse.basic_auth("pk-lf-test", "sk-lf-test") for sp in spans)
    assert all("langfuse.trace.metadata" in sp["attributes"] for sp in spans)  # only routed calls, no warm-up
    assert all(SECRET.encode() not in post["body"] for post in langfuse.posts)  # prompts redacted by default


def test_langfuse_off_without_keys_is_silent(gateway, fakes, langfuse):
    gateway.client().chat.completions.create(model="fast", messages=MSG)
    time.sleep(0.5)
    log = gateway.process.log()
    assert "modelgate.tracing" not in log and "Traceback" not in log and " ERROR " not in log
    assert "otel" not in log.lower().replace(str(gateway.flags_file.parent).lower(), "")
    assert langfuse.posts == []
