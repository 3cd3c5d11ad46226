"""Fuzz a running server from its own OpenAPI spec with schemathesis.

Every operation of the spec gets `FUZZ_EXAMPLES` cases that fit the spec (positive) and as many that
break it (negative: wrong types, missing fields, bad enums...), each sent over HTTP to the real
process. Checks: no 5xx (schemathesis' `not_a_server_error`) and every 4xx in OpenAI's error shape.
`FUZZ_EXAMPLES=500 pytest tests/gateway/test_fuzz.py` runs a longer search than the CI default.
The search is seeded (`FUZZ_SEED`, default 0) so CI explores the same cases on every run; set
`FUZZ_SEED=random` to explore new ones locally (a failure prints the seed to replay).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
SEED = os.environ.get("FUZZ_SEED", "0")


@schemathesis.check
def openai_error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A rejection is `{"error": {"message", "type", "param", "code"}}`, as OpenAI's SDKs expect."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text[:200]!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} body has no 'error' object: {body!r}"
    missing = {"message", "type", "param", "code"} - set(error)
    assert not missing, f"{response.status_code} error lacks {sorted(missing)}: {body!r}"
    assert isinstance(error["message"], str) and error["message"], f"empty message: {body!r}"
    assert isinstance(error["type"], str), f"type is not a string: {body!r}"


def fuzz(base_url: str, headers: dict[str, str] | None = None, examples: int = EXAMPLES,
         skip: set[str] = frozenset()) -> list[str]:
    """Fuzz every operation of `base_url`/openapi.json but the labels in `skip` ("POST /v1/x");
    return the labels fuzzed. Raises the first failure, with a curl command to replay it."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skip:
            continue
        has_inputs = bool(operation.body) or any(True for _ in operation.iter_parameters())
        # Negative cases need something to break: an operation without parameters or body has none.
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[:2 if has_inputs else 1]:
            _run(operation, mode, base_url, headers or {}, examples)
        fuzzed.append(operation.label)
    return fuzzed


def _run(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str], examples: int) -> None:
    # No example database (runs are independent) and no deadline: the servers share 2 busy cores.
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, timeout=60,
                               checks=[not_a_server_error, openai_error_shape])

    if SEED != "random":
        check = seed(int(SEED))(check)
    check()


def assert_alive(base_url: str) -> None:
    response = httpx.get(base_url + "/health", timeout=10)
    assert response.status_code == 200, response.text
