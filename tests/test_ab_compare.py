"""scripts/ab_compare.py against a real gateway in front of the fake providers."""

from __future__ import annotations

import json

from scripts import ab_compare
from tests.gateway.conftest import start_gateway  # noqa: F401 - the gateway factory fixture


def test_ab_report_on_fakes(start_gateway, fakes, tmp_path, capsys):  # noqa: F811
    gw = start_gateway()
    fakes["openrouter"].set_price("qwen/qwen-2.5-72b-instruct", prompt=1e-6, completion=2e-6)
    fakes["openrouter"].fail("invalid_json", count=1, model_contains="7b")   # one bad JSON answer on B
    out = tmp_path / "report"
    code = ab_compare.main(["--a", "groq", "--b", "openrouter,stt@openai", "--out", str(out),
                            "--base-url", gw.api_base, "--key", gw.key, "--ledger-url", gw.ledger_url])
    assert code == 0
    html = (out / "report.html").read_text()
    for png in ("latency.png", "cost.png", "quality.png", "agreement.png", "wer.png"):
        assert (out / png).stat().st_size > 1000 and f'src="{png}"' in html
    results = json.loads((out / "results.json").read_text())
    a, b = results["summary"]["a"], results["summary"]["b"]
    assert a["requests"] == b["requests"] == 18
    assert a["by_provider"].keys() == {"groq"} and b["by_provider"].keys() == {"openrouter", "openai"}
    assert a["errors"] == 0 and a["json_valid_rate"] == 1.0
    # The pin means no fallback: B's bad JSON is B's error (the JSON guard's 502), not Groq's answer.
    assert b["errors"] == 1 and b["by_provider"]["openrouter"]["errors"] == 1
    assert b["json_valid_rate"] == 11 / 12
    assert 0 < a["mean_wer_vs_reference"] and b["mean_wer_vs_reference"] is not None
    assert b["cost_usd"]["total"] > 0 and a["cost_usd"]["priced"] == 18          # costs from the ledger
    assert "sk-" not in (out / "results.json").read_text() and "Analyse this case" not in html
