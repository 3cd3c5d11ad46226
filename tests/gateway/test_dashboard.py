"""The migration dashboard in a real browser (Debian's Chromium, headless, driven by Playwright).

One gateway for the module, in front of the fake providers. The page must load only from the gateway,
show the ledger's numbers, change flags through PATCH /admin/flags and refuse a wrong key.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway import config
from gateway.settings import Settings
from plugins.ledger_store import LedgerStore, groq_cost, reference_rates, utcnow
from tests.support.browser import browser, chromium, expect  # noqa: F401 - fixtures: headless Chromium
from tests.support.gateway import Gateway, provider_env, write_config
from tests.support.proc import ROOT

ARTIFACTS = ROOT / "test-artifacts"
MSG = [{"role": "user", "content": "pubmed: chest pain troponin"}]
BUDGET = {"openrouter": {"daily": 1.0, "monthly": 20.0}}


@pytest.fixture(scope="module")
def gw(fake_providers, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with a 30 s cooldown (so a cooled-down deployment shows on the page) and an OpenRouter budget."""
    config_dir = tmp_path_factory.mktemp("dashboard-gw")
    path = write_config(config_dir, router_settings={"cooldown_time": 30},
                        extra={"budgets": {"provider": BUDGET}})
    gateway = Gateway({**provider_env(fake_providers), "MODELGATE_CONFIG": str(path)}, config_dir / "flags.yaml",
                      log_name="gateway-dashboard")
    yield gateway
    gateway.stop()


class Watched:
    """A page with every request URL and console error recorded."""

    def __init__(self, browser, gw: Gateway, **context) -> None:  # noqa: ANN001
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.urls: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {e}"))
        self.gw = gw

    def open(self, key: str, query: str = "") -> None:
        self.page.goto(self.gw.base_url + "/dashboard" + query)
        self.page.get_by_test_id("key-input").fill(key)
        self.page.get_by_test_id("key-submit").click()

    def text(self, testid: str) -> str:
        return (self.page.get_by_test_id(testid).text_content() or "").strip()

    def value(self, testid: str) -> float:
        return float(self.page.get_by_test_id(testid).get_attribute("data-value"))

    def foreign_requests(self) -> list[str]:
        own = urlsplit(self.gw.base_url).netloc
        return [u for u in self.urls if urlsplit(u).netloc != own and not u.startswith(("data:", "about:"))]

    def close(self) -> None:
        self.context.close()


def provider_of(gw: Gateway, model: str = "fast") -> str:
    raw = gw.client().chat.completions.with_raw_response.create(model=model, messages=MSG)
    return raw.headers["x-modelgate-provider"]


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def js_ms(x: float) -> str:
    return f"{math.floor(x + 0.5)} ms"  # Math.round


def test_wrong_key_is_refused_and_no_data_is_shown(browser, gw):  # noqa: F811
    w = Watched(browser, gw)
    try:
        w.open("sk-wrong-key-000000000000")
        error = w.page.get_by_test_id("error")
        error.wait_for(state="visible", timeout=10_000)
        assert "invalid API key" in error.inner_text()
        assert w.page.get_by_test_id("main").is_hidden()
        assert w.page.get_by_test_id("login").is_visible()
        assert w.page.locator("[data-testid^=dep-]").count() == 0
        assert w.page.evaluate("sessionStorage.length") == 0  # the refused key is not kept
        assert w.foreign_requests() == []
        # the data endpoints themselves refuse it too
        for path in ("/admin/state", "/admin/stats"):
            assert httpx.get(gw.base_url + path, headers={"Authorization": "Bearer nope"}).status_code == 401
            assert httpx.get(gw.base_url + path).status_code == 401
    finally:
        w.close()


def test_dashboard_shows_the_ledger_and_flips_flags(browser, gw, fakes):  # noqa: F811
    # A known burst: 6 answered by Groq, then Groq fails and 4 fail over to OpenRouter (Groq cools down).
    assert [provider_of(gw) for _ in range(6)] == ["groq"] * 6
    fakes["groq"].fail("500", count=-1)
    assert [provider_of(gw) for _ in range(4)] == ["openrouter"] * 4
    fakes["groq"].reset()

    w = Watched(browser, gw, viewport={"width": 1280, "height": 900})
    try:
        w.open(gw.key)
        page = w.page
        page.get_by_test_id("requests-60m-openrouter").wait_for(timeout=15_000)

        # --- the numbers match the ledger ---------------------------------------------------------
        store = LedgerStore(gw.ledger_url, create=False)
        try:
            rows = store.rows()
        finally:
            store.close()
        assert len(rows) == 10
        by = collections.defaultdict(list)
        for row in rows:
            by[row["provider"]].append(row)
        assert {p: len(r) for p, r in by.items()} == {"groq": 6, "openrouter": 4}
        settings = Settings(_env_file=None, MODELGATE_CONFIG=str(Path(gw.flags_file).parent / "models.yaml"))
        rates = reference_rates(config.plugin_section(settings, "groq_reference_prices"))
        for provider, items in by.items():
            for window in ("5m", "60m"):
                assert w.text(f"share-{window}-{provider}") == f"{len(items) / len(rows) * 100:.1f}%"
                assert w.value(f"share-{window}-{provider}") == pytest.approx(len(items) / len(rows))
            assert w.text(f"requests-60m-{provider}") == str(len(items))
            assert w.text(f"requests-5m-{provider}") == str(len(items))
            errors = sum(r["status"] != "ok" for r in items)
            assert w.text(f"errors-60m-{provider}") == str(errors)
            assert w.text(f"error-rate-60m-{provider}") == f"{errors / len(items) * 100:.1f}%"
            latencies = [r["latency_ms"] for r in items if r["status"] == "ok"]
            for pct in (50, 95):
                assert w.value(f"p{pct}-60m-{provider}") == pytest.approx(nearest_rank(latencies, pct))
                assert w.text(f"p{pct}-60m-{provider}") == js_ms(nearest_rank(latencies, pct))
            spent = sum(r["cost_usd"] for r in items)
            groq = sum(groq_cost(r, rates) for r in items if r["status"] == "ok")
            assert spent > 0 and groq > 0
            for period in ("today", "month"):
                assert w.value(f"spend-{period}-{provider}") == pytest.approx(spent, rel=1e-9)
                assert w.text(f"spend-{period}-{provider}") == f"${spent:.6f}"
                assert w.value(f"groq-{period}-{provider}") == pytest.approx(groq, rel=1e-9)
        total = sum(r["cost_usd"] for r in rows)
        assert w.value("spend-today-total") == pytest.approx(total, rel=1e-9)
        left = BUDGET["openrouter"]["daily"] - sum(r["cost_usd"] for r in by["openrouter"])
        assert w.value("budget-provider-openrouter-daily-left") == pytest.approx(left, rel=1e-9)
        assert w.text("budget-provider-openrouter-daily-left") == f"${left:.6f}"
        assert rows[0]["ts"].date() == utcnow().date()

        # --- chains and deployment state ----------------------------------------------------------
        chain = page.locator("[data-testid^=dep-fast-]")
        assert [t.split(" ")[0] for t in chain.all_inner_texts()] == ["groq", "openrouter", "local"]
        assert page.get_by_test_id("dep-fast-groq").get_attribute("data-state") == "cooling_down"
        assert page.get_by_test_id("dep-fast-openrouter").get_attribute("data-state") == "healthy"
        assert page.get_by_test_id("dep-main-groq").get_attribute("data-state") == "healthy"
        assert page.get_by_test_id("shadow").is_hidden()  # no shadow rows: no section

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # --- a confirm() guards ENABLE_GROQ: dismissing it changes nothing --------------------------
        dialogs: list[str] = []

        def dismiss(dialog) -> None:  # noqa: ANN001
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        page.get_by_test_id("flag-ENABLE_GROQ").uncheck()
        page.get_by_test_id("flags-apply").click()
        page.wait_for_timeout(300)
        assert dialogs and "Groq" in dialogs[0]
        assert httpx.get(gw.base_url + "/admin/flags", headers={"Authorization": f"Bearer {gw.key}"}
                         ).json()["flags"]["ENABLE_GROQ"] is True
        page.get_by_test_id("flag-ENABLE_GROQ").check()

        # --- flipping PRIMARY_PROVIDER on the page moves the next requests -------------------------
        assert provider_of(gw, "main") == "groq"
        page.get_by_test_id("flag-PRIMARY_PROVIDER").select_option("openrouter")
        page.get_by_test_id("flags-apply").click()
        history = page.get_by_test_id("history-item")
        history.first.wait_for(timeout=10_000)
        expect(history).to_have_count(1)
        assert re.search(r"dashboard: PRIMARY_PROVIDER \"\" → \"openrouter\"", history.first.inner_text())
        assert provider_of(gw, "main") == "openrouter"
        # the Router was rebuilt by the change: the old cooldown is gone, the page shows the new chain
        expect(page.get_by_test_id("dep-fast-groq")).to_have_attribute("data-state", "healthy", timeout=10_000)
        expect(page.locator("[data-testid^=dep-fast-]").first).to_have_attribute("data-testid", "dep-fast-openrouter")

        page.get_by_test_id("flag-PRIMARY_PROVIDER").select_option("")
        page.get_by_test_id("flags-apply").click()
        expect(history).to_have_count(2)
        assert "openrouter\" → \"\"" in history.first.inner_text()
        assert provider_of(gw, "main") == "groq"
        snapshot = httpx.get(gw.base_url + "/admin/flags", headers={"Authorization": f"Bearer {gw.key}"}).json()
        assert [(h["who"], h["flag"]) for h in snapshot["history"]] == [("dashboard", "PRIMARY_PROVIDER")] * 2

        # --- a confirmed ENABLE_GROQ=false takes Groq out of every chain: the page shows it disabled ----
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("flag-ENABLE_GROQ").uncheck()
        page.get_by_test_id("flags-apply").click()
        expect(page.get_by_test_id("dep-main-groq")).to_have_attribute("data-state", "excluded", timeout=10_000)
        expect(history).to_have_count(3)
        assert provider_of(gw, "main") == "openrouter"

        # --- readable right to left, and on a tablet --------------------------------------------------
        page.set_viewport_size({"width": 820, "height": 1180})
        page.get_by_test_id("dir-toggle").click()
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
        page.get_by_test_id("requests-60m-groq").wait_for()
        page.screenshot(path=str(ARTIFACTS / "dashboard-rtl-tablet.png"), full_page=True)

        assert w.console_errors == []
        assert w.foreign_requests() == []
        assert any(u.endswith("/dashboard/static/dashboard.js") for u in w.urls)
    finally:
        w.close()
