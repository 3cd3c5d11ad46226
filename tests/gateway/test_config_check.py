"""`python -m gateway config check` and start-up without keys."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.support.proc import ROOT

GOOD = (ROOT / "config" / "models.yaml").read_text()


def check(tmp_path, yaml_text: str | None = None, env: dict[str, str] | None = None, flags: str | None = None):
    config = tmp_path / "models.yaml"
    config.write_text(GOOD if yaml_text is None else yaml_text)
    flags_file = tmp_path / "flags.yaml"
    if flags is not None:
        flags_file.write_text(flags)
    # cwd is the tmp dir so no .env is read; os.environ carries coverage's subprocess hook.
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "MODELGATE_CONFIG": str(config), "MODELGATE_FLAGS_FILE": str(flags_file), **(env or {})}
    return subprocess.run([sys.executable, "-m", "gateway", "config", "check"], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_prints_resolved_chains(tmp_path):
    result = check(tmp_path, env={"GROQ_API_KEY": "k", "OPENROUTER_API_KEY": "k", "PRIMARY_PROVIDER": "openrouter"})
    assert result.returncode == 0, result.stderr
    assert "main           openrouter(openrouter/qwen/qwen-2.5-72b-instruct) -> groq" in result.stdout
    assert "legacy: groq -> openrouter -> local" in result.stdout
    assert "llama-3.3-70b-versatile    => main" in result.stdout
    assert "excluded: openai: no OPENAI_API_KEY set" in result.stdout


def test_malformed_yaml_names_file_and_line(tmp_path):
    broken = GOOD.replace("  - model_name: fast\n", "  - model_name: fast\n   bad: [indent\n", 1)
    result = check(tmp_path, broken)
    assert result.returncode == 2
    line = broken.splitlines().index("   bad: [indent") + 1
    assert f"models.yaml:{line}" in result.stderr or f"models.yaml:{line + 1}" in result.stderr
    assert "malformed YAML" in result.stderr


def test_unknown_provider_names_its_line(tmp_path):
    text = GOOD.replace("model_info: {provider: openrouter}", "model_info: {provider: anthropic}", 1)
    result = check(tmp_path, text)
    assert result.returncode == 2
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "provider: anthropic" in l) - 2  # the item's first line
    assert f"models.yaml:{line}: " in result.stderr and "unknown provider 'anthropic'" in result.stderr


@pytest.mark.parametrize(("env", "flags", "message"), [
    ({"ENABLE_GROQ": "maybe"}, None, "ENABLE_GROQ"),
    ({"PRIMARY_PROVIDER": "azure"}, None, "PRIMARY_PROVIDER"),
    ({}, "ENABLE_FALLBACK: perhaps\n", "flags.yaml: ENABLE_FALLBACK must be true or false"),
    ({}, "traffic: {main: 120}\n", "traffic.main must be a percentage"),
    ({}, "ENABLE_GROQ: [\n", "flags.yaml:2: malformed YAML"),
])
def test_bad_flag_values(tmp_path, env, flags, message):
    result = check(tmp_path, env=env, flags=flags)
    assert result.returncode == 2
    assert message in result.stderr


def test_alias_left_without_provider(tmp_path):
    result = check(tmp_path, env={"ENABLE_LOCAL": "false"})
    assert result.returncode == 2
    assert "alias 'stt' has no usable provider" in result.stderr
    assert "models.yaml:" in result.stderr


def test_no_keys_serves_everything_locally(start_gateway, fakes):
    gw = start_gateway(env={"GROQ_API_KEY": "", "OPENROUTER_API_KEY": "", "OPENAI_API_KEY": ""})
    health = httpx.get(gw.base_url + "/health").json()
    assert set(map(tuple, health["chains"].values())) == {("local",)}
    log = gw.process.log()
    for provider, key in (("groq", "GROQ_API_KEY"), ("openai", "OPENAI_API_KEY"), ("openrouter", "OPENROUTER_API_KEY")):
        assert f"provider {provider} left out of routing: no {key} set" in log
