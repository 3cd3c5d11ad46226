"""Budgets switch exactly at their threshold: to the next provider, or to a budget_exceeded refusal."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from plugins.budgets import parse_budgets
from gateway.config import ConfigError
from tests.gateway.test_ledger import AUDIO, ledger_rows

MSG = [{"role": "user", "content": "a b"}]      # the fakes count 2 prompt tokens
REPLY = "one two three"                          # and 3 completion tokens
C_GROQ = 2 * 0.59e-6 + 3 * 0.79e-6               # main on Groq at the YAML's model_info prices
OR_PRICE = (0.001, 0.002)                        # OpenRouter usage.cost prices set on the fake
C_OR = 2 * OR_PRICE[0] + 3 * OR_PRICE[1]
C_STT = 4.412 * 0.0001                           # en_orders.wav (4.412 s) on OpenAI whisper-1


def budgets_config() -> dict:
    return {"extra": {"budgets": {
        "on_limit": "next",
        "provider": {"groq": {"daily": 3 * C_GROQ}, "openrouter": {"daily": 2 * C_OR, "on_limit": "refuse"}},
        "alias": {"stt": {"monthly": 2 * C_STT}},
    }}}


def chat(client, user: str):
    return client.chat.completions.with_raw_response.create(model="main", messages=MSG, user=user)


def metric(gw, sample_name: str, **labels) -> float:
    text = httpx.get(gw.base_url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {sample_name} {labels}")


def test_budgets_switch_exactly_at_threshold(start_gateway, fakes):
    fakes["groq"].reply(content=REPLY)
    fakes["openrouter"].reply(content=REPLY)
    fakes["openrouter"].set_price("qwen/qwen-2.5-72b-instruct", *OR_PRICE)
    gw = start_gateway(config=budgets_config())
    client = gw.client()

    # Groq (on_limit: next) takes 3 requests: its spend then equals its limit and the 4th goes on.
    providers = [chat(client, f"b{i}").headers["x-modelgate-provider"] for i in range(1, 6)]
    assert providers == ["groq", "groq", "groq", "openrouter", "openrouter"]
    assert len(fakes["groq"].requests()) == 3 and len(fakes["openrouter"].requests()) == 2
    assert metric(gw, "modelgate_budget_remaining_usd", scope="provider", name="groq", period="daily") == \
        pytest.approx(0, abs=1e-12)
    assert metric(gw, "modelgate_budget_diverted_total", provider="groq") >= 2

    # OpenRouter (on_limit: refuse) is spent after 2: the next request is refused, OpenAI-shaped.
    with pytest.raises(openai.RateLimitError) as refused:
        chat(client, "b6")
    error = refused.value.body
    assert refused.value.status_code == 429 and error["code"] == "budget_exceeded"
    assert "openrouter" in error["message"] and "daily budget" in error["message"]
    assert int(refused.value.response.headers["retry-after"]) > 0
    assert len(fakes["openrouter"].requests()) == 2

    # An alias budget refuses too; transcriptions are diverted past the spent Groq budget to OpenAI.
    for i in range(2):
        with (AUDIO / "en_orders.wav").open("rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(
                model="stt", file=f, response_format="verbose_json", extra_headers={"x-modelgate-user": f"s{i}"})
        assert raw.headers["x-modelgate-provider"] == "openai"
    with (AUDIO / "en_orders.wav").open("rb") as f, pytest.raises(openai.RateLimitError) as refused:
        client.audio.transcriptions.create(model="stt", file=f, extra_headers={"x-modelgate-user": "s2"})
    assert refused.value.body["code"] == "budget_exceeded" and "alias 'stt'" in refused.value.body["message"]

    rows = {r["end_user"]: r for r in ledger_rows(gw)}
    assert [rows[f"b{i}"]["provider"] for i in range(1, 6)] == providers
    assert sum(rows[f"b{i}"]["cost_usd"] for i in range(1, 4)) == pytest.approx(3 * C_GROQ)
    assert (rows["b6"]["status"], rows["b6"]["provider"], rows["b6"]["error_class"], rows["b6"]["http_status"]) == \
        ("refused", "openrouter", "BudgetExceeded", 429)
    assert rows["s2"]["status"] == "refused"
    costs = httpx.get(gw.base_url + "/admin/costs?days=1", headers={"Authorization": f"Bearer {gw.key}"}).json()
    spent = {(b["scope"], b["name"], b["period"]): b for b in costs["budgets"]}
    assert spent[("provider", "openrouter", "daily")]["reached"] is True
    assert spent[("provider", "openrouter", "daily")]["spent_usd"] == pytest.approx(2 * C_OR)

    # A restart reads the spend back from the ledger: still over budget.
    gw.stop()
    again = start_gateway(config=budgets_config(), env={"MODELGATE_LEDGER_URL": gw.ledger_url})
    with pytest.raises(openai.RateLimitError):
        chat(again.client(), "b7")
    assert len(fakes["groq"].requests()) == 3 and len(fakes["openrouter"].requests()) == 2


@pytest.mark.parametrize(("section", "message"), [
    ({"provider": {"nope": {"daily": 1}}}, "unknown provider"),
    ({"provider": {"groq": {"daily": -1}}}, "USD amount"),
    ({"provider": {"groq": {}}}, "neither daily nor monthly"),
    ({"on_limit": "sometimes"}, "on_limit"),
    ({"alias": {"main": {"daily": 1, "on_limit": "next"}}}, "can only refuse"),
    ({"alias": {"nope": {"daily": 1}}}, "unknown alias"),
    ({"extra": 1}, "unknown key"),
])
def test_bad_budget_config_is_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_budgets(section, {"main", "stt"})
