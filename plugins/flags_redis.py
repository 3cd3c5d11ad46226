"""The live flags shared through Redis, for several gateway replicas (docs/scale-out.md).

With REDIS_URL set, the FlagStore publishes every accepted change (admin API or flags file) as one
small JSON document under one key, and each replica polls that key with its flags file (every
half second), so a change made through any replica reaches all of them within a second. The key
holds the whole flag set, so the last writer wins and every replica converges on it; at start a
replica takes the published flags over its own flags file. The flags file stays the single-box
mechanism: without REDIS_URL nothing here runs.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import redis

log = logging.getLogger("modelgate.flags")

KEY = "modelgate:flags"


class RedisFlags:
    """publish(flags, who) / fetch() -> (raw, flags, who) of the shared flags document."""

    def __init__(self, url: str, key: str = KEY) -> None:
        self.key = key
        # Short timeouts: publish runs on the event loop (one SET on a LAN is well under a millisecond).
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.seen: bytes | None = None   # the last document this replica published or applied

    def publish(self, flags: dict[str, Any], who: str) -> None:
        raw = json.dumps({"flags": flags, "who": who, "time": time.time(), "id": uuid.uuid4().hex}).encode()
        self.client.set(self.key, raw)
        self.seen = raw

    def fetch(self) -> tuple[bytes, dict[str, Any], str] | None:
        """The shared document if it changed since this replica last saw it, else None."""
        raw = self.client.get(self.key)
        if raw is None or raw == self.seen:
            return None
        doc = json.loads(raw)
        return raw, dict(doc.get("flags") or {}), str(doc.get("who") or "another replica")

    def close(self) -> None:
        self.client.close()
