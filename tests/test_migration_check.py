"""scripts/migration_check.py on crafted ledgers, configs and app source trees."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from plugins import shadow
from plugins.ledger_store import LedgerStore, utcnow
from scripts import migration_check

KEYS = ("GROQ_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "ENABLE_LOCAL", "ENABLE_GROQ", "MODELGATE_CONFIG",
        "MODELGATE_LEDGER_URL", "PRIMARY_PROVIDER", "FALLBACK_PROVIDERS", "ENABLE_MODEL_ABSTRACTION")


def row(provider: str, *, ago_h: float = 1, status: str = "ok", latency: float = 1000, cost: float = 0.0001,
        alias: str = "main", tokens: tuple[int, int] = (1000, 500), shadow_row: bool = False) -> dict:
    return {"request_id": "r", "ts": utcnow() - dt.timedelta(hours=ago_h), "kind": "chat", "alias": alias,
            "model_group": alias, "provider": provider, "deployment": f"{alias}/{provider}", "model": "m",
            "prompt_tokens": tokens[0], "completion_tokens": tokens[1], "audio_seconds": 0.0, "cost_usd": cost,
            "cost_source": "provider", "latency_ms": latency, "status": status,
            "http_status": 200 if status == "ok" else 500, "error_class": None if status == "ok" else "APIError",
            "fallback_depth": 0, "stream": False, "end_user": "u", "cohort": "migration", "shadow": shadow_row}


@pytest.fixture
def env(monkeypatch, tmp_path):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    return monkeypatch


def ledger(tmp_path, rows, comparisons=()) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    store = LedgerStore(url)
    store.insert_many(rows)
    shadow.metadata.create_all(store.engine)
    with store.engine.begin() as conn:
        for c in comparisons:
            conn.execute(shadow.comparisons.insert(), [{"ts": utcnow(), "kind": "chat", "alias": "main",
                                                        "primary_deployment": "main/groq", "status": "ok",
                                                        "json_expected": True, **c}])
    store.close()
    return url


def test_ready(env, tmp_path, capsys):
    for key in ("GROQ_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY"):
        env.setenv(key, "test")
    rows = [row("groq", ago_h=48, latency=900) for _ in range(20)]                 # baseline, 2 days ago
    rows += [row("groq", latency=800)] + [row("openrouter", latency=1500) for _ in range(39)]
    rows += [row("openrouter", shadow_row=True, status="error")] * 5              # shadow rows don't count
    url = ledger(tmp_path, rows, [{"candidate": "main/openrouter", "candidate_json_valid": True}] * 3)
    ab = tmp_path / "results.json"
    ab.write_text(json.dumps({"summary": {"b": {"by_provider": {"local": {"json_requests": 4, "json_valid": 4}}}}}))
    app = tmp_path / "app"
    (app / "node_modules" / "groq").mkdir(parents=True)
    (app / "node_modules" / "groq" / "index.js").write_text("fetch('https://api.groq.com/openai/v1')")  # skipped
    (app / "main.py").write_text("from openai import OpenAI\nclient = OpenAI(base_url='http://gw:4000/v1')\n")
    code = migration_check.main(["--url", url, "--app-src", str(app), "--ab-report", str(ab)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "READY" in out and out.count("PASS") == 7


def test_not_ready_lists_the_reasons(env, tmp_path, capsys):
    env.setenv("GROQ_API_KEY", "test")
    env.setenv("ENABLE_LOCAL", "false")           # no OpenRouter/OpenAI key and no local: Groq only
    rows = [row("groq", latency=500) for _ in range(10)]
    rows += [row("openrouter", latency=5000, cost=0.01), row("openrouter", status="error", latency=None)]
    url = ledger(tmp_path, rows, [{"candidate": "main/openrouter", "candidate_json_valid": False}])
    app = tmp_path / "app"
    app.mkdir()
    (app / "client.py").write_text("import os\nfrom groq import Groq\nURL = 'https://api.groq.com/openai/v1'\n")
    code = migration_check.main(["--url", url, "--app-src", str(app)])
    out = capsys.readouterr().out
    assert code == 1 and "NOT READY" in out
    reasons = out.split("NOT READY:")[1]
    assert "Groq still answers 90.9% of traffic (max 5%)" in reasons
    assert "client.py:2: from groq import Groq" in reasons and "client.py:3:" in reasons
    assert "alias main has 1 provider(s) (groq): needs two" in reasons and "alias stt has no non-Groq provider" in reasons
    assert "no new provider to verify JSON mode on" in reasons
    assert "error rate on openrouter is 50.0%" in reasons
    assert "p95 latency on openrouter is 5000 ms, above 3x Groq's 500 ms" in reasons
    assert "new providers cost $0.010000" in reasons


def test_json_evidence_needed_per_provider(env, tmp_path):
    for key in ("GROQ_API_KEY", "OPENROUTER_API_KEY"):
        env.setenv(key, "test")
    url = ledger(tmp_path, [row("openrouter")], [{"candidate": "main/openrouter", "candidate_json_valid": False},
                                                 {"candidate": "main/openrouter", "candidate_json_valid": True}])
    checks = {c.name: c for c in migration_check.run(migration_check.parser().parse_args(["--url", url]))}
    assert checks["json-mode"].status == "FAIL"
    assert checks["json-mode"].reasons == ["JSON mode not verified on local: no A/B or shadow JSON results",
                                           "JSON validity on openrouter is 50% (1/2), below 95%"]
    assert checks["app-source"].status == "SKIP" and checks["latency"].status == "SKIP"
