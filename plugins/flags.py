"""Live migration flags: the flags file under config/ and the admin API, checked and logged.

Precedence: flags file > environment/.env > defaults. The file is polled every half second,
so an edit takes effect within a second; a bad value is refused with a clear message and the
old value stays. Every accepted change is logged with its old and new value and kept in a short
history (who changed what when) for the admin API and the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Flags
from gateway.settings import PROVIDERS

log = logging.getLogger("modelgate.flags")

BOOL_FLAGS = {"ENABLE_GROQ": "enable_groq", "ENABLE_FALLBACK": "enable_fallback",
              "ENABLE_MODEL_ABSTRACTION": "enable_model_abstraction"}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class FlagError(ValueError):
    pass


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FlagError(f"{name} must be true or false, got {value!r}")


def _providers(name: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    names = tuple(str(item).strip().lower() for item in items if str(item).strip())
    bad = [n for n in names if n not in PROVIDERS]
    if bad:
        raise FlagError(f"{name}: unknown provider(s) {bad}; expected some of {list(PROVIDERS)}")
    return names


def apply_changes(flags: Flags, changes: dict[str, Any], aliases: set[str]) -> Flags:
    """Return `flags` with `changes` (flag names as in the env) applied; raises FlagError on a bad value."""
    updates: dict[str, Any] = {}
    for name, value in changes.items():
        if name in BOOL_FLAGS:
            updates[BOOL_FLAGS[name]] = _bool(name, value)
        elif name == "PRIMARY_PROVIDER":
            primary = _providers(name, value)
            if len(primary) > 1:
                raise FlagError("PRIMARY_PROVIDER takes one provider")
            updates["primary_provider"] = primary[0] if primary else ""
        elif name == "FALLBACK_PROVIDERS":
            updates["fallback_providers"] = _providers(name, value)
        elif name == "traffic":
            updates["traffic"] = {**flags.traffic, **_traffic(value, aliases)}
        else:
            raise FlagError(f"unknown flag {name!r}; known: {', '.join([*BOOL_FLAGS, 'PRIMARY_PROVIDER', 'FALLBACK_PROVIDERS', 'traffic'])}")
    return replace(flags, **updates)


def _traffic(value: Any, aliases: set[str]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise FlagError("traffic must map an alias to a percentage, e.g. {main: 50}")
    out = {}
    for alias, pct in value.items():
        if alias not in aliases:
            raise FlagError(f"traffic: unknown alias {alias!r}; known: {', '.join(sorted(aliases))}")
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise FlagError(f"traffic.{alias} must be a percentage from 0 to 100, got {pct!r}")
        out[alias] = int(pct)
    return out


def as_dict(flags: Flags) -> dict[str, Any]:
    return {
        "ENABLE_GROQ": flags.enable_groq,
        "ENABLE_FALLBACK": flags.enable_fallback,
        "ENABLE_MODEL_ABSTRACTION": flags.enable_model_abstraction,
        "PRIMARY_PROVIDER": flags.primary_provider,
        "FALLBACK_PROVIDERS": ",".join(flags.fallback_providers),
        "traffic": dict(flags.traffic),
    }


class FlagStore:
    """Holds the current flags, watches the flags file, and applies changes through `on_change`."""

    def __init__(self, base: Flags, path: Path, aliases: set[str], on_change, remote=None) -> None:  # noqa: ANN001
        self.base, self.path, self.aliases, self.on_change = base, path, aliases, on_change
        self.history: deque[dict[str, Any]] = deque(maxlen=200)
        self._mtime: float | None = None
        self.current = base
        if path.exists():
            self.current = self._read_file()
            self._mtime = path.stat().st_mtime
        # Several replicas (REDIS_URL, plugins/flags_redis.py): the flags published in Redis win over the file.
        self.remote = remote
        self._remote_down = False
        if remote is not None:
            try:
                fetched = remote.fetch()
                if fetched is not None:
                    remote.seen = fetched[0]
                    self.current = apply_changes(self.base, fetched[1], self.aliases)
            except Exception as exc:  # noqa: BLE001 - Redis down or a bad document: keep the file's flags
                log.error("shared flags in Redis unusable at start, using the flags file: %s", exc)

    def _read_file(self) -> Flags:
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise FlagError(f"{self.path}:{mark.line + 1 if mark else '?'}: malformed YAML") from exc
        if not isinstance(data, dict):
            raise FlagError(f"{self.path}: must be a mapping of flag names to values")
        try:
            return apply_changes(self.base, data, self.aliases)
        except FlagError as exc:
            raise FlagError(f"{self.path}: {exc}") from exc

    def _record(self, old: Flags, new: Flags, who: str) -> None:
        before, after = as_dict(old), as_dict(new)
        for name in after:
            if before[name] != after[name]:
                entry = {"time": time.time(), "who": who, "flag": name, "old": before[name], "new": after[name]}
                self.history.append(entry)
                log.warning("flag %s changed by %s: %r -> %r", name, who, before[name], after[name])

    def _apply(self, new: Flags, who: str) -> None:
        if new == self.current:
            return
        self.on_change(new)  # may raise ConfigError (e.g. an alias left with no provider): nothing changes
        old, self.current = self.current, new
        self._record(old, new, who)

    def update(self, changes: dict[str, Any], who: str) -> Flags:
        """Apply changes from the admin API and persist them to the flags file."""
        new = apply_changes(self.current, changes, self.aliases)
        self._apply(new, who)
        self._write(new)
        self._publish(new, who)
        return new

    def _write(self, flags: Flags) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("# Live migration flags, written by the admin API; edits here apply within a second.\n"
                       + yaml.safe_dump(as_dict(flags), sort_keys=False))
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

    def poll(self) -> None:
        """Reload the file if it changed; a bad file is logged and ignored."""
        try:
            mtime = self.path.stat().st_mtime if self.path.exists() else None
        except OSError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            new = self._read_file() if mtime is not None else self.base
            changed = new != self.current
            self._apply(new, who=f"file {self.path.name}")
            if changed:
                self._publish(new, f"file {self.path.name}")
        except Exception as exc:  # a bad edit must never take the gateway down
            log.error("flags file refused, keeping the current flags: %s", exc)

    async def watch(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            self.poll()
            if self.remote is not None:
                await self.pull()

    def _publish(self, flags: Flags, who: str) -> None:
        if self.remote is None:
            return
        try:
            self.remote.publish(as_dict(flags), who)
        except Exception as exc:  # noqa: BLE001 - applied here; the other replicas miss it until the next change
            log.error("flag change applied on this replica only, Redis refused it: %s", exc)

    async def pull(self) -> None:
        """Apply the flags another replica published in Redis (the whole set; the last writer wins)."""
        try:
            fetched = await asyncio.to_thread(self.remote.fetch)
        except Exception as exc:  # noqa: BLE001 - Redis down: keep the current flags, say so once
            if not self._remote_down:
                log.error("shared flags: Redis unreachable, keeping the current flags: %s", exc)
            self._remote_down = True
            return
        self._remote_down = False
        if fetched is None:
            return
        raw, data, who = fetched
        self.remote.seen = raw
        try:
            new = apply_changes(self.base, data, self.aliases)
            self._apply(new, who=f"{who} (another replica)")
            self._write(new)
        except Exception as exc:  # noqa: BLE001 - e.g. an alias this replica's YAML lacks
            log.error("shared flags from Redis refused, keeping the current flags: %s", exc)

    def snapshot(self) -> dict[str, Any]:
        return {"flags": as_dict(self.current), "history": list(self.history), "file": str(self.path),
                "defaults": asdict(self.base)}
