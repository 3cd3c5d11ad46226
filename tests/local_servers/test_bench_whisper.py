"""scripts/bench_whisper.py runs end to end (on the shortest fixture, so it stays cheap)."""

from __future__ import annotations

import pytest

from scripts import bench_whisper


def test_bench_prints_both_tables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny.en for speed: this checks the script works, not the numbers (see docs/local_servers.md).
    monkeypatch.setenv("LOCAL_WHISPER_MODEL", "models/whisper-tiny.en")
    assert (
        bench_whisper.main(["--rounds", "1", "--clients", "2", "--requests", "1", "--clips", "en_orders.wav"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| en_orders.wav | 4.4 |" in out
    assert "| 2 | 2 | 2 | 0 |" in out  # clients, requests, succeeded, failed


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert bench_whisper.percentile(values, 50) == 5.0
    assert bench_whisper.percentile(values, 99) == 10.0
    assert bench_whisper.percentile([3.0], 99) == 3.0
