"""scripts/bench_gateway.py: its arithmetic, the stock proxy's config, and one short end-to-end run
(a few requests per target: this checks the script, not the numbers)."""

from __future__ import annotations

import os
import re

import yaml

from gateway import config
from gateway.settings import Settings
from scripts import bench_gateway
from scripts.bench_gateway import Sample, percentile, ratios, summarize
from tests.support.gateway import write_config


def test_added_latency_is_over_the_direct_fake_and_ratios_compare_to_the_stock_proxy():
    samples = {"direct": Sample([1.0] * 10, seconds=1.0),
               "litellm": Sample([11.0] * 9 + [30.0], seconds=2.0),
               "modelgate": Sample([5.0] * 10, seconds=0.5, cpu_seconds=0.02)}
    rows = summarize(samples)
    assert rows["direct"]["rps"] == 10 and rows["litellm"]["rps"] == 5 and rows["modelgate"]["rps"] == 20
    assert rows["litellm"]["added_p50"] == 10.0 and rows["litellm"]["added_p99"] == 29.0
    assert rows["modelgate"]["added_p50"] == 4.0 and rows["modelgate"]["cpu_ms"] == 2.0
    assert ratios(rows) == {"throughput": 4.0, "added_p50": 0.4}
    assert ratios({"modelgate": rows["modelgate"]}) == {}
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 3.0


def test_the_stock_proxy_gets_the_gateways_router_config_without_modelgate_sections(tmp_path):
    env = {"GROQ_API_KEY": "gsk_test", "GROQ_API_BASE": "http://127.0.0.1:9/openai/v1",
           "OPENROUTER_API_KEY": "sk-or-test", "OPENAI_API_KEY": "sk-openai-test"}
    models = write_config(tmp_path)
    out = yaml.safe_load(bench_gateway.stock_config(env, models, tmp_path / "litellm.yaml").read_text())
    resolved = config.resolve(Settings(_env_file=None, **env, MODELGATE_CONFIG=str(models)))
    assert set(out) == {"model_list", "router_settings", "litellm_settings"}
    assert out["model_list"] == resolved.model_list() and out["router_settings"] == resolved.router_settings
    assert "callbacks" not in out["litellm_settings"] and out["litellm_settings"]["drop_params"] is True


def test_cpu_time_of_a_process():
    assert bench_gateway.cpu_seconds(os.getpid()) > 0
    assert bench_gateway.cpu_seconds(None) == 0.0


def test_bench_gateway_prints_its_table(capsys):
    assert bench_gateway.main(["--concurrency", "1", "2", "--seconds", "0.3", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for target in ("direct", "litellm", "modelgate"):
        assert re.search(rf"\| 2 \| {target} \| [1-9]\d* \| 0 \| \d+ \|", out), out
    assert re.search(r"concurrency 2: modelgate/litellm throughput \d+\.\d\dx", out)
