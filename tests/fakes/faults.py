"""The fault program and the per-process state of a fake provider.

A fault is ``{"kind": K, "count": n, "match": {...}, "delay_s": x, "retry_after": s, "message": "..."}``.
``POST /_control {"faults": [...]}`` appends faults to the program; each request takes the first fault
whose `match` fits it, and uses one of its `count` (``-1`` = forever). ``POST /_reset`` clears everything
and releases requests held by ``hang`` / ``stream_stall``.

Kinds:
  any HTTP status 400..599 as a string or int ("429", 500, ...): a provider-shaped error (429 carries
      Retry-After = `retry_after`, default 1);
  hang: accept the request and never answer (until the client gives up or /_reset);
  slow: answer correctly after `delay_s` seconds;
  drop: close the TCP connection without any response;
  stream_error: a 200 stream with good chunks, then an in-stream error event, then the end (streams only);
  stream_error_first: a 200 stream whose first data event is the error (streams only);
  stream_stall: a 200 stream that sends its first chunks and then stalls (streams only);
  invalid_json: chat content that is not valid JSON (on audio routes: a truncated JSON body).
Match keys: path_contains, model, model_contains, stream (bool).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

NAMED_KINDS = {"hang", "slow", "drop", "stream_error", "stream_error_first", "stream_stall", "invalid_json"}
STREAM_ONLY = {"stream_error", "stream_error_first", "stream_stall"}
MATCH_KEYS = {"path_contains", "model", "model_contains", "stream"}


class FaultSpecError(ValueError):
    """A /_control fault the fake does not understand (answered with 422)."""


@dataclass
class Fault:
    kind: str
    count: int = 1
    match: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    retry_after: float = 1
    message: str | None = None

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None

    @classmethod
    def parse(cls, spec: Any) -> Fault:
        if isinstance(spec, (str, int)):
            spec = {"kind": spec}
        if not isinstance(spec, dict) or "kind" not in spec:
            raise FaultSpecError(f"a fault needs a kind: {spec!r}")
        unknown = set(spec) - {"kind", "count", "match", "delay_s", "retry_after", "message"}
        if unknown:
            raise FaultSpecError(f"unknown fault fields {sorted(unknown)}")
        kind = str(spec["kind"])
        if not (kind in NAMED_KINDS or (kind.isdigit() and 400 <= int(kind) <= 599)):
            raise FaultSpecError(
                f"unknown fault kind {kind!r}; use an HTTP status 400-599 or one of {sorted(NAMED_KINDS)}"
            )
        match = spec.get("match") or {}
        if not isinstance(match, dict) or set(match) - MATCH_KEYS:
            raise FaultSpecError(f"match takes only {sorted(MATCH_KEYS)}: {match!r}")
        count = int(spec.get("count", 1))
        if count == 0 or count < -1:
            raise FaultSpecError("count is a positive number or -1 (forever)")
        return cls(
            kind=kind,
            count=count,
            match=match,
            delay_s=float(spec.get("delay_s", 0.0)),
            retry_after=spec.get("retry_after", 1),
            message=spec.get("message"),
        )

    def matches(self, path: str, model: str | None, stream: bool) -> bool:
        if self.kind in STREAM_ONLY and not stream:
            return False
        m = self.match
        if "path_contains" in m and m["path_contains"] not in path:
            return False
        if "model" in m and m["model"] != model:
            return False
        if "model_contains" in m and m["model_contains"] not in (model or ""):
            return False
        return not ("stream" in m and bool(m["stream"]) != stream)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "match": self.match,
            "delay_s": self.delay_s,
            "retry_after": self.retry_after,
            "message": self.message,
        }


class State:
    """Everything a fake remembers between requests; one per process (see `STATE`)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.reply: dict[str, Any] = {}
        self.prices: dict[str, dict[str, float]] = {}
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()  # set by /_reset to free held requests
        self.started = time.time()

    def reset(self) -> None:
        self.faults.clear()
        self.reply = {}
        self.prices = {}
        self.requests.clear()
        self.release.set()
        self.release = asyncio.Event()

    def control(self, body: dict[str, Any]) -> None:
        """Apply a /_control body; raises FaultSpecError (and changes nothing) when any part is invalid."""
        unknown = set(body) - {"faults", "reply", "prices", "clear_faults"}
        if unknown:
            raise FaultSpecError(f"unknown control fields {sorted(unknown)}")
        faults = [Fault.parse(f) for f in body.get("faults") or []]
        reply = body.get("reply")
        if reply is not None and (not isinstance(reply, dict) or set(reply) - {"content", "text"}):
            raise FaultSpecError("reply takes {'content': str} and/or {'text': str}")
        prices = body.get("prices") or {}
        for model, price in prices.items():
            if not isinstance(price, dict) or set(price) != {"prompt", "completion"}:
                raise FaultSpecError(f"prices[{model!r}] needs prompt and completion (USD per token)")
        if body.get("clear_faults"):
            self.faults.clear()
        self.faults.extend(faults)
        if reply is not None:
            self.reply = {k: v for k, v in {**self.reply, **reply}.items() if v is not None}
        self.prices.update(prices)

    def take(self, path: str, model: str | None, stream: bool) -> Fault | None:
        """The first fault that matches this request, using one of its count."""
        for i, fault in enumerate(self.faults):
            if fault.matches(path, model, stream):
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        del self.faults[i]
                return fault
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "faults": [f.to_json() for f in self.faults],
            "reply": self.reply,
            "prices": self.prices,
            "requests": len(self.requests),
        }


STATE = State()
