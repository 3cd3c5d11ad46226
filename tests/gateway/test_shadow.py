"""Shadow mode (plugins/shadow.py): a background copy of sampled requests to a candidate, compared."""

from __future__ import annotations

import time

import httpx

from tests.gateway.test_ledger import AUDIO, ledger_rows

SHADOW = {"shadow": {"main": {"candidate": "openrouter", "sample": 100},
                     "stt": {"candidate": "openai", "sample": 100}}}


def shadow_summary(gw, alias: str, count: int, timeout: float = 10) -> dict:
    """Poll GET /admin/shadow until `alias` has `count` comparisons."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(gw.base_url + "/admin/shadow", headers={"Authorization": f"Bearer {gw.key}"}).json()
        summary = body["aliases"].get(alias)
        if summary and summary["count"] >= count:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_shadow_adds_no_latency_and_records_comparisons(start_gateway, fakes):
    gw = start_gateway(config={"extra": SHADOW})
    client = gw.client()
    # The candidate answers after 4 s; the primary's answer must not wait for it. The margin is
    # wide on purpose: this checks that the shadow call is off the request path, not how fast it is.
    fakes["openrouter"].fail("slow", count=-1, delay_s=4.0)

    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": "Return JSON for: fever"}],
        response_format={"type": "json_object"}, user="u-shadow")
    elapsed = time.monotonic() - started
    assert raw.headers["x-modelgate-provider"] == "groq"
    assert elapsed < 3.0, f"the primary's answer waited for the shadow call: {elapsed:.2f} s"

    body = shadow_summary(gw, "main", 1)
    main = body["aliases"]["main"]
    assert main["candidates"] == ["main/openrouter"] and main["primaries"] == ["main/groq"]
    assert main["errors"] == 0 and main["json_requests"] == 1
    assert main["primary_json_valid_rate"] == 1.0 and main["candidate_json_valid_rate"] == 1.0
    assert main["mean_key_jaccard"] == 1.0 and 0 <= main["mean_value_agreement"] < 1  # fakes differ in values
    assert 0 < main["mean_similarity"] < 1
    assert main["mean_candidate_latency_ms"] >= 1500 > main["mean_primary_latency_ms"]
    assert main["latency_delta_ms"] > 1000 and main["candidate_cost_usd"] >= 0

    rows = ledger_rows(gw, end_user="u-shadow")
    assert [(r["provider"], r["shadow"]) for r in rows] == [("groq", False), ("openrouter", True)]
    assert rows[1]["alias"] == "main" and rows[1]["status"] == "ok" and rows[1]["deployment"] == "main/openrouter"

    # Transcription: the candidate's transcript against the primary's, as a WER.
    fakes["openrouter"].reset()
    with (AUDIO / "en_orders.wav").open("rb") as f:
        client.audio.transcriptions.create(model="stt", file=f, extra_headers={"x-modelgate-user": "u-stt"})
    stt = shadow_summary(gw, "stt", 1)["aliases"]["stt"]
    assert stt["candidates"] == ["stt/openai"] and stt["errors"] == 0
    assert 0 < stt["mean_wer"] <= 1 and stt["json_requests"] == 0  # "groq transcript" vs "openai transcript"
    assert [r["shadow"] for r in ledger_rows(gw, end_user="u-stt")] == [False, True]

    metrics = httpx.get(gw.base_url + "/metrics").text
    assert 'modelgate_shadow_requests_total{alias="main",candidate="main/openrouter",status="ok"} 1.0' in metrics
    assert 'modelgate_requests_total{alias="main",kind="chat",provider="openrouter"' not in metrics


def test_shadow_never_falls_back_and_records_the_error(start_gateway, fakes):
    gw = start_gateway(config={"extra": SHADOW})
    fakes["openrouter"].fail("500", count=-1)
    reply = gw.client().chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}],
                                                user="u-fail")
    assert reply.choices[0].message.content

    main = shadow_summary(gw, "main", 1)["aliases"]["main"]
    assert (main["count"], main["errors"], main["error_rate"]) == (1, 1, 1.0)
    assert len(fakes["openrouter"].requests()) == 1          # one try: no retry
    assert len(fakes["groq"].requests()) == 1                # the primary only: no fallback for the shadow
    assert fakes["openai"].requests() == []
    rows = ledger_rows(gw, end_user="u-fail")
    assert [(r["provider"], r["status"], r["shadow"]) for r in rows] == \
        [("groq", "ok", False), ("openrouter", "error", True)]

    # The A/B pin (x-modelgate-pin, plugins/migration.py): one provider, no fallback; not shadowed when
    # the pinned provider is the candidate itself.
    fakes["openrouter"].reset()
    fakes["groq"].clear_requests()
    headers = {"Authorization": f"Bearer {gw.key}", "x-modelgate-pin": "openrouter"}
    chat = {"model": "main", "messages": [{"role": "user", "content": "hi"}]}
    pinned = httpx.post(gw.api_base + "/chat/completions", headers=headers, json=chat)
    assert pinned.headers["x-modelgate-deployment"] == "main/openrouter"
    fakes["openrouter"].fail("500", count=1)
    failed = httpx.post(gw.api_base + "/chat/completions", headers=headers, json=chat)
    assert failed.status_code == 500 and fakes["groq"].requests() == []
    unknown = httpx.post(gw.api_base + "/chat/completions", headers={**headers, "x-modelgate-pin": "nope"}, json=chat)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid_pin"
    assert shadow_summary(gw, "main", 1)["aliases"]["main"]["count"] == 1
