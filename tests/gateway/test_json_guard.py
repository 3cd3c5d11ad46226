"""JSON guard: a JSON request's reply that does not parse or validate falls through to the next provider."""

from __future__ import annotations

import json

import httpx
import yaml

from tests.support.gateway import write_config

MSG = [{"role": "user", "content": "Summarise as JSON: 52 year old man, chest pain, troponin raised"}]
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "diagnosis": {"type": "string"}},
    "required": ["summary", "diagnosis"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "case", "schema": SCHEMA, "strict": True}}
JSON_OBJECT = {"type": "json_object"}


def chat(gateway, model: str, **kwargs):
    return gateway.client().chat.completions.with_raw_response.create(model=model, messages=MSG, **kwargs)


def counts(fakes) -> dict[str, int]:
    out = {name: len(fake.requests()) for name, fake in fakes.items()}
    for fake in fakes.values():
        fake.clear_requests()
    return out


def test_guard_falls_through_and_counts_the_failure(gateway, fakes):
    groq, openrouter = fakes["groq"], fakes["openrouter"]

    # A request that does not ask for JSON is never judged: plain text passes.
    groq.reply(content="not json")
    raw = chat(gateway, "fast")
    assert raw.parse().choices[0].message.content == "not json"
    assert raw.headers["x-modelgate-provider"] == "groq"
    counts(fakes)

    # json_object + a reply that is not JSON: the next provider answers.
    raw = chat(gateway, "fast", response_format=JSON_OBJECT)
    assert raw.headers["x-modelgate-provider"] == "openrouter"
    assert raw.headers["x-modelgate-fallbacks"] == "1"
    assert isinstance(json.loads(raw.parse().choices[0].message.content), dict)
    assert counts(fakes) == {"groq": 1, "openrouter": 1, "openai": 0}

    # A valid JSON reply passes untouched (the fake's exact bytes), from the first provider.
    groq.reply(content=None)
    raw = chat(gateway, "main", response_format=JSON_OBJECT)
    assert raw.headers["x-modelgate-provider"] == "groq" and raw.headers["x-modelgate-fallbacks"] == "0"
    assert raw.parse().choices[0].message.content == json.dumps(
        {"provider": "groq", "model": "llama-3.3-70b-versatile",
         "answer": "groq llama-3.3-70b-versatile reply"})
    assert counts(fakes) == {"groq": 1, "openrouter": 0, "openai": 0}

    # The fake's truncated JSON (invalid_json fault): falls through.
    groq.fail("invalid_json")
    raw = chat(gateway, "analysis", response_format=JSON_OBJECT)
    assert raw.headers["x-modelgate-deployment"] == "analysis/openrouter"
    assert counts(fakes) == {"groq": 1, "openrouter": 1, "openai": 0}

    # json_schema + a JSON object missing a required key: falls through; OpenRouter's reply validates.
    groq.reply(content=json.dumps({"summary": "chest pain"}))
    raw = chat(gateway, "main", response_format=JSON_SCHEMA)
    assert raw.headers["x-modelgate-provider"] == "openrouter"
    assert set(json.loads(raw.parse().choices[0].message.content)) == {"summary", "diagnosis"}
    assert counts(fakes) == {"groq": 1, "openrouter": 1, "openai": 0}

    # The failure counted for main/groq's health: it is cooling down, so the next call skips it.
    groq.reply(content=None)
    raw = chat(gateway, "main", response_format=JSON_OBJECT)
    assert raw.headers["x-modelgate-provider"] == "openrouter" and raw.headers["x-modelgate-fallbacks"] == "0"
    assert counts(fakes) == {"groq": 0, "openrouter": 1, "openai": 0}


def test_instruction_fallback_and_streams(start_gateway, fakes, tmp_path):
    # OpenRouter's `main` deployment flagged as lacking JSON mode; chains: openrouter -> groq.
    path = write_config(tmp_path, router_settings={"cooldown_time": 2})
    data = yaml.safe_load(path.read_text())
    for dep in data["model_list"]:
        if dep["model_name"] == "main" and dep["model_info"]["provider"] == "openrouter":
            dep["model_info"]["json_mode"] = "instruction"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    gw = start_gateway(env={"PRIMARY_PROVIDER": "openrouter", "ENABLE_LOCAL": "false",
                            "MODELGATE_CONFIG": str(path)})
    openrouter = fakes["openrouter"]

    # The instruction (with the schema) replaces response_format; a fenced reply is unwrapped.
    answer = {"summary": "chest pain", "diagnosis": "NSTEMI"}
    openrouter.reply(content="```json\n" + json.dumps(answer) + "\n```")
    raw = chat(gw, "main", response_format=JSON_SCHEMA)
    assert raw.headers["x-modelgate-provider"] == "openrouter"
    assert json.loads(raw.parse().choices[0].message.content) == answer
    [request] = openrouter.requests()
    assert request["response_format"] is None
    system = request["body"]["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("Answer with a single JSON object only")
    assert '"required": ["summary", "diagnosis"]' in system["content"]
    assert request["body"]["messages"][1:] == MSG
    assert counts(fakes) == {"groq": 0, "openrouter": 1, "openai": 0}

    # Native deployments keep response_format (fast/openrouter is not flagged).
    openrouter.reply(content=None)
    chat(gw, "fast", response_format=JSON_OBJECT)
    assert openrouter.requests()[0]["response_format"] == JSON_OBJECT
    counts(fakes)

    # A stream is checked once complete: valid JSON ends normally...
    body = {"model": "fast", "messages": MSG, "response_format": JSON_OBJECT, "stream": True}
    headers = {"authorization": f"Bearer {gw.key}"}
    ok = httpx.post(gw.api_base + "/chat/completions", headers=headers, json=body, timeout=30)
    assert ok.status_code == 200 and '"error"' not in ok.text and ok.text.rstrip().endswith("data: [DONE]")
    # ...invalid JSON gets an error event before [DONE] (the 200 and the chunks are already sent).
    openrouter.reply(content="not json")
    bad = httpx.post(gw.api_base + "/chat/completions", headers=headers, json=body, timeout=30)
    assert bad.status_code == 200
    events = [line[6:] for line in bad.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "invalid_json_reply"
    assert "not json" in "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                                 for e in events[:-2] if json.loads(e).get("choices"))
    # ...and it counted for fast/openrouter's health: the next call goes to Groq.
    openrouter.reply(content=None)
    assert chat(gw, "fast", response_format=JSON_OBJECT).headers["x-modelgate-provider"] == "groq"
    counts(fakes)

    # When no provider of the chain answers valid JSON, the app gets a 502 saying so.
    for fake in fakes.values():
        fake.reply(content="Sure! Here is the JSON you asked for.")
    response = httpx.post(gw.api_base + "/chat/completions", headers=headers,
                          json={"model": "analysis", "messages": MSG, "response_format": JSON_OBJECT},
                          timeout=30)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "invalid_json_reply"
    assert counts(fakes) == {"groq": 1, "openrouter": 1, "openai": 0}
