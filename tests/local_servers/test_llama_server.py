"""The llama.cpp chat server as a real process with the real SmolLM2-135M GGUF, driven by real clients.

Two server processes per module: `server` (the defaults: 4096 context, 1 running, 8 waiting) and
`small_server` (256 context, 1 running, nobody waiting) for the context and queue limits, plus a
short-lived one whose model file is missing. A
`reference` Llama in this process, with the same file and threads, says what the model itself
answers, so the tests can check that the server returns exactly that.

Token budgets are small: the machine is shared and the whole module should take well under 3 minutes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from tests.support.proc import ROOT, ServerProcess, free_port

MODEL = ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf"
THREADS = 2
# Every setting explicit, so that a developer's .env cannot change what is tested.
BASE_ENV = {"LOCAL_QWEN_MODEL_PATH": str(MODEL), "LOCAL_QWEN_THREADS": str(THREADS),
            "LOCAL_QWEN_DEVICE": "cpu", "LOCAL_QWEN_GPU_LAYERS": "0", "LOCAL_QWEN_CONTEXT": "4096",
            "LOCAL_QWEN_MAX_CONCURRENCY": "1", "LOCAL_QWEN_MAX_QUEUE": "8",
            "LOCAL_QWEN_MODEL_ID": "qwen-local"}

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
# At temperature 0 the tiny model loops on this one, so it runs to any max_tokens: a long generation.
ENDLESS = [{"role": "user", "content": "List 100 medications, one per line."}]


# ---- servers and clients ---------------------------------------------------------------------------------
def start(env: dict[str, str], name: str) -> ServerProcess:
    port = free_port()
    proc = ServerProcess(["-m", "local_servers.llama", "--port", str(port)], port, env={**BASE_ENV, **env},
                         log_name=name)
    return proc.wait_ready(timeout=120)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = start({}, "llama")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def small_server() -> Iterator[ServerProcess]:
    proc = start({"LOCAL_QWEN_CONTEXT": "256", "LOCAL_QWEN_MAX_QUEUE": "0"}, "llama-small")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def reference() -> Any:
    """The model in this process, set up like the server's."""
    import local_servers.llama  # noqa: F401  (sets OMP_WAIT_POLICY, which counts only before llama_cpp loads)
    from llama_cpp import Llama

    return Llama(str(MODEL), n_ctx=4096, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="local", max_retries=0, timeout=120)


def chat(proc: ServerProcess, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
    return httpx.post(proc.base_url + "/v1/chat/completions", json={"model": "qwen-local", **body},
                      timeout=timeout)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_answers(proc: ServerProcess) -> None:
    """The server is alive and still generates."""
    response = chat(proc, {"messages": HELLO, "max_tokens": 4, "temperature": 0})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] >= 1


def health(proc: ServerProcess) -> dict[str, Any]:
    response = httpx.get(proc.base_url + "/health", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_idle(proc: ServerProcess, within: float) -> float:
    """Seconds until the server runs nothing; fails after `within`."""
    began = time.monotonic()
    while (state := health(proc))["running"] or state["waiting"]:
        assert time.monotonic() - began < within, f"still busy after {within}s: {state}"
        time.sleep(0.05)
    return time.monotonic() - began


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


# ---- health, models, settings ----------------------------------------------------------------------------
def test_health_and_models(server: ServerProcess) -> None:
    assert health(server) == {"status": "ok", "running": 0, "waiting": 0}
    models = httpx.get(server.base_url + "/v1/models", timeout=5).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["qwen-local"]
    assert models["data"][0]["object"] == "model"


def test_missing_model_file_keeps_health_503_without_crashing() -> None:
    port = free_port()
    proc = ServerProcess(["-m", "local_servers.llama", "--port", str(port)], port,
                         env={**BASE_ENV, "LOCAL_QWEN_MODEL_PATH": "models/absent.gguf"},
                         log_name="llama-missing")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.proc.poll() is None, proc.log()
            assert time.monotonic() < deadline, proc.log()
            try:
                response = httpx.get(proc.base_url + "/health", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if "absent.gguf" in response.text:
                break
            time.sleep(0.1)
        error = assert_openai_error(response, 503, "model_not_ready")
        assert "model file not found" in error["message"]
        assert_openai_error(chat(proc, {"messages": HELLO}), 503, "model_not_ready")
        time.sleep(1)
        assert proc.proc.poll() is None  # no crash, no restart loop
        assert proc.log().count("model file not found") == 1  # one clear line
    finally:
        proc.stop()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from local_servers.llama.config import Settings

    for name in ("DEVICE", "GPU_LAYERS", "CONTEXT", "MODEL_ID"):
        monkeypatch.delenv(f"LOCAL_QWEN_{name}", raising=False)
    assert Settings(_env_file=None).n_gpu_layers == 0  # not a developer's .env
    monkeypatch.setenv("LOCAL_QWEN_DEVICE", "cuda")
    monkeypatch.setenv("LOCAL_QWEN_CONTEXT", "8192")
    monkeypatch.setenv("LOCAL_QWEN_MODEL_ID", "qwen-72b")
    settings = Settings(_env_file=None)
    assert (settings.n_gpu_layers, settings.context, settings.model_id) == (-1, 8192, "qwen-72b")
    monkeypatch.setenv("LOCAL_QWEN_GPU_LAYERS", "20")
    assert Settings(_env_file=None).n_gpu_layers == 20


# ---- plain chat ------------------------------------------------------------------------------------------
def test_answer_and_usage_are_the_models_own(client: openai.OpenAI, reference: Any) -> None:
    answer = client.chat.completions.create(model="anything", messages=HELLO, max_tokens=24, temperature=0,
                                            user="someone")
    expected = reference.create_chat_completion(HELLO, max_tokens=24, temperature=0)
    assert answer.object == "chat.completion" and answer.model == "qwen-local"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert answer.choices[0].message.content.strip()
    assert answer.choices[0].finish_reason == expected["choices"][0]["finish_reason"]
    usage = answer.usage
    assert usage.prompt_tokens == expected["usage"]["prompt_tokens"] > 0
    assert usage.completion_tokens == expected["usage"]["completion_tokens"] > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_cuts_with_finish_reason_length(client: openai.OpenAI) -> None:
    for limits in ({"max_tokens": 5}, {"max_completion_tokens": 5}):
        answer = client.chat.completions.create(model="qwen-local", messages=ENDLESS, temperature=0, **limits)
        assert answer.choices[0].finish_reason == "length"
        assert answer.usage.completion_tokens == 5


def test_stop_sequences_end_the_answer(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="qwen-local", messages=ENDLESS, max_tokens=12, temperature=0)
    text = full.choices[0].message.content
    assert "\n" in text, text
    for stop in ("\n", ["\n", "zzz"]):
        cut = client.chat.completions.create(model="qwen-local", messages=ENDLESS, max_tokens=12,
                                             temperature=0, stop=stop)
        assert cut.choices[0].finish_reason == "stop"
        assert cut.choices[0].message.content == text.split("\n")[0]


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def ask(temperature: float) -> str:
        answer = client.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=16,
                                                temperature=temperature, seed=1234)
        return answer.choices[0].message.content

    assert ask(0) == ask(0)
    assert ask(0.9) == ask(0.9)


# ---- JSON mode -------------------------------------------------------------------------------------------
CLINICAL = [
    "Patient has chest pain and shortness of breath. Give the likely diagnosis.",
    "Extract the medication and dose: aspirin 81 mg daily.",
    "Blood pressure 150/95. Is this hypertension?",
    "Summarize: 45-year-old man with fever and cough for three days.",
    "List two symptoms of diabetes.",
    "Patient allergic to penicillin. Record the allergy.",
    "Heart rate 120 bpm. Classify the heart rate.",
    "Give the triage level for a patient with a broken arm.",
    "Extract the patient's age: a 67-year-old woman with dizziness.",
    "What test checks blood sugar?",
    "Record vital signs: temperature 38.5 C, pulse 90.",
    "Name one common antibiotic.",
    "Is a headache with stiff neck urgent?",
    "Convert to structured data: weight 70 kg, height 175 cm.",
    "Give a follow-up plan for a sprained ankle.",
    "What specialty treats kidney disease?",
    "Extract the complaint: patient reports nausea since morning.",
    "Give the normal range of oxygen saturation.",
    "Patient smokes 10 cigarettes a day. Record smoking status.",
    "Suggest one question to ask a patient with back pain.",
]
# One worked example keeps a 135M model's objects short enough to close within max_tokens; the grammar,
# not the example, is what makes the output JSON.
JSON_PREAMBLE = [
    {"role": "system",
     "content": 'Reply only with a JSON object of the form {"answer": "<at most five words>"}.'},
    {"role": "user", "content": "Patient has a cough."},
    {"role": "assistant", "content": '{"answer": "possible chest infection"}'},
]


def test_json_object_mode_always_parses(client: openai.OpenAI) -> None:
    assert len(set(CLINICAL)) == 20
    for prompt in CLINICAL:
        answer = client.chat.completions.create(
            model="qwen-local", messages=[*JSON_PREAMBLE, {"role": "user", "content": prompt}],
            max_tokens=80, temperature=0, response_format={"type": "json_object"},
        )
        text = answer.choices[0].message.content
        assert answer.choices[0].finish_reason == "stop", (prompt, text)
        assert isinstance(json.loads(text), dict), (prompt, text)


TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "diagnosis": {"type": "string", "maxLength": 30},
        "urgent": {"type": "boolean"},
        "age": {"type": "integer"},
    },
    "required": ["diagnosis", "urgent", "age"],
    "additionalProperties": False,
}


def test_json_schema_is_enforced_not_just_requested(client: openai.OpenAI) -> None:
    """Left alone the model answers this in prose; with a schema it must answer in the schema."""
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"]}
    free = client.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=30, temperature=0)
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.choices[0].message.content)
    forced = client.chat.completions.create(
        model="qwen-local", messages=HELLO, max_tokens=30, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert forced.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(forced.choices[0].message.content), schema)


def test_json_schema_output_validates(client: openai.OpenAI) -> None:
    for prompt in ("A 52-year-old man has crushing chest pain.", "A 7-year-old girl has a mild rash."):
        answer = client.chat.completions.create(
            model="qwen-local", messages=[{"role": "user", "content": f"Triage this patient. {prompt}"}],
            max_tokens=60, temperature=0,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "triage", "schema": TRIAGE_SCHEMA, "strict": True}},
        )
        assert answer.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(answer.choices[0].message.content), TRIAGE_SCHEMA)


def test_json_cut_by_max_tokens_reports_length(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=3, temperature=0,
                                            response_format={"type": "json_object"})
    assert answer.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.choices[0].message.content)


# ---- streaming -------------------------------------------------------------------------------------------
def test_stream_with_the_openai_sdk(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=24, temperature=0)
    chunks = list(client.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=24,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # token by token
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    *content, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in content)
    assert last.usage.model_dump() == whole.usage.model_dump()


def test_stream_wire_format_ends_with_done(server: ServerProcess) -> None:
    body = {"model": "qwen-local", "messages": HELLO, "max_tokens": 8, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)  # only asked for with include_usage


def test_two_concurrent_streams_both_run_to_the_end(server: ServerProcess) -> None:
    """The second stream waits for the first instead of cutting it off; both get every token."""
    aclient = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="local", max_retries=0,
                                 timeout=120)

    async def one_stream() -> tuple[str, str | None, int, float, float]:
        stream = await aclient.chat.completions.create(model="qwen-local", messages=ENDLESS, max_tokens=40,
                                                       temperature=0, stream=True,
                                                       stream_options={"include_usage": True})
        text, finish, tokens, first, last = "", None, 0, 0.0, 0.0
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
                first, last = first or time.monotonic(), time.monotonic()
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return text, finish, tokens, first, last

    async def both() -> list[tuple[str, str | None, int, float, float]]:
        async with aclient:
            return await asyncio.gather(one_stream(), one_stream())

    a, b = asyncio.run(both())
    (text_a, finish_a, tokens_a, first_a, last_a), (text_b, finish_b, tokens_b, first_b, last_b) = a, b
    assert (finish_a, tokens_a) == (finish_b, tokens_b) == ("length", 40)
    assert text_a.count("\n") >= 5 and text_b.count("\n") >= 5
    # One ran after the other (one inference at a time), not interleaved: the later stream's first
    # token came after the earlier stream had delivered most of its own. (Comparing the earlier
    # stream's *last* chunk with the later one's first is racy: the client reads both from its
    # buffers in the same event-loop tick.)
    (e_first, e_last), l_first = sorted([(first_a, last_a), (first_b, last_b)])[0], max(first_a, first_b)
    assert l_first >= e_first + 0.5 * (e_last - e_first)


def test_stream_client_disconnect_stops_generation(server: ServerProcess) -> None:
    body = {"model": "qwen-local", "messages": ENDLESS, "max_tokens": 2000, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        for _ in range(6):  # a few tokens in
            next(lines)
        assert health(server)["running"] == 1
    # 2000 tokens would take 20 s or more; a stopped generation frees the place at once.
    assert wait_idle(server, within=5) < 5
    assert_answers(server)


def test_non_stream_client_disconnect_stops_generation(server: ServerProcess) -> None:
    with pytest.raises(httpx.ReadTimeout):
        chat(server, {"messages": ENDLESS, "max_tokens": 2000, "temperature": 0}, timeout=1.5)
    assert wait_idle(server, within=5) < 5
    assert_answers(server)


# ---- limits: queue and context ---------------------------------------------------------------------------
def test_full_queue_gives_429_with_retry_after(small_server: ServerProcess) -> None:
    body = {"model": "qwen-local", "messages": ENDLESS, "max_tokens": 150, "temperature": 0, "stream": True}
    url = small_server.base_url + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=60) as running:
        assert running.status_code == 200  # holds the only place; nobody may wait
        refused = chat(small_server, {"messages": HELLO, "max_tokens": 4})
        error = assert_openai_error(refused, 429, "rate_limit_exceeded")
        assert error["type"] == "rate_limit_error"
        assert int(refused.headers["Retry-After"]) >= 1
        events = sse_events(running)  # the running stream is not cut off by the refused request
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    wait_idle(small_server, within=5)
    assert_answers(small_server)


def test_prompt_longer_than_context_gives_context_length_exceeded(small_server: ServerProcess) -> None:
    long_text = "The patient reports pain in the chest and the arm. " * 40
    error = assert_openai_error(chat(small_server, {"messages": [{"role": "user", "content": long_text}]}),
                                400, "context_length_exceeded")
    assert error["message"].startswith("This model's maximum context length is 256 tokens. However, your "
                                       "messages resulted in ")
    assert error["type"] == "invalid_request_error"


def test_prompt_plus_max_tokens_over_context_gives_context_length_exceeded(
    small_server: ServerProcess,
) -> None:
    error = assert_openai_error(chat(small_server, {"messages": HELLO, "max_tokens": 250}),
                                400, "context_length_exceeded")
    assert error["message"].startswith("This model's maximum context length is 256 tokens. However, you "
                                       "requested ")
    assert "250 in the completion" in error["message"]
    assert_answers(small_server)


def test_openai_sdk_sees_context_errors_as_bad_requests(small_server: ServerProcess) -> None:
    sdk = openai.OpenAI(base_url=small_server.base_url + "/v1", api_key="local", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="qwen-local", messages=HELLO, max_tokens=1000)
    assert caught.value.code == "context_length_exceeded"


# ---- bad input -------------------------------------------------------------------------------------------
USER = [{"role": "user", "content": "hi"}]
BAD_BODIES: dict[str, dict[str, Any]] = {
    "no messages": {},
    "empty messages": {"messages": []},
    "messages not a list": {"messages": "hi"},
    "message not an object": {"messages": ["hi"]},
    "bad role": {"messages": [{"role": "wizard", "content": "hi"}]},
    "tool role": {"messages": [{"role": "tool", "content": "hi"}]},
    "no role": {"messages": [{"content": "hi"}]},
    "no content": {"messages": [{"role": "user"}]},
    "content a number": {"messages": [{"role": "user", "content": 42}]},
    "content an image part": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
    "content part without text": {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
    "temperature a string": {"messages": USER, "temperature": "hot"},
    "temperature a numeric string": {"messages": USER, "temperature": "0.5"},
    "temperature negative": {"messages": USER, "temperature": -0.1},
    "temperature too high": {"messages": USER, "temperature": 2.5},
    "top_p too high": {"messages": USER, "top_p": 1.5},
    "top_p a string": {"messages": USER, "top_p": "x"},
    "max_tokens zero": {"messages": USER, "max_tokens": 0},
    "max_tokens negative": {"messages": USER, "max_tokens": -5},
    "max_tokens a float": {"messages": USER, "max_tokens": 1.5},
    "max_tokens a string": {"messages": USER, "max_tokens": "ten"},
    "max_tokens a boolean": {"messages": USER, "max_tokens": True},
    "max_completion_tokens zero": {"messages": USER, "max_completion_tokens": 0},
    "stop a number": {"messages": USER, "stop": 5},
    "seed a string": {"messages": USER, "seed": "abc"},
    "n above one": {"messages": USER, "n": 2},
    "stream a string": {"messages": USER, "stream": "yes"},
    "response_format a string": {"messages": USER, "response_format": "json"},
    "response_format unknown type": {"messages": USER, "response_format": {"type": "xml"}},
    "json_schema missing": {"messages": USER, "response_format": {"type": "json_schema"}},
    "json_schema without name": {"messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
    "json_schema schema not an object": {"messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": 5}}},
    "json_schema unsupported": {"messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}},
    "json_schema bad pattern": {"messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "[a-"}}}},
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_request_gives_openai_shaped_400(server: ServerProcess, name: str) -> None:
    response = httpx.post(server.base_url + "/v1/chat/completions", json=BAD_BODIES[name], timeout=30)
    assert assert_openai_error(response, 400)["type"] == "invalid_request_error"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"", b"null"])
def test_unparseable_body_gives_400(server: ServerProcess, content: bytes) -> None:
    response = httpx.post(server.base_url + "/v1/chat/completions", content=content,
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert_openai_error(response, 400)


def test_server_still_answers_after_bad_requests(server: ServerProcess) -> None:
    for body in BAD_BODIES.values():
        assert chat(server, body).status_code == 400
    assert health(server)["status"] == "ok"
    assert_answers(server)


def test_openai_sdk_raises_bad_request_for_bad_input(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="qwen-local", messages=[{"role": "wizard", "content": "hi"}])
    assert caught.value.status_code == 400


# ---- LiteLLM, the way the gateway calls it ---------------------------------------------------------------
def test_litellm_plain_json_and_stream(server: ServerProcess) -> None:
    import litellm

    route = {"model": "openai/qwen-local", "api_base": server.base_url + "/v1", "api_key": "local"}

    async def calls() -> None:
        plain = await litellm.acompletion(**route, messages=HELLO, max_tokens=12, temperature=0)
        assert plain.choices[0].message.content.strip()
        assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens > 0

        structured = await litellm.acompletion(
            **route, messages=[*JSON_PREAMBLE, {"role": "user", "content": CLINICAL[0]}], max_tokens=80,
            temperature=0, response_format={"type": "json_object"},
        )
        assert isinstance(json.loads(structured.choices[0].message.content), dict)

        stream = await litellm.acompletion(**route, messages=HELLO, max_tokens=12, temperature=0, stream=True,
                                           stream_options={"include_usage": True})
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = getattr(chunk, "usage", None) or usage
        assert text == plain.choices[0].message.content
        assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens

    asyncio.run(calls())


def test_litellm_sees_context_length_exceeded(small_server: ServerProcess) -> None:
    import litellm

    async def call() -> None:
        await litellm.acompletion(model="openai/qwen-local", api_base=small_server.base_url + "/v1",
                                  api_key="local", messages=HELLO, max_tokens=1000)

    with pytest.raises(litellm.ContextWindowExceededError):
        asyncio.run(call())
