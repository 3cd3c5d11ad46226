"""`make serve` end to end: local servers + gateway, no keys, no network; the example app runs on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from tests.support.proc import ROOT, free_port

AUDIO = ROOT / "tests" / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())["clips"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    port, whisper_port, llama_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "LITELLM_MASTER_KEY"}
    env.update({
        "MODELGATE_ENV_FILE": str(tmp / ".env"), "MODELGATE_FLAGS_FILE": str(tmp / "flags.yaml"),
        "GATEWAY_PORT": str(port), "MODELGATE_LEDGER_URL": f"sqlite:///{tmp / 'ledger.sqlite'}",
        "LOCAL_WHISPER_API_BASE": f"http://127.0.0.1:{whisper_port}/v1",
        "LOCAL_QWEN_API_BASE": f"http://127.0.0.1:{llama_port}/v1",
        "PYTHONUNBUFFERED": "1",
    })
    log = (ROOT / ".pytest-logs").joinpath("serve.log")
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scripts.serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 240
        while "modelgate is up" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        key = next(line.split("=", 1)[1] for line in (tmp / ".env").read_text().splitlines()
                   if line.startswith("LITELLM_MASTER_KEY="))
        yield {"proc": proc, "base": f"http://127.0.0.1:{port}", "key": key, "log": log,
               "ports": (port, whisper_port, llama_port)}
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def test_prints_base_url_and_key_and_writes_a_strong_key(served):
    text = served["log"].read_text()
    assert f"base URL: {served['base']}/v1" in text
    assert served["key"] in text and len(served["key"]) >= 32
    health = httpx.get(served["base"] + "/health").json()
    assert set(map(tuple, health["chains"].values())) == {("local",)}


def test_main_answers_json_from_the_local_model(served):
    client = openai.OpenAI(base_url=served["base"] + "/v1", api_key=served["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="main", response_format={"type": "json_object"}, max_tokens=80, temperature=0,
        messages=[{"role": "user", "content": "Give a JSON object with a key 'diagnosis' for chest pain."}])
    assert raw.headers["x-modelgate-deployment"] == "main/local"
    assert isinstance(json.loads(raw.parse().choices[0].message.content), dict)


def test_stt_transcribes_a_wav_with_the_local_model(served):
    client = openai.OpenAI(base_url=served["base"] + "/v1", api_key=served["key"], max_retries=0)
    with (AUDIO / "en_chest_pain.wav").open("rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(model="stt", file=f, language="en")
    assert raw.headers["x-modelgate-deployment"] == "stt/local"
    normalize = EnglishTextNormalizer()
    assert "chest pain" in normalize(raw.parse().text)


def test_example_app_runs_all_four_use_cases(served):
    env = {**os.environ, "MODELGATE_BASE_URL": served["base"] + "/v1", "LITELLM_MASTER_KEY": served["key"]}
    result = subprocess.run([sys.executable, "examples/clinical_app.py", str(AUDIO / "fa_chest_pain.wav")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if line[:2] in ("1.", "2.", "3.", "4."))
    assert any("\u0600" <= ch <= "\u06ff" for ch in lines["1. transcript"])  # Persian script
    assert lines["2. analysis"].strip().startswith("{")  # analyse_case() returned the parsed JSON object
    assert lines["3. pubmed"].strip()
    assert lines["4. chunks"].strip().startswith("[")


def test_sigterm_stops_everything(served):
    proc = served["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    for port in served["ports"]:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
