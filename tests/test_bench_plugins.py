"""scripts/bench_plugins.py runs end to end (few requests: this checks the script, not the numbers)."""

from __future__ import annotations

import re

from scripts import bench_plugins


def test_bench_plugins_prints_its_table(capsys):
    assert bench_plugins.main(["--requests", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| plugins: none \| \d+\.\d\d \| \d+\.\d\d \|", out)
    assert re.search(r"\| plugins: all \| \d+\.\d\d \| \d+\.\d\d \|", out)
    assert re.search(r"plugins add -?\d+\.\d\d ms median", out)
    assert bench_plugins.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0
