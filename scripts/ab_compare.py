"""Offline A/B: run a dataset through two targets via the gateway and write an HTML report with plots.

    python scripts/ab_compare.py --a groq --b openrouter,stt@openai              # examples/ab_dataset
    python scripts/ab_compare.py --a main@groq --b main@openrouter --dataset my_set --out var/ab \
        --base-url http://127.0.0.1:4000/v1 --key $LITELLM_MASTER_KEY --ledger-url sqlite:///var/ledger.sqlite

A target pins the provider per alias with the gateway's `x-modelgate-pin` header (plugins/migration.py):
that one deployment `<alias>/<provider>`, no fallback, no retry. A target is a comma-separated list of
`provider` (the default for every alias) and `alias@provider` (that alias); with no bare provider, the
first entry's provider is the default. `none` sends no pin (the gateway routes as for the app).

The dataset directory holds `chat.jsonl` ({id, alias, messages, json}) and/or `audio.jsonl`
({id, alias, file, language, reference}); see examples/ab_dataset/README.md.

Writes OUT/report.html, OUT/*.png (matplotlib, Agg) and OUT/results.json (every request and the summary
per target; scripts/migration_check.py reads its JSON validity per provider). Cost per request is the
ledger's cost_usd (each request carries a unique x-modelgate-user, found in the ledger when --ledger-url,
MODELGATE_LEDGER_URL or var/ledger.sqlite is readable), else the provider's usage.cost, else unknown.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from plugins.shadow import key_agreement, parse_json, text_similarity, word_error_rate  # noqa: E402

DEFAULT_DATASET = ROOT / "examples" / "ab_dataset"


# --- targets and dataset -----------------------------------------------------------------------------

class Target:
    def __init__(self, label: str, spec: str) -> None:
        self.label, self.spec = label, spec
        self.per_alias: dict[str, str] = {}
        bare: list[str] = []
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        for entry in entries:
            alias, sep, provider = entry.partition("@")
            if sep and not (alias and provider):
                raise SystemExit(f"bad target {spec!r}: use provider, alias@provider, or a comma list of them")
            if sep:
                self.per_alias[alias] = provider
            else:
                bare.append(entry)
        if not entries:
            raise SystemExit("a target needs at least one provider")
        self.default: str | None = bare[-1] if bare else next(iter(self.per_alias.values()))

    def provider(self, alias: str) -> str | None:
        provider = self.per_alias.get(alias, self.default)
        return None if provider in (None, "none") else provider

    def name(self) -> str:
        return f"{self.label}: {self.spec}"


def load_dataset(path: Path) -> list[dict[str, Any]]:
    items = []
    for kind, name in (("chat", "chat.jsonl"), ("transcription", "audio.jsonl")):
        file = path / name
        if not file.exists():
            continue
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            item.setdefault("id", f"{name}:{n}")
            item["kind"] = kind
            if kind == "transcription":
                audio = Path(item["file"])
                item["path"] = audio if audio.is_absolute() else (ROOT / audio if (ROOT / audio).exists()
                                                                   else path / audio)
            items.append(item)
    if not items:
        raise SystemExit(f"no chat.jsonl or audio.jsonl in {path}")
    return items


# --- running -------------------------------------------------------------------------------------------

def run_one(http: httpx.Client, item: dict[str, Any], target: Target, run_id: str) -> dict[str, Any]:
    user = f"ab-{run_id}-{target.label}-{uuid.uuid4().hex[:8]}"
    headers = {"x-modelgate-user": user}
    provider = target.provider(item["alias"])
    if provider:
        headers["x-modelgate-pin"] = provider
    out: dict[str, Any] = {"id": item["id"], "kind": item["kind"], "alias": item["alias"], "target": target.label,
                           "pin": provider, "user": user, "json": bool(item.get("json"))}
    started = time.perf_counter()
    try:
        if item["kind"] == "chat":
            body: dict[str, Any] = {"model": item["alias"], "messages": item["messages"], "user": user}
            if item.get("json"):
                body["response_format"] = {"type": "json_object"}
            for key in ("temperature", "max_tokens"):
                if key in item:
                    body[key] = item[key]
            response = http.post("/chat/completions", json=body, headers=headers)
        else:
            form = {"model": item["alias"], "response_format": "json"}
            if item.get("language"):
                form["language"] = item["language"]
            with Path(item["path"]).open("rb") as f:
                response = http.post("/audio/transcriptions", data=form, headers=headers,
                                     files={"file": (Path(item["path"]).name, f, "audio/wav")})
    except httpx.HTTPError as exc:
        out.update(latency_ms=(time.perf_counter() - started) * 1000, status=0, ok=False,
                   error=f"{type(exc).__name__}: {exc}", text=None, provider=None, cost_usd=None)
        return out
    out["latency_ms"] = (time.perf_counter() - started) * 1000
    out["status"] = response.status_code
    out["ok"] = response.status_code == 200
    out["provider"] = response.headers.get("x-modelgate-provider")
    out["deployment"] = response.headers.get("x-modelgate-deployment")
    out["text"], out["cost_usd"], out["error"] = None, None, None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not out["ok"]:
        out["error"] = ((data.get("error") or {}).get("message") if isinstance(data, dict) else None) or response.text[:200]
        return out
    if item["kind"] == "chat":
        out["text"] = ((data.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        cost = (data.get("usage") or {}).get("cost")
        out["cost_usd"] = float(cost) if isinstance(cost, int | float) else None
        out["cost_source"] = "usage.cost" if out["cost_usd"] is not None else None
    else:
        out["text"] = data.get("text") or ""
    return out


def ledger_costs(url: str | None, users: list[str]) -> dict[str, float]:
    """end_user -> cost_usd from the ledger (non-shadow rows), or {} when it cannot be read."""
    from plugins.ledger_store import LedgerStore, ledger_url
    url = ledger_url(url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    try:
        store = LedgerStore(url, create=False)
    except Exception:  # noqa: BLE001
        return {}
    try:
        from sqlalchemy import select

        from plugins.ledger_store import ledger
        wanted = set(users)
        out: dict[str, float] = {}
        with store.engine.connect() as conn:
            query = select(ledger.c.end_user, ledger.c.cost_usd).where(ledger.c.end_user.like("ab-%"))
            for user, cost in conn.execute(query.where(ledger.c.shadow.is_(False))):
                if user in wanted:
                    out[user] = out.get(user, 0.0) + float(cost or 0.0)
        return out
    except Exception:  # noqa: BLE001 - no ledger table: costs from the responses only
        return {}
    finally:
        store.close()


# --- scoring -------------------------------------------------------------------------------------------

def score(items: list[dict[str, Any]], results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-request scores (JSON validity, WER vs reference) and A-vs-B agreement per item."""
    by_id = {item["id"]: item for item in items}
    for rows in results.values():
        for row in rows:
            item = by_id[row["id"]]
            row["json_valid"] = None
            row["wer"] = None
            if not row["ok"]:
                continue
            if row["kind"] == "chat" and item.get("json"):
                row["json_valid"] = isinstance(parse_json(row["text"]), dict)
            if row["kind"] == "transcription" and item.get("reference") is not None:
                row["wer"] = word_error_rate(item["reference"], row["text"], item.get("language"))
    agreement = []
    a_rows, b_rows = results["a"], results["b"]
    for a, b in zip(a_rows, b_rows, strict=True):
        entry: dict[str, Any] = {"id": a["id"], "kind": a["kind"], "alias": a["alias"], "both_ok": a["ok"] and b["ok"],
                                 "similarity": None, "key_jaccard": None, "value_agreement": None, "wer_b_vs_a": None}
        if entry["both_ok"]:
            entry["similarity"] = text_similarity(a["text"], b["text"])
            if a["kind"] == "chat":
                entry["key_jaccard"], entry["value_agreement"] = key_agreement(parse_json(a["text"]),
                                                                               parse_json(b["text"]))
            else:
                entry["wer_b_vs_a"] = word_error_rate(a["text"], b["text"], by_id[a["id"]].get("language"))
        agreement.append(entry)
    return {"agreement": agreement}


def _mean(values: list[Any]) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summarize(rows: list[dict[str, Any]], target: Target) -> dict[str, Any]:
    ok = [r for r in rows if r["ok"]]
    latencies = [r["latency_ms"] for r in ok]
    json_rows = [r for r in rows if r["json"]]
    by_provider: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r.get("provider") or r.get("pin") or "-"
        b = by_provider.setdefault(key, {"requests": 0, "errors": 0, "json_requests": 0, "json_valid": 0})
        b["requests"] += 1
        b["errors"] += 0 if r["ok"] else 1
        if r["json"]:
            b["json_requests"] += 1
            b["json_valid"] += 1 if r.get("json_valid") else 0
    costs = [r["cost_usd"] for r in ok if r.get("cost_usd") is not None]
    return {
        "target": target.spec, "requests": len(rows), "errors": len(rows) - len(ok),
        "error_rate": (len(rows) - len(ok)) / len(rows) if rows else None,
        "latency_ms": {"mean": _mean(latencies), "p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95)},
        "cost_usd": {"total": sum(costs) if costs else None, "mean_per_request": _mean(costs), "priced": len(costs)},
        "json_valid_rate": (sum(1 for r in json_rows if r.get("json_valid")) / len(json_rows)) if json_rows else None,
        "mean_wer_vs_reference": _mean([r["wer"] for r in rows]),
        "by_provider": by_provider,
    }


# --- report --------------------------------------------------------------------------------------------

def plots(out: Path, results: dict[str, list[dict[str, Any]]], summary: dict[str, Any],
          agreement: list[dict[str, Any]], names: dict[str, str]) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[tuple[str, str]] = []
    labels = [names["a"], names["b"]]

    def save(fig: Any, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        made.append((name, title))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    data = [[r["latency_ms"] for r in results[t] if r["ok"]] or [0.0] for t in ("a", "b")]
    ax.boxplot(data, vert=False)
    ax.set_yticks([1, 2], labels)
    ax.set_xlabel("latency (ms), answered requests")
    save(fig, "latency.png", "Latency distribution")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for t, color in (("a", "tab:blue"), ("b", "tab:orange")):
        xs = [r["cost_usd"] or 0.0 for r in results[t]]
        ax.plot(range(len(xs)), xs, marker="o", linestyle="", color=color, label=names[t])
    ax.set_xlabel("request #")
    ax.set_ylabel("cost per request (USD)")
    ax.legend(fontsize=8)
    save(fig, "cost.png", "Cost per request")

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    axes[0].bar(["A", "B"], [summary[t]["error_rate"] or 0.0 for t in ("a", "b")], color=["tab:blue", "tab:orange"])
    axes[0].set_title("error rate")
    axes[0].set_ylim(0, 1)
    axes[1].bar(["A", "B"], [summary[t]["json_valid_rate"] or 0.0 for t in ("a", "b")],
                color=["tab:blue", "tab:orange"])
    axes[1].set_title("JSON validity")
    axes[1].set_ylim(0, 1)
    save(fig, "quality.png", "Error rate and JSON validity")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ids = [e["id"] for e in agreement]
    ax.bar([i - 0.2 for i in range(len(ids))], [e["similarity"] or 0.0 for e in agreement], width=0.4,
           label="text similarity")
    ax.bar([i + 0.2 for i in range(len(ids))], [e["key_jaccard"] if e["key_jaccard"] is not None else
                                                 (1 - e["wer_b_vs_a"] if e["wer_b_vs_a"] is not None else 0.0)
                                                 for e in agreement], width=0.4, label="key Jaccard / 1 - WER(B vs A)")
    ax.set_xticks(range(len(ids)), ids, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    save(fig, "agreement.png", "A/B agreement per item")

    audio = [(ra, rb) for ra, rb in zip(results["a"], results["b"], strict=True) if ra["kind"] == "transcription"]
    if audio:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = range(len(audio))
        ax.bar([x - 0.2 for x in xs], [ra["wer"] if ra["wer"] is not None else 0 for ra, _ in audio], width=0.4,
               label=names["a"])
        ax.bar([x + 0.2 for x in xs], [rb["wer"] if rb["wer"] is not None else 0 for _, rb in audio], width=0.4,
               label=names["b"])
        ax.set_xticks(list(xs), [ra["id"] for ra, _ in audio], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("WER vs reference")
        ax.legend(fontsize=8)
        save(fig, "wer.png", "WER against the reference transcript")
    return made


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def write_html(out: Path, summary: dict[str, Any], agreement: list[dict[str, Any]],
               images: list[tuple[str, str]], names: dict[str, str], meta: dict[str, Any]) -> Path:
    rows = [("requests", "requests"), ("errors", "errors"), ("error rate", "error_rate")]
    head = "".join(f"<th>{html.escape(names[t])}</th>" for t in ("a", "b"))

    def line(label: str, get: Any, digits: int = 3) -> str:
        return f"<tr><td>{label}</td>" + "".join(f"<td>{_fmt(get(summary[t]), digits)}</td>" for t in ("a", "b")) \
            + "</tr>"

    body = [line(label, lambda s, k=key: s[k]) for label, key in rows]
    body += [line("latency mean (ms)", lambda s: s["latency_ms"]["mean"], 1),
             line("latency p50 (ms)", lambda s: s["latency_ms"]["p50"], 1),
             line("latency p95 (ms)", lambda s: s["latency_ms"]["p95"], 1),
             line("cost total (USD)", lambda s: s["cost_usd"]["total"], 6),
             line("cost per request (USD)", lambda s: s["cost_usd"]["mean_per_request"], 8),
             line("JSON validity", lambda s: s["json_valid_rate"]),
             line("mean WER vs reference", lambda s: s["mean_wer_vs_reference"])]
    agree = "".join(
        f"<tr><td>{html.escape(e['id'])}</td><td>{e['alias']}</td><td>{'yes' if e['both_ok'] else 'no'}</td>"
        f"<td>{_fmt(e['similarity'])}</td><td>{_fmt(e['key_jaccard'])}</td><td>{_fmt(e['value_agreement'])}</td>"
        f"<td>{_fmt(e['wer_b_vs_a'])}</td></tr>" for e in agreement)
    figures = "".join(f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
                      f"</figcaption></figure>" for name, title in images)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>modelgate A/B report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{margin:1em 0}}img{{max-width:100%}}</style></head><body>
<h1>modelgate A/B report</h1>
<p>Dataset {html.escape(str(meta['dataset']))}, {meta['items']} items, gateway {html.escape(meta['base_url'])},
run {html.escape(meta['run_id'])} at {html.escape(meta['when'])}. Cost source: {html.escape(meta['cost_source'])}.</p>
<h2>Summary</h2>
<table><tr><th></th>{head}</tr>{''.join(body)}</table>
<h2>Agreement (A vs B, per item)</h2>
<table><tr><th>item</th><th>alias</th><th>both answered</th><th>text similarity</th><th>key Jaccard</th>
<th>equal values</th><th>WER B vs A</th></tr>{agree}</table>
<h2>Plots</h2>{figures}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


# --- main ----------------------------------------------------------------------------------------------

def default_key() -> str:
    key = os.environ.get("LITELLM_MASTER_KEY")
    if key:
        return key
    try:
        from gateway.settings import Settings
        return Settings().master_key
    except Exception:  # noqa: BLE001
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="target A: provider, alias@provider, or a comma list")
    parser.add_argument("--b", required=True, help="target B, same form")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "ab-report")
    parser.add_argument("--base-url", default=os.environ.get("MODELGATE_BASE_URL")
                        or f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '4000')}/v1")
    parser.add_argument("--key", default=None, help="the gateway's master key (default: LITELLM_MASTER_KEY / .env)")
    parser.add_argument("--ledger-url", default=None, help="read each request's cost from this ledger")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)

    targets = {"a": Target("a", args.a), "b": Target("b", args.b)}
    items = load_dataset(args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    results: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    with httpx.Client(base_url=args.base_url.rstrip("/"), timeout=args.timeout,
                      headers={"Authorization": f"Bearer {args.key or default_key()}"}) as http:
        for item in items:  # A then B per item, so both see the same conditions
            for label, target in targets.items():
                results[label].append(run_one(http, item, target, run_id))

    costs = ledger_costs(args.ledger_url, [r["user"] for rows in results.values() for r in rows])
    for rows in results.values():
        for r in rows:
            if r["user"] in costs and r["ok"]:
                r["cost_usd"], r["cost_source"] = costs[r["user"]], "ledger"
    cost_source = "ledger" if costs else "response usage.cost (where the provider sends it)"

    scored = score(items, results)
    summary = {label: summarize(results[label], targets[label]) for label in ("a", "b")}
    names = {label: f"{label.upper()}: {targets[label].spec}" for label in ("a", "b")}
    images = plots(args.out, results, summary, scored["agreement"], names)
    meta = {"dataset": args.dataset, "items": len(items), "base_url": args.base_url, "run_id": run_id,
            "when": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "cost_source": cost_source}
    report = write_html(args.out, summary, scored["agreement"], images, names, meta)
    for rows in results.values():
        for r in rows:
            r.pop("text", None)  # no prompt or answer text in the saved results
    (args.out / "results.json").write_text(json.dumps(
        {"meta": {**meta, "dataset": str(args.dataset)}, "targets": {k: t.spec for k, t in targets.items()},
         "summary": summary, "agreement": scored["agreement"], "requests": results}, indent=2, default=str))
    for label in ("a", "b"):
        s = summary[label]
        mean = s["latency_ms"]["mean"]
        print(f"{names[label]}: {s['requests']} requests, {s['errors']} errors, "
              f"latency mean {mean:.0f} ms" if mean is not None else f"{names[label]}: no answers", end="")
        print(f", JSON valid {s['json_valid_rate']:.0%}" if s["json_valid_rate"] is not None else "")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
