"""Provider rate limits (`rpm:` / `tpm:` in a deployment's litellm_params, enforced by LiteLLM's
ModelRateLimitingCheck per UTC minute): excess goes to the next provider; with none, a 429."""

from __future__ import annotations

import asyncio
import time

import httpx

MSG = [{"role": "user", "content": "Expand: chest pain troponin"}]


def clear_of_minute_boundary(margin_s: float = 4.0) -> None:
    """LiteLLM counts rpm per UTC minute: keep a short test inside one minute."""
    second = time.time() % 60
    if second > 60 - margin_s:
        time.sleep(60 - second + 0.2)


def test_burst_over_rpm_goes_to_next_provider(start_gateway, fakes):
    rpm, burst = 3, 10
    gw = start_gateway(config={"deployment_params": {"main/groq": {"rpm": rpm}, "fast/groq": {"tpm": 20}}})
    clear_of_minute_boundary(10)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.api_base, timeout=30,
                                     headers={"authorization": f"Bearer {gw.key}"}) as client:
            body = {"model": "main", "messages": MSG}
            return await asyncio.gather(*[client.post("/chat/completions", json=body) for _ in range(burst)])

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * burst  # zero client errors
    served = [r.headers["x-modelgate-provider"] for r in responses]
    groq, openrouter = len(fakes["groq"].requests()), len(fakes["openrouter"].requests())
    # The gateway's start-up warm-up (one mocked call per group) may have used one of groq's slots.
    assert rpm - 1 <= groq <= rpm
    assert served.count("groq") == groq and served.count("openrouter") == openrouter == burst - groq
    # Within the minute, later calls keep skipping the exhausted provider.
    raw = gw.client().chat.completions.with_raw_response.create(model="main", messages=MSG)
    assert raw.headers["x-modelgate-provider"] == "openrouter"
    assert len(fakes["groq"].requests()) == groq

    # tpm works the same way, on tokens used this minute (the fake bills 7 per call here; the
    # warm-up's mocked call counts 30 if it fell in this minute): once over, Groq is skipped.
    served = []
    for _ in range(6):
        raw = gw.client().chat.completions.with_raw_response.create(model="fast", messages=MSG)
        served.append(raw.headers["x-modelgate-provider"])
        time.sleep(0.2)  # usage is counted by LiteLLM's success logging, just after the answer
    switch = served.index("openrouter")
    assert switch <= 3 and served == ["groq"] * switch + ["openrouter"] * (6 - switch)


def test_single_provider_over_rpm_is_a_429_with_retry_after(start_gateway, fakes):
    """No queue: the call over the limit gets a 429 at once (LiteLLM's check says Retry-After: 60), and
    while the deployment cools down after it, calls get the gateway's 429 with the cooldown left."""
    # main's chain is Groq alone: no OpenRouter key, local servers off.
    gw = start_gateway(env={"OPENROUTER_API_KEY": "", "ENABLE_LOCAL": "false"},
                       config={"deployment_params": {"main/groq": {"rpm": 2}}})
    assert httpx.get(gw.base_url + "/health").json()["chains"]["main"] == ["groq"]
    clear_of_minute_boundary()
    headers = {"authorization": f"Bearer {gw.key}"}
    responses = [httpx.post(gw.api_base + "/chat/completions", headers=headers, timeout=30,
                            json={"model": "main", "messages": MSG}) for _ in range(4)]
    codes = [r.status_code for r in responses]
    ok = codes.count(200)
    assert 1 <= ok <= 2 and codes == [200] * ok + [429] * (4 - ok)  # no queue: a clear 429 at once
    assert len(fakes["groq"].requests()) == ok
    for response in responses[ok:]:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["type"] == "rate_limit_error"
