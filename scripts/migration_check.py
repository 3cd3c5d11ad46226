"""Migration readiness: the success criteria of the Groq migration as a checklist, from live data and config.

    python scripts/migration_check.py --app-src ../clinical-app/src --ab-report var/ab-report/results.json
    python scripts/migration_check.py --hours 24 --url postgresql://user@host/db --max-groq-share 0

Checks (each PASS, FAIL or SKIP; any FAIL makes the exit status 1, with the reasons printed):
  1. groq-share     Groq's share of the answered, non-shadow ledger rows of the last --hours (default 24)
                    is at most --max-groq-share percent (default 5).
  2. app-source     no Groq SDK import (`import groq`, `from groq`) and no Groq URL (`api.groq.com`) in
                    --app-src (SKIP without it).
  3. redundancy     every alias of the resolved config (gateway.config.resolve(Settings()): keys, ENABLE_*
                    flags) has at least two providers, at least one of them not Groq.
  4. json-mode      every non-Groq provider of the JSON aliases (--json-aliases, default main,analysis) has
                    JSON evidence (A/B results.json files given with --ab-report, and shadow comparisons in
                    the ledger database) with a validity rate of at least --min-json-valid (default 0.95).
  5. errors         each new (non-Groq) provider's error rate over --hours is at most Groq's (over the last
                    --baseline-days, default 7) plus --max-error-delta (default 0.02); with no Groq baseline,
                    at most --max-error-rate (default 0.05).
  6. latency        each new provider's p95 latency is at most --max-latency-ratio (default 3) times Groq's
                    (SKIP with no Groq baseline).
  7. cost           the new providers' spend over --hours is at most --max-cost-ratio (default 1.0) times
                    what the same traffic would have cost on Groq (groq_reference_prices, as cost_report).

The ledger is --url, else MODELGATE_LEDGER_URL, else var/ledger.sqlite; the config --config, else
MODELGATE_CONFIG, else config/models.yaml.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway import config  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from plugins.ledger_store import LedgerStore, groq_cost, reference_rates, utcnow  # noqa: E402

GROQ_PATTERNS = [re.compile(r"^\s*import\s+groq\b"), re.compile(r"^\s*from\s+groq\b"), re.compile(r"api\.groq\.com")]
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", "dist", "build"}
TEXT_SUFFIXES = {".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".json", ".yaml", ".yml", ".toml",
                 ".cfg", ".ini", ".env", ".txt", ".md", ".sh", ".kt", ".java", ".swift", ".dart", ".go", ".rb"}


@dataclass
class Check:
    name: str
    status: str          # PASS | FAIL | SKIP
    detail: str
    reasons: list[str]


# --- data ----------------------------------------------------------------------------------------------

def ledger_rows(url: str | None, since: dt.datetime) -> list[dict[str, Any]]:
    store = LedgerStore(url, create=False)
    try:
        return [r for r in store.rows(since=since) if not r.get("shadow")]
    except Exception as exc:  # noqa: BLE001 - no ledger table yet: no traffic
        print(f"warning: ledger unreadable ({type(exc).__name__}: {exc}); treating it as empty", file=sys.stderr)
        return []
    finally:
        store.close()


def shadow_json_evidence(url: str | None) -> dict[str, list[int]]:
    """provider -> [JSON-valid, JSON-checked] from the shadow comparisons (candidates)."""
    from plugins.shadow import comparison_rows
    store = LedgerStore(url, create=False)
    try:
        rows = comparison_rows(store.engine)
    except Exception:  # noqa: BLE001
        rows = []
    finally:
        store.close()
    out: dict[str, list[int]] = {}
    for row in rows:
        if row["candidate_json_valid"] is None or "/" not in (row["candidate"] or ""):
            continue
        provider = row["candidate"].rpartition("/")[2]
        seen = out.setdefault(provider, [0, 0])
        seen[0] += 1 if row["candidate_json_valid"] else 0
        seen[1] += 1
    return out


def ab_json_evidence(paths: list[Path]) -> dict[str, list[int]]:
    """provider -> [JSON-valid, JSON-requests] from scripts/ab_compare.py results.json files."""
    out: dict[str, list[int]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for summary in (data.get("summary") or {}).values():
            for provider, counts in (summary.get("by_provider") or {}).items():
                seen = out.setdefault(provider, [0, 0])
                seen[0] += int(counts.get("json_valid") or 0)
                seen[1] += int(counts.get("json_requests") or 0)
    return out


def groq_references(app_src: Path) -> list[str]:
    hits = []
    for path in sorted(app_src.rglob("*")):
        if not path.is_file() or any(part in SKIP_DIRS for part in path.relative_to(app_src).parts):
            continue
        if path.suffix.lower() not in TEXT_SUFFIXES and path.name != ".env":
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            if any(p.search(line) for p in GROQ_PATTERNS):
                hits.append(f"{path.relative_to(app_src)}:{n}: {line.strip()[:120]}")
    return hits


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def error_rate(rows: list[dict[str, Any]]) -> float | None:
    counted = [r for r in rows if r["status"] in ("ok", "error")]
    return sum(1 for r in counted if r["status"] == "error") / len(counted) if counted else None


# --- checks --------------------------------------------------------------------------------------------

def check_groq_share(rows: list[dict[str, Any]], max_share: float, hours: float) -> Check:
    answered = [r for r in rows if r["status"] == "ok"]
    if not answered:
        return Check("groq-share", "FAIL", f"no answered requests in the last {hours:g} h",
                     ["no traffic in the ledger to judge the migration by"])
    share = 100 * sum(1 for r in answered if r["provider"] == "groq") / len(answered)
    detail = f"Groq answered {share:.1f}% of {len(answered)} requests in the last {hours:g} h (max {max_share:g}%)"
    if share > max_share:
        return Check("groq-share", "FAIL", detail, [f"Groq still answers {share:.1f}% of traffic (max {max_share:g}%)"])
    return Check("groq-share", "PASS", detail, [])


def check_app_source(app_src: Path | None) -> Check:
    if app_src is None:
        return Check("app-source", "SKIP", "no --app-src given", [])
    if not app_src.is_dir():
        return Check("app-source", "FAIL", f"{app_src} is not a directory", [f"--app-src {app_src} not found"])
    hits = groq_references(app_src)
    if hits:
        return Check("app-source", "FAIL", f"{len(hits)} Groq reference(s) in {app_src}",
                     [f"Groq SDK/URL in app source: {h}" for h in hits])
    return Check("app-source", "PASS", f"no Groq SDK import or URL in {app_src}", [])


def check_redundancy(resolved: config.ResolvedConfig) -> Check:
    reasons, parts = [], []
    for alias, chain in resolved.chains.items():
        providers = list(dict.fromkeys(d.provider for d in chain))
        parts.append(f"{alias}: {' -> '.join(providers)}")
        if len(providers) < 2:
            reasons.append(f"alias {alias} has {len(providers)} provider(s) ({', '.join(providers)}): needs two")
        if not [p for p in providers if p != "groq"]:
            reasons.append(f"alias {alias} has no non-Groq provider")
    excluded = "; ".join(f"{p} excluded ({why})" for p, why in resolved.excluded.items())
    detail = "; ".join(parts) + (f" [{excluded}]" if excluded else "")
    return Check("redundancy", "FAIL" if reasons else "PASS", detail, reasons)


def check_json(resolved: config.ResolvedConfig, aliases: list[str], evidence: dict[str, list[int]],
               min_valid: float) -> Check:
    providers = sorted({d.provider for a in aliases for d in resolved.chains.get(a, []) if d.provider != "groq"})
    if not providers:
        return Check("json-mode", "FAIL", f"no non-Groq provider serves {', '.join(aliases)}",
                     ["no new provider to verify JSON mode on"])
    reasons, parts = [], []
    for provider in providers:
        valid, total = evidence.get(provider, [0, 0])
        if total == 0:
            reasons.append(f"JSON mode not verified on {provider}: no A/B or shadow JSON results")
            parts.append(f"{provider}: no data")
            continue
        rate = valid / total
        parts.append(f"{provider}: {valid}/{total} valid")
        if rate < min_valid:
            reasons.append(f"JSON validity on {provider} is {rate:.0%} ({valid}/{total}), below {min_valid:.0%}")
    return Check("json-mode", "FAIL" if reasons else "PASS", "; ".join(parts), reasons)


def _by_provider(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["provider"] and r["provider"] != "groq":
            out.setdefault(r["provider"], []).append(r)
    return out


def check_errors(rows: list[dict[str, Any]], baseline: list[dict[str, Any]], max_delta: float,
                 max_rate: float) -> Check:
    new = _by_provider(rows)
    if not new:
        return Check("errors", "FAIL", "no traffic on new providers", ["no request served by a non-Groq provider"])
    groq = error_rate([r for r in baseline if r["provider"] == "groq"])
    limit = groq + max_delta if groq is not None else max_rate
    base = f"Groq {groq:.1%}" if groq is not None else "no Groq baseline"
    reasons, parts = [], []
    for provider, prows in sorted(new.items()):
        rate = error_rate(prows) or 0.0
        parts.append(f"{provider} {rate:.1%} of {len(prows)}")
        if rate > limit:
            reasons.append(f"error rate on {provider} is {rate:.1%}, above {limit:.1%} ({base})")
    return Check("errors", "FAIL" if reasons else "PASS", f"{'; '.join(parts)} ({base}, max {limit:.1%})", reasons)


def check_latency(rows: list[dict[str, Any]], baseline: list[dict[str, Any]], max_ratio: float) -> Check:
    def lat(rs: list[dict[str, Any]]) -> list[float]:
        return [r["latency_ms"] for r in rs if r["status"] == "ok" and r["latency_ms"] is not None]

    groq = p95(lat([r for r in baseline if r["provider"] == "groq"]))
    new = _by_provider(rows)
    if groq is None:
        return Check("latency", "SKIP", "no Groq latency baseline in the ledger", [])
    if not new:
        return Check("latency", "FAIL", "no traffic on new providers", ["no latency data for a non-Groq provider"])
    reasons, parts = [], [f"Groq p95 {groq:.0f} ms"]
    for provider, prows in sorted(new.items()):
        value = p95(lat(prows))
        if value is None:
            reasons.append(f"no answered request on {provider}")
            continue
        parts.append(f"{provider} p95 {value:.0f} ms")
        if value > groq * max_ratio:
            reasons.append(f"p95 latency on {provider} is {value:.0f} ms, above {max_ratio:g}x Groq's {groq:.0f} ms")
    return Check("latency", "FAIL" if reasons else "PASS", "; ".join(parts), reasons)


def check_cost(rows: list[dict[str, Any]], rates: dict[str, dict[str, float]], max_ratio: float) -> Check:
    answered = [r for r in rows if r["status"] == "ok" and r["provider"] and r["provider"] != "groq"]
    if not answered:
        return Check("cost", "FAIL", "no answered request on new providers", ["no cost data for new providers"])
    spent = sum(r["cost_usd"] or 0.0 for r in answered)
    on_groq = sum(groq_cost(r, rates) for r in answered)
    detail = f"new providers ${spent:.6f} against ${on_groq:.6f} on Groq (max {max_ratio:g}x)"
    if on_groq <= 0:
        return Check("cost", "SKIP", detail + ": no Groq reference price for this traffic", [])
    if spent > on_groq * max_ratio:
        return Check("cost", "FAIL", detail, [f"new providers cost ${spent:.6f}, {spent / on_groq:.2f}x what Groq "
                                              f"would have cost (${on_groq:.6f}; max {max_ratio:g}x)"])
    return Check("cost", "PASS", detail, [])


# --- main ----------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    config_path = args.config or settings.config_path
    resolved = config.resolve(settings, path=config_path)
    rates = reference_rates(config.plugin_section(settings, "groq_reference_prices", path=config_path))
    now = utcnow()
    window = ledger_rows(args.url, now - dt.timedelta(hours=args.hours))
    baseline = ledger_rows(args.url, now - dt.timedelta(days=args.baseline_days))
    evidence = shadow_json_evidence(args.url)
    for provider, (valid, total) in ab_json_evidence(args.ab_report).items():
        seen = evidence.setdefault(provider, [0, 0])
        seen[0] += valid
        seen[1] += total
    json_aliases = [a.strip() for a in args.json_aliases.split(",") if a.strip()]
    return [
        check_groq_share(window, args.max_groq_share, args.hours),
        check_app_source(args.app_src),
        check_redundancy(resolved),
        check_json(resolved, json_aliases, evidence, args.min_json_valid),
        check_errors(window, baseline, args.max_error_delta, args.max_error_rate),
        check_latency(window, baseline, args.max_latency_ratio),
        check_cost(window, rates, args.max_cost_ratio),
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Groq migration readiness checklist (exit 1 when not ready)")
    p.add_argument("--url", default=None, help="ledger URL (default MODELGATE_LEDGER_URL or var/ledger.sqlite)")
    p.add_argument("--config", type=Path, default=None, help="models.yaml (default MODELGATE_CONFIG)")
    p.add_argument("--app-src", type=Path, default=None, help="the app's source tree to scan for Groq usage")
    p.add_argument("--ab-report", type=Path, action="append", default=[],
                   help="results.json of scripts/ab_compare.py (repeatable)")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--baseline-days", type=float, default=7.0)
    p.add_argument("--json-aliases", default="main,analysis")
    p.add_argument("--max-groq-share", type=float, default=5.0, help="percent")
    p.add_argument("--min-json-valid", type=float, default=0.95)
    p.add_argument("--max-error-delta", type=float, default=0.02)
    p.add_argument("--max-error-rate", type=float, default=0.05)
    p.add_argument("--max-latency-ratio", type=float, default=3.0)
    p.add_argument("--max-cost-ratio", type=float, default=1.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        checks = run(args)
    except config.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    marks = {"PASS": "[x]", "FAIL": "[ ]", "SKIP": "[-]"}
    for c in checks:
        print(f"{marks[c.status]} {c.status:4s} {c.name:11s} {c.detail}")
    reasons = [r for c in checks for r in c.reasons]
    if reasons:
        print("\nNOT READY:")
        for r in reasons:
            print(f"  - {r}")
        return 1
    print("\nREADY: Groq can be switched off (ENABLE_GROQ=false); see docs/migration-guide.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
