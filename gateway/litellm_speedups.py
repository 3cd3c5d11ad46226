"""LiteLLM's model-map lookups, memoized (docs/performance.md, "memoized model-map lookups").

On every chat call LiteLLM asks its model map what the model can do: `supports_web_search` and
`supports_reasoning` twice each while it maps the OpenAI params, and the Responses-API bridge check
twice. Each lookup resolves the provider again and rebuilds a ~190-key dict from the cost map,
about 0.2 ms of the gateway's ~3 ms per request. The answers change only when the map does, so
they are memoized here, keyed by the arguments and by LiteLLM's own counter of map mutations
(`register_model` bumps it) and the map's identity (a wholesale `litellm.model_cost = ...`).

LiteLLM has an lru-cached twin of `get_model_info_helper`, but its hot path calls the uncached one.
The patch replaces two module attributes of `litellm.utils` (and the name `litellm.main` imported);
the tests in tests/gateway/test_litellm_speedups.py compare every answer with LiteLLM's own, so a
LiteLLM upgrade that changes these functions shows there first.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import litellm
import litellm.main
import litellm.utils

_MAX_ENTRIES = 4096  # distinct (model, provider, ...) lookups; a gateway sees a few dozen
_installed: dict[str, Callable[..., Any]] = {}  # name -> LiteLLM's original


def _map_version() -> tuple[int, int]:
    return litellm.utils.get_model_cost_mutation_generation(), id(litellm.model_cost)


def _memoized(fn: Callable[..., Any], copy_result: bool) -> Callable[..., Any]:
    """`fn` answered from a cache while the model map is unchanged. Raised errors are cached too
    (an unmapped model, such as a local one, raises on every call) and re-raised as fresh copies;
    a dict result is handed out as a shallow copy, since some callers add keys to it."""
    cache: dict[Any, tuple[bool, Any]] = {}

    @functools.wraps(fn)
    def lookup(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (_map_version(), args, tuple(sorted(kwargs.items())))
            hit = cache.get(key)
        except TypeError:  # an unhashable argument: ask LiteLLM
            return fn(*args, **kwargs)
        if hit is None:
            try:
                hit = (True, fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - kept and re-raised below, as LiteLLM raised it
                hit = (False, exc)
            if len(cache) >= _MAX_ENTRIES:
                cache.clear()
            cache[key] = hit
        ok, value = hit
        if not ok:
            raise _fresh(value).with_traceback(None)
        return dict(value) if copy_result and isinstance(value, dict) else value

    lookup.cache = cache  # type: ignore[attr-defined]  # for tests
    return lookup


def _fresh(exc: Exception) -> Exception:
    """A copy of `exc` to raise, so raising it again cannot grow the cached one's traceback; the
    cached one itself when its class cannot be rebuilt from its args."""
    try:
        return copy.copy(exc)
    except Exception:  # noqa: BLE001 - an __init__ whose arguments differ from .args
        return exc


def install() -> None:
    """Replace LiteLLM's lookups with memoized ones; idempotent."""
    if _installed:
        return
    _installed["get_model_info_helper"] = litellm.utils.get_model_info_helper
    _installed["supports_factory"] = litellm.utils.supports_factory
    info = _memoized(litellm.utils.get_model_info_helper, copy_result=True)
    supports = _memoized(litellm.utils.supports_factory, copy_result=False)
    litellm.utils.get_model_info_helper = litellm.main.get_model_info_helper = info
    litellm.utils.supports_factory = litellm.utils._supports_factory = supports


def uninstall() -> None:
    """Put LiteLLM's own lookups back (tests)."""
    if not _installed:
        return
    litellm.utils.get_model_info_helper = litellm.main.get_model_info_helper = _installed["get_model_info_helper"]
    litellm.utils.supports_factory = litellm.utils._supports_factory = _installed["supports_factory"]
    _installed.clear()


def original(name: str) -> Callable[..., Any]:
    """LiteLLM's own function behind an installed memo (tests compare the two)."""
    return _installed.get(name) or getattr(litellm.utils, name)
