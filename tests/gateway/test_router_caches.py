"""`_Router`'s per-Router caches answer as LiteLLM's Router does, and see a replaced deployment."""

from __future__ import annotations

import litellm
import pytest

from gateway.core import _discard, _Router


def model_list() -> list[dict]:
    return [
        {"model_name": "fast", "litellm_params": {"model": "groq/llama-3.1-8b-instant", "api_key": "gsk_test",
                                                  "input_cost_per_token": 5e-8, "output_cost_per_token": 8e-8,
                                                  "rpm": 30, "order": 1},
         "model_info": {"id": "fast/groq", "provider": "groq"}},
        {"model_name": "fast", "litellm_params": {"model": "openai/qwen-local", "api_base": "http://127.0.0.1:9/v1",
                                                  "api_key": "none", "order": 2},
         "model_info": {"id": "fast/local", "provider": "local"}},
    ]


@pytest.fixture
def routers():
    made = []

    def make() -> _Router:
        made.append(_Router(model_list=model_list()))
        return made[-1]

    yield make
    for router in made:
        _discard(router)


@pytest.mark.parametrize("model_id", ["fast/groq", "fast/local", "no-such-id"])
def test_deployments_match_litellm(routers, model_id):
    router = routers()
    expected = litellm.Router.get_deployment(router, model_id)
    first, second = router.get_deployment(model_id), router.get_deployment(model_id)
    if expected is None:
        assert first is None and second is None
        return
    assert first.model_dump() == expected.model_dump()
    assert second is first  # validated once


def test_a_replaced_deployment_is_validated_anew(routers):
    router = routers()
    before = router.get_deployment("fast/groq")
    entry = dict(router.model_list[0])
    entry["litellm_params"] = {**entry["litellm_params"], "rpm": 99}
    router.model_list[0] = entry
    after = router.get_deployment("fast/groq")
    assert after is not before
    assert after.litellm_params.rpm == 99


def test_model_info_matches_litellm_and_callers_get_copies(routers):
    router = routers()
    deployment = router.get_deployment("fast/groq")
    expected = litellm.Router.get_router_model_info(router, deployment, "fast")
    info = router.get_router_model_info(deployment, "fast")
    assert info == expected
    assert info["input_cost_per_token"] == 5e-8
    info["input_cost_per_token"] = 1.0  # a caller changing its copy
    assert router.get_router_model_info(deployment, "fast")["input_cost_per_token"] == 5e-8
