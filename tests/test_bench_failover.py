"""The failover benchmark's bookkeeping: which requests paid a failure or a timeout, and what came after."""

from __future__ import annotations

from scripts.bench_failover import Sample, parse_router, percentile, primary_timeout, summarise
from tests.support.gateway import write_config


def test_summarise_splits_at_the_first_recorded_failure():
    healthy = [Sample(i, i + 0.010, 0) for i in range(10)]
    failing = [
        Sample(0.0, 8.0, 1),     # the hang: one timeout, then the fallback answered
        Sample(0.5, 8.6, 1),     # in flight before the first failure was recorded: a timeout too
        *[Sample(9 + i, 9 + i + 0.012, 0) for i in range(8)],  # cooled down: straight to the fallback
    ]
    s = summarise(healthy, failing, timeout_s=8, primary_attempts=2)
    assert (s["paid_failure"], s["paid_timeout"], s["primary_attempts"], s["failed"]) == (2, 2, 2, 0)
    assert s["after"] == 8 and round(s["first_ms"]) == 8000
    assert round(s["extra_p50"], 3) == 2.0 and round(s["extra_p99"], 3) == 2.0
    # Lost: each request's latency over the healthy median (10 ms), summed: 7.99 + 8.09 + 8 * 0.002.
    assert round(s["lost_s"], 3) == round(7.99 + 8.09 + 8 * 0.002, 3)


def test_summarise_counts_failed_requests_and_a_retried_timeout_without_fallback():
    failing = [Sample(0, 16.5, 0), Sample(17, 17.01, -1)]  # a retry answered after two timeouts; one error
    s = summarise([Sample(0, 0.01, 0)], failing, timeout_s=8)
    assert (s["paid_failure"], s["paid_timeout"], s["failed"]) == (1, 1, 1)
    assert s["after"] == 0 and "extra_p99" not in s


def test_percentile_and_router_overrides():
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([7], 0.99)) == (50, 99, 7)
    assert parse_router("num_retries=2, cooldown_time=5.5,routing_strategy=simple-shuffle") == {
        "num_retries": 2, "cooldown_time": 5.5, "routing_strategy": "simple-shuffle"}


def test_primary_timeout_reads_the_first_deployment(tmp_path):
    config = write_config(tmp_path, timeouts={"groq": 3.0})
    assert primary_timeout(config, "fast", stream=False) == 3.0
    assert primary_timeout(config, "main", stream=True) == 3.0
