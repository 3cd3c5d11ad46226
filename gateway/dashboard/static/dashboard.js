/* modelgate migration dashboard: vanilla JS, no library, nothing loaded from another host.
 * Polls GET /admin/state, /admin/stats and /admin/flags (Bearer master key, kept in sessionStorage)
 * every REFRESH_MS and redraws in place; flag changes go through PATCH /admin/flags. */
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const KEY_NAME = "modelgate-master-key";
  const PROVIDERS = ["groq", "openrouter", "openai", "local"];
  const STATE_LABEL = { healthy: "healthy", cooling_down: "cooling down", over_budget: "over budget", excluded: "disabled" };
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  let timer = null;
  let flags = null;          // last GET /admin/flags snapshot
  let formDirty = false;     // the operator is editing the flags form: don't overwrite it
  let aliasesWithSplit = [];

  // ---- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    return node;
  }
  const pct = (x) => (x * 100).toFixed(1) + "%";
  const usd = (x) => "$" + Number(x || 0).toFixed(6);
  const ms = (x) => (x === null || x === undefined ? "–" : Math.round(x) + " ms");
  const num = (attrs, text) => el("td", Object.assign({ class: "num" }, attrs), el("bdi", { dir: "ltr", text }));
  const fill = (p) => "fill-" + (PROVIDERS.includes(p) ? p : "other");
  const rtl = () => document.documentElement.dir === "rtl";

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  // ---- key -----------------------------------------------------------------------------------
  function key() { return sessionStorage.getItem(KEY_NAME) || ""; }

  function askForKey(message) {
    clearTimeout(timer);
    sessionStorage.removeItem(KEY_NAME);
    $("main").hidden = true;
    clearData();
    $("login").hidden = false;
    $("logout").hidden = true;
    showError(message || "");
    $("key-input").value = "";
    $("key-input").focus();
  }

  function clearData() {
    for (const id of ["chains", "chart-5m", "chart-60m", "health", "spend", "spend-total", "budgets", "history", "traffic"]) $(id).replaceChildren();
    flags = null;
  }

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + key(), "x-modelgate-operator": "dashboard" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    const message = (data && data.error && data.error.message) || response.statusText;
    if (response.status === 401) throw new Unauthorized(message);
    if (!response.ok) throw new Error(method + " " + path + ": " + response.status + " " + message);
    return data;
  }

  // ---- refresh -------------------------------------------------------------------------------
  async function refresh() {
    clearTimeout(timer);
    try {
      const [state, stats, flagSnap] = await Promise.all([api("GET", "/admin/state"), api("GET", "/admin/stats"), api("GET", "/admin/flags")]);
      $("login").hidden = true;
      $("logout").hidden = false;
      $("main").hidden = false;
      showError("");
      renderChains(state);
      renderStats(stats, state);
      renderFlags(flagSnap, state);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = "1";
    } catch (err) {
      if (err instanceof Unauthorized) { askForKey("The gateway refused the key: " + err.message); return; }
      showError("Refresh failed: " + err.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  // ---- chains --------------------------------------------------------------------------------
  function chainList(alias, deps, prefix) {
    const list = el("ol", { class: "chain" });
    for (const d of deps) {
      const title = [d.model, d.detail].filter(Boolean).join(" · ");
      list.append(el("li", {},
        el("span", { class: "state " + d.state, "data-testid": prefix + "-" + alias + "-" + d.provider, "data-state": d.state, title },
          d.provider + " · " + (STATE_LABEL[d.state] || d.state) + (d.state === "cooling_down" && d.detail ? " (" + d.detail + ")" : ""))));
    }
    return list;
  }

  function renderChains(state) {
    aliasesWithSplit = state.aliases.filter((a) => a.legacy_chain.length).map((a) => a.alias);
    const boxes = state.aliases.map((a) => {
      const box = el("div", { class: "alias", "data-testid": "alias-" + a.alias },
        el("h3", {}, el("span", { text: a.alias }),
          a.legacy_chain.length ? el("span", { class: "muted", dir: "auto", "data-testid": "split-" + a.alias, text: a.traffic_percent + "% on migration chain" }) : null),
        chainList(a.alias, a.chain, "dep"));
      const same = JSON.stringify(a.legacy_chain.map((d) => d.provider)) === JSON.stringify(a.chain.filter((d) => d.state !== "excluded").map((d) => d.provider));
      if (a.legacy_chain.length && !same && a.traffic_percent < 100) {
        box.append(el("div", { class: "chain-label", dir: "auto", text: "legacy chain (" + (100 - a.traffic_percent) + "% of users)" }), chainList(a.alias, a.legacy_chain, "legacy"));
      }
      return box;
    });
    $("chains").replaceChildren(...boxes);
  }

  // ---- traffic share chart (inline SVG bars) ---------------------------------------------------
  function barChart(windowStats, windowName) {
    const providers = Object.keys(windowStats.providers);
    const width = 260, row = 26, labelW = 84, valueW = 56;
    const height = Math.max(1, providers.length) * row + 4;
    const chart = svg("svg", { class: "bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "traffic share, " + windowName, direction: "ltr" });
    if (!providers.length) {
      chart.append(svg("text", { x: rtl() ? width - 4 : 4, y: 18, "text-anchor": rtl() ? "end" : "start", text: "no traffic", "data-testid": "share-" + windowName + "-none" }));
      return chart;
    }
    const track = width - labelW - valueW;
    providers.forEach((p, i) => {
      const s = windowStats.providers[p];
      const y = i * row + 4, w = Math.max(0, s.share * track);
      const labelX = rtl() ? width - 4 : 4, barX = rtl() ? width - labelW - w : labelW, trackX = rtl() ? valueW : labelW;
      const valueX = rtl() ? valueW - 6 : width - 4;
      chart.append(
        svg("text", { x: labelX, y: y + 14, "text-anchor": rtl() ? "end" : "start", text: p }),
        svg("rect", { class: "track", x: trackX, y, width: track, height: 18, rx: 3 }),
        svg("rect", { class: fill(p), x: barX, y, width: w, height: 18, rx: 3, "data-testid": "bar-" + windowName + "-" + p }),
        svg("text", { x: valueX, y: y + 14, "text-anchor": "end", text: pct(s.share), "data-testid": "share-" + windowName + "-" + p, "data-value": s.share, direction: "ltr" }));
    });
    return chart;
  }

  function renderStats(stats, state) {
    if (!stats.ledger) {
      $("health").replaceChildren(el("tr", {}, el("td", { colspan: 7, text: "the ledger plugin is off: no traffic data" })));
      return;
    }
    const w5 = stats.windows["5m"], w60 = stats.windows["60m"];
    document.querySelector("[data-testid=total-5m]").textContent = w5.requests;
    document.querySelector("[data-testid=total-60m]").textContent = w60.requests;
    $("chart-5m").replaceChildren(barChart(w5, "5m"));
    $("chart-60m").replaceChildren(barChart(w60, "60m"));

    const rows = Object.entries(w60.providers).map(([p, s]) => {
      const s5 = w5.providers[p];
      return el("tr", { "data-testid": "health-" + p },
        el("td", { text: p }),
        num({ "data-testid": "requests-60m-" + p }, String(s.requests)),
        num({ "data-testid": "requests-5m-" + p }, String(s5 ? s5.requests : 0)),
        num({ "data-testid": "errors-60m-" + p }, String(s.errors)),
        num({ "data-testid": "error-rate-60m-" + p, "data-value": s.error_rate }, pct(s.error_rate)),
        num({ "data-testid": "p50-60m-" + p, "data-value": s.p50_ms ?? "" }, ms(s.p50_ms)),
        num({ "data-testid": "p95-60m-" + p, "data-value": s.p95_ms ?? "" }, ms(s.p95_ms)));
    });
    $("health").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no requests in the last 60 minutes" }))]));

    const money = (p, field, value, compare) => {
      const cls = compare === undefined ? "num" : "num " + (value <= compare ? "cheaper" : "dearer");
      return el("td", { class: cls, "data-testid": field + "-" + p, "data-value": value }, el("bdi", { dir: "ltr", text: usd(value) }));
    };
    const spendRows = Object.entries(stats.spend.providers).map(([p, s]) => el("tr", {},
      el("td", { text: p }),
      money(p, "spend-today", s.today_usd, s.groq_today_usd), money(p, "groq-today", s.groq_today_usd),
      money(p, "spend-month", s.month_usd, s.groq_month_usd), money(p, "groq-month", s.groq_month_usd)));
    $("spend").replaceChildren(...(spendRows.length ? spendRows : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no spend this month" }))]));
    const t = stats.spend.total;
    $("spend-total").replaceChildren(el("tr", {}, el("td", { text: "total" }),
      money("total", "spend-today", t.today_usd, t.groq_today_usd), money("total", "groq-today", t.groq_today_usd),
      money("total", "spend-month", t.month_usd, t.groq_month_usd), money("total", "groq-month", t.groq_month_usd)));

    const budgets = (stats.budgets || []).map((b) => {
      const used = b.limit_usd > 0 ? Math.min(1, b.spent_usd / b.limit_usd) : 1;
      const meter = svg("svg", { viewBox: "0 0 100 4", preserveAspectRatio: "none" });
      meter.append(svg("rect", { class: "used" + (b.reached ? " full" : used > 0.8 ? " high" : ""), x: rtl() ? 100 - used * 100 : 0, y: 0, width: used * 100, height: 4 }));
      const id = "budget-" + b.scope + "-" + b.name + "-" + b.period;
      return el("div", { class: "budget", "data-testid": id, "data-reached": String(b.reached) },
        el("div", {}, el("strong", { text: b.scope + " " + b.name }), " " + b.period + ": ",
          el("span", { "data-testid": id + "-left", "data-value": b.remaining_usd, text: usd(b.remaining_usd) }),
          " left of " + usd(b.limit_usd) + (b.reached ? " · reached (" + b.on_limit + ")" : "")),
        el("div", { class: "meter" }, meter));
    });
    $("budgets").replaceChildren(...(budgets.length ? budgets : [el("p", { class: "muted", text: "no budgets configured" })]));

    const shadow = stats.shadow;
    $("shadow-card").hidden = !shadow;
    if (shadow) document.querySelector("[data-testid=shadow-rows]").textContent = shadow.rows_60m;
  }

  // ---- flags -----------------------------------------------------------------------------------
  function renderFlags(snapshot, state) {
    flags = snapshot.flags;
    if (!formDirty) {
      $("f-ENABLE_MODEL_ABSTRACTION").checked = flags.ENABLE_MODEL_ABSTRACTION;
      $("f-ENABLE_GROQ").checked = flags.ENABLE_GROQ;
      $("f-ENABLE_FALLBACK").checked = flags.ENABLE_FALLBACK;
      $("f-PRIMARY_PROVIDER").value = flags.PRIMARY_PROVIDER || "";
      $("f-FALLBACK_PROVIDERS").value = flags.FALLBACK_PROVIDERS || "";
      const split = new Map(state.aliases.map((a) => [a.alias, a.traffic_percent]));
      $("traffic").replaceChildren(...aliasesWithSplit.map((alias) => el("label", {}, alias + " ",
        el("input", { type: "number", min: 0, max: 100, step: 1, id: "t-" + alias, "data-testid": "traffic-" + alias, "data-alias": alias, value: split.get(alias) }))));
    }
    const items = [...(snapshot.history || [])].reverse().map((h) => el("li", { "data-testid": "history-item" },
      el("bdi", {}, el("time", { datetime: new Date(h.time * 1000).toISOString(), text: new Date(h.time * 1000).toLocaleString() })), " ",
      el("bdi", { "data-testid": "history-who", text: h.who }), ": ",
      el("code", { "data-testid": "history-flag", text: h.flag }), " ",
      el("bdi", { dir: "ltr", text: JSON.stringify(h.old) + " → " + JSON.stringify(h.new) })));
    $("history").replaceChildren(...(items.length ? items : [el("li", { class: "muted empty", text: "no changes since start" })]));
  }

  function formChanges() {
    const changes = {};
    for (const name of ["ENABLE_MODEL_ABSTRACTION", "ENABLE_GROQ", "ENABLE_FALLBACK"]) {
      const value = $("f-" + name).checked;
      if (value !== flags[name]) changes[name] = value;
    }
    const primary = $("f-PRIMARY_PROVIDER").value;
    if (primary !== (flags.PRIMARY_PROVIDER || "")) changes.PRIMARY_PROVIDER = primary;
    const fallback = $("f-FALLBACK_PROVIDERS").value.split(",").map((s) => s.trim()).filter(Boolean).join(",");
    if (fallback !== (flags.FALLBACK_PROVIDERS || "")) changes.FALLBACK_PROVIDERS = fallback;
    const traffic = {};
    for (const input of document.querySelectorAll("#traffic input")) {
      const alias = input.dataset.alias, value = Number(input.value);
      if (input.value !== "" && value !== Number(input.defaultValue)) traffic[alias] = value;
    }
    if (Object.keys(traffic).length) changes.traffic = traffic;
    return changes;
  }

  async function applyFlags(event) {
    event.preventDefault();
    const msg = $("flags-msg");
    if (!flags) return;
    const changes = formChanges();
    if (!Object.keys(changes).length) { msg.className = ""; msg.textContent = "nothing changed"; formDirty = false; return; }
    if (changes.ENABLE_MODEL_ABSTRACTION === false &&
        !window.confirm("Roll back: set ENABLE_MODEL_ABSTRACTION=false and send every alias to its legacy Groq model?")) return;
    if ("ENABLE_GROQ" in changes &&
        !window.confirm((changes.ENABLE_GROQ ? "Enable" : "Disable") + " Groq for all routing (ENABLE_GROQ=" + changes.ENABLE_GROQ + ")?")) return;
    try {
      await api("PATCH", "/admin/flags", changes);
      msg.className = "good";
      msg.textContent = "applied: " + Object.keys(changes).join(", ");
      formDirty = false;
    } catch (err) {
      if (err instanceof Unauthorized) { askForKey("The gateway refused the key: " + err.message); return; }
      msg.className = "bad";
      msg.textContent = err.message;
    }
    refresh();
  }

  // ---- direction -------------------------------------------------------------------------------
  function setDir(dir) {
    document.documentElement.dir = dir;
    localStorage.setItem("modelgate-dir", dir);
    if (!$("main").hidden) refresh();
  }

  // ---- start -----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    const params = new URLSearchParams(location.search);
    const dir = params.has("rtl") ? (params.get("rtl") === "0" ? "ltr" : "rtl") : (localStorage.getItem("modelgate-dir") || "ltr");
    document.documentElement.dir = dir;
    $("dir-toggle").addEventListener("click", () => setDir(rtl() ? "ltr" : "rtl"));
    $("logout").addEventListener("click", () => askForKey(""));
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("key-input").value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY_NAME, value);
      $("login").hidden = true;
      refresh();
    });
    $("flags-form").addEventListener("input", () => { formDirty = true; });
    $("flags-form").addEventListener("submit", applyFlags);
    if (key()) refresh(); else askForKey("");
  });
})();
