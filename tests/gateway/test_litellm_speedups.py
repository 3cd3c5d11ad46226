"""The memoized model-map lookups give LiteLLM's own answers, and see the map change."""

from __future__ import annotations

import os
import subprocess
import sys

import litellm
import pytest

from gateway import config, litellm_speedups
from gateway.settings import Settings
from tests.support.proc import ROOT

SUPPORTS_KEYS = ("supports_web_search", "supports_reasoning", "supports_response_schema", "supports_function_calling",
                 "supports_tool_choice", "supports_vision")


def configured_models() -> list[tuple[str, str | None]]:
    """(model, provider) of every deployment in config/models.yaml, as LiteLLM's lookups get them,
    plus models the map does not know (the local ones, a made-up one)."""
    settings = Settings(_env_file=None, GROQ_API_KEY="gsk_test", OPENROUTER_API_KEY="sk-or-test",
                        OPENAI_API_KEY="sk-test")
    out = set()
    for dep in config.resolve(settings).model_list():
        model = dep["litellm_params"]["model"]
        provider, _, name = model.partition("/")
        out.update({(model, None), (name, provider)})
    out.update({("no-such-model-anywhere", None), ("openai/no-such-model", "openai"), ("whisper-1", "openai")})
    return sorted(out, key=str)


@pytest.fixture
def speedups():
    litellm_speedups.install()
    yield litellm_speedups
    # The gateway installs them for good; a test that uninstalls must put them back.
    litellm_speedups.uninstall()
    litellm_speedups.install()


def outcome(fn, *args, **kwargs):
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the error is part of the answer compared
        return "raised", (type(exc), str(exc))


@pytest.mark.parametrize(("model", "provider"), configured_models())
def test_answers_match_litellm(speedups, model, provider):
    original_info = speedups.original("get_model_info_helper")
    original_supports = speedups.original("supports_factory")
    for _ in range(2):  # the second round is answered from the cache
        assert outcome(litellm.utils.get_model_info_helper, model=model, custom_llm_provider=provider) == \
            outcome(original_info, model=model, custom_llm_provider=provider)
        for key in SUPPORTS_KEYS:
            assert litellm.utils.supports_factory(model, provider, key) == original_supports(model, provider, key)
            assert getattr(litellm.utils, key)(model=model, custom_llm_provider=provider) == \
                original_supports(model=model, custom_llm_provider=provider, key=key)


def test_lookups_are_cached(speedups):
    speedups.uninstall()
    speedups.install()
    calls = []
    original = speedups.original("get_model_info_helper")
    memo = litellm.utils.get_model_info_helper
    for _ in range(3):
        calls.append(memo(model="gpt-4o", custom_llm_provider="openai"))
    assert len(memo.cache) == 1
    assert calls[0] == calls[2] == original(model="gpt-4o", custom_llm_provider="openai")
    assert litellm.main.get_model_info_helper is memo  # main.py imported the name: replaced there too


def test_a_caller_changing_the_answer_does_not_change_the_cache(speedups):
    first = litellm.utils.get_model_info_helper(model="gpt-4o", custom_llm_provider="openai")
    first["mode"] = "responses"  # as LiteLLM's responses_api_bridge_check does
    again = litellm.utils.get_model_info_helper(model="gpt-4o", custom_llm_provider="openai")
    assert again["mode"] == "chat"


def test_an_unmapped_model_raises_every_time_as_litellm_does(speedups):
    errors = []
    for _ in range(3):
        with pytest.raises(Exception) as info:  # noqa: PT011 - LiteLLM raises a bare Exception here
            litellm.utils.get_model_info_helper(model="qwen2.5-7b-local", custom_llm_provider="openai")
        errors.append(info.value)
    assert "isn't mapped" in str(errors[0])
    assert len({id(e) for e in errors}) == 3  # fresh copies: raising one must not grow another's traceback
    assert len({str(e) for e in errors}) == 1


def test_a_registered_model_is_seen_at_once(speedups):
    name = "modelgate-speedups-test-model"
    assert outcome(litellm.utils.get_model_info_helper, model=name, custom_llm_provider="openai")[0] == "raised"
    assert litellm.supports_reasoning(model=name, custom_llm_provider="openai") is False
    litellm.register_model({name: {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6,
                                   "output_cost_per_token": 2e-6, "supports_reasoning": True}})
    try:
        info = litellm.utils.get_model_info_helper(model=name, custom_llm_provider="openai")
        assert info["input_cost_per_token"] == 1e-6
        assert litellm.supports_reasoning(model=name, custom_llm_provider="openai") is True
    finally:
        litellm.model_cost.pop(name, None)
        litellm.utils._invalidate_model_cost_lowercase_map()


def test_install_is_idempotent(speedups):
    memo = litellm.utils.supports_factory
    speedups.install()
    assert litellm.utils.supports_factory is memo
    assert speedups.original("supports_factory") is not memo


@pytest.mark.parametrize(("setting", "installed"), [("true", True), ("false", False)])
def test_the_gateway_installs_them_unless_turned_off(tmp_path, setting, installed):
    """MODELGATE_LITELLM_MEMO=false leaves LiteLLM as shipped (a fresh process: installing is for good)."""
    script = ("import litellm.utils\n"
              "from gateway.core import Gateway\n"
              "from gateway.settings import Settings\n"
              "Gateway(Settings(_env_file=None))\n"
              "print(hasattr(litellm.utils.supports_factory, 'cache'))\n")
    env = {**os.environ, "MODELGATE_LITELLM_MEMO": setting, "MODELGATE_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}",
           "MODELGATE_FLAGS_FILE": str(tmp_path / "flags.yaml"), "HF_HUB_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(installed)


def test_an_error_that_cannot_be_copied_is_raised_as_is():
    class Picky(Exception):
        def __init__(self, message: str, model: str) -> None:  # .args holds one of the two
            super().__init__(message)
            self.model = model

    def lookup(model: str) -> None:
        raise Picky(f"{model} is not mapped", model)

    memo = litellm_speedups._memoized(lookup, copy_result=False)
    for _ in range(2):
        with pytest.raises(Picky, match="x is not mapped") as info:
            memo("x")
        assert info.value.model == "x"
