"""Typed read-only views of what the service wrote to Redis, for assertions."""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from online.redis_keys import UserKeys


def user_events(url: str, model: str, user: str) -> list[dict[str, str]]:
    """The feedback-log entries of `user` (fields decoded), in log order."""
    client = redis.Redis.from_url(url, decode_responses=True)
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(UserKeys.of(model, user).events))
    return [fields for _, fields in entries if fields["user_id"] == user]


def user_decisions(url: str, model: str, user: str) -> list[dict[str, str]]:
    """The decision-log entries of `user` (fields decoded), in log order."""
    client = redis.Redis.from_url(url, decode_responses=True)
    stream = UserKeys.of(model, user).decisions
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(stream))
    return [fields for _, fields in entries if fields["user_id"] == user]


def logged_decisions(
    url: str, model: str, user: str, count: int = 1, timeout_s: float = 5.0
) -> list[dict[str, str]]:
    """`user_decisions` once `count` entries are there: an answer's record reaches Redis with
    the worker's next round trip (within 20 ms of the response), not before the response."""
    deadline = time.monotonic() + timeout_s
    while len(found := user_decisions(url, model, user)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} decisions logged"
        time.sleep(0.01)
    return found


def redis_contents(url: str) -> dict[Any, Any]:
    """Every key with a dump of its value (to compare before and after a request)."""
    client = redis.Redis.from_url(url)
    keys = cast(list[bytes], client.keys("*"))
    return {key: client.dump(key) for key in sorted(keys)}
