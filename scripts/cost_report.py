"""Cost report from the ledger: spend by day, provider and alias, and what Groq would have cost.

    python scripts/cost_report.py                       # last 7 UTC days, var/ledger.sqlite (or MODELGATE_LEDGER_URL)
    python scripts/cost_report.py --days 30 --url postgresql://user@host/db --png costs.png

The Groq counterfactual prices the same tokens and audio seconds at `groq_reference_prices` from the
YAML (--config, default config/models.yaml or MODELGATE_CONFIG), for answered calls only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from plugins.ledger_store import (LedgerStore, ledger_url, redacted, reference_rates, since_days,  # noqa: E402
                                  summarize)

COLUMNS = [("requests", "requests", "{:d}"), ("errors", "errors", "{:d}"), ("tokens in", "prompt_tokens", "{:,d}"),
           ("tokens out", "completion_tokens", "{:,d}"), ("audio min", "audio_minutes", "{:.2f}"),
           ("cost USD", "cost_usd", "{:.6f}"), ("on Groq USD", "groq_cost_usd", "{:.6f}")]


def table(title: str, groups: dict[str, dict[str, Any]], total: dict[str, Any]) -> str:
    def cells(name: str, values: dict[str, Any]) -> list[str]:
        return [name, *(fmt.format(values[field]) for _, field, fmt in COLUMNS)]

    head = [title, *(c[0] for c in COLUMNS)]
    body = [cells(key, values) for key, values in groups.items()]
    foot = cells("total", total)
    widths = [max(len(r[i]) for r in [head, *body, foot]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body), rule, line(foot)])


def load_rates(config_path: Path) -> dict[str, dict[str, float]]:
    data = yaml.safe_load(config_path.read_text()) or {}
    return reference_rates(data.get("groq_reference_prices"))


def report(url: str | None, days: int, config_path: Path) -> tuple[str, dict[str, Any]]:
    store = LedgerStore(url, create=False)
    try:
        since = since_days(days)
        summary = summarize(store.aggregate(since), load_rates(config_path))
    finally:
        store.close()
    total = summary["total"]
    saving = total["groq_cost_usd"] - total["cost_usd"]
    text = "\n\n".join([
        f"modelgate cost report: {redacted(ledger_url(url))}, {days} UTC day(s) from {since:%Y-%m-%d}",
        table("day", summary["by_day"], total),
        table("provider", summary["by_provider"], total),
        table("alias", summary["by_alias"], total),
        f"Spent ${total['cost_usd']:.4f}; the same traffic on Groq: ${total['groq_cost_usd']:.4f} "
        f"({'saved' if saving >= 0 else 'extra'} ${abs(saving):.4f}).",
    ])
    return text, summary


def chart(summary: dict[str, Any], url: str | None, days: int, out: Path) -> None:
    """Spend per day stacked by provider, with the Groq counterfactual as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = LedgerStore(url, create=False)
    try:
        aggregates = store.aggregate(since_days(days))
    finally:
        store.close()
    day_list = list(summary["by_day"]) or ["(no data)"]
    providers = sorted({a["provider"] for a in aggregates})
    fig, ax = plt.subplots(figsize=(max(6, len(day_list) * 0.8 + 2), 4.5))
    bottom = [0.0] * len(day_list)
    for provider in providers:
        values = [sum(a["cost_usd"] for a in aggregates if a["day"] == d and a["provider"] == provider)
                  for d in day_list]
        ax.bar(day_list, values, bottom=bottom, label=provider)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    groq = [summary["by_day"].get(d, {}).get("groq_cost_usd", 0.0) for d in day_list]
    ax.plot(day_list, groq, color="black", marker="o", linestyle="--", label="same traffic on Groq")
    ax.set_ylabel("USD")
    ax.set_title("modelgate spend per UTC day")
    ax.legend()
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="ledger SQLAlchemy URL (default: MODELGATE_LEDGER_URL or var/ledger.sqlite)")
    parser.add_argument("--days", type=int, default=7, help="UTC days back, today included (default 7)")
    parser.add_argument("--config", type=Path,
                        default=Path(os.environ.get("MODELGATE_CONFIG") or ROOT / "config" / "models.yaml"),
                        help="YAML holding groq_reference_prices")
    parser.add_argument("--png", type=Path, help="also write a chart of spend per day to this PNG")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be 1 or more")
    text, summary = report(args.url, args.days, args.config)
    print(text)
    if args.png:
        chart(summary, args.url, args.days, args.png)
        print(f"chart: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
