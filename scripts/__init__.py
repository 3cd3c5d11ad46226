"""Command-line tools: set-up, serving, reports and benchmarks (run as `python -m scripts.NAME`)."""
