"""JSON guard: a reply to a JSON request that is not JSON is that provider's failure, and the next
provider in the chain answers.

A request asks for JSON with `response_format` `{"type": "json_object"}` or `{"type": "json_schema",
"json_schema": {"schema": ...}}`. A non-streamed reply whose content does not parse (json_object: not
a JSON object), or does not validate against the schema (`jsonschema`), raises `InvalidJSONReply`
(an upstream error, HTTP 502) for that deployment, inside the Router's own fallback loop, so:

- LiteLLM's order-based fallback moves on to the next `order` of the chain, exactly as for a 5xx;
  `x-modelgate-provider` names the provider that finally answered and `x-modelgate-fallbacks` counts;
- the failure counts for that deployment's health: the Router's failure callback sees a 502, so with
  `allowed_fails: 0` the deployment cools down for `cooldown_time` like after any other failure;
- when every provider of the chain fails, the app gets the last error: a 502 with code
  `invalid_json_reply` naming the upstream model.
A valid reply passes untouched (same object, same content). The rejected reply was paid for: LiteLLM
logs that attempt as a failure, so the gateway's success hooks (ledger) only see the answer that won.

Cost: the hooks add ~20 us per chat request (json_object: one json.loads); json_schema validation with
`jsonschema` costs ~0.5-0.8 ms for an ~800-token structured answer (validators are cached per schema).

Mechanism (LiteLLM 1.106.12). `litellm.acompletion`'s wrapper (utils.client, run once per deployment
attempt, i.e. once per hop of the Router's fallback walk) calls every callback's
`async_pre_call_deployment_hook(kwargs, call_type)` just before the provider call, after the Router
picked the deployment (kwargs carry its `model_info`), and `async_post_call_success_deployment_hook(
request_data, response, call_type)` right after the reply arrives. An exception from the post hook
goes through the wrapper's failure path (failure logging -> Router.deployment_callback_on_failure ->
cooldown) and up to Router.async_function_with_fallbacks, which walks the remaining orders. The one
catch: for plain CustomLoggers LiteLLM swallows exceptions from that post hook ("a broken callback
must not fail a completed request"); it re-raises only for `CustomGuardrail` instances. Hence this is
a CustomGuardrail, but it uses none of the guardrail machinery (`should_run_guardrail` is always
False, so LiteLLM's guardrail logging hooks skip it), and the exception is deliberately not one of
LiteLLM's guardrail "intervention" types (those stop the fallback walk).

Providers without native JSON mode get an instruction-level fallback. `model_info.json_mode` in
config/models.yaml decides per deployment: `native` passes response_format through, `instruction`
drops response_format and adds a system instruction ("Answer with a single JSON object only...",
plus the schema when there is one). Without the key, a deployment whose provider/model LiteLLM says
does not take `response_format` (`litellm.get_supported_openai_params`) gets the instruction;
Groq, OpenRouter and the local llama server (grammar-constrained json_object/json_schema) all take it.
`litellm.supports_response_schema` is not used: the bundled cost map says False for all of these,
and LiteLLM's Groq adapter already emulates json_schema with a forced tool call. Instruction-mode
replies wrapped in a Markdown code fence are unwrapped (the content is then the bare JSON); native
replies are never rewritten.

Streaming JSON requests: the deployment hooks do not see streams (LiteLLM runs no post-success hook on
a stream and swallows exceptions from its per-chunk hook), and the status line and the chunks are
already on the wire when the text is complete. So the gateway-level `async_post_call_success_hook`
(core._Stream runs it on the assembled answer before `[DONE]`) validates the whole text; when it is not
valid JSON it counts a failure for the deployment (cooldown, as above) and raises, and the route sends
an OpenAI-shaped error event (`data: {"error": {...code: "invalid_json_reply"}}`) before `[DONE]`.
There is no fallback for a stream: the next provider cannot take back what was sent.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import jsonschema
import litellm
from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.utils import CallTypes, ModelResponse

log = logging.getLogger("modelgate.json_guard")

INSTRUCTION = ("Answer with a single JSON object only: no prose before or after it, no Markdown, "
               "no code fences.")
_CHAT_CALLS = {CallTypes.acompletion, CallTypes.completion}
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)
_SPEC_KEY = "_modelgate_json_spec"  # request metadata: the spec, for hops that dropped response_format


class InvalidJSONReply(litellm.exceptions.APIError):
    """An upstream reply that is not the JSON the request asked for: a 502, a failure like any 5xx."""

    def __init__(self, reason: str, provider: str | None, model: str | None) -> None:
        super().__init__(status_code=502, message=reason, llm_provider=provider or "", model=model or "")
        self.message = f"reply is not valid JSON for the requested response_format: {reason}"
        self.code = "invalid_json_reply"


def json_spec(response_format: Any) -> dict[str, Any] | None:
    """{"schema": dict | None} when `response_format` asks for JSON, else None."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"schema": None}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return {"schema": schema if isinstance(schema, dict) else None}
    return None


class JSONGuard(CustomGuardrail):
    name = "json_guard"

    def __init__(self) -> None:
        super().__init__(guardrail_name="modelgate-json-guard")
        self.gateway: Any = None
        self._validators: dict[str, Any] = {}
        self._modes: dict[str, str] = {}

    def setup(self, gateway: Any) -> None:
        self.gateway = gateway

    def should_run_guardrail(self, data: Any, event_type: Any) -> bool:  # noqa: ARG002
        return False  # keep LiteLLM's guardrail hooks (logging_only scans...) away: only the hooks below run

    # --- checking ---------------------------------------------------------------------------

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        validator = self._validators.get(key)
        if validator is None:
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:  # the caller's schema is broken: not the provider's fault
                log.warning("json_schema in a request is not a valid JSON Schema, replies are only "
                            "parsed: %s", exc.message)
                validator = False
            else:
                validator = cls(schema)
            if len(self._validators) > 256:
                self._validators.clear()
            self._validators[key] = validator
        return validator

    def problem(self, content: Any, spec: dict[str, Any]) -> str | None:
        """Why `content` is not the JSON `spec` asks for, or None when it is."""
        if not isinstance(content, str):
            return None  # tool calls / refusals carry no content to check
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            return f"does not parse ({exc.msg} at line {exc.lineno} column {exc.colno})"
        except (ValueError, RecursionError) as exc:
            return f"does not parse ({type(exc).__name__})"
        schema = spec.get("schema")
        if schema is None:
            return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"
        validator = self._validator(schema)
        if validator:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                return f"does not match the schema at {where}: {error.message}"
        return None

    # --- per deployment attempt (inside the Router's fallback loop) -----------------------------

    def json_mode(self, kwargs: dict[str, Any]) -> str:
        """'native' or 'instruction' for the deployment these kwargs go to."""
        info = kwargs.get("model_info") or {}
        mode = info.get("json_mode")
        if mode in ("native", "instruction"):
            return mode
        model = str(kwargs.get("model") or "")
        mode = self._modes.get(model)
        if mode is None:
            try:
                name, provider, _, _ = litellm.get_llm_provider(model=model)
                params = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider)
                mode = "instruction" if params is not None and "response_format" not in params else "native"
            except Exception:  # noqa: BLE001 - unknown to LiteLLM: send response_format, the guard judges
                mode = "native"
            self._modes[model] = mode
        return mode

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any],
                                             call_type: CallTypes | None) -> dict | None:
        if call_type not in _CHAT_CALLS:
            return None
        spec = json_spec(kwargs.get("response_format"))
        if spec is None:
            return None
        if self.json_mode(kwargs) != "instruction":
            return None
        metadata = kwargs.get("metadata")
        if isinstance(metadata, dict):
            metadata[_SPEC_KEY] = spec  # the same for every hop of this request
        text = INSTRUCTION
        if spec["schema"] is not None:
            text += " The object must validate against this JSON Schema:\n" + json.dumps(spec["schema"])
        messages = list(kwargs.get("messages") or [])
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        if first.get("role") == "system" and isinstance(first.get("content"), str):  # one system message
            messages[0] = {**first, "content": first["content"] + "\n\n" + text}
        else:
            messages.insert(0, {"role": "system", "content": text})
        out = {k: v for k, v in kwargs.items() if k != "response_format"}
        out["messages"] = messages
        return out

    async def async_post_call_success_deployment_hook(self, request_data: dict, response: Any,
                                                      call_type: CallTypes | None) -> Any:
        if call_type not in _CHAT_CALLS or not isinstance(response, ModelResponse):
            return None
        spec = (json_spec(request_data.get("response_format"))
                or (request_data.get("metadata") or {}).get(_SPEC_KEY))
        if spec is None:
            return None
        instruction = self.json_mode(request_data) == "instruction"
        for choice in response.choices:
            message = getattr(choice, "message", None)
            content = getattr(message, "content", None)
            if instruction and isinstance(content, str):
                fenced = _FENCE.match(content.strip())
                if fenced:
                    content = message.content = fenced.group(1).strip()
            reason = self.problem(content, spec)
            if reason is not None:
                info = request_data.get("model_info") or {}
                log.warning("json guard: %s answered %s; trying the next provider", info.get("id"), reason)
                raise InvalidJSONReply(reason, info.get("provider"), request_data.get("model"))
        return None

    # --- streams: after the whole answer went out (gateway level, core._Stream) ------------------

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        if not data.get("stream"):
            return None  # non-streamed replies were checked per deployment, above
        spec = json_spec(data.get("response_format"))
        choices = getattr(response, "choices", None) or []
        if spec is None or not choices:
            return None
        reason = self.problem(getattr(choices[0].message, "content", None), spec)
        if reason is None:
            return None
        deployment = str((getattr(response, "_hidden_params", None) or {}).get("model_id") or "")
        error = InvalidJSONReply(reason, deployment.rpartition("/")[2] or None, data.get("model"))
        log.warning("json guard: stream from %s %s; sending an error event", deployment or "?", reason)
        self._count_failure(deployment, error)
        raise error

    def _count_failure(self, deployment: str, error: Exception) -> None:
        """Give the Router the same failure signal a non-streamed bad reply gives (cooldown, health)."""
        router = getattr(self.gateway, "router", None)
        if router is None or not deployment:
            return
        try:
            router.deployment_callback_on_failure(
                kwargs={"exception": error,
                        "litellm_params": {"model_info": {"id": deployment},
                                           "metadata": {"model_group": deployment.rpartition("/")[0]}}},
                completion_response=None, start_time=None, end_time=None)
        except Exception:  # noqa: BLE001 - bookkeeping only
            log.debug("could not count the stream failure of %s", deployment, exc_info=True)


guard = JSONGuard()
