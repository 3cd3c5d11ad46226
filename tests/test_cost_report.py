"""scripts/cost_report.py: the tables, the Groq counterfactual and the PNG, from a ledger written here."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from plugins.ledger_store import LedgerStore, reference_rates, summarize, utcnow
from tests.support.proc import ROOT

CONFIG = ROOT / "config" / "models.yaml"


def row(alias: str, provider: str, cost: float, prompt: int = 0, completion: int = 0, audio: float = 0.0,
        status: str = "ok", days_ago: int = 0) -> dict:
    return {"request_id": os.urandom(8).hex(), "ts": utcnow() - dt.timedelta(days=days_ago), "kind": "chat",
            "alias": alias, "model_group": alias, "provider": provider, "deployment": f"{alias}/{provider}",
            "model": "m", "prompt_tokens": prompt, "completion_tokens": completion, "audio_seconds": audio,
            "cost_usd": cost, "cost_source": "config", "latency_ms": 10.0, "status": status, "http_status": 200,
            "stream": False, "shadow": False, "fallback_depth": 0}


@pytest.fixture
def ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    store = LedgerStore(url)
    store.insert_many([
        row("main", "openrouter", 0.40, prompt=1_000_000, completion=1_000_000),      # Groq: 0.59 + 0.79
        row("fast", "openrouter", 0.05, prompt=2_000_000, completion=1_000_000, days_ago=1),  # 0.10 + 0.08
        row("stt", "local", 0.0, audio=3600.0),                                          # one hour: 0.04
        row("main", "groq", 0.0, prompt=500, status="error"),                           # failed: not counted
        row("main", "openrouter", 9.99, prompt=1, days_ago=30),                          # outside --days 7
    ])
    store.close()
    return url


def test_counterfactual_groq_cost(ledger):
    import yaml
    rates = reference_rates(yaml.safe_load(CONFIG.read_text())["groq_reference_prices"])
    store = LedgerStore(ledger, create=False)
    summary = summarize(store.aggregate(utcnow() - dt.timedelta(days=7)), rates)
    store.close()
    assert summary["by_alias"]["main"]["groq_cost_usd"] == pytest.approx(0.59 + 0.79)
    assert summary["by_alias"]["fast"]["groq_cost_usd"] == pytest.approx(0.10 + 0.08)
    assert summary["by_alias"]["stt"]["groq_cost_usd"] == pytest.approx(0.04)
    assert summary["total"]["groq_cost_usd"] == pytest.approx(1.38 + 0.18 + 0.04)
    assert summary["total"]["cost_usd"] == pytest.approx(0.45)
    assert summary["total"]["requests"] == 4 and summary["total"]["errors"] == 1
    assert summary["by_provider"]["local"]["audio_minutes"] == pytest.approx(60)


def test_cost_report_prints_tables_and_writes_png(ledger, tmp_path):
    png = tmp_path / "out" / "costs.png"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cost_report.py"), "--url", ledger,
                             "--days", "7", "--png", str(png), "--config", str(CONFIG)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for header in ("day ", "provider ", "alias ", "on Groq USD", "audio min"):
        assert header in out
    alias_table = out.split("\nalias ")[1]
    main_line = next(line for line in alias_table.splitlines() if line.startswith("main "))
    assert "0.400000" in main_line and "1.380000" in main_line and "1,000,500" in main_line
    assert "60.00" in next(line for line in alias_table.splitlines() if line.startswith("stt "))
    assert "the same traffic on Groq: $1.6000" in out and "9.99" not in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_cost_report_on_an_empty_ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    LedgerStore(url).close()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cost_report.py"), "--url", url, "--days", "1",
                             "--png", str(tmp_path / "e.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Spent $0.0000" in result.stdout and (tmp_path / "e.png").exists()
